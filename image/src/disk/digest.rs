//! Digests of what is written, and identifiers derived from them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::DiskError;

/// A writer that hashes (sha256) and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The inner writer, the hex sha256 and the byte count of what went through.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            hex::encode(self.hasher.finalize()),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String, DiskError> {
    let mut file = File::open(path).map_err(DiskError::io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(DiskError::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
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

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, sum, n) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            sum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
