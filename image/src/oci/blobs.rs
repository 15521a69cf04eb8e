//! The content-addressed blobs of a layout (`blobs/sha256/<hex>`) and the canonical JSON
//! every document of the layout is written as.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, MediaType, Sha256Digest};
use serde::Serialize;

use super::error::OciError;
use crate::digest::sha256_bytes;

/// Where the blobs of a layout live, relative to it.
pub const BLOBS: &str = "blobs/sha256";

/// The path of the blob with sha256 `hex` in `layout`.
pub(crate) fn blob_path(layout: &Path, hex: &str) -> PathBuf {
    layout.join(BLOBS).join(hex)
}

/// `value` as compact JSON with every object's keys sorted: oci-spec keeps annotations and
/// labels in hash maps, whose order changes from run to run; going through
/// `serde_json::Value` (a sorted map) makes the bytes, and so the digests, reproducible.
pub(crate) fn canonical_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, OciError> {
    let spec = |e: serde_json::Error| OciError::Spec {
        what: what.to_string(),
        message: e.to_string(),
    };
    let sorted = serde_json::to_value(value).map_err(spec)?;
    serde_json::to_vec(&sorted).map_err(spec)
}

/// A descriptor of `media_type` for content with sha256 `hex` and `size` bytes.
pub(crate) fn descriptor(
    media_type: MediaType,
    hex: &str,
    size: u64,
) -> Result<Descriptor, OciError> {
    let digest: Sha256Digest = hex.parse().map_err(OciError::spec("a blob digest"))?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// Writes `bytes` as a blob of `layout`; returns its descriptor.
pub(crate) fn write_blob(
    layout: &Path,
    media_type: MediaType,
    bytes: &[u8],
) -> Result<Descriptor, OciError> {
    let hex = sha256_bytes(bytes);
    let path = blob_path(layout, &hex);
    fs::write(&path, bytes).map_err(OciError::io("write", &path))?;
    descriptor(media_type, &hex, bytes.len() as u64)
}
