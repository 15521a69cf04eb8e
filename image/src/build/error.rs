//! Errors of an image build; each names the file, input or stage it concerns and what to
//! do about it.

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::disk::DiskError;
use crate::lock::LockError;
use crate::oci::OciError;
use crate::runtime::RuntimeError;
use crate::sbom::SbomError;

/// What went wrong building, verifying or inspecting an image.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A local file operation failed.
    #[error("{op} {path}: {source} ({hint})")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
        /// What to check.
        hint: &'static str,
    },
    /// The output directory holds something that is not an earlier build's output.
    #[error("{path} is not empty: it holds {entry} ({hint})")]
    OutNotEmpty {
        /// The output directory.
        path: PathBuf,
        /// The first entry found that stops the build.
        entry: String,
        /// What to do.
        hint: &'static str,
    },
    /// The fleet, checked inside the staged root filesystem as the node will read it, has
    /// problems (paths that exist on the build machine but not in the image).
    #[error("the fleet does not hold in the image (checked as /{fleet} inside the staged root filesystem):\n{report}(hint: put what it names into the base rootfs or the bundle, at the paths the fleet gives)")]
    FleetInImage {
        /// Where the fleet is on the node, relative to `/`.
        fleet: String,
        /// The checker's report: every problem with its line and fix.
        report: String,
    },
    /// An input (the base rootfs, the kernel package, a file of the fleet) is unusable.
    #[error("{what} {path}: {message} ({hint})")]
    BadInput {
        /// Which input.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
        /// What to give instead.
        hint: &'static str,
    },
    /// The image bundle is not as its manifest pins it (names each file, with the expected
    /// and the actual digest).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Installing the agent runtime into the root filesystem failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Writing the OCI image layout failed.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// Building the initramfs, the ext4 root or a disk image failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Writing the SBOM failed.
    #[error(transparent)]
    Sbom(#[from] SbomError),
    /// Writing, reading or checking the lock failed.
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl BuildError {
    /// A [`BuildError::Io`] for `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        hint: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            op,
            path,
            source,
            hint,
        }
    }
}
