//! The pinned agent runtime: Node and OpenClaw at exact versions.
//!
//! [`prepare`] (on a connected machine) writes an offline bundle: Node's and npm's
//! tarballs from the npm registry, `app/package.json` + `app/package-lock.json` (with
//! resolved URLs) for `openclaw@VERSION`, the npm cache holding every locked package, and
//! `bundle.json` ([`Manifest`]) with each file's sha256. A Node that does not satisfy
//! OpenClaw's `engines.node` is refused before anything big is downloaded.
//!
//! [`install`] (on the air-gapped node) checks every file, runs `npm ci --offline` with the
//! bundled Node and cache, and renames the result, read-only, into
//! `<runtimes>/<sha256 of bundle.json>/`: the same bundle always lands in the same place,
//! and installing it twice does nothing.

pub mod engines;
mod error;
mod install;
pub mod manifest;
mod npm;
mod prepare;
pub(crate) mod tree;

pub use error::{EnginesMismatch, RuntimeError};
pub(crate) use install::openclaw_entry;
pub use install::{install, InstallOptions, Installed, CURRENT, DEFAULT_RUNTIMES_DIR};
pub use manifest::{bundle_id, Manifest};
pub use prepare::{prepare, PrepareOptions, Prepared};
