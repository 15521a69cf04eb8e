//! Writing an installed agent runtime as an OCI image layout: `oci-layout`, `index.json`
//! and `blobs/sha256/` holding one gzip layer (the runtime at `/opt/openclaw`), the image
//! config and the manifest.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder, RootFsBuilder,
    ANNOTATION_CREATED, ANNOTATION_REF_NAME, ANNOTATION_TITLE, ANNOTATION_VERSION,
};

use super::blobs::{canonical_json, descriptor, write_blob, BLOBS};
use super::error::OciError;
use super::layer::write_layer;
use crate::runtime::{self, openclaw_entry};
use crate::time::rfc3339;

/// Where the runtime lands in the image: where every sandbox mounts it.
pub const MOUNT: &str = "/opt/openclaw";

/// The layout version this code writes (`oci-layout`).
pub const LAYOUT_VERSION: &str = "1.0.0";

/// Labels of the image config (and the manifest's annotations) naming what it carries.
pub mod labels {
    /// The runtime's bundle id (sha256 of its `bundle.json`).
    pub const RUNTIME_ID: &str = "io.clawkeep.runtime.id";
    /// The exact OpenClaw version.
    pub const OPENCLAW: &str = "io.clawkeep.runtime.openclaw";
    /// The exact Node version.
    pub const NODE: &str = "io.clawkeep.runtime.node";
    /// The exact npm version the runtime was installed with.
    pub const NPM: &str = "io.clawkeep.runtime.npm";
}

/// What [`write_layout`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The layout directory.
    pub dir: PathBuf,
    /// The tag (`org.opencontainers.image.ref.name`) of the image in `index.json`: the
    /// OpenClaw version, e.g. `2026.9.6`.
    pub tag: String,
    /// The runtime's bundle id.
    pub runtime_id: String,
    /// The image manifest's descriptor (as in `index.json`).
    pub manifest: Descriptor,
    /// The image config's descriptor.
    pub config: Descriptor,
    /// The layer's descriptor.
    pub layer: Descriptor,
    /// The layer's diff_id: `sha256:` and the digest of the uncompressed tar.
    pub diff_id: String,
    /// Entries in the layer's tar.
    pub entries: u64,
}

/// Writes the installed runtime at `runtime` (what `clawkeep runtime install` made:
/// `bundle.json`, `node/`, `app/`, `bin/`) as an OCI image layout in `out` (created; new or
/// empty). `epoch` (seconds, like `SOURCE_DATE_EPOCH`) is every entry's mtime and the
/// image's creation time: the same runtime and epoch always give the same bytes in every
/// blob and in `index.json`.
pub fn write_layout(runtime: &Path, out: &Path, epoch: u64) -> Result<Written, OciError> {
    ensure_empty(out)?;
    let (manifest, raw) = runtime::Manifest::load(runtime)?;
    let runtime_id = runtime::bundle_id(&raw);
    let arch = arch_of(&manifest.platform, runtime)?;
    let entry = openclaw_entry(runtime)?;
    let created = rfc3339(epoch);
    let tag = manifest.openclaw.clone();

    let blobs = out.join(BLOBS);
    fs::create_dir_all(&blobs).map_err(OciError::io("create directory", &blobs))?;

    let layer = write_layer(runtime, MOUNT, epoch, out)?;
    let layer_desc = descriptor(
        MediaType::ImageLayerGzip,
        &layer.blob.sha256,
        layer.blob.size,
    )?;
    let diff_id = format!("sha256:{}", layer.tar.sha256);

    let labels: HashMap<String, String> = [
        (labels::RUNTIME_ID, runtime_id.as_str()),
        (labels::OPENCLAW, manifest.openclaw.as_str()),
        (labels::NODE, manifest.node.as_str()),
        (labels::NPM, manifest.npm.as_str()),
        (ANNOTATION_TITLE, "openclaw"),
        (ANNOTATION_VERSION, manifest.openclaw.as_str()),
        (ANNOTATION_CREATED, created.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    let exec = ConfigBuilder::default()
        .env(vec![format!(
            "PATH={MOUNT}/node/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )])
        .entrypoint(vec![
            format!("{MOUNT}/node/bin/node"),
            format!("{MOUNT}/app/node_modules/openclaw/{entry}"),
        ])
        .cmd(vec!["gateway".to_string(), "run".to_string()])
        .working_dir(MOUNT)
        .labels(labels.clone())
        .build()
        .map_err(OciError::spec("the image config's execution parameters"))?;
    let config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(arch.clone())
        .os(Os::Linux)
        .config(exec)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.clone()])
                .build()
                .map_err(OciError::spec("the image config's rootfs"))?,
        )
        .history(vec![HistoryBuilder::default()
            .created(created.clone())
            .created_by(format!(
                "clawkeep: OpenClaw {} on Node {} (runtime {runtime_id}) at {MOUNT}",
                manifest.openclaw, manifest.node
            ))
            .build()
            .map_err(OciError::spec("the image config's history"))?])
        .build()
        .map_err(OciError::spec("the image config"))?;
    let config_desc = write_blob(
        out,
        MediaType::ImageConfig,
        &canonical_json(&config, "the image config")?,
    )?;

    let image_manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc.clone())
        .layers(vec![layer_desc.clone()])
        .annotations(labels)
        .build()
        .map_err(OciError::spec("the image manifest"))?;
    let mut manifest_desc = write_blob(
        out,
        MediaType::ImageManifest,
        &canonical_json(&image_manifest, "the image manifest")?,
    )?;
    manifest_desc.set_platform(Some(
        PlatformBuilder::default()
            .architecture(arch)
            .os(Os::Linux)
            .build()
            .map_err(OciError::spec("the manifest's platform"))?,
    ));
    manifest_desc.set_annotations(Some(HashMap::from([(
        ANNOTATION_REF_NAME.to_string(),
        tag.clone(),
    )])));

    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_desc.clone()])
        .build()
        .map_err(OciError::spec("index.json"))?;
    let index_path = out.join("index.json");
    fs::write(&index_path, canonical_json(&index, "index.json")?)
        .map_err(OciError::io("write", &index_path))?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version(LAYOUT_VERSION)
        .build()
        .map_err(OciError::spec("oci-layout"))?;
    let layout_path = out.join("oci-layout");
    fs::write(&layout_path, canonical_json(&layout, "oci-layout")?)
        .map_err(OciError::io("write", &layout_path))?;

    Ok(Written {
        dir: out.to_path_buf(),
        tag,
        runtime_id,
        manifest: manifest_desc,
        config: config_desc,
        layer: layer_desc,
        diff_id,
        entries: layer.entries,
    })
}

/// The OCI architecture of a runtime built for Node's `platform` (`linux-x64` → `amd64`).
fn arch_of(platform: &str, runtime: &Path) -> Result<Arch, OciError> {
    match platform {
        "linux-x64" => Ok(Arch::Amd64),
        "linux-arm64" => Ok(Arch::ARM64),
        other => Err(OciError::Unsupported {
            path: runtime.join(runtime::manifest::MANIFEST),
            message: format!("platform {other:?} is not one this image builder knows"),
            hint: "prepare the runtime on a linux-x64 or linux-arm64 machine",
        }),
    }
}

fn ensure_empty(out: &Path) -> Result<(), OciError> {
    match crate::out_dir::is_new_or_empty(out) {
        Ok(true) => Ok(()),
        Ok(false) => Err(OciError::OutNotEmpty {
            path: out.to_path_buf(),
        }),
        Err(e) => Err(OciError::io("read directory", out)(e)),
    }
}
