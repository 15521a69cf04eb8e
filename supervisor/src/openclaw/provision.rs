//! Writing an OpenClaw agent's state into its home before each start: `~/.openclaw` (0700)
//! with the generated `openclaw.json` (0600, every start: the fleet file is the source of
//! truth) and the workspace seeded with SOUL.md, AGENTS.md, ... on first start only
//! (afterwards the brain pulled from the store wins).
//!
//! The home belongs to the agent, which may have planted symlinks in it: every operation
//! goes through [`clawkeep_beneath::Beneath`] (openat2 RESOLVE_BENEATH | NO_SYMLINKS), and
//! files are written in a root-only scratch directory, then renamed into place.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clawkeep_beneath::Beneath;

use super::config::STATE_DIR;
use clawkeep_sandbox::SandboxError;

/// The state directory under the home (`~/.openclaw`), relative.
pub const STATE_REL: &str = ".openclaw";
/// The configuration file, relative to the home.
pub const CONFIG_REL: &str = ".openclaw/openclaw.json";
/// The workspace, relative to the home.
pub const WORKSPACE_REL: &str = ".openclaw/workspace";

/// What to write into one agent's home.
#[derive(Debug)]
pub struct Provision<'a> {
    /// The agent's home on the host.
    pub home: &'a Path,
    /// A directory only root can write, on the same filesystem as the home.
    pub scratch: &'a Path,
    /// Host uid (= gid) of the agent's root.
    pub owner: u32,
    /// The rendered openclaw.json.
    pub config: &'a serde_json::Value,
    /// Workspace files written when missing: (file name, source on the host).
    pub seeds: &'a [(String, PathBuf)],
}

/// What [`provision`] did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Workspace files seeded (they were missing).
    pub seeded: Vec<String>,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_path_buf(),
        what: what.into(),
        source: e,
    }
}

/// Write `bytes` as `rel` under the home: a 0600 file owned by the agent, made in the scratch
/// directory and renamed over whatever is there (never through a symlink).
fn put(p: &Provision, root: &Beneath, rel: &str, bytes: &[u8]) -> Result<(), SandboxError> {
    let name = format!(".provision-{}", std::process::id());
    let tmp = p.scratch.join(&name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("write", &tmp, e))?;
    std::os::unix::fs::fchown(&f, Some(p.owner), Some(p.owner))
        .map_err(|e| io("chown", &tmp, e))?;
    drop(f);
    let scratch = std::fs::File::open(p.scratch).map_err(|e| io("open", p.scratch, e))?;
    let owner = Some((p.owner, p.owner));
    root.rename_in(scratch.as_fd(), &name, Path::new(rel), owner)
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("move into place", &p.home.join(rel), e)
        })
}

/// Make `rel` a directory owned by the agent with `mode` (never following a symlink).
fn dir(p: &Provision, root: &Beneath, rel: &str, mode: u32) -> Result<(), SandboxError> {
    let path = p.home.join(rel);
    let fd = root
        .dir(Path::new(rel), true, Some((p.owner, p.owner)))
        .map_err(|e| io("create directory", &path, e))?;
    let f = std::fs::File::from(fd);
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io("chmod", &path, e))
}

/// Write the agent's OpenClaw state into its home (see the module docs).
pub fn provision(p: &Provision) -> Result<Provisioned, SandboxError> {
    let root = Beneath::open(p.home).map_err(|e| io("open home", p.home, e))?;
    dir(p, &root, STATE_REL, 0o700)?;
    dir(p, &root, WORKSPACE_REL, 0o700)?;
    let mut json = serde_json::to_vec_pretty(p.config)
        .map_err(|e| io("serialize", &p.home.join(CONFIG_REL), e.into()))?;
    json.push(b'\n');
    put(p, &root, CONFIG_REL, &json)?;
    let present = root
        .list(Path::new(WORKSPACE_REL))
        .map_err(|e| io("list", &p.home.join(WORKSPACE_REL), e))?
        .into_iter()
        .map(|e| e.name)
        .collect::<Vec<std::ffi::OsString>>();
    let mut done = Provisioned::default();
    for (name, src) in p.seeds {
        if present.iter().any(|n| n.as_os_str() == name.as_str()) {
            continue;
        }
        let bytes = std::fs::read(src).map_err(|e| io("read", src, e))?;
        put(p, &root, &format!("{WORKSPACE_REL}/{name}"), &bytes)?;
        done.seeded.push(name.clone());
    }
    Ok(done)
}

/// The environment an OpenClaw agent runs with (besides the token, which comes through the
/// secrets channel): its state dir, and the runtime's Node first in PATH.
pub fn env() -> Vec<(String, String)> {
    let rt = crate::fleet::runtime::MOUNT;
    vec![
        ("OPENCLAW_STATE_DIR".into(), STATE_DIR.into()),
        (
            "PATH".into(),
            format!("{rt}/bin:{rt}/node/bin:/usr/local/bin:/usr/bin:/bin"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        let scratch = d.path().to_path_buf();
        std::fs::create_dir(&home).unwrap();
        let soul = d.path().join("soul.md");
        std::fs::write(&soul, "be kind\n").unwrap();
        (d, home, scratch, soul)
    }

    #[test]
    fn writes_config_every_time_and_seeds_once() {
        let (_d, home, scratch, soul) = setup();
        let uid = nix::unistd::getuid().as_raw();
        let seeds = vec![("SOUL.md".to_string(), soul.clone())];
        let config = serde_json::json!({"gateway": {"mode": "local"}});
        let p = Provision {
            home: &home,
            scratch: &scratch,
            owner: uid,
            config: &config,
            seeds: &seeds,
        };
        assert_eq!(provision(&p).unwrap().seeded, vec!["SOUL.md"]);
        let cfg = home.join(CONFIG_REL);
        let md = std::fs::metadata(&cfg).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        let st = std::fs::metadata(home.join(STATE_REL)).unwrap();
        assert_eq!(st.mode() & 0o777, 0o700);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        assert_eq!(v, config);
        // The brain (from the store) changed SOUL.md: a second start keeps it.
        std::fs::write(home.join(WORKSPACE_REL).join("SOUL.md"), "learned\n").unwrap();
        std::fs::write(&cfg, "{}").unwrap();
        assert!(provision(&p).unwrap().seeded.is_empty());
        assert_eq!(
            std::fs::read_to_string(home.join(WORKSPACE_REL).join("SOUL.md")).unwrap(),
            "learned\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        assert_eq!(v, config, "the config is written again on every start");
    }

    #[test]
    fn symlinks_planted_by_the_agent_are_not_followed() {
        let (d, home, scratch, soul) = setup();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, home.join(STATE_REL)).unwrap();
        let config = serde_json::json!({});
        let p = Provision {
            home: &home,
            scratch: &scratch,
            owner: nix::unistd::getuid().as_raw(),
            config: &config,
            seeds: &[("SOUL.md".to_string(), soul)],
        };
        let err = provision(&p).unwrap_err().to_string();
        assert!(err.contains(".openclaw"), "{err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
