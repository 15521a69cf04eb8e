//! Errors of building the disk side of an image; each names the file, tool, module or size
//! it concerns and what to do about it.

use std::path::PathBuf;

/// What went wrong building an initramfs, an ext4 root, or a disk image.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::io_error::IoError),
    /// A tool (mke2fs, qemu-img) could not be started.
    #[error("cannot run {tool} at {path}: {source} ({hint})")]
    ToolMissing {
        /// The tool's name.
        tool: &'static str,
        /// The path it was looked for at.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
        /// What to do.
        hint: &'static str,
    },
    /// A tool ran and failed.
    #[error("`{command}` failed: {message} ({hint})")]
    ToolFailed {
        /// The command line.
        command: String,
        /// Exit status and the tail of its output.
        message: String,
        /// What to check.
        hint: String,
    },
    /// The mke2fs given cannot make reproducible images.
    #[error(
        "mke2fs at {path} is version {version}; bit-identical ext4 images need e2fsprogs >= {needed} \
         (older ones copy each source file's atime and ctime into the image and ignore \
         SOURCE_DATE_EPOCH); run scripts/install-image-tools and pass the mke2fs it prints"
    )]
    Mke2fsTooOld {
        /// The mke2fs asked for.
        path: PathBuf,
        /// The version it reported.
        version: String,
        /// The oldest version that works.
        needed: &'static str,
    },
    /// The source of a filesystem is missing or not a directory.
    #[error("{path} is not a directory ({hint})")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
        /// What it was meant to be.
        hint: &'static str,
    },
    /// The filesystem size given cannot hold the content.
    #[error(
        "ext4 size {size} bytes ({size_mib} MiB) is too small for the content of {source_dir}: \
         {content} bytes in {entries} entries need at least {needed} bytes ({needed_mib} MiB) \
         with the filesystem's own metadata (give a larger size, or none to have it computed)"
    )]
    TooSmall {
        /// The size asked for, in bytes.
        size: u64,
        /// The same in MiB, rounded down.
        size_mib: u64,
        /// The tree the filesystem was to hold.
        source_dir: PathBuf,
        /// Bytes of file data, directories and long symlink targets, in 4 KiB blocks.
        content: u64,
        /// Files, directories, symlinks and special files in it.
        entries: u64,
        /// The smallest size that holds it.
        needed: u64,
        /// The same in MiB, rounded up.
        needed_mib: u64,
    },
    /// Two initramfs entries claim one path, or a path is used both as a file and as a
    /// directory.
    #[error("initramfs entry {path}: {message}")]
    Conflict {
        /// The path inside the archive.
        path: String,
        /// What collides.
        message: String,
    },
    /// A path cannot go into an archive or filesystem as given.
    #[error("{path}: {message}")]
    BadEntry {
        /// The path (in the tree or in the archive).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A kernel module asked for is neither in the modules tree nor built in.
    #[error(
        "kernel module {module} is not in {tree} (neither in modules.dep nor in modules.builtin; \
         is this the kernel the image boots, and was `depmod` run for it?)"
    )]
    ModuleMissing {
        /// The module's name.
        module: String,
        /// The `lib/modules/<kver>` directory.
        tree: PathBuf,
    },
    /// `modules.dep` could not be read as such.
    #[error("{path}:{line}: {message} (regenerate it with `depmod -b ROOT KVER`)")]
    ModulesDep {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The partition table could not be built.
    #[error("GPT on {path}: {message}")]
    Gpt {
        /// The disk image.
        path: PathBuf,
        /// What gptman said.
        message: String,
    },
}

impl DiskError {
    /// A [`DiskError::Io`] for `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        crate::io_error::on(op, path)
    }
}
