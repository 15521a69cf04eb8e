//! The kernel package of the bundle, unpacked: a `.deb` is an `ar` archive whose
//! `data.tar.*` holds `boot/vmlinuz-<release>` and `lib/modules/<release>/`. Debian ships no
//! `modules.dep` in it, so `depmod` writes one into the unpacked tree (it is only read to
//! resolve the stage-1 modules; it is not an output).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::BuildError;
use super::unpack::{decompressed, unpack_tar, Unpacked};
use crate::disk::tool;

const WHAT: &str = "kernel package";

/// The unpacked kernel.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    /// The kernel release, e.g. `6.1.0-57-amd64`.
    pub release: String,
    /// `boot/vmlinuz-<release>`.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>`, with the `modules.dep` depmod wrote.
    pub modules: PathBuf,
    /// What the unpack wrote.
    pub unpacked: Unpacked,
}

/// Unpacks the kernel package `deb` into `into` (created) and runs `depmod` on it.
pub(crate) fn unpack_kernel(deb: &Path, into: &Path, depmod: &Path) -> Result<Kernel, BuildError> {
    let bad = |message: String| BuildError::BadInput {
        what: WHAT,
        path: deb.to_path_buf(),
        message,
        hint: "give the linux-image-<release> .deb as `apt-get download` fetches it",
    };
    fs::create_dir_all(into).map_err(BuildError::io(
        "create directory",
        into,
        "is the output directory writable?",
    ))?;
    let file = File::open(deb).map_err(BuildError::io("open", deb, "is the bundle readable?"))?;
    let mut ar = ar::Archive::new(file);
    let mut unpacked = None;
    while let Some(member) = ar.next_entry() {
        let mut member = member.map_err(|e| bad(format!("not an ar archive: {e}")))?;
        let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
        if !name.starts_with("data.tar") {
            continue;
        }
        // `ar::Entry` borrows the archive, the decompressors want to own their input: the
        // member (the compressed tar, about 70 MB) is read into memory.
        let mut data = Vec::new();
        member
            .read_to_end(&mut data)
            .map_err(|e| bad(format!("cannot read {name}: {e}")))?;
        let magic = data[..data.len().min(6)].to_vec();
        let reader = decompressed(std::io::Cursor::new(data), &magic, deb, WHAT)?;
        unpacked = Some(unpack_tar(reader, into, deb, WHAT)?);
        break;
    }
    let Some(unpacked) = unpacked else {
        return Err(bad("holds no data.tar member".into()));
    };

    let modules_root = into.join("lib/modules");
    let mut releases: Vec<String> = fs::read_dir(&modules_root)
        .map_err(|e| bad(format!("has no lib/modules: {e}")))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    let [release] = releases.as_slice() else {
        return Err(bad(format!(
            "holds {} kernel releases under lib/modules ({}), not one",
            releases.len(),
            releases.join(", ")
        )));
    };
    let vmlinuz = into.join(format!("boot/vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        return Err(bad(format!("has no boot/vmlinuz-{release}")));
    }
    tool::run(
        "depmod",
        depmod,
        &["-b".into(), into.into(), release.into()],
        &[],
        "install kmod (scripts/install-image-tools does), or pass --depmod PATH",
        "depmod could not read the kernel's modules",
    )?;
    Ok(Kernel {
        release: release.clone(),
        vmlinuz,
        modules: modules_root.join(release),
        unpacked,
    })
}

/// The uncompressed kernel (`vmlinux`, an ELF) inside the bzImage `vmlinuz`: Debian
/// compresses it with xz, so it is the xz stream that starts at the first xz magic.
/// Writes it to `out` (0644).
pub(crate) fn extract_vmlinux(vmlinuz: &Path, out: &Path) -> Result<u64, BuildError> {
    const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
    let bad = |message: String| BuildError::BadInput {
        what: WHAT,
        path: vmlinuz.to_path_buf(),
        message,
        hint: "give a Debian kernel package (its vmlinuz is xz-compressed, CONFIG_KERNEL_XZ)",
    };
    let data = fs::read(vmlinuz).map_err(BuildError::io(
        "read",
        vmlinuz,
        "is the output directory readable?",
    ))?;
    let at = data
        .windows(XZ_MAGIC.len())
        .position(|w| w == XZ_MAGIC)
        .ok_or_else(|| bad("holds no xz-compressed kernel".into()))?;
    // One xz stream: the decoder stops at its end (the bzImage has more after it).
    let mut elf = Vec::new();
    liblzma::read::XzDecoder::new(&data[at..])
        .read_to_end(&mut elf)
        .map_err(|e| {
            bad(format!(
                "its xz stream at byte {at} does not decompress: {e}"
            ))
        })?;
    if !elf.starts_with(b"\x7fELF") {
        return Err(bad(format!(
            "the xz stream at byte {at} is not an ELF kernel"
        )));
    }
    fs::write(out, &elf).map_err(BuildError::io(
        "write",
        out,
        "is the output directory writable?",
    ))?;
    fs::set_permissions(out, std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(
        BuildError::io("chmod", out, "is the output directory writable?"),
    )?;
    Ok(elf.len() as u64)
}
