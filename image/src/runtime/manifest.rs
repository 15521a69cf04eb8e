//! `bundle.json`: what a runtime bundle holds (versions, the engines range) and the sha256
//! of every file in it. The sha256 of `bundle.json` itself names the installed runtime.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::RuntimeError;
use super::tree;

/// File name of the manifest inside a bundle (and inside an installed runtime).
pub const MANIFEST: &str = "bundle.json";

/// Version of the bundle layout this code writes and reads.
pub const FORMAT: u32 = 1;

/// The manifest of a runtime bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Exact OpenClaw version (`openclaw@…` in `app/package.json`).
    pub openclaw: String,
    /// OpenClaw's `engines.node` range, checked against `node` at prepare time.
    pub engines_node: String,
    /// Exact Node version.
    pub node: String,
    /// Node's platform package, e.g. `linux-x64`.
    pub platform: String,
    /// Bundle-relative path of Node's tarball (`node-<platform>` from the npm registry).
    pub node_tarball: String,
    /// Exact npm version used to lock and to install.
    pub npm: String,
    /// Bundle-relative path of npm's tarball.
    pub npm_tarball: String,
    /// sha256 (hex) of every file in the bundle but `bundle.json`, by bundle-relative path.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads `bundle/bundle.json`; returns it with its raw bytes.
    pub fn load(bundle: &Path) -> Result<(Self, Vec<u8>), RuntimeError> {
        let path = bundle.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| RuntimeError::BadManifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let manifest: Self =
            serde_json::from_slice(&bytes).map_err(|e| RuntimeError::BadManifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if manifest.format != FORMAT {
            return Err(RuntimeError::BadManifest {
                path,
                message: format!(
                    "format {} (this clawkeep reads format {FORMAT})",
                    manifest.format
                ),
            });
        }
        Ok((manifest, bytes))
    }

    /// Writes `bundle/bundle.json`; returns its bytes.
    pub fn write(&self, bundle: &Path) -> Result<Vec<u8>, RuntimeError> {
        let path = bundle.join(MANIFEST);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| RuntimeError::Unexpected {
            what: path.display().to_string(),
            message: e.to_string(),
            hint: "a bug: the manifest always serialises",
        })?;
        bytes.push(b'\n');
        std::fs::write(&path, &bytes).map_err(RuntimeError::io("write", &path))?;
        Ok(bytes)
    }

    /// Checks every file of `bundle` against the manifest: each listed file present with its
    /// sha256, nothing unlisted. Returns one line per problem, each naming the file.
    pub fn verify(&self, bundle: &Path) -> Result<Vec<String>, RuntimeError> {
        let (files, others) = tree::list_files(bundle)?;
        let mut problems = Vec::new();
        for rel in others {
            problems.push(format!(
                "{rel}: not a regular file (a bundle holds only files)"
            ));
        }
        for rel in &files {
            if rel == MANIFEST {
                continue;
            }
            match self.files.get(rel) {
                None => problems.push(format!("{rel}: not listed in {MANIFEST}")),
                Some(want) => {
                    let got = tree::sha256_file(&bundle.join(rel))?;
                    if &got != want {
                        problems.push(format!("{rel}: sha256 is {got}, {MANIFEST} says {want}"));
                    }
                }
            }
        }
        for rel in self.files.keys() {
            if files.binary_search(rel).is_err() {
                problems.push(format!("{rel}: missing (listed in {MANIFEST})"));
            }
        }
        Ok(problems)
    }
}

/// The id of a bundle: the sha256 (hex) of its `bundle.json` bytes, which pin every file.
pub fn bundle_id(manifest_bytes: &[u8]) -> String {
    crate::digest::sha256_bytes(manifest_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_names_changed_missing_and_extra_files() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        std::fs::create_dir_all(b.join("app")).unwrap();
        std::fs::write(b.join("app/a"), "a").unwrap();
        std::fs::write(b.join("app/b"), "b").unwrap();
        let m = Manifest {
            format: FORMAT,
            openclaw: "1.0.0".into(),
            engines_node: "*".into(),
            node: "24.0.0".into(),
            platform: "linux-x64".into(),
            node_tarball: "app/a".into(),
            npm: "11.0.0".into(),
            npm_tarball: "app/b".into(),
            files: tree::hash_tree(b).unwrap(),
        };
        let bytes = m.write(b).unwrap();
        let (back, raw) = Manifest::load(b).unwrap();
        assert_eq!(back, m);
        assert_eq!(bundle_id(&raw), bundle_id(&bytes));
        assert!(m.verify(b).unwrap().is_empty());

        std::fs::write(b.join("app/a"), "A").unwrap();
        std::fs::remove_file(b.join("app/b")).unwrap();
        std::fs::write(b.join("app/c"), "c").unwrap();
        let problems = m.verify(b).unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("app/a: sha256 is "));
        assert_eq!(problems[1], "app/c: not listed in bundle.json");
        assert_eq!(problems[2], "app/b: missing (listed in bundle.json)");
    }
}
