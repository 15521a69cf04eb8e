//! Handing an agent its secrets at start without writing them to any disk.
//!
//! The supervisor decrypts the agent's declared secrets and writes them, as JSON, into an
//! anonymous memory file (memfd) that becomes fd 5 of the sandbox init. The init reads it
//! once: `files` go onto the tmpfs the spec mounts at [`SECRETS_DIR`] (one file per secret,
//! 0600, owned by the agent's root; the tmpfs is then made read-only), `env` is added to the
//! agent process's environment only. Neither config.json (on disk in the bundle dir) nor any
//! log carries a value; under `runc` the tmpfs exists but stays empty.

use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{is_secret_name, SecretsAs, SecretsError, Store, Value};

/// Where the secrets' tmpfs is mounted inside the sandbox.
pub const SECRETS_DIR: &str = "/run/secrets";

/// Size of the secrets' tmpfs.
pub const TMPFS_SIZE: &str = "size=1m";

/// The secrets one sandbox gets.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Written as files under [`SECRETS_DIR`].
    pub files: Vec<(String, Value)>,
    /// Added to the process environment.
    pub env: Vec<(String, Value)>,
}

impl Payload {
    /// Whether there is nothing to hand over.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.env.is_empty()
    }
}

/// The secrets `names` of `agent`, delivered `how`; every one must be set.
pub fn for_agent(
    store: &Store,
    agent: &str,
    names: &[String],
    how: SecretsAs,
) -> Result<Payload, SecretsError> {
    if names.is_empty() {
        return Ok(Payload::default());
    }
    let mut all = store.load()?;
    let mut mine = all.remove(agent).unwrap_or_default();
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !mine.contains_key(n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(SecretsError::Missing {
            agent: agent.into(),
            names: missing,
            file: store.file_path(),
        });
    }
    let picked: Vec<(String, Value)> = names
        .iter()
        .filter_map(|n| mine.remove(n).map(|v| (n.clone(), v)))
        .collect();
    Ok(match how {
        SecretsAs::Files => Payload {
            files: picked,
            env: Vec::new(),
        },
        SecretsAs::Env => Payload {
            files: Vec::new(),
            env: picked,
        },
    })
}

/// The payload in an anonymous memory file, positioned at its start, for the init's fd 5.
pub fn to_memfd(payload: &Payload) -> Result<OwnedFd, SecretsError> {
    let pass = |what: &str, e: &dyn std::fmt::Display| SecretsError::Pass(format!("{what}: {e}"));
    let fd =
        nix::sys::memfd::memfd_create(c"clawkeep-secrets", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| pass("memfd_create", &e))?;
    let mut f = std::fs::File::from(fd);
    let json = serde_json::to_vec(payload).map_err(|e| pass("encode", &e))?;
    f.write_all(&json).map_err(|e| pass("write memfd", &e))?;
    f.rewind().map_err(|e| pass("rewind memfd", &e))?;
    Ok(OwnedFd::from(f))
}

/// Read the payload the launcher passed (empty input: no secrets).
pub fn read(fd: OwnedFd) -> Result<Payload, String> {
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("read secrets: {e}"))?;
    if bytes.is_empty() {
        return Ok(Payload::default());
    }
    let payload: Payload =
        serde_json::from_slice(&bytes).map_err(|e| format!("decode secrets: {e}"))?;
    for (name, _) in payload.files.iter().chain(&payload.env) {
        if !is_secret_name(name) {
            return Err(format!("secret name {name:?} is not valid"));
        }
    }
    Ok(payload)
}

/// Write each secret as a file of `dir` (a fresh tmpfs), mode 0600.
pub fn write_files(dir: &Path, files: &[(String, Value)]) -> Result<(), String> {
    for (name, value) in files {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("create {}: {e}", path.display()))?;
        f.write_all(value.expose().as_bytes())
            .map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_memfd() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store.set("customer", "matrix_token", "v4lue-zz").unwrap();
        let names = vec!["matrix_token".to_string()];
        let p = for_agent(&store, "customer", &names, SecretsAs::Env).unwrap();
        assert!(p.files.is_empty());
        let back = read(to_memfd(&p).unwrap()).unwrap();
        assert_eq!(back.env[0].0, "matrix_token");
        assert_eq!(back.env[0].1.expose(), "v4lue-zz");
        let err = for_agent(
            &store,
            "customer",
            &["matrix_token".into(), "other".into()],
            SecretsAs::Files,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("clawkeep secrets set customer other"), "{err}");
        assert!(!err.contains("v4lue-zz"), "{err}");
    }
}
