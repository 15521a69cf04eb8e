//! The image bundle: every pinned input of an appliance image in one directory, so a
//! build needs nothing else and no network.
//!
//! ```text
//! bundle/
//!   image-bundle.json              format, and per input: role, path, sha256, size
//!   kernel/linux-image-…_amd64.deb the kernel package
//!   rootfs/base.tar                the base root filesystem tarball
//!   runtime/                       the agent runtime bundle (`clawkeep runtime prepare`),
//!                                  pinned by its bundle id (the sha256 of its bundle.json)
//!   clawkeep/clawkeep              the clawkeep binary
//!   models/…, backends/…           optional model blobs and backend binaries
//! ```
//!
//! [`prepare`] (on a connected machine, from paths of inputs) copies or links them in and
//! writes the manifest; [`verify`] re-hashes every input before a build uses it, and names
//! each missing or changed file with the expected and the actual digest.

mod error;
mod manifest;
mod prepare;
mod verify;

pub use error::{BundleError, Problem};
pub use manifest::{BundleManifest, Input, Role, FORMAT, MANIFEST};
pub use prepare::{prepare, BundleInputs, Placement, Prepared};
pub use verify::{verify, Verified};
