//! `image.json`: what an image holds (versions, the fleet's agents, the kernel, the root
//! filesystem's identity), written by the build next to its outputs and listed in the lock
//! like them; `clawkeep image inspect` reads it back with the lock.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::BuildError;
use super::out::INFO;
use crate::lock::{self, Lock};

/// Version of the `image.json` layout this code writes and reads.
pub const INFO_FORMAT: u32 = 1;

/// One agent of the image's fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its name.
    pub name: String,
    /// Its team, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// What an image holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Layout version ([`INFO_FORMAT`]).
    pub format: u32,
    /// The build's one timestamp.
    pub source_date_epoch: u64,
    /// clawkeep's version, when the bundle records it.
    pub clawkeep: Option<String>,
    /// The exact OpenClaw version of the agent runtime.
    pub openclaw: String,
    /// The exact Node version of the agent runtime.
    pub node: String,
    /// The runtime's id (sha256 of its bundle.json): its directory under
    /// `/var/lib/clawkeep/runtimes/` on the node.
    pub runtime_id: String,
    /// The kernel package's name and version (`linux-image-6.1.0-57-amd64 6.1.192-3`).
    pub kernel_package: String,
    /// The kernel release (`uname -r` on the node).
    pub kernel_release: String,
    /// The kernel modules the initramfs loads, in order.
    pub stage1_modules: Vec<String>,
    /// The stage-1 init in the initramfs; `None` while there is none yet (the initramfs
    /// carries the modules and their list only).
    pub stage1_init: Option<String>,
    /// sha256 of the fleet file, as placed at `/etc/clawkeep/fleet.toml`.
    pub fleet_sha256: String,
    /// The files the fleet names, under `/etc/clawkeep/`.
    pub fleet_files: Vec<String>,
    /// The fleet's agents, in file order.
    pub agents: Vec<AgentInfo>,
    /// Entries of the root filesystem (directories, files, links).
    pub rootfs_entries: u64,
    /// The ext4 filesystem's UUID.
    pub rootfs_uuid: String,
    /// The root partition's GUID (`root=PARTUUID=…`).
    pub root_partuuid: String,
}

impl ImageInfo {
    /// Writes `out/image.json` (pretty JSON, one trailing newline).
    pub(crate) fn write(&self, out: &Path) -> Result<(), BuildError> {
        let path = out.join(INFO);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| BuildError::BadInput {
            what: "image info",
            path: path.clone(),
            message: format!("does not serialise: {e}"),
            hint: "a bug: report it",
        })?;
        bytes.push(b'\n');
        fs::write(&path, bytes).map_err(BuildError::io(
            "write",
            &path,
            "is the output directory writable?",
        ))
    }

    /// Reads `out/image.json`.
    pub fn load(out: &Path) -> Result<Self, BuildError> {
        let path = out.join(INFO);
        let bad = |message: String| BuildError::BadInput {
            what: "image info",
            path: path.clone(),
            message,
            hint: "is this an output directory of `clawkeep image build`?",
        };
        let bytes = fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let info: Self = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if info.format != INFO_FORMAT {
            return Err(bad(format!(
                "format {} (this clawkeep reads format {INFO_FORMAT})",
                info.format
            )));
        }
        Ok(info)
    }
}

/// An image as `clawkeep image inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Inspected {
    /// What it holds.
    pub info: ImageInfo,
    /// Every input and output digest, and each output's size.
    pub lock: Lock,
}

/// Reads `out/image.json` and `out/clawkeep.lock` (without re-hashing: that is
/// [`verify`]).
pub fn inspect(out: &Path) -> Result<Inspected, BuildError> {
    Ok(Inspected {
        info: ImageInfo::load(out)?,
        lock: Lock::load(out)?,
    })
}

/// Re-hashes every output under `out` against its `clawkeep.lock`; names each changed,
/// missing or unlisted file with the expected and the actual digest.
pub fn verify(out: &Path) -> Result<Lock, BuildError> {
    Ok(lock::verify_outputs(out)?)
}
