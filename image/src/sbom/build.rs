//! The SBOM of an image: the image, clawkeep, the kernel package, the base root
//! filesystem, Node, OpenClaw and every npm package its runtime holds, the model blobs and
//! backend binaries, with versions, download locations and digests where known.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::check::check;
use super::error::SbomError;
use super::npm::{installed_packages, NpmPackage};
use super::spdx::{
    Checksum, CreationInfo, Document, ExternalRef, Package, Relationship, DATA_LICENSE,
    DOCUMENT_ID, NOASSERTION, SPDX_VERSION,
};
use crate::bundle::{BundleManifest, Input, Role};
use crate::deb::DebName;
use crate::digest::sha256_bytes;
use crate::runtime;
use crate::time::rfc3339;

/// The name of the document and of its root package.
pub const IMAGE_NAME: &str = "clawkeep-node-image";

/// What the SBOM is built from.
#[derive(Debug, Clone, Copy)]
pub struct SbomInputs<'a> {
    /// The image bundle's manifest (the kernel, base root filesystem, clawkeep, models and
    /// backends, with their digests).
    pub bundle: &'a BundleManifest,
    /// The installed runtime (`bundle.json`, `app/package-lock.json`, `app/node_modules/`).
    pub runtime: &'a Path,
    /// The build's one timestamp (seconds since the epoch): the document's creation time.
    pub epoch: u64,
}

/// The SPDX 2.3 document of an image built from `inputs`. The same inputs give the same
/// document: its namespace is derived from the inputs' digests and the epoch, its
/// creation time is the epoch, and every list is in a fixed order.
pub fn build(inputs: &SbomInputs<'_>) -> Result<Document, SbomError> {
    let (rt, raw) = runtime::Manifest::load(inputs.runtime)?;
    let runtime_id = runtime::bundle_id(&raw);
    let mut ids = Ids::default();
    let image_id = ids.take("image");
    let mut packages = Vec::new();
    let mut relationships = vec![relationship(DOCUMENT_ID, "DESCRIBES", &image_id)];
    let mut contains = |packages: &mut Vec<Package>, p: Package| {
        relationships.push(relationship(&image_id, "CONTAINS", &p.spdx_id));
        packages.push(p);
    };

    let image = Package {
        primary_package_purpose: Some("OPERATING-SYSTEM".into()),
        comment: Some(format!(
            "the appliance image clawkeep builds: clawkeep as PID 1, OpenClaw {} on Node {} (runtime {runtime_id})",
            rt.openclaw, rt.node
        )),
        ..package(image_id.clone(), IMAGE_NAME, None)
    };
    packages.push(image);

    for input in &inputs.bundle.inputs {
        let file = input.path.rsplit('/').next().unwrap_or(&input.path);
        let p = match input.role {
            Role::Runtime => continue,
            Role::Kernel => kernel(input, file, &mut ids)?,
            Role::Clawkeep => Package {
                primary_package_purpose: Some("APPLICATION".into()),
                checksums: vec![sha256(input)],
                ..package(ids.take("clawkeep"), "clawkeep", input.version.clone())
            },
            Role::Stage1 => Package {
                primary_package_purpose: Some("APPLICATION".into()),
                checksums: vec![sha256(input)],
                comment: Some("the stage-1 init in the initramfs".into()),
                ..package(
                    ids.take("clawkeep-stage1"),
                    "clawkeep-stage1",
                    input.version.clone(),
                )
            },
            Role::BaseRootfs => Package {
                primary_package_purpose: Some("ARCHIVE".into()),
                checksums: vec![sha256(input)],
                comment: Some("the base root filesystem tarball".into()),
                ..package(ids.take(&format!("base-rootfs-{file}")), file, None)
            },
            Role::Model => Package {
                primary_package_purpose: Some("FILE".into()),
                checksums: vec![sha256(input)],
                comment: Some("a model blob".into()),
                ..package(
                    ids.take(&format!("model-{file}")),
                    file,
                    input.version.clone(),
                )
            },
            Role::Backend => Package {
                primary_package_purpose: Some("APPLICATION".into()),
                checksums: vec![sha256(input)],
                comment: Some("a model or storage backend binary".into()),
                ..package(
                    ids.take(&format!("backend-{file}")),
                    file,
                    input.version.clone(),
                )
            },
        };
        contains(&mut packages, p);
    }

    let node_tarball = rt.files.get(&rt.node_tarball);
    let node = Package {
        primary_package_purpose: Some("APPLICATION".into()),
        checksums: node_tarball
            .map(|sum| Checksum {
                algorithm: "SHA256".into(),
                checksum_value: sum.clone(),
            })
            .into_iter()
            .collect(),
        external_refs: vec![ExternalRef::purl(format!(
            "pkg:npm/node-{}@{}",
            rt.platform, rt.node
        ))],
        comment: Some(format!(
            "Node.js, from the npm registry's node-{} package ({})",
            rt.platform, rt.node_tarball
        )),
        ..package(ids.take("node"), "node", Some(rt.node.clone()))
    };
    contains(&mut packages, node);

    let npm = installed_packages(inputs.runtime)?;
    let lock_path = inputs.runtime.join("app/package-lock.json");
    let openclaw =
        npm.iter()
            .find(|p| p.name == "openclaw")
            .ok_or_else(|| SbomError::BadInput {
                path: lock_path.clone(),
                message: "locks no installed openclaw package".into(),
                hint: "the runtime is damaged: install it again",
            })?;
    if openclaw.version != rt.openclaw {
        return Err(SbomError::BadInput {
            path: lock_path,
            message: format!(
                "locks openclaw {}, but bundle.json says {}",
                openclaw.version, rt.openclaw
            ),
            hint: "the runtime is damaged: install it again",
        });
    }
    let openclaw_id = ids.take(&format!("npm-{}-{}", openclaw.name, openclaw.version));
    contains(
        &mut packages,
        Package {
            primary_package_purpose: Some("APPLICATION".into()),
            ..npm_package(openclaw, openclaw_id.clone())
        },
    );
    for p in npm
        .iter()
        .filter(|p| p.name != "openclaw" || p.version != rt.openclaw)
    {
        let id = ids.take(&format!("npm-{}-{}", p.name, p.version));
        relationships.push(relationship(&openclaw_id, "DEPENDS_ON", &id));
        packages.push(Package {
            primary_package_purpose: Some("LIBRARY".into()),
            ..npm_package(p, id)
        });
    }

    let doc = Document {
        spdx_version: SPDX_VERSION.into(),
        data_license: DATA_LICENSE.into(),
        spdx_id: DOCUMENT_ID.into(),
        name: IMAGE_NAME.into(),
        document_namespace: namespace(inputs.bundle, inputs.epoch),
        creation_info: CreationInfo {
            created: rfc3339(inputs.epoch),
            creators: vec![format!("Tool: clawkeep-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        relationships,
    };
    let problems = check(&doc);
    if !problems.is_empty() {
        return Err(SbomError::Invalid { problems });
    }
    Ok(doc)
}

/// Writes `doc` to `path` as pretty JSON with one trailing newline.
pub fn write(doc: &Document, path: &Path) -> Result<(), SbomError> {
    let mut bytes = serde_json::to_vec_pretty(doc).map_err(|e| SbomError::Invalid {
        problems: vec![format!("does not serialise: {e}")],
    })?;
    bytes.push(b'\n');
    fs::write(path, bytes).map_err(SbomError::io("write", path))
}

/// `https://clawkeep.invalid/spdx/clawkeep-node-image-<sha256 of the inputs and epoch>`:
/// unique per build inputs, the same for the same ones (the `.invalid` domain says it is a
/// name, not a place).
fn namespace(bundle: &BundleManifest, epoch: u64) -> String {
    let mut text = format!("epoch {epoch}\n");
    for i in &bundle.inputs {
        text.push_str(&format!("{} {} {}\n", i.role, i.path, i.sha256));
    }
    format!(
        "https://clawkeep.invalid/spdx/{IMAGE_NAME}-{}",
        sha256_bytes(text.as_bytes())
    )
}

fn package(spdx_id: String, name: &str, version: Option<String>) -> Package {
    Package {
        name: name.to_string(),
        spdx_id,
        version_info: version,
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        checksums: Vec::new(),
        primary_package_purpose: None,
        external_refs: Vec::new(),
        comment: None,
    }
}

fn npm_package(p: &NpmPackage, spdx_id: String) -> Package {
    Package {
        download_location: p.resolved.clone().unwrap_or_else(|| NOASSERTION.into()),
        checksums: p.checksums.clone(),
        external_refs: vec![ExternalRef::purl(p.purl())],
        ..package(spdx_id, &p.name, Some(p.version.clone()))
    }
}

fn kernel(input: &Input, file: &str, ids: &mut Ids) -> Result<Package, SbomError> {
    let deb = DebName::parse(file).ok_or_else(|| SbomError::BadInput {
        path: input.path.clone().into(),
        message: "not named like a Debian package".into(),
        hint: "prepare the bundle with the .deb as `apt-get download` names it: NAME_VERSION_ARCH.deb",
    })?;
    Ok(Package {
        primary_package_purpose: Some("OPERATING-SYSTEM".into()),
        checksums: vec![sha256(input)],
        external_refs: vec![ExternalRef::purl(deb.purl())],
        comment: Some("the Linux kernel package".into()),
        ..package(ids.take("kernel"), &deb.name, Some(deb.version.clone()))
    })
}

fn sha256(input: &Input) -> Checksum {
    Checksum {
        algorithm: "SHA256".into(),
        checksum_value: input.sha256.clone(),
    }
}

fn relationship(from: &str, kind: &str, to: &str) -> Relationship {
    Relationship {
        spdx_element_id: from.into(),
        relationship_type: kind.into(),
        related_spdx_element: to.into(),
    }
}

/// Hands out unique SPDX ids (`SPDXRef-` and letters, digits, `.` and `-`).
#[derive(Default)]
struct Ids(BTreeSet<String>);

impl Ids {
    fn take(&mut self, hint: &str) -> String {
        let clean: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let base = format!("SPDXRef-{}", clean.trim_matches('-'));
        let mut id = base.clone();
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}
