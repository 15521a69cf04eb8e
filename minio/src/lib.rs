//! The knowledge store: every agent's brain (its workspace and openclaw.json) and every shared
//! collection kept in a local S3 bucket of its own, synced within seconds of a change, with a
//! history of consistent snapshots that works on any S3 server and grants the store enforces.
//!
//! Layout of a bucket: the plain files under their own paths (readable by people and tools),
//! their contents once more under `.clawkeep/blobs/<sha256>` (content-addressed, shared by
//! every snapshot) and one `.clawkeep/snapshots/<id>.json` per push mapping path to hash.

#![forbid(unsafe_code)]

pub mod boundary;
pub mod config;
pub mod error;
pub mod follow;
pub mod garage;
pub mod grants;
pub mod grants_minio;
pub mod history;
pub mod keys;
pub mod lease;
pub mod madmin_crypto;
pub mod managed_minio;
pub mod manifest;
pub mod mark;
pub mod migrate;
pub mod progress;
pub mod remote;
pub mod report;
pub mod scan;
pub mod sync;
pub mod trust;
pub mod watch;

pub use config::StoreConfig;
pub use error::StoreError;
pub use progress::{PassProgress, ProgressSnapshot};
pub use remote::{Credential, Remote};
pub use sync::{PassOptions, SyncLimits, SyncReport, Syncer};
