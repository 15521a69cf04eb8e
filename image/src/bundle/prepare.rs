//! Preparing an image bundle: the given inputs copied (or hard-linked) into a new
//! directory under their role's folder, then `image-bundle.json` pinning each one.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::BundleError;
use super::manifest::{BundleManifest, Input, Role, MANIFEST};
use crate::deb::DebName;
use crate::digest::sha256_file;
use crate::runtime::{self, tree};

/// How inputs get into the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Copy every file: the bundle owns its bytes.
    Copy,
    /// Hard-link every file where the input is on the same filesystem (copy where not):
    /// quick and small, but a later change to an input changes the bundle too (and
    /// [`super::verify`] will say so).
    HardLink,
}

/// The inputs of an image bundle, as paths on this machine.
#[derive(Debug, Clone)]
pub struct BundleInputs {
    /// The kernel package, named as Debian names it: `NAME_VERSION_ARCH.deb`.
    pub kernel: PathBuf,
    /// The base root filesystem tarball.
    pub base_rootfs: PathBuf,
    /// The agent runtime bundle: a directory written by `clawkeep runtime prepare`.
    pub runtime: PathBuf,
    /// The clawkeep binary.
    pub clawkeep: PathBuf,
    /// clawkeep's version, when known (recorded in the manifest and the SBOM).
    pub clawkeep_version: Option<String>,
    /// The stage-1 init (`clawkeep-stage1`, built static), with clawkeep's version when
    /// known.
    pub stage1: PathBuf,
    /// Model blobs.
    pub models: Vec<PathBuf>,
    /// Backend binaries (MinIO, Ollama, vLLM, llama-server, …).
    pub backends: Vec<PathBuf>,
}

/// A prepared bundle.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Its manifest, as written.
    pub manifest: BundleManifest,
}

/// Puts `inputs` into `out` (created; it must be new or empty) as `kernel/`, `rootfs/`,
/// `runtime/`, `clawkeep/`, `stage1/`, `models/` and `backends/`, each file under its own name, and
/// writes `image-bundle.json` with the sha256 and size of each as placed. The runtime
/// bundle is checked against its own `bundle.json` first, so a corrupt one is never pinned.
pub fn prepare(
    inputs: &BundleInputs,
    out: &Path,
    placement: Placement,
) -> Result<Prepared, BundleError> {
    ensure_empty(out)?;
    let kernel_name = file_name(Role::Kernel, &inputs.kernel)?;
    if DebName::parse(&kernel_name).is_none() {
        return Err(BundleError::BadInput {
            role: Role::Kernel,
            path: inputs.kernel.clone(),
            message: "not named like a Debian package".into(),
            hint: "give the .deb as `apt-get download` names it: NAME_VERSION_ARCH.deb",
        });
    }
    fs::create_dir_all(out).map_err(BundleError::io("create directory", out))?;

    let mut placed = vec![
        place_file(Role::Kernel, &inputs.kernel, out, placement, None)?,
        place_file(Role::BaseRootfs, &inputs.base_rootfs, out, placement, None)?,
        place_file(
            Role::Clawkeep,
            &inputs.clawkeep,
            out,
            placement,
            inputs.clawkeep_version.clone(),
        )?,
        place_file(
            Role::Stage1,
            &inputs.stage1,
            out,
            placement,
            inputs.clawkeep_version.clone(),
        )?,
        place_runtime(&inputs.runtime, out, placement)?,
    ];
    for model in &inputs.models {
        placed.push(place_file(Role::Model, model, out, placement, None)?);
    }
    for backend in &inputs.backends {
        placed.push(place_file(Role::Backend, backend, out, placement, None)?);
    }
    let manifest = BundleManifest::new(placed).map_err(|message| BundleError::BadManifest {
        path: out.join(MANIFEST),
        message,
    })?;
    manifest.write(out)?;
    Ok(Prepared {
        dir: out.to_path_buf(),
        manifest,
    })
}

fn ensure_empty(out: &Path) -> Result<(), BundleError> {
    match crate::out_dir::is_new_or_empty(out) {
        Ok(true) => Ok(()),
        Ok(false) => Err(BundleError::OutNotEmpty {
            path: out.to_path_buf(),
        }),
        Err(e) => Err(BundleError::io("read directory", out)(e)),
    }
}

fn file_name(role: Role, path: &Path) -> Result<String, BundleError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| BundleError::BadInput {
            role,
            path: path.to_path_buf(),
            message: "has no UTF-8 file name".into(),
            hint: "give a path to a file with a plain name",
        })
}

/// Puts one file at `out/<role dir>/<its name>`; returns its pinned entry.
fn place_file(
    role: Role,
    from: &Path,
    out: &Path,
    placement: Placement,
    version: Option<String>,
) -> Result<Input, BundleError> {
    let meta = fs::metadata(from).map_err(|e| BundleError::BadInput {
        role,
        path: from.to_path_buf(),
        message: e.to_string(),
        hint: "give the path of an existing file",
    })?;
    if !meta.is_file() {
        return Err(BundleError::BadInput {
            role,
            path: from.to_path_buf(),
            message: "not a regular file".into(),
            hint: "give the path of a file",
        });
    }
    let rel = format!("{}/{}", role.dir(), file_name(role, from)?);
    let to = out.join(&rel);
    if to.exists() {
        return Err(BundleError::BadInput {
            role,
            path: from.to_path_buf(),
            message: format!("{rel} is already in the bundle"),
            hint: "give each model and backend a different file name",
        });
    }
    put(from, &to, placement)?;
    let digest = sha256_file(&to).map_err(BundleError::io("read", &to))?;
    Ok(Input {
        role,
        path: rel,
        sha256: digest.sha256,
        size: digest.size,
        version,
    })
}

/// Checks the runtime bundle against its `bundle.json`, then puts every file of it under
/// `out/runtime/`; pins it by its bundle id.
fn place_runtime(from: &Path, out: &Path, placement: Placement) -> Result<Input, BundleError> {
    let (manifest, raw) = runtime::Manifest::load(from)?;
    let problems = manifest.verify(from)?;
    if !problems.is_empty() {
        return Err(runtime::RuntimeError::Corrupt {
            bundle: from.to_path_buf(),
            problems,
        }
        .into());
    }
    let rel = Role::Runtime.dir().to_string();
    let (files, _) = tree::list_files(from)?;
    let mut size = 0;
    for f in &files {
        let to = out.join(&rel).join(f);
        put(&from.join(f), &to, placement)?;
        size += fs::metadata(&to)
            .map_err(BundleError::io("stat", &to))?
            .len();
    }
    Ok(Input {
        role: Role::Runtime,
        path: rel,
        sha256: runtime::bundle_id(&raw),
        size,
        version: Some(manifest.openclaw),
    })
}

/// Copies or hard-links `from` to `to`, creating `to`'s parents.
fn put(from: &Path, to: &Path, placement: Placement) -> Result<(), BundleError> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(BundleError::io("create directory", parent))?;
    }
    if placement == Placement::HardLink && fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to)
        .map(|_| ())
        .map_err(BundleError::io("copy to", to))
}
