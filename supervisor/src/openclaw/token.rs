//! The gateway token of an OpenClaw agent: minted by clawkeep (32 random bytes, hex), kept
//! root-only (0600) in the agent's directory outside its home, handed to the agent through
//! the secrets channel as OPENCLAW_GATEWAY_TOKEN, so it is in no synced file, spec or log.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

/// The token file's name in the agent's directory (`<state>/agents/<name>/`).
pub const FILE: &str = "gateway.token";
/// Environment variable OpenClaw reads the token from.
pub const ENV: &str = "OPENCLAW_GATEWAY_TOKEN";
/// Random bytes in a minted token.
const BYTES: usize = 32;

/// A token problem, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing the token file failed.
    #[error("{what} {path}: {source} (hint: the state dir must be writable by root)")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The token file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TokenError + 'a {
    move |source| TokenError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A fresh token: 64 hex digits from the OS's generator.
pub fn mint() -> String {
    let mut b = [0u8; BYTES];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether a token is as strong as one clawkeep mints (at least 32 hex digits, not all one
/// digit): what `audit` asks of a token set by hand.
pub fn is_strong(token: &str) -> bool {
    let t = token.trim();
    t.len() >= 32
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && t.bytes().collect::<std::collections::BTreeSet<u8>>().len() > 8
}

/// Write `token` to `path` atomically, 0600.
pub fn write(path: &Path, token: &str) -> Result<(), TokenError> {
    let tmp = path.with_extension("token.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err("create", &tmp))?;
    f.write_all(token.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(err("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(err("rename into place", path))
}

/// The agent's token: read from `path`, or minted and written there on first use.
pub fn load_or_mint(path: &Path) -> Result<String, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => {
            // Keep it root-only even if someone loosened it.
            let md = std::fs::metadata(path).map_err(err("stat", path))?;
            if md.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(err("chmod 0600", path))?;
            }
            Ok(t.trim().to_string())
        }
        Ok(_) => rotate(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => rotate(path),
        Err(e) => Err(err("read", path)(e)),
    }
}

/// Replace the agent's token with a fresh one and return it.
pub fn rotate(path: &Path) -> Result<String, TokenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err("create directory for", path))?;
    }
    let t = mint();
    write(path, &t)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn minted_once_kept_rotated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a").join(FILE);
        let t = load_or_mint(&p).unwrap();
        assert_eq!(t.len(), 64);
        assert!(is_strong(&t));
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(load_or_mint(&p).unwrap(), t);
        let r = rotate(&p).unwrap();
        assert_ne!(r, t);
        assert_eq!(load_or_mint(&p).unwrap(), r);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_mint(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn weak_tokens() {
        assert!(!is_strong("secret"));
        assert!(!is_strong(&"a".repeat(64)));
        assert!(!is_strong("0123456789abcdef"));
        assert!(is_strong("oc-explore-token-0123456789abcdef"));
    }
}
