//! The OpenClaw checks of `clawkeep audit` that read files (CK-OC-001..004): what clawkeep
//! wrote into each agent's home is still private and still says what clawkeep enforces, the
//! agent's gateway token is private and strong, and the runtime every agent mounts is the
//! installed, unmodified one the fleet pinned. Every finding's subject is the agent's name;
//! no finding ever shows a token.
//!
//! The home belongs to the agent, which may have planted symlinks or FIFOs in it: files there
//! are opened beneath the home without following any symlink and without blocking.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use clawkeep_beneath::Beneath;
use nix::fcntl::OFlag;
use serde_json::Value;

use crate::findings::{finding, Finding};
use crate::fleet::runtime::OpenclawRuntime;
use crate::openclaw::config::ENFORCED;
use crate::openclaw::provision::{CONFIG_REL, STATE_REL};

/// The configuration's file name inside `~/.openclaw`.
const CONFIG_FILE: &str = "openclaw.json";
/// The largest openclaw.json read; a bigger one is a finding, not a read.
const MAX_CONFIG: u64 = 4 << 20;
/// The largest token file read.
const MAX_TOKEN: u64 = 4096;

/// The agent's `~/.openclaw`, opened without following a symlink anywhere under its home.
fn state_dir(home: &Path) -> std::io::Result<File> {
    let root = Beneath::open(home)?;
    Ok(File::from(root.dir(Path::new(STATE_REL), false, None)?))
}

/// `~/.openclaw/openclaw.json`: not through a symlink, and a FIFO does not block the open.
fn open_config(home: &Path) -> std::io::Result<File> {
    let dir = state_dir(home)?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let f = File::from(nix::fcntl::openat(
        &dir,
        CONFIG_FILE,
        flags,
        nix::sys::stat::Mode::empty(),
    )?);
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// The agent's openclaw.json as it is on disk (read as above; at most 4 MiB).
pub fn read_config(home: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_config(home)?
        .take(MAX_CONFIG + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG {
        return Err(std::io::Error::other("larger than 4 MiB"));
    }
    Ok(bytes)
}

/// How a failure to open something in the home reads in a finding.
fn cannot(path: &Path, e: &std::io::Error) -> String {
    let why = if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::EXDEV) {
        "a symlink is in the way (never followed)".to_string()
    } else {
        e.to_string()
    };
    format!("cannot check {}: {why}", path.display())
}

/// CK-OC-001: `~/.openclaw` is 0700 and openclaw.json grants group and others nothing.
/// Nothing is reported for an agent that has not started yet (neither exists).
pub fn state_modes(agent: &str, home: &Path) -> Vec<Finding> {
    let dir = home.join(STATE_REL);
    let file = home.join(CONFIG_REL);
    let fix = format!(
        "chmod 700 {} && chmod 600 {} (`clawkeep restart {agent}` sets both again)",
        dir.display(),
        file.display()
    );
    let mut out = Vec::new();
    for (path, md) in [
        (&dir, state_dir(home).and_then(|d| d.metadata())),
        (&file, open_config(home).and_then(|f| f.metadata())),
    ] {
        match md {
            Ok(md) if md.mode() & 0o077 != 0 => out.push(finding(
                "CK-OC-001",
                "high",
                agent,
                format!(
                    "{} is mode {:o}: other users on the node can read the agent's OpenClaw state",
                    path.display(),
                    md.mode() & 0o7777
                ),
                &fix,
            )),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => out.push(finding("CK-OC-001", "high", agent, cannot(path, &e), &fix)),
        }
    }
    out
}

/// Where `actual` differs from what clawkeep enforces: for each key in [`ENFORCED`], the value
/// `expected` (the configuration clawkeep renders for the agent) holds there. One line per
/// difference, naming the dotted key; values under a key that looks secret are not shown.
pub fn drift(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ENFORCED {
        let ptr = format!("/{}", key.replace('.', "/"));
        compare(key, expected.pointer(&ptr), actual.pointer(&ptr), &mut out);
    }
    out
}

fn compare(at: &str, want: Option<&Value>, have: Option<&Value>, out: &mut Vec<String>) {
    match (want, have) {
        (Some(Value::Object(w)), Some(Value::Object(h))) => {
            for (k, wv) in w {
                compare(&format!("{at}.{k}"), Some(wv), h.get(k), out);
            }
            for k in h.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{at}.{k} is set (clawkeep sets no such key)"));
            }
        }
        (Some(w), Some(h)) if w == h => {}
        (Some(w), Some(h)) => out.push(format!(
            "{at} is {}, clawkeep enforces {}",
            shown(at, h),
            shown(at, w)
        )),
        (Some(w), None) => out.push(format!(
            "{at} is missing, clawkeep enforces {}",
            shown(at, w)
        )),
        (None, _) => {}
    }
}

/// A value for a message: never one under a secret-looking key, and never long.
fn shown(at: &str, v: &Value) -> String {
    let key = at.to_ascii_lowercase();
    if ["token", "password", "secret"]
        .iter()
        .any(|s| key.contains(s))
    {
        return "a value (not shown)".into();
    }
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// CK-OC-002: the openclaw.json on disk keeps what clawkeep enforces (`expected` is the
/// configuration clawkeep renders for the agent). An agent that has not started yet has no
/// file and no finding.
pub fn config_drift(agent: &str, home: &Path, expected: &Value) -> Vec<Finding> {
    let file = home.join(CONFIG_REL);
    let fix = format!(
        "`clawkeep restart {agent}` writes it again; find out who changed it (the agent itself can: the file is in its home, which its gateway may reload)"
    );
    let bytes = match read_config(home) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => return vec![finding("CK-OC-002", "high", agent, cannot(&file, &e), fix)],
    };
    let actual: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return vec![finding(
                "CK-OC-002",
                "high",
                agent,
                format!("{} is not valid JSON: {e}", file.display()),
                fix,
            )]
        }
    };
    let lines = drift(expected, &actual);
    if lines.is_empty() {
        return Vec::new();
    }
    vec![finding(
        "CK-OC-002",
        "high",
        agent,
        format!(
            "{} no longer says what clawkeep enforces: {}",
            file.display(),
            lines.join("; ")
        ),
        fix,
    )]
}

/// CK-OC-003: the gateway token file is 0600 and the token strong. The token is never shown.
/// An agent that has not started yet has no token and no finding.
pub fn token_file(agent: &str, path: &Path) -> Vec<Finding> {
    let rotate = format!("`clawkeep token rotate {agent}` (it restarts the agent)");
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            let msg = format!("cannot check {}: {e}", path.display());
            return vec![finding("CK-OC-003", "high", agent, msg, rotate)];
        }
    };
    if !md.is_file() {
        let msg = format!("{} is not a regular file", path.display());
        return vec![finding("CK-OC-003", "high", agent, msg, rotate)];
    }
    let mut out = Vec::new();
    let mode = md.mode() & 0o7777;
    if mode & 0o077 != 0 {
        out.push(finding(
            "CK-OC-003",
            "high",
            agent,
            format!(
                "{} is mode {mode:o}: other users can read the token that opens the agent's gateway",
                path.display()
            ),
            format!("chmod 600 {}, then {rotate}: it may have been read", path.display()),
        ));
    }
    let mut token = String::new();
    let read = File::open(path).and_then(|f| f.take(MAX_TOKEN).read_to_string(&mut token));
    match read {
        Err(e) => out.push(finding(
            "CK-OC-003",
            "high",
            agent,
            format!("cannot read {}: {e}", path.display()),
            rotate,
        )),
        Ok(_) if !crate::openclaw::token::is_strong(&token) => out.push(finding(
            "CK-OC-003",
            "high",
            agent,
            format!(
                "the gateway token in {} is weak ({} characters; clawkeep mints 64 random hex digits)",
                path.display(),
                token.trim().chars().count()
            ),
            rotate,
        )),
        Ok(_) => {}
    }
    out
}

/// Entries under `root` (not following symlinks) that anyone may write: how many, and the
/// first few with their modes.
fn writable(root: &Path) -> (usize, Vec<(PathBuf, u32)>) {
    let mut count = 0;
    let mut first = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.file_type().is_symlink() {
            continue;
        }
        if md.mode() & 0o222 != 0 {
            count += 1;
            if first.len() < 3 {
                first.push((p.clone(), md.mode() & 0o7777));
            }
        }
        if md.is_dir() {
            todo.extend(
                std::fs::read_dir(&p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    (count, first)
}

/// What is wrong with the pinned runtime on disk: it is gone, writable, or its bundle.json is
/// not the one its directory is named after (the sha256 of bundle.json).
pub fn runtime_problems(rt: &OpenclawRuntime) -> Vec<String> {
    let path = &rt.path;
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return vec![format!("{} is not a directory", path.display())],
        Err(e) => {
            return vec![format!(
                "{} is gone ({e}): agents cannot start again",
                path.display()
            )]
        }
    }
    let mut out = Vec::new();
    let (n, first) = writable(path);
    if n > 0 {
        let shown: Vec<String> = first
            .iter()
            .map(|(p, m)| format!("{} ({m:o})", p.display()))
            .collect();
        out.push(format!(
            "{n} entries in {} can be written, e.g. {}: an installed runtime is read-only",
            path.display(),
            shown.join(", ")
        ));
    }
    match clawkeep_image::runtime::Manifest::load(path) {
        Ok((m, bytes)) => {
            let id = clawkeep_image::runtime::bundle_id(&bytes);
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.as_deref() != Some(id.as_str()) || id != rt.id {
                out.push(format!(
                    "{}/bundle.json has sha256 {id}, but the runtime is {}: its manifest was changed",
                    path.display(),
                    rt.id
                ));
            } else if m.openclaw != rt.openclaw || m.node != rt.node {
                out.push(format!(
                    "{} holds OpenClaw {} on Node {}, the fleet pinned {} on {}",
                    path.display(),
                    m.openclaw,
                    m.node,
                    rt.openclaw,
                    rt.node
                ));
            }
        }
        Err(e) => out.push(e.to_string()),
    }
    out
}

/// CK-OC-004: one finding per agent (each mounts the runtime) when the runtime has problems.
pub fn runtime(agents: &[&str], rt: &OpenclawRuntime) -> Vec<Finding> {
    let problems = runtime_problems(rt);
    if problems.is_empty() {
        return Vec::new();
    }
    let fix = format!(
        "install the runtime again: move {} away, then `clawkeep runtime install BUNDLE --dest {}` and restart the fleet; find out who changed it",
        rt.path.display(),
        rt.runtimes.display()
    );
    agents
        .iter()
        .map(|a| {
            finding(
                "CK-OC-004",
                "high",
                *a,
                format!(
                    "the OpenClaw runtime it mounts is not as installed: {}",
                    problems.join("; ")
                ),
                &fix,
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
