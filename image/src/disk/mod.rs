//! The disk side of the appliance image (issue 6): the stage-1 initramfs, the ext4 root
//! filesystem, the GPT raw disk and its qcow2. Everything here is reproducible: the same
//! inputs give bit-identical outputs, from any checkout and on any day.
//!
//! - [`Initramfs`]: a newc cpio from a list of entries (sorted, 0:0, one mtime), plain or
//!   gzip/zstd; [`resolve_modules`] finds the kernel modules stage 1 loads
//!   ([`STAGE1_MODULES`]) in a kernel's modules tree, dependencies first.

mod digest;
mod error;
pub mod initramfs;
pub mod modules;

pub use digest::{derived_uuid, sha256_file};
pub use error::DiskError;
pub use initramfs::{Compression, EntryKind, Initramfs, Written};
pub use modules::{resolve_modules, KernelModule, KernelModules, STAGE1_LIST, STAGE1_MODULES};
