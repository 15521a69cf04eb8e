//! `image-bundle.json`: every pinned input of an image bundle, by role, with its
//! bundle-relative path, sha256 and size.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use super::error::BundleError;
use crate::digest::is_sha256_hex;

/// File name of the manifest inside an image bundle.
pub const MANIFEST: &str = "image-bundle.json";

/// Version of the bundle layout this code writes and reads.
pub const FORMAT: u32 = 1;

/// What an input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The Linux kernel package (`linux-image-…_VERSION_ARCH.deb`), exactly one.
    Kernel,
    /// The base root filesystem tarball, exactly one.
    BaseRootfs,
    /// The agent runtime bundle (a directory written by `clawkeep runtime prepare`),
    /// exactly one. Its `sha256` is the runtime's bundle id: the sha256 of its
    /// `bundle.json`, which pins each of its files.
    Runtime,
    /// The clawkeep binary, exactly one.
    Clawkeep,
    /// The stage-1 init (`clawkeep-stage1`, a static binary): the initramfs's `/init`,
    /// exactly one.
    Stage1,
    /// A model blob (e.g. a GGUF file), any number.
    Model,
    /// A backend binary (MinIO, Ollama, vLLM, llama-server, …), any number.
    Backend,
}

impl Role {
    /// Every role, in manifest order.
    pub const ALL: [Role; 7] = [
        Role::Kernel,
        Role::BaseRootfs,
        Role::Runtime,
        Role::Clawkeep,
        Role::Stage1,
        Role::Model,
        Role::Backend,
    ];

    /// The role's name in `image-bundle.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Kernel => "kernel",
            Role::BaseRootfs => "base-rootfs",
            Role::Runtime => "runtime",
            Role::Clawkeep => "clawkeep",
            Role::Stage1 => "stage1",
            Role::Model => "model",
            Role::Backend => "backend",
        }
    }

    /// The directory of the bundle that holds inputs of this role.
    pub fn dir(self) -> &'static str {
        match self {
            Role::Kernel => "kernel",
            Role::BaseRootfs => "rootfs",
            Role::Runtime => "runtime",
            Role::Clawkeep => "clawkeep",
            Role::Stage1 => "stage1",
            Role::Model => "models",
            Role::Backend => "backends",
        }
    }

    /// True when a bundle holds exactly one input of this role (else any number).
    pub fn exactly_one(self) -> bool {
        !matches!(self, Role::Model | Role::Backend)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One pinned input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// What it is for.
    pub role: Role,
    /// Its path relative to the bundle, `/`-separated (a directory for
    /// [`Role::Runtime`]).
    pub path: String,
    /// sha256 of its contents, lowercase hex (for [`Role::Runtime`]: of its
    /// `bundle.json`, i.e. the runtime's bundle id).
    pub sha256: String,
    /// Size in bytes (for [`Role::Runtime`]: of all its files together).
    pub size: u64,
    /// Its version, when the one who prepared the bundle knew it (e.g. clawkeep's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The manifest of an image bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Every input, sorted by role, then path.
    pub inputs: Vec<Input>,
}

impl BundleManifest {
    /// A manifest of `inputs` (sorted here), checked like [`BundleManifest::load`] does.
    pub fn new(mut inputs: Vec<Input>) -> Result<Self, String> {
        inputs.sort_by(|a, b| (a.role, &a.path).cmp(&(b.role, &b.path)));
        let manifest = Self {
            format: FORMAT,
            inputs,
        };
        manifest.check()?;
        Ok(manifest)
    }

    /// Reads and checks `bundle/image-bundle.json`.
    pub fn load(bundle: &Path) -> Result<Self, BundleError> {
        let path = bundle.join(MANIFEST);
        let bad = |message: String| BundleError::BadManifest {
            path: path.clone(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let manifest: Self = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if manifest.format != FORMAT {
            return Err(bad(format!(
                "format {} (this clawkeep reads format {FORMAT})",
                manifest.format
            )));
        }
        manifest.check().map_err(bad)?;
        Ok(manifest)
    }

    /// Writes `bundle/image-bundle.json` (pretty JSON, one trailing newline); returns its
    /// bytes.
    pub fn write(&self, bundle: &Path) -> Result<Vec<u8>, BundleError> {
        let path = bundle.join(MANIFEST);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| BundleError::BadManifest {
            path: path.clone(),
            message: format!("does not serialise: {e}"),
        })?;
        bytes.push(b'\n');
        std::fs::write(&path, &bytes).map_err(BundleError::io("write", &path))?;
        Ok(bytes)
    }

    /// The input of a role that a bundle holds exactly one of.
    pub fn one(&self, role: Role) -> Option<&Input> {
        self.inputs.iter().find(|i| i.role == role)
    }

    /// Every input of `role`, by path.
    pub fn all(&self, role: Role) -> impl Iterator<Item = &Input> {
        self.inputs.iter().filter(move |i| i.role == role)
    }

    /// Paths plain and relative, digests well-formed, one input per path, and exactly one
    /// of each role that needs one.
    fn check(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for input in &self.inputs {
            let p = Path::new(&input.path);
            if input.path.is_empty()
                || input.path.contains('\\')
                || !p.components().all(|c| matches!(c, Component::Normal(_)))
            {
                return Err(format!(
                    "input path {:?} is not a plain path inside the bundle",
                    input.path
                ));
            }
            if input.path == MANIFEST {
                return Err(format!("input path {MANIFEST} is the manifest itself"));
            }
            if !is_sha256_hex(&input.sha256) {
                return Err(format!(
                    "{}: sha256 {:?} is not 64 lowercase hex digits",
                    input.path, input.sha256
                ));
            }
            if !seen.insert(input.path.as_str()) {
                return Err(format!("{} is listed twice", input.path));
            }
        }
        for path in &seen {
            if seen.iter().any(|other| {
                other.len() > path.len()
                    && other.starts_with(path)
                    && other.as_bytes()[path.len()] == b'/'
            }) {
                return Err(format!("{path} is listed as an input and holds another"));
            }
        }
        for role in Role::ALL.into_iter().filter(|r| r.exactly_one()) {
            let n = self.all(role).count();
            if n != 1 {
                return Err(format!(
                    "{n} inputs of role {role} (a bundle holds exactly one)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(role: Role, path: &str) -> Input {
        Input {
            role,
            path: path.into(),
            sha256: "a".repeat(64),
            size: 1,
            version: None,
        }
    }

    fn complete() -> Vec<Input> {
        vec![
            input(Role::Clawkeep, "clawkeep/clawkeep"),
            input(Role::Stage1, "stage1/clawkeep-stage1"),
            input(Role::Kernel, "kernel/k_1_amd64.deb"),
            input(Role::Runtime, "runtime"),
            input(Role::BaseRootfs, "rootfs/base.tar"),
        ]
    }

    #[test]
    fn sorts_by_role_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let m = BundleManifest::new(complete()).unwrap();
        let roles: Vec<Role> = m.inputs.iter().map(|i| i.role).collect();
        assert_eq!(
            roles,
            [
                Role::Kernel,
                Role::BaseRootfs,
                Role::Runtime,
                Role::Clawkeep,
                Role::Stage1
            ]
        );
        m.write(dir.path()).unwrap();
        assert_eq!(BundleManifest::load(dir.path()).unwrap(), m);
        let text = std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        assert!(text.contains("\"role\": \"base-rootfs\""), "{text}");
        assert!(!text.contains("version"), "{text}");
    }

    #[test]
    fn refuses_escaping_paths_bad_digests_and_missing_roles() {
        let mut bad = complete();
        bad[0].path = "../clawkeep".into();
        let e = BundleManifest::new(bad).unwrap_err();
        assert!(e.contains("not a plain path"), "{e}");

        let mut bad = complete();
        bad[1].sha256 = "ABC".into();
        let e = BundleManifest::new(bad).unwrap_err();
        assert!(e.contains("not 64 lowercase hex"), "{e}");

        let mut bad = complete();
        bad.pop();
        let e = BundleManifest::new(bad).unwrap_err();
        assert_eq!(
            e,
            "0 inputs of role base-rootfs (a bundle holds exactly one)"
        );

        let mut bad = complete();
        bad.push(input(Role::Model, "runtime/m.gguf"));
        let e = BundleManifest::new(bad).unwrap_err();
        assert_eq!(e, "runtime is listed as an input and holds another");
    }
}
