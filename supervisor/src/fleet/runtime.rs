//! `[runtime] openclaw`: the pinned OpenClaw runtime, found among the runtimes installed by
//! `clawkeep runtime install` and fixed by its content address when the fleet is resolved, so
//! a later install (which moves `current`) never changes what a running fleet mounts.

use std::path::{Path, PathBuf};

use clawkeep_image::runtime::{Manifest, CURRENT, DEFAULT_RUNTIMES_DIR};

use super::file::FleetFile;
use super::resolve::Resolver;
use super::spans::key_path;

/// Where the runtime appears inside every sandbox (read-only).
pub const MOUNT: &str = clawkeep_sandbox::bundle::RUNTIME_MOUNT;

/// The pinned OpenClaw runtime of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenclawRuntime {
    /// OpenClaw version, exact.
    pub openclaw: String,
    /// Node version the runtime carries, exact.
    pub node: String,
    /// Content address (sha256 of its bundle.json).
    pub id: String,
    /// The installed runtime on the host (`<runtimes>/<id>`), mounted at [`MOUNT`].
    pub path: PathBuf,
    /// The directory of installed runtimes it was found in.
    pub runtimes: PathBuf,
}

impl OpenclawRuntime {
    /// The program and arguments agents without a command run: OpenClaw's gateway on the
    /// bundled Node (no shell wrapper, so Node's pid is the init's only child).
    pub fn gateway_command() -> (String, Vec<String>) {
        (
            format!("{MOUNT}/node/bin/node"),
            vec![
                format!("{MOUNT}/app/node_modules/openclaw/openclaw.mjs"),
                "gateway".into(),
                "run".into(),
            ],
        )
    }
}

/// Whether the runtime's exact Node version satisfies the pin: "24" matches 24.x.y, "24.21"
/// matches 24.21.y, "24.21.0" only itself (a leading "v" is ignored).
pub fn node_matches(pin: &str, exact: &str) -> bool {
    let pin = pin.trim().trim_start_matches('v');
    let exact = exact.trim().trim_start_matches('v');
    let want: Vec<&str> = pin.split('.').collect();
    let have: Vec<&str> = exact.split('.').collect();
    !pin.is_empty() && want.len() <= have.len() && want.iter().zip(&have).all(|(w, h)| w == h)
}

/// Every installed runtime under `dir`: (id, manifest), sorted by id. Unreadable entries are
/// skipped (an install in progress is a `.tmp` directory without a final name).
pub fn installed(dir: &Path) -> Vec<(String, Manifest)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Manifest)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let is_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_id || !e.file_type().ok()?.is_dir() {
                return None;
            }
            let (m, _) = Manifest::load(&e.path()).ok()?;
            Some((name, m))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Pick the runtime for a pin: the one `current` points at if it matches, else the match
/// with the newest Node. `None` when nothing installed matches.
pub fn pick(dir: &Path, openclaw: &str, node: Option<&str>) -> Option<(String, Manifest)> {
    let matching: Vec<(String, Manifest)> = installed(dir)
        .into_iter()
        .filter(|(_, m)| m.openclaw == openclaw && node.is_none_or(|n| node_matches(n, &m.node)))
        .collect();
    let current = std::fs::read_link(dir.join(CURRENT))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if let Some(c) = current {
        if let Some(hit) = matching.iter().find(|(id, _)| *id == c) {
            return Some(hit.clone());
        }
    }
    matching.into_iter().max_by(|a, b| {
        let v = |m: &Manifest| semver::Version::parse(m.node.trim_start_matches('v')).ok();
        v(&a.1).cmp(&v(&b.1))
    })
}

impl Resolver<'_> {
    /// `[runtime] openclaw`, `node` and `runtimes`: the installed runtime the pin names.
    pub(crate) fn openclaw_runtime(&mut self, file: &FleetFile) -> Option<OpenclawRuntime> {
        let rt = &file.runtime;
        let Some(version) = rt.openclaw.as_deref() else {
            for (key, set) in [
                ("node", rt.node.is_some()),
                ("runtimes", rt.runtimes.is_some()),
            ] {
                if set {
                    self.at_key(
                        &key_path!["runtime", key],
                        format!("[runtime]: {key} is set but openclaw is not"),
                        "add openclaw = \"<version>\" (e.g. \"2026.9.6\") to pin the OpenClaw runtime, or remove the key",
                    );
                }
            }
            return None;
        };
        let runtimes = rt
            .runtimes
            .as_deref()
            .map(|d| self.absolute(d))
            .unwrap_or_else(|| self.node_path(Path::new(DEFAULT_RUNTIMES_DIR)));
        // For messages: the directory as the user named it.
        let shown = rt
            .runtimes
            .as_deref()
            .map(|d| self.shown(d))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIMES_DIR));
        if let Some(pin) = rt.node.as_deref() {
            if !pin
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            {
                self.at_value(
                    &key_path!["runtime", "node"],
                    format!("[runtime]: node {pin:?} is not a version"),
                    "give a major (\"24\") or an exact version (\"24.21.0\")",
                );
                return None;
            }
        }
        if !self.checks_node_files() {
            // In a cluster the runtime is an image: nothing is installed here to pick from.
            return Some(OpenclawRuntime {
                openclaw: version.to_string(),
                node: rt.node.clone().unwrap_or_default(),
                id: String::new(),
                path: runtimes.clone(),
                runtimes,
            });
        }
        match pick(&runtimes, version, rt.node.as_deref()) {
            Some((id, m)) => Some(OpenclawRuntime {
                openclaw: m.openclaw,
                node: m.node,
                path: runtimes.join(&id),
                id,
                runtimes,
            }),
            None => {
                let have: Vec<String> = installed(&runtimes)
                    .iter()
                    .map(|(id, m)| format!("{} on node {} ({})", m.openclaw, m.node, &id[..12]))
                    .collect();
                let found = if have.is_empty() {
                    format!("{} holds no installed runtime", shown.display())
                } else {
                    format!("{} has {}", shown.display(), have.join(", "))
                };
                let node = rt
                    .node
                    .as_deref()
                    .map(|n| format!(" on node {n}"))
                    .unwrap_or_default();
                self.at_value(
                    &key_path!["runtime", "openclaw"],
                    format!("[runtime]: no installed runtime has OpenClaw {version}{node}: {found}"),
                    format!(
                        "install it without network: clawkeep runtime install BUNDLE --dest {} (make BUNDLE on a connected machine with clawkeep runtime prepare --openclaw {version} --node {} --out BUNDLE)",
                        shown.display(),
                        rt.node.as_deref().unwrap_or("24")
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_pins() {
        assert!(node_matches("24", "24.21.0"));
        assert!(node_matches("v24", "v24.21.0"));
        assert!(node_matches("24.21", "24.21.0"));
        assert!(node_matches("24.21.0", "24.21.0"));
        assert!(!node_matches("24.2", "24.21.0"));
        assert!(!node_matches("2", "24.21.0"));
        assert!(!node_matches("22", "24.21.0"));
        assert!(!node_matches("", "24.21.0"));
        assert!(!node_matches("24.21.0.1", "24.21.0"));
    }

    #[test]
    fn nothing_installed_picks_nothing() {
        let d = tempfile::tempdir().unwrap();
        assert!(pick(d.path(), "2026.9.6", None).is_none());
        assert!(pick(&d.path().join("missing"), "2026.9.6", None).is_none());
    }
}
