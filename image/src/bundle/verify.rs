//! Re-hashing every input of an image bundle against `image-bundle.json` before a build
//! uses any of it.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::error::{BundleError, Problem};
use super::manifest::{BundleManifest, Input, Role, MANIFEST};
use crate::digest::sha256_file;
use crate::runtime::{self, tree};

/// A bundle whose every input matched its manifest.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: BundleManifest,
    /// The manifest of the agent runtime bundle inside it.
    pub runtime: runtime::Manifest,
}

impl Verified {
    /// Where an input is: the bundle directory joined with its path.
    pub fn path_of(&self, input: &Input) -> PathBuf {
        self.dir.join(&input.path)
    }
}

/// Re-hashes every input of `bundle` (the runtime's files through the runtime's own
/// `bundle.json`, pinned by its id). Any missing, changed, unlisted or odd file makes a
/// [`BundleError::Corrupt`] that names each one with the expected and the actual digest.
pub fn verify(bundle: &Path) -> Result<Verified, BundleError> {
    let manifest = BundleManifest::load(bundle)?;
    let mut problems = Vec::new();
    let mut runtime_manifest = None;
    for input in &manifest.inputs {
        if input.role == Role::Runtime {
            runtime_manifest = check_runtime(bundle, input, &mut problems)?;
        } else if let Some(p) = check_file(bundle, &input.path, &input.sha256, input.size)? {
            problems.push(p);
        }
    }
    problems.extend(strays(bundle, &manifest)?);
    match runtime_manifest {
        Some(runtime) if problems.is_empty() => Ok(Verified {
            dir: bundle.to_path_buf(),
            manifest,
            runtime,
        }),
        _ => Err(BundleError::Corrupt {
            bundle: bundle.to_path_buf(),
            problems,
        }),
    }
}

/// A regular file's digest and size against the pinned ones.
fn check_file(
    bundle: &Path,
    rel: &str,
    expected: &str,
    expected_size: u64,
) -> Result<Option<Problem>, BundleError> {
    let path = bundle.join(rel);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(Some(Problem::Missing {
                path: rel.to_string(),
                expected: expected.to_string(),
            }))
        }
        Err(e) => return Err(BundleError::io("stat", &path)(e)),
        Ok(meta) if !meta.is_file() => {
            return Ok(Some(Problem::NotAFile {
                path: rel.to_string(),
            }))
        }
        Ok(_) => {}
    }
    let got = sha256_file(&path).map_err(BundleError::io("read", &path))?;
    if got.sha256 == expected && got.size == expected_size {
        return Ok(None);
    }
    Ok(Some(Problem::Mismatch {
        path: rel.to_string(),
        expected: expected.to_string(),
        actual: got.sha256,
        expected_size,
        actual_size: got.size,
    }))
}

/// The runtime's `bundle.json` against the pinned bundle id, then each of its files
/// against that `bundle.json`. Returns the runtime's manifest when it could be trusted.
fn check_runtime(
    bundle: &Path,
    input: &Input,
    problems: &mut Vec<Problem>,
) -> Result<Option<runtime::Manifest>, BundleError> {
    let manifest_rel = format!("{}/{}", input.path, runtime::manifest::MANIFEST);
    let manifest_path = bundle.join(&manifest_rel);
    match fs::symlink_metadata(&manifest_path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            problems.push(Problem::Missing {
                path: manifest_rel,
                expected: input.sha256.clone(),
            });
            return Ok(None);
        }
        Err(e) => return Err(BundleError::io("stat", &manifest_path)(e)),
        Ok(_) => {}
    }
    let got = sha256_file(&manifest_path).map_err(BundleError::io("read", &manifest_path))?;
    if got.sha256 != input.sha256 {
        // Its file list is not the pinned one: checking files against it proves nothing.
        problems.push(Problem::Mismatch {
            path: manifest_rel,
            expected: input.sha256.clone(),
            actual: got.sha256,
            expected_size: got.size,
            actual_size: got.size,
        });
        return Ok(None);
    }
    let dir = bundle.join(&input.path);
    let (manifest, _) = runtime::Manifest::load(&dir)?;
    let before = problems.len();
    problems.extend(
        manifest
            .verify(&dir)?
            .into_iter()
            .map(|message| Problem::Runtime {
                dir: input.path.clone(),
                message,
            }),
    );
    Ok((problems.len() == before).then_some(manifest))
}

/// Files the manifest does not list, and entries that are not files, outside the runtime
/// (whose own check covers its directory).
fn strays(bundle: &Path, manifest: &BundleManifest) -> Result<Vec<Problem>, BundleError> {
    let listed: BTreeSet<&str> = manifest.inputs.iter().map(|i| i.path.as_str()).collect();
    let runtime_dirs: Vec<String> = manifest
        .all(Role::Runtime)
        .map(|i| format!("{}/", i.path))
        .collect();
    let inside_runtime = |rel: &str| runtime_dirs.iter().any(|d| rel.starts_with(d.as_str()));
    let (files, others) = tree::list_files(bundle)?;
    let mut problems = Vec::new();
    for rel in others {
        if !inside_runtime(&rel) && !listed.contains(rel.as_str()) {
            problems.push(Problem::NotAFile { path: rel });
        }
    }
    for rel in files {
        if rel != MANIFEST && !inside_runtime(&rel) && !listed.contains(rel.as_str()) {
            problems.push(Problem::Unlisted { path: rel });
        }
    }
    Ok(problems)
}
