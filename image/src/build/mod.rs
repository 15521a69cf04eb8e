//! `clawkeep image build`: from a verified image bundle and a checked fleet, every output of
//! an appliance image, reproducibly, without network:
//!
//! ```text
//! out/
//!   oci/             the agent runtime as an OCI image layout
//!   node.raw         GPT disk: one ext4 root partition (dd it onto a disk)
//!   node.qcow2       the same disk for a VM
//!   vmlinuz          the kernel from the bundle's kernel package
//!   vmlinux          the same, uncompressed (QEMU's direct kernel boot, PVH entry)
//!   initramfs.img    stage 1: /init (clawkeep-stage1), the modules an ext4 root on
//!                    virtio and the power button need, and their list
//!   sbom.spdx.json   SPDX 2.3 SBOM
//!   image.json       versions, agents, kernel, root filesystem identity (`image inspect`)
//!   clawkeep.lock    every input and output digest (`image verify`)
//! ```
//!
//! The node's root filesystem is the bundle's base rootfs tarball unpacked (numeric owners
//! kept: build as root), then clawkeep at `/usr/bin/clawkeep` with `/sbin/init` a symlink to
//! it, the fleet file at `/etc/clawkeep/fleet.toml` (copied unchanged), the files it names
//! (souls, workspace seeds) at the same relative paths under `/etc/clawkeep/` (so its
//! relative paths resolve there as they did beside the original), the agent runtime
//! installed offline under `/var/lib/clawkeep/runtimes/<id>/` (with `current` pointing at
//! it), and the bundle's models and backends under `/var/lib/clawkeep/models/` and
//! `/var/lib/clawkeep/backends/`.
//!
//! The fleet is not parsed here (the supervisor owns the fleet file): the caller checks it
//! and passes the files it names ([`FleetInput`]).

mod error;
mod info;
mod kernel;
mod out;
mod place;
mod unpack;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::BuildError;
pub use info::{inspect, verify, AgentInfo, ImageInfo, Inspected, INFO_FORMAT};
pub use out::{INFO, INITRAMFS, OCI, OUTPUTS, QCOW2, RAW, SBOM, SCRATCH, VMLINUX, VMLINUZ};
pub use unpack::Unpacked;

use crate::bundle::{self, Role, Verified};
use crate::deb::DebName;
use crate::disk::{
    self, Compression, Ext4Options, Initramfs, RawDiskOptions, NODE_MODULES, STAGE1_MODULES,
};
use crate::lock::Lock;
use crate::runtime::{self, InstallOptions};
use crate::{oci, sbom};
use place::{dir_in_root, place, Contents};

/// Where the fleet and the files it names go on the node.
pub const FLEET_DIR: &str = "etc/clawkeep";
/// The fleet file's name on the node.
pub const FLEET_FILE: &str = "fleet.toml";
/// Where the agent runtime is installed on the node.
pub const RUNTIMES_DIR: &str = "var/lib/clawkeep/runtimes";

/// A file (or directory tree: the agents' rootfs) the fleet names, to place under
/// `/etc/clawkeep/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetFile {
    /// The file on this machine.
    pub source: PathBuf,
    /// Its path under `/etc/clawkeep/` on the node: plain, relative, `/`-separated (as the
    /// fleet names it relative to its own directory, e.g. `souls/research.md`).
    pub dest: String,
}

/// The fleet the image runs, already checked by the caller (`clawkeep check`'s rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetInput {
    /// The fleet file, copied unchanged to `/etc/clawkeep/fleet.toml`.
    pub file: PathBuf,
    /// The files it names (souls, workspace seeds).
    pub files: Vec<FleetFile>,
    /// Its agents, in file order (recorded in `image.json`).
    pub agents: Vec<AgentInfo>,
}

/// Checks the fleet file inside a staged root filesystem as the node will read it:
/// `(root, fleet path on the node)`; `Err` holds the report. The supervisor owns the fleet
/// file's rules, so it passes its checker in.
pub type FleetCheck = fn(&Path, &Path) -> Result<(), String>;

/// The host tools a build runs (`scripts/install-image-tools` prints their paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// mke2fs >= [`disk::MKE2FS_MIN_VERSION`].
    pub mke2fs: PathBuf,
    /// qemu-img.
    pub qemu_img: PathBuf,
    /// depmod (kmod).
    pub depmod: PathBuf,
}

/// What to build, and where.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The image bundle (verified first).
    pub bundle: PathBuf,
    /// The output directory: new or empty, unless `force`.
    pub out: PathBuf,
    /// Replace an earlier build's outputs in `out` (and nothing else).
    pub force: bool,
    /// Every time in every output (a `SOURCE_DATE_EPOCH`), seconds since 1970; at most
    /// `u32::MAX` (the initramfs's limit).
    pub epoch: u64,
    /// The fleet.
    pub fleet: FleetInput,
    /// The tools.
    pub tools: Tools,
    /// Run on the staged root filesystem before the disk is made (`None`: not checked
    /// there, only by the caller on this machine).
    pub check_fleet: Option<FleetCheck>,
}

/// How long a stage took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTime {
    /// The stage.
    pub name: &'static str,
    /// Its wall time.
    pub took: Duration,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The output directory.
    pub out: PathBuf,
    /// What the image holds (as in `image.json`).
    pub info: ImageInfo,
    /// The lock written.
    pub lock: Lock,
    /// Each stage's time, in order.
    pub stages: Vec<StageTime>,
}

/// Builds the image. `progress` gets one line per step. The bundle is verified before
/// anything is written; `out` is refused when it holds anything but an earlier build's
/// outputs, and those only go with `force`.
pub fn build(
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildReport, BuildError> {
    let epoch32 = u32::try_from(opts.epoch).map_err(|_| BuildError::BadInput {
        what: "epoch",
        path: opts.out.clone(),
        message: format!("{} is past 2106", opts.epoch),
        hint: "give --epoch as seconds since 1970 (like SOURCE_DATE_EPOCH)",
    })?;
    for f in &opts.fleet.files {
        check_dest(f)?;
    }
    let mut stages = Vec::new();
    let mut t = Instant::now();
    let lap = |stages: &mut Vec<StageTime>, name: &'static str, t: &mut Instant| {
        stages.push(StageTime {
            name,
            took: t.elapsed(),
        });
        *t = Instant::now();
    };

    progress("verifying the image bundle (the sha256 of every input)");
    let verified = bundle::verify(&opts.bundle)?;
    out::prepare_out(&opts.out, opts.force)?;
    let out = opts.out.as_path();
    lap(&mut stages, "verify", &mut t);

    let scratch = Scratch(out.join(SCRATCH));
    let root = scratch.0.join("rootfs");
    fs::create_dir_all(&root).map_err(BuildError::io(
        "create directory",
        &root,
        "is the output directory writable?",
    ))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).map_err(BuildError::io(
        "chmod",
        &root,
        "is the output directory writable?",
    ))?;
    progress("[1/6] root filesystem: the base rootfs, clawkeep, the fleet, the agent runtime");
    let staged = stage_rootfs(&verified, &root, &opts.fleet, progress)?;
    if let Some(check) = opts.check_fleet {
        let fleet = format!("{FLEET_DIR}/{FLEET_FILE}");
        progress(&format!(
            "      checking /{fleet} inside the image, as the node will read it"
        ));
        check(&root, &Path::new("/").join(&fleet))
            .map_err(|report| BuildError::FleetInImage { fleet, report })?;
    }
    lap(&mut stages, "rootfs", &mut t);

    // The OCI layout, the disks and the kernel read what is staged and write apart: they
    // run side by side (each is mostly one core: gzip, mke2fs, xz).
    progress("[2-4/6] side by side: OCI image layout of the agent runtime; ext4 root filesystem, GPT raw disk, qcow2; kernel and stage-1 initramfs");
    let stage1 = one(&verified, Role::Stage1)?;
    let kernel_input = one(&verified, Role::Kernel)?;
    let (oci_done, disk_done, kernel_done) = std::thread::scope(|s| {
        let oci = s.spawn(|| {
            let t = Instant::now();
            oci::write_layout(&staged.runtime.path, &out.join(OCI), opts.epoch)
                .map(|_| t.elapsed())
                .map_err(BuildError::from)
        });
        let kernel = s.spawn(|| {
            let t = Instant::now();
            kernel_and_initramfs(
                &verified.path_of(kernel_input),
                &verified.path_of(stage1),
                &scratch.0,
                out,
                &opts.tools.depmod,
                epoch32,
            )
            .map(|k| (k, t.elapsed()))
        });
        let t = Instant::now();
        let disk = disks(&root, &scratch.0, out, &opts.tools, opts.epoch).map(|d| (d, t.elapsed()));
        (join(oci), disk, join(kernel))
    });
    let oci_took = oci_done?;
    let ((ext4, raw), disk_took) = disk_done?;
    let (built_kernel, kernel_took) = kernel_done?;
    let BuiltKernel {
        kernel,
        modules,
        vmlinux_size,
    } = built_kernel;
    progress(&format!(
        "      OCI layout in {:.1} s; ext4 {} MiB ({} entries), raw disk {} MiB in {:.1} s",
        oci_took.as_secs_f64(),
        ext4.size >> 20,
        ext4.content.entries,
        raw.size >> 20,
        disk_took.as_secs_f64()
    ));
    progress(&format!(
        "      kernel {} ({} files unpacked, vmlinux {} MiB), /init and {} modules in the initramfs in {:.1} s",
        kernel.release,
        kernel.unpacked.entries,
        vmlinux_size >> 20,
        modules.load.len(),
        kernel_took.as_secs_f64()
    ));
    for (name, took) in [
        ("oci", oci_took),
        ("disk", disk_took),
        ("kernel", kernel_took),
    ] {
        stages.push(StageTime { name, took });
    }
    t = Instant::now();

    progress("[5/6] SBOM");
    let doc = sbom::build(&sbom::SbomInputs {
        bundle: &verified.manifest,
        runtime: &staged.runtime.path,
        epoch: opts.epoch,
    })?;
    sbom::write(&doc, &out.join(SBOM))?;
    lap(&mut stages, "sbom", &mut t);

    progress("[6/6] image.json and clawkeep.lock");
    let fleet_sha256 = crate::digest::sha256_file(&opts.fleet.file)
        .map_err(BuildError::io(
            "read",
            &opts.fleet.file,
            "is the fleet file readable?",
        ))?
        .sha256;
    let kernel_name = Path::new(&kernel_input.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = ImageInfo {
        format: INFO_FORMAT,
        source_date_epoch: opts.epoch,
        clawkeep: one(&verified, Role::Clawkeep)?.version.clone(),
        openclaw: verified.runtime.openclaw.clone(),
        node: verified.runtime.node.clone(),
        runtime_id: staged.runtime.id.clone(),
        kernel_package: DebName::parse(&kernel_name)
            .map(|d| format!("{} {}", d.name, d.version))
            .unwrap_or(kernel_name),
        kernel_release: kernel.release.clone(),
        stage1_modules: modules.load.iter().map(|m| m.name.clone()).collect(),
        stage1_init: Some(format!(
            "clawkeep-stage1 {}sha256 {}",
            stage1
                .version
                .as_deref()
                .map(|v| format!("{v} "))
                .unwrap_or_default(),
            stage1.sha256
        )),
        fleet_sha256,
        fleet_files: opts.fleet.files.iter().map(|f| f.dest.clone()).collect(),
        agents: opts.fleet.agents.clone(),
        rootfs_entries: ext4.content.entries,
        rootfs_uuid: ext4.uuid.to_string(),
        root_partuuid: raw.partition_guid.to_string(),
    };
    info.write(out)?;
    scratch.remove()?;
    let lock = Lock::new(&verified.manifest, out, opts.epoch)?;
    lock.write(out)?;
    lap(&mut stages, "lock", &mut t);
    Ok(BuildReport {
        out: out.to_path_buf(),
        info,
        lock,
        stages,
    })
}

/// A scoped thread's result; its panic goes on in this thread.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The kernel stage's results.
struct BuiltKernel {
    kernel: kernel::Kernel,
    modules: disk::KernelModules,
    vmlinux_size: u64,
}

/// The kernel package unpacked; `vmlinuz` and `vmlinux` written to `out`; the initramfs
/// (the stage-1 init, the modules and their list) written to `out`.
fn kernel_and_initramfs(
    deb: &Path,
    stage1: &Path,
    scratch: &Path,
    out: &Path,
    depmod: &Path,
    epoch32: u32,
) -> Result<BuiltKernel, BuildError> {
    let kernel = kernel::unpack_kernel(deb, &scratch.join("kernel"), depmod)?;
    let vmlinuz = out.join(VMLINUZ);
    fs::copy(&kernel.vmlinuz, &vmlinuz).map_err(BuildError::io(
        "copy the kernel to",
        &vmlinuz,
        "is the output directory writable?",
    ))?;
    fs::set_permissions(&vmlinuz, fs::Permissions::from_mode(0o644)).map_err(BuildError::io(
        "chmod",
        &vmlinuz,
        "is the output directory writable?",
    ))?;
    let vmlinux_size = kernel::extract_vmlinux(&vmlinuz, &out.join(VMLINUX))?;
    let names: Vec<&str> = STAGE1_MODULES.iter().chain(NODE_MODULES).copied().collect();
    let modules = disk::resolve_modules(&kernel.modules, &names)?;
    let mut initramfs = Initramfs::new(epoch32);
    for d in ["dev", "proc", "sys", "root"] {
        initramfs.add_dir(d, 0o755)?;
    }
    initramfs.add_char_device("dev/console", 0o600, 5, 1)?;
    initramfs.add_file("init", stage1, 0o755)?;
    modules.add_to(&mut initramfs)?;
    initramfs.write(&out.join(INITRAMFS), Compression::Zstd(19))?;
    Ok(BuiltKernel {
        kernel,
        modules,
        vmlinux_size,
    })
}

/// The ext4 root filesystem from `root` (in `scratch`), the raw disk and the qcow2 in `out`.
fn disks(
    root: &Path,
    scratch: &Path,
    out: &Path,
    tools: &Tools,
    epoch: u64,
) -> Result<(disk::Ext4Image, disk::RawDisk), BuildError> {
    let ext4 = disk::build_ext4(
        root,
        &scratch.join("root.ext4"),
        &Ext4Options::new(&tools.mke2fs, epoch),
    )?;
    let raw = disk::build_raw_disk(&ext4.path, &out.join(RAW), &RawDiskOptions::default())?;
    disk::build_qcow2(&tools.qemu_img, &raw.path, &out.join(QCOW2), false)?;
    Ok((ext4, raw))
}

/// What staging the root filesystem did.
struct Staged {
    /// The runtime as installed in it.
    runtime: runtime::Installed,
}

/// Fills `root`: the base rootfs, clawkeep, the fleet and its files, models, backends, and
/// the agent runtime installed offline.
fn stage_rootfs(
    verified: &Verified,
    root: &Path,
    fleet: &FleetInput,
    progress: &mut dyn FnMut(&str),
) -> Result<Staged, BuildError> {
    let base = verified.path_of(one(verified, Role::BaseRootfs)?);
    let unpacked = unpack::unpack_tar(
        unpack::open_decompressed(&base, "base rootfs")?,
        root,
        &base,
        "base rootfs",
    )?;
    progress(&format!(
        "      base rootfs: {} entries ({} device nodes left out: /dev is a devtmpfs)",
        unpacked.entries, unpacked.skipped_devices
    ));

    let clawkeep = verified.path_of(one(verified, Role::Clawkeep)?);
    place(root, "usr/bin/clawkeep", Contents::Copy(&clawkeep), 0o755)?;
    place(
        root,
        "sbin/init",
        Contents::Symlink("/usr/bin/clawkeep"),
        0o777,
    )?;

    place(
        root,
        &format!("{FLEET_DIR}/{FLEET_FILE}"),
        Contents::Copy(&fleet.file),
        0o644,
    )?;
    for f in &fleet.files {
        let dest = format!("{FLEET_DIR}/{}", f.dest);
        if f.source.is_dir() {
            let entries = place::copy_tree(&f.source, &dir_in_root(root, &dest)?)?;
            progress(&format!("      /{dest}: {entries} entries"));
        } else {
            place(root, &dest, Contents::Copy(&f.source), 0o644)?;
        }
    }
    for (role, dir, mode) in [
        (Role::Model, "var/lib/clawkeep/models", 0o644),
        (Role::Backend, "var/lib/clawkeep/backends", 0o755),
    ] {
        for input in verified.manifest.all(role) {
            let name = Path::new(&input.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            place(
                root,
                &format!("{dir}/{name}"),
                Contents::Copy(&verified.path_of(input)),
                mode,
            )?;
        }
    }

    let rt_input = one(verified, Role::Runtime)?;
    let dest = dir_in_root(root, RUNTIMES_DIR)?;
    let runtime = runtime::install(
        &InstallOptions {
            bundle: verified.path_of(rt_input),
            dest,
            expect_id: Some(rt_input.sha256.clone()),
        },
        &mut |line| progress(&format!("      runtime: {line}")),
    )?;
    Ok(Staged { runtime })
}

/// The bundle's one input of `role` (verify already made sure there is one).
fn one(verified: &Verified, role: Role) -> Result<&bundle::Input, BuildError> {
    verified
        .manifest
        .one(role)
        .ok_or_else(|| BuildError::BadInput {
            what: "image bundle",
            path: verified.dir.clone(),
            message: format!("has no {role} input"),
            hint: "prepare the bundle again with every input",
        })
}

/// A fleet file's destination must stay under `/etc/clawkeep/`.
fn check_dest(f: &FleetFile) -> Result<(), BuildError> {
    let p = Path::new(&f.dest);
    let plain = !f.dest.is_empty()
        && !f.dest.contains('\\')
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && f.dest != FLEET_FILE;
    if plain {
        return Ok(());
    }
    Err(BuildError::BadInput {
        what: "fleet file",
        path: f.source.clone(),
        message: format!("would go to /{FLEET_DIR}/{} on the node", f.dest),
        hint: "the fleet file is copied unchanged, so the files it names must be given relative to its directory, inside it (no absolute paths, no '..')",
    })
}

/// The build's scratch directory, removed when dropped (on every error path too).
struct Scratch(PathBuf);

impl Scratch {
    /// Removes it now, reporting a failure.
    fn remove(self) -> Result<(), BuildError> {
        out::remove(&self.0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = out::remove(&self.0);
    }
}
