//! The image builder: the pinned agent runtime (Node + OpenClaw) as an offline bundle and
//! its read-only, content-addressed install on an air-gapped node ([`runtime`]); the image
//! bundle of every pinned input of an appliance image ([`bundle`]); the runtime as an OCI
//! image layout ([`oci`]); the disk side of the image ([`disk`]); the lock file of every
//! input and output digest ([`lock`]); and the SPDX SBOM of what the image carries
//! ([`sbom`]); and the build of a whole image from a bundle and a fleet ([`build`]).

#![forbid(unsafe_code)]

pub mod build;
pub mod bundle;
pub mod deb;
mod digest;
pub mod disk;
pub mod io_error;
pub mod lock;
pub mod oci;
mod out_dir;
pub mod runtime;
pub mod sbom;
mod time;
