//! Object keys as workspace paths: which keys are safe to write locally, and the prefixes
//! clawkeep reserves inside every bucket.

use std::path::{Component, Path, PathBuf};

/// Everything clawkeep keeps for itself in a bucket lives under this prefix.
pub const META_PREFIX: &str = ".clawkeep/";
/// Content-addressed file contents: `.clawkeep/blobs/<sha256 hex>`.
pub const BLOB_PREFIX: &str = ".clawkeep/blobs/";
/// One JSON manifest per push: `.clawkeep/snapshots/<id>.json`.
pub const SNAPSHOT_PREFIX: &str = ".clawkeep/snapshots/";

/// The key of the blob holding content with this sha256.
pub fn blob_key(sha256: &str) -> String {
    format!("{BLOB_PREFIX}{sha256}")
}

/// Why a key cannot become a file in the workspace, or `None` if it can.
///
/// Refused: empty keys and components, absolute paths, `.` and `..` components, NUL and other
/// control characters, backslashes (a Windows path in disguise), and names over 255 bytes.
pub fn unsafe_reason(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("empty key");
    }
    if key.starts_with('/') {
        return Some("absolute path");
    }
    if key.chars().any(|c| c.is_control()) {
        return Some("NUL or control character in the name");
    }
    if key.contains('\\') {
        return Some("backslash in the name");
    }
    for part in key.split('/') {
        match part {
            "" => return Some("empty path component (// or a trailing /)"),
            "." | ".." => return Some("'.' or '..' path component"),
            p if p.len() > 255 => return Some("a name longer than 255 bytes"),
            _ => {}
        }
    }
    None
}

/// The local path for a key under `root`, or why it is refused. The result is always inside
/// `root` (checked component by component, not by string prefix).
pub fn local_path(root: &Path, key: &str) -> Result<PathBuf, &'static str> {
    if let Some(why) = unsafe_reason(key) {
        return Err(why);
    }
    let rel = Path::new(key);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("not a plain relative path");
    }
    Ok(root.join(rel))
}

/// The key for a workspace-relative path, or `None` if the name is not UTF-8 (S3 keys are).
pub fn key_for(rel: &Path) -> Option<String> {
    let s = rel.to_str()?;
    (unsafe_reason(s).is_none()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malicious_keys_are_refused() {
        for k in [
            "../x",
            "/etc/passwd",
            "a/../../b",
            "a\0b",
            "a/./b",
            "a//b",
            "a/",
            "",
            "x\u{1b}[2J",
            "..\\x",
            ".",
        ] {
            assert!(unsafe_reason(k).is_some(), "{k:?} accepted");
            assert!(local_path(Path::new("/ws"), k).is_err());
        }
    }

    #[test]
    fn ordinary_names_are_kept_as_they_are() {
        for k in [
            "SOUL.md",
            "memory/2026-11-29.md",
            "notes/été à Paris.md",
            "with space/ and  more .txt",
            "..hidden",
            "a..b",
        ] {
            assert_eq!(
                local_path(Path::new("/ws"), k).unwrap(),
                Path::new("/ws").join(k)
            );
        }
    }
}
