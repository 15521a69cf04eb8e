//! The sync boundary: which files of a synced directory may go to the store. Credentials,
//! session databases and their sidecars, backups, git internals and mount points never do.

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Patterns no brain ever uploads, whatever the fleet file says.
pub const ALWAYS_EXCLUDED: &[&str] = &[
    ".clawkeep/**",
    "**/credentials/**",
    "**/*.sqlite",
    "**/*.sqlite-wal",
    "**/*.sqlite-shm",
    "**/*.sqlite-journal",
    "**/*.db",
    "**/*.db-wal",
    "**/*.db-shm",
    "**/*.bak",
    // Private keys (OpenClaw keeps one that fingerprints its config journal): credentials.
    "**/*.key",
    "**/*.lock",
    "**/.git/**",
    "**/sessions/**",
    "**/.clawkeep-sync/**",
    // Caches OpenClaw and its tools rebuild on their own (the control UI's assets alone are
    // 54 MB): not knowledge.
    "**/.cache/**",
    "**/.openclaw/cache/**",
    "**/.openclaw/tmp/**",
    "**/node_modules/**",
];

/// Compiled include/exclude rules for one synced directory.
#[derive(Debug, Clone)]
pub struct Boundary {
    excluded: GlobSet,
}

impl Boundary {
    /// The fixed exclusions plus `extra` (fleet-level globs, already validated by the config)
    /// and `mounts` (sub-directories that belong to another bucket, e.g. `knowledge`).
    pub fn new(extra: &[String], mounts: &[&str]) -> Result<Self, globset::Error> {
        let mut b = GlobSetBuilder::new();
        for p in ALWAYS_EXCLUDED {
            b.add(Glob::new(p)?);
        }
        for p in extra {
            b.add(Glob::new(p)?);
            // A pattern naming a directory excludes what is inside it too.
            b.add(Glob::new(&format!("{}/**", p.trim_end_matches('/')))?);
        }
        for m in mounts {
            b.add(Glob::new(m)?);
            b.add(Glob::new(&format!("{m}/**"))?);
        }
        Ok(Boundary {
            excluded: b.build()?,
        })
    }

    /// Whether the workspace-relative `rel` stays on the node. A directory is tested with a
    /// trailing component so `credentials/**` excludes `credentials` itself.
    pub fn excludes(&self, rel: &Path, is_dir: bool) -> bool {
        if is_dir {
            self.excluded.is_match(rel.join("x"))
        } else {
            self.excluded.is_match(rel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_sessions_and_sidecars_stay_home() {
        let b = Boundary::new(&["drafts".into(), "*.tmp".into()], &["knowledge"]).unwrap();
        for p in [
            "credentials/matrix.json",
            "state/openclaw.sqlite",
            "agents/main/agent/openclaw-agent.sqlite-wal",
            "x.sqlite-shm",
            "openclaw.json.bak",
            "workspace/.git/HEAD",
            "agents/main/sessions/a.jsonl",
            "drafts/a.md",
            "note.tmp",
            "knowledge/docs/a.md",
            ".clawkeep/blobs/00",
            ".openclaw/cache/control-ui-assets/index.js",
            ".cache/openclaw/snapshot.sqlite",
            "workspace/tool/node_modules/x/index.js",
        ] {
            assert!(b.excludes(Path::new(p), false), "{p} would be uploaded");
        }
        for d in ["credentials", "workspace/.git", "knowledge", "drafts"] {
            assert!(b.excludes(Path::new(d), true), "dir {d} would be walked");
        }
        for p in [
            "openclaw.json",
            "workspace/SOUL.md",
            "workspace/memory/2026-11-29.md",
            "skills/x/SKILL.md",
            "knowledge.md",
        ] {
            assert!(!b.excludes(Path::new(p), false), "{p} would be left out");
        }
    }
}
