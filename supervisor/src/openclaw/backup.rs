//! OpenClaw's state (its SQLite databases, identity, config journal) saved before an agent
//! moves to another runtime and put back when it moves back: a newer OpenClaw migrates the
//! databases forward and an older one then refuses to start ("schema newer than this
//! build"), so a rollback without the pre-upgrade state cannot work. The workspace (the
//! brain, synced to the store) stays as it is; caches are rebuilt.
//!
//! Backups live root-only in the agent's directory, outside its home. What a rollback
//! replaces is moved aside there too, never deleted.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clawkeep_beneath::{Beneath, Kind};

use super::provision::STATE_REL;
use clawkeep_sandbox::SandboxError;

/// Entries of `~/.openclaw` that are not state: the brain (workspace) and what is rebuilt.
const NOT_STATE: &[&str] = &["workspace", "cache", "tmp"];

fn io(what: &str, path: &Path, e: std::io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_path_buf(),
        what: what.into(),
        source: e,
    }
}

fn root_only_dir(dir: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("chmod 0700", dir, e))
}

/// The state entries of `home/.openclaw` (names), symlinks excluded.
fn state_entries(b: &Beneath, home: &Path) -> Result<Vec<std::ffi::OsString>, SandboxError> {
    match b.list(Path::new(STATE_REL)) {
        Ok(v) => Ok(v
            .into_iter()
            .filter(|e| matches!(e.kind, Kind::File | Kind::Dir))
            .filter(|e| !NOT_STATE.iter().any(|n| e.name == OsStr::new(n)))
            .map(|e| e.name)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("list", &home.join(STATE_REL), e)),
    }
}

/// Copy the agent's OpenClaw state (stopped agent) into `dest`, replacing an older backup
/// there. Returns the bytes copied.
pub fn save(home: &Path, dest: &Path) -> Result<u64, SandboxError> {
    let b = Beneath::open(home).map_err(|e| io("open home", home, e))?;
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| io("remove the older backup", dest, e))?;
    }
    root_only_dir(dest)?;
    let mut total = 0;
    for name in state_entries(&b, home)? {
        let rel = Path::new(STATE_REL).join(&name);
        let (bytes, _skipped) = b
            .copy_out(&rel, &dest.join(&name))
            .map_err(|e| io("back up", &home.join(&rel), e))?;
        total += bytes;
    }
    Ok(total)
}

/// Put the state saved in `backup` back into the agent's home (stopped agent): what is
/// there now moves to `aside`, then the backup's entries move in. `backup` is consumed.
pub fn restore(home: &Path, backup: &Path, aside: &Path) -> Result<(), SandboxError> {
    let b = Beneath::open(home).map_err(|e| io("open home", home, e))?;
    root_only_dir(aside)?;
    let aside_fd = std::fs::File::open(aside).map_err(|e| io("open", aside, e))?;
    for name in state_entries(&b, home)? {
        let rel = Path::new(STATE_REL).join(&name);
        b.rename_out(&rel, &aside_fd, &name)
            .map_err(|e| io("move aside", &home.join(&rel), e))?;
    }
    let backup_fd = std::fs::File::open(backup).map_err(|e| io("open", backup, e))?;
    for entry in std::fs::read_dir(backup).map_err(|e| io("list", backup, e))? {
        let entry = entry.map_err(|e| io("list", backup, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let rel = Path::new(STATE_REL).join(name);
        b.rename_in(&backup_fd, name, &rel, None)
            .map_err(|e| io("restore", &home.join(&rel), e))?;
    }
    std::fs::remove_dir(backup).map_err(|e| io("remove the used backup", backup, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_restore_brings_the_state_back_and_keeps_the_workspace() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        let oc = home.join(STATE_REL);
        std::fs::create_dir_all(oc.join("state")).unwrap();
        std::fs::create_dir_all(oc.join("workspace")).unwrap();
        std::fs::write(oc.join("state/openclaw.sqlite"), "schema 17").unwrap();
        std::fs::write(oc.join("openclaw.json"), "{}").unwrap();
        std::fs::write(oc.join("workspace/MEMORY.md"), "v1").unwrap();
        let backup = d.path().join("pre-upgrade/old");
        assert_eq!(save(&home, &backup).unwrap(), 11);
        assert!(!backup.join("workspace").exists());
        // The newer version migrates the database; the agent keeps learning meanwhile.
        std::fs::write(oc.join("state/openclaw.sqlite"), "schema 18").unwrap();
        std::fs::write(oc.join("workspace/MEMORY.md"), "v2").unwrap();
        let aside = d.path().join("set-aside/1");
        restore(&home, &backup, &aside).unwrap();
        assert_eq!(
            std::fs::read_to_string(oc.join("state/openclaw.sqlite")).unwrap(),
            "schema 17"
        );
        assert_eq!(
            std::fs::read_to_string(oc.join("workspace/MEMORY.md")).unwrap(),
            "v2"
        );
        assert_eq!(
            std::fs::read_to_string(aside.join("state/openclaw.sqlite")).unwrap(),
            "schema 18"
        );
        assert!(!backup.exists());
    }
}
