//! Digests of what is written, and identifiers derived from them.

use std::path::Path;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::DiskError;

/// The hex sha256 of a file's contents (the crate's hashing, with the disk module's error).
pub fn sha256_file(path: &Path) -> Result<String, DiskError> {
    crate::digest::sha256_file(path)
        .map(|d| d.sha256)
        .map_err(DiskError::io("hash", path))
}

/// A UUID that is a function of `purpose` and `input` only (an RFC 9562 version 8 UUID made
/// of the first bytes of their sha256): the same inputs always give the same identifier,
/// different purposes (a filesystem, a disk, a partition) never share one.
pub fn derived_uuid(purpose: &str, input: &str) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(b"clawkeep:");
    hasher.update(purpose.as_bytes());
    hasher.update(b"\0");
    hasher.update(input.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uuids_are_stable_and_separated_by_purpose() {
        let a = derived_uuid("disk", "abc");
        assert_eq!(a, derived_uuid("disk", "abc"));
        assert_ne!(a, derived_uuid("partition", "abc"));
        assert_ne!(a, derived_uuid("disk", "abd"));
        assert_eq!(a.get_version_num(), 8);
    }
}
