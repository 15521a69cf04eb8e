//! The output directory of a build: what it holds when done, and how `--force` clears an
//! earlier build's outputs (and nothing else) out of it.

use std::fs;
use std::path::Path;

use super::error::BuildError;
use crate::lock::LOCK;

/// The OCI image layout of the agent runtime.
pub const OCI: &str = "oci";
/// The GPT raw disk image (`dd` it onto a disk).
pub const RAW: &str = "node.raw";
/// The same disk as qcow2 (for a VM).
pub const QCOW2: &str = "node.qcow2";
/// The stage-1 initramfs.
pub const INITRAMFS: &str = "initramfs.img";
/// The kernel image.
pub const VMLINUZ: &str = "vmlinuz";
/// The same kernel uncompressed (an ELF with a PVH entry): QEMU starts it directly, seconds
/// faster than decompressing vmlinuz under TCG.
pub const VMLINUX: &str = "vmlinux";
/// The SPDX SBOM.
pub const SBOM: &str = "sbom.spdx.json";
/// What the image holds ([`super::ImageInfo`]), for `clawkeep image inspect`.
pub const INFO: &str = "image.json";
/// Scratch space of a running build (the root filesystem tree, the unpacked kernel);
/// removed before the lock is written.
pub const SCRATCH: &str = ".build";

/// Every name a build writes at the top of its output directory.
pub const OUTPUTS: &[&str] = &[
    OCI, RAW, QCOW2, INITRAMFS, VMLINUZ, VMLINUX, SBOM, INFO, LOCK, SCRATCH,
];

const HINT_EMPTY: &str =
    "give a new or empty directory, or --force to replace an earlier build's outputs there";
const HINT_FORCE: &str =
    "--force replaces only an earlier build's outputs: move this away, or give another directory";

/// Makes `out` an existing, empty directory: created when missing; refused when it holds
/// anything, unless `force`, and then only an earlier build's outputs are removed (anything
/// else in it is refused, so a mistyped `--out` never loses files).
pub(crate) fn prepare_out(out: &Path, force: bool) -> Result<(), BuildError> {
    fs::create_dir_all(out).map_err(BuildError::io(
        "create directory",
        out,
        "give a directory you can write to",
    ))?;
    let mut names: Vec<String> = fs::read_dir(out)
        .map_err(BuildError::io(
            "read directory",
            out,
            "give a directory you can read",
        ))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(BuildError::io(
            "read directory",
            out,
            "give a directory you can read",
        ))?;
    names.sort();
    let Some(first) = names.first() else {
        return Ok(());
    };
    if !force {
        return Err(BuildError::OutNotEmpty {
            path: out.to_path_buf(),
            entry: first.clone(),
            hint: HINT_EMPTY,
        });
    }
    if let Some(other) = names.iter().find(|n| !OUTPUTS.contains(&n.as_str())) {
        return Err(BuildError::OutNotEmpty {
            path: out.to_path_buf(),
            entry: other.clone(),
            hint: HINT_FORCE,
        });
    }
    for name in &names {
        remove(&out.join(name))?;
    }
    Ok(())
}

/// Removes a file or a whole tree (read-only parts, like an installed runtime, included).
pub(crate) fn remove(path: &Path) -> Result<(), BuildError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(BuildError::io(
                "stat",
                path,
                "is the output directory readable?",
            )(e))
        }
    };
    if meta.is_dir() {
        crate::runtime::tree::make_writable(path)?;
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .map_err(BuildError::io(
        "remove",
        path,
        "is the output directory writable?",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_clears_outputs_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        prepare_out(&out, false).unwrap();
        fs::write(out.join(RAW), "x").unwrap();
        fs::create_dir_all(out.join("oci/blobs")).unwrap();
        let e = prepare_out(&out, false).unwrap_err().to_string();
        assert!(e.contains("is not empty: it holds node.raw"), "{e}");
        assert!(e.contains("--force"), "{e}");
        prepare_out(&out, true).unwrap();
        assert!(fs::read_dir(&out).unwrap().next().is_none());

        fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = prepare_out(&out, true).unwrap_err().to_string();
        assert!(e.contains("it holds notes.txt"), "{e}");
        assert!(out.join("notes.txt").exists());
    }
}
