//! The qcow2 image of the raw disk, by `qemu-img convert` (deterministic for one qemu-img
//! version and set of options: research/image.md, section 6).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::digest::sha256_file;
use super::error::DiskError;
use super::tool;

const MISSING_HINT: &str =
    "install qemu-img (Debian: qemu-utils; scripts/install-image-tools prints its path)";

/// A qcow2 image written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2Image {
    /// The image file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its hex sha256.
    pub sha256: String,
    /// The `qemu-img --version` that made it (its first line's version).
    pub qemu_img_version: String,
}

/// The version of the qemu-img at `qemu_img`, like `10.0.2`.
pub fn qemu_img_version(qemu_img: &Path) -> Result<String, DiskError> {
    let out = tool::run(
        "qemu-img",
        qemu_img,
        &["--version".into()],
        &[],
        MISSING_HINT,
        "is this QEMU's qemu-img?",
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("qemu-img version "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .ok_or_else(|| DiskError::ToolFailed {
            command: format!("{} --version", qemu_img.display()),
            message: format!("no version in its output: {}", text.trim()),
            hint: "is this QEMU's qemu-img?".to_string(),
        })
}

/// Converts the raw disk `raw` into the qcow2 `out` (replacing it), with compressed
/// clusters if `compress` (smaller, slower to write and read).
pub fn build_qcow2(
    qemu_img: &Path,
    raw: &Path,
    out: &Path,
    compress: bool,
) -> Result<Qcow2Image, DiskError> {
    let version = qemu_img_version(qemu_img)?;
    if !raw.is_file() {
        return Err(DiskError::BadEntry {
            path: raw.display().to_string(),
            message: "the raw disk to convert is not a file".to_string(),
        });
    }
    match fs::remove_file(out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(DiskError::io("remove", out)(e))
        }
        _ => {}
    }
    let mut args: Vec<OsString> = vec![
        "convert".into(),
        "-q".into(),
        "-f".into(),
        "raw".into(),
        "-O".into(),
        "qcow2".into(),
        // Pinned rather than left to this qemu-img's defaults.
        "-o".into(),
        "compat=1.1,cluster_size=65536,lazy_refcounts=off,preallocation=off".into(),
    ];
    if compress {
        args.push("-c".into());
    }
    args.push(raw.into());
    args.push(out.into());
    tool::run(
        "qemu-img",
        qemu_img,
        &args,
        &[],
        MISSING_HINT,
        "see qemu-img's message",
    )?;
    let size = fs::metadata(out).map_err(DiskError::io("stat", out))?.len();
    Ok(Qcow2Image {
        path: out.to_path_buf(),
        size,
        sha256: sha256_file(out)?,
        qemu_img_version: version,
    })
}
