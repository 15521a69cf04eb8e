//! The SBOM of an image, as an SPDX 2.3 JSON document: the image, clawkeep, the kernel
//! package (name and version from its Debian file name), the base root filesystem, Node
//! (from the runtime's `bundle.json`), OpenClaw and every npm package the runtime holds
//! (from its `app/package-lock.json`: name, version, resolved URL as the download
//! location, integrity as checksums, a purl), and the model blobs and backend binaries.
//!
//! [`build`] makes it reproducible (namespace from the inputs' digests, creation time
//! from the build's epoch) and refuses a document that breaks SPDX's structural rules
//! ([`check`]).

mod build;
mod check;
mod error;
mod npm;
pub mod spdx;

pub use build::{build, write, SbomInputs, IMAGE_NAME};
pub use check::check;
pub use error::SbomError;
