//! The disk side of the appliance image (issue 6): the stage-1 initramfs, the ext4 root
//! filesystem, the GPT raw disk and its qcow2. Everything here is reproducible: the same
//! inputs give bit-identical outputs, from any checkout and on any day.
//!
//! - [`Initramfs`]: a newc cpio from a list of entries (sorted, 0:0, one mtime), plain or
//!   gzip/zstd; [`resolve_modules`] finds the kernel modules stage 1 loads
//!   ([`STAGE1_MODULES`], [`NODE_MODULES`]) in a kernel's modules tree, dependencies first.
//! - [`build_ext4`]: an ext4 image from a directory with `mke2fs -d` (>= 1.47.1, checked),
//!   through a deterministic tar of the tree ([`write_tree_tar`]).
//! - [`build_raw_disk`]: a GPT disk with one root partition holding that image.
//! - [`build_qcow2`]: the same disk as qcow2, by `qemu-img convert`.
//!
//! Tools are passed in by path; `scripts/install-image-tools` installs them and prints
//! where they are.

mod digest;
mod error;
pub mod ext4;
pub mod gpt;
pub mod initramfs;
pub mod modules;
pub mod qcow2;
pub(crate) mod tool;
pub mod tree_tar;

pub use digest::{derived_uuid, sha256_file};
pub use error::DiskError;
pub use ext4::{build_ext4, check_mke2fs, Ext4Image, Ext4Options, Ext4Size, MKE2FS_MIN_VERSION};
pub use gpt::{build_raw_disk, RawDisk, RawDiskOptions, ROOT_X86_64};
pub use initramfs::{Compression, EntryKind, Initramfs, Written};
pub use modules::{
    resolve_modules, KernelModule, KernelModules, NODE_MODULES, STAGE1_LIST, STAGE1_MODULES,
};
pub use qcow2::{build_qcow2, qemu_img_version, Qcow2Image};
pub use tree_tar::{write_tree_tar, TreeStats, TreeTar};
