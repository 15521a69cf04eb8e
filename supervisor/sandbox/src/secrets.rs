//! The channel that hands a sandbox its secrets at start without writing them to any disk.
//!
//! The launcher's caller puts the secrets, as JSON, into an anonymous memory file (memfd,
//! [`to_memfd`]) that becomes fd 5 of the sandbox init. The init reads it once ([`read`]):
//! `files` go onto the tmpfs the spec mounts at [`SECRETS_DIR`] (one file per secret, 0600,
//! owned by the agent's root; the tmpfs is then made read-only, [`write_files`]), `env` is
//! added to the agent process's environment only. Neither config.json (on disk in the bundle
//! dir) nor any log carries a value; under `runc` the tmpfs exists but stays empty.

use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SandboxError;

/// Where the secrets' tmpfs is mounted inside the sandbox.
pub const SECRETS_DIR: &str = "/run/secrets";

/// Size of the secrets' tmpfs.
pub const TMPFS_SIZE: &str = "size=1m";

/// Whether `name` can name a secret: an environment variable name, `[A-Za-z_][A-Za-z0-9_]*`,
/// at most 128 characters (it is also a file name under [`SECRETS_DIR`]).
pub fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 128
}

/// A secret's value: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Value(String);

impl Value {
    /// Wrap a value.
    pub fn new(v: String) -> Self {
        Self(v)
    }
    /// The value itself: only to hand it to the sandbox.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret, {} bytes>", self.0.len())
    }
}

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

/// The payload in an anonymous memory file, positioned at its start, for the init's fd 5.
pub fn to_memfd(payload: &Payload) -> Result<OwnedFd, SandboxError> {
    let pass =
        |what: &str, e: &dyn std::fmt::Display| SandboxError::Secrets(format!("{what}: {e}"));
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
    fn a_payload_round_trips_through_a_memfd() {
        let p = Payload {
            files: vec![("a_file".into(), Value::new("f1le".into()))],
            env: vec![("matrix_token".into(), Value::new("v4lue-zz".into()))],
        };
        let back = read(to_memfd(&p).unwrap()).unwrap();
        assert_eq!(back.env[0].0, "matrix_token");
        assert_eq!(back.env[0].1.expose(), "v4lue-zz");
        assert_eq!(back.files[0].1.expose(), "f1le");
    }

    #[test]
    fn a_payload_naming_a_path_is_refused_by_the_init() {
        let p = Payload {
            files: vec![("../etc/passwd".into(), Value::new("x".into()))],
            env: Vec::new(),
        };
        let err = read(to_memfd(&p).unwrap()).unwrap_err();
        assert!(err.contains("../etc/passwd"), "{err}");
    }

    #[test]
    fn secret_names_are_environment_variable_names() {
        for good in ["matrix_token", "A", "_x", "TOKEN_2"] {
            assert!(is_secret_name(good), "{good}");
        }
        for bad in ["", "2x", "a-b", "a.b", "a/b", "..", "ä", "a b"] {
            assert!(!is_secret_name(bad), "{bad}");
        }
    }

    #[test]
    fn debug_hides_values() {
        let v = Value::new("hunter2".into());
        assert_eq!(format!("{v:?}"), "<secret, 7 bytes>");
    }
}
