//! The agent runtime as an OCI image layout, so any OCI tool (umoci, skopeo, a registry)
//! can carry it:
//!
//! ```text
//! oci-layout                 {"imageLayoutVersion":"1.0.0"}
//! index.json                 one manifest, tagged with the OpenClaw version, linux/amd64
//! blobs/sha256/<digest>      the layer (the runtime at /opt/openclaw, tar+gzip), the
//!                            image config (diff_id, labels with the OpenClaw, Node and npm
//!                            versions and the runtime's id) and the manifest
//! ```
//!
//! The layer holds the runtime only, not an operating system: its Node needs glibc from
//! whatever it is stacked on or mounted into (the node image's root filesystem, or the
//! busybox + glibc rootfs `scripts/make-busybox-rootfs` makes for the sandboxes).
//!
//! Every document is an oci-spec type written as compact JSON with sorted keys, and the
//! layer is a reproducible tar (see [`write_layout`]): the same runtime and epoch give the
//! same digest for every blob and the same `index.json`. [`validate_layout`] reads a
//! layout back and checks every descriptor against the blob it names.

mod blobs;
mod error;
mod layer;
mod validate;
mod write;

pub use blobs::BLOBS;
pub use error::OciError;
pub use validate::{validate_layout, ValidImage, Validated};
pub use write::{labels, write_layout, Written, LAYOUT_VERSION, MOUNT};
