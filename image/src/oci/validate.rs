//! Reading an OCI image layout back and checking it against the image spec and itself:
//! every blob's sha256 and size match the descriptor naming it, the documents parse as
//! their oci-spec types with the right media types, and each layer's uncompressed digest
//! is the diff_id the config names.

use std::fs::{self, File};
use std::io::{self, BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, DigestAlgorithm, ImageConfiguration, ImageIndex, ImageManifest, MediaType,
    OciLayout,
};

use super::blobs::{blob_path, BLOBS};
use super::error::OciError;
use super::write::LAYOUT_VERSION;
use crate::digest::{sha256_bytes, sha256_file, HashingWriter};

/// A layout that passed [`validate_layout`].
#[derive(Debug, Clone)]
pub struct Validated {
    /// The layout directory.
    pub dir: PathBuf,
    /// Its images, in `index.json` order.
    pub images: Vec<ValidImage>,
}

/// One image of a valid layout.
#[derive(Debug, Clone)]
pub struct ValidImage {
    /// Its `org.opencontainers.image.ref.name`, if it has one.
    pub tag: Option<String>,
    /// Its manifest's descriptor.
    pub manifest: Descriptor,
    /// Its config.
    pub config: ImageConfiguration,
    /// Its layers' descriptors.
    pub layers: Vec<Descriptor>,
}

/// Checks the layout at `layout`; every problem found is named in one
/// [`OciError::Invalid`].
pub fn validate_layout(layout: &Path) -> Result<Validated, OciError> {
    let mut problems = Vec::new();
    let images = check(layout, &mut problems)?;
    if problems.is_empty() {
        Ok(Validated {
            dir: layout.to_path_buf(),
            images,
        })
    } else {
        Err(OciError::Invalid {
            layout: layout.to_path_buf(),
            problems,
        })
    }
}

fn check(layout: &Path, problems: &mut Vec<String>) -> Result<Vec<ValidImage>, OciError> {
    match OciLayout::from_file(layout.join("oci-layout")) {
        Ok(l) if l.image_layout_version() == LAYOUT_VERSION => {}
        Ok(l) => problems.push(format!(
            "oci-layout: imageLayoutVersion {:?}, expected {LAYOUT_VERSION:?}",
            l.image_layout_version()
        )),
        Err(e) => problems.push(format!("oci-layout: {e}")),
    }
    let index = match ImageIndex::from_file(layout.join("index.json")) {
        Ok(i) => i,
        Err(e) => {
            problems.push(format!("index.json: {e}"));
            return Ok(Vec::new());
        }
    };
    if index.schema_version() != 2 {
        problems.push(format!(
            "index.json: schemaVersion {}, expected 2",
            index.schema_version()
        ));
    }
    if index.manifests().is_empty() {
        problems.push("index.json: names no manifest".into());
    }
    let mut images = Vec::new();
    for desc in index.manifests() {
        if let Some(image) = check_image(layout, desc, problems)? {
            images.push(image);
        }
    }
    Ok(images)
}

fn check_image(
    layout: &Path,
    desc: &Descriptor,
    problems: &mut Vec<String>,
) -> Result<Option<ValidImage>, OciError> {
    expect_type(desc, &MediaType::ImageManifest, "index.json", problems);
    let Some(bytes) = json_blob(layout, desc, "index.json", problems)? else {
        return Ok(None);
    };
    let name = blob_name(desc);
    let manifest = match ImageManifest::from_reader(bytes.as_slice()) {
        Ok(m) => m,
        Err(e) => {
            problems.push(format!("{name}: not an image manifest: {e}"));
            return Ok(None);
        }
    };
    if manifest.schema_version() != 2 {
        problems.push(format!(
            "{name}: schemaVersion {}, expected 2",
            manifest.schema_version()
        ));
    }
    expect_type(manifest.config(), &MediaType::ImageConfig, &name, problems);
    let Some(bytes) = json_blob(layout, manifest.config(), &name, problems)? else {
        return Ok(None);
    };
    let config_name = blob_name(manifest.config());
    let config = match ImageConfiguration::from_reader(bytes.as_slice()) {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("{config_name}: not an image config: {e}"));
            return Ok(None);
        }
    };
    if config.rootfs().typ() != "layers" {
        problems.push(format!(
            "{config_name}: rootfs.type {:?}, expected \"layers\"",
            config.rootfs().typ()
        ));
    }
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        problems.push(format!(
            "{config_name}: {} diff_ids for the manifest's {} layers",
            diff_ids.len(),
            manifest.layers().len()
        ));
    }
    for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
        check_layer(layout, layer, diff_id, &name, problems)?;
    }
    let tag = desc
        .annotations()
        .as_ref()
        .and_then(|a| a.get(oci_spec::image::ANNOTATION_REF_NAME))
        .cloned();
    Ok(Some(ValidImage {
        tag,
        manifest: desc.clone(),
        config,
        layers: manifest.layers().clone(),
    }))
}

/// A layer's blob against its descriptor, and its uncompressed digest against `diff_id`.
fn check_layer(
    layout: &Path,
    desc: &Descriptor,
    diff_id: &str,
    named_by: &str,
    problems: &mut Vec<String>,
) -> Result<(), OciError> {
    let gzip = match desc.media_type() {
        MediaType::ImageLayerGzip => true,
        MediaType::ImageLayer => false,
        other => {
            problems.push(format!(
                "{}: media type {other}, expected a tar or tar+gzip layer",
                blob_name(desc)
            ));
            return Ok(());
        }
    };
    let Some(path) = blob_file(layout, desc, named_by, problems)? else {
        return Ok(());
    };
    let got = sha256_file(&path).map_err(OciError::io("read", &path))?;
    if !matches_descriptor(desc, &got.sha256, got.size, named_by, problems) {
        return Ok(());
    }
    let file = File::open(&path).map_err(OciError::io("open", &path))?;
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut sink = HashingWriter::new(io::sink());
    if let Err(e) = io::copy(&mut reader, &mut sink) {
        problems.push(format!("{}: does not decompress: {e}", blob_name(desc)));
        return Ok(());
    }
    let (_, tar) = sink.finish();
    let actual = format!("sha256:{}", tar.sha256);
    if actual != diff_id {
        problems.push(format!(
            "{}: uncompressed sha256 is {actual}, the config's diff_id says {diff_id}",
            blob_name(desc)
        ));
    }
    Ok(())
}

fn expect_type(desc: &Descriptor, want: &MediaType, named_by: &str, problems: &mut Vec<String>) {
    if desc.media_type() != want {
        problems.push(format!(
            "{named_by}: names {} as {}, expected {want}",
            desc.digest(),
            desc.media_type()
        ));
    }
}

/// `blobs/sha256/<hex>` of a descriptor (or its digest as written, if not sha256).
fn blob_name(desc: &Descriptor) -> String {
    match desc.as_digest_sha256() {
        Some(hex) => format!("{BLOBS}/{hex}"),
        None => desc.digest().to_string(),
    }
}

/// The blob file a descriptor names, if it is a sha256 one and there.
fn blob_file(
    layout: &Path,
    desc: &Descriptor,
    named_by: &str,
    problems: &mut Vec<String>,
) -> Result<Option<PathBuf>, OciError> {
    if *desc.digest().algorithm() != DigestAlgorithm::Sha256 {
        problems.push(format!(
            "{named_by}: names {} (this layout holds sha256 blobs only)",
            desc.digest()
        ));
        return Ok(None);
    }
    let hex = desc.digest().digest();
    let path = blob_path(layout, hex);
    match fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Some(path)),
        Ok(_) => {
            problems.push(format!("{BLOBS}/{hex}: not a file (named by {named_by})"));
            Ok(None)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            problems.push(format!(
                "{BLOBS}/{hex}: missing (named by {named_by}, {} bytes)",
                desc.size()
            ));
            Ok(None)
        }
        Err(e) => Err(OciError::io("stat", &path)(e)),
    }
}

/// The bytes of a (small, JSON) blob, if they match its descriptor.
fn json_blob(
    layout: &Path,
    desc: &Descriptor,
    named_by: &str,
    problems: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, OciError> {
    let Some(path) = blob_file(layout, desc, named_by, problems)? else {
        return Ok(None);
    };
    let bytes = fs::read(&path).map_err(OciError::io("read", &path))?;
    let ok = matches_descriptor(
        desc,
        &sha256_bytes(&bytes),
        bytes.len() as u64,
        named_by,
        problems,
    );
    Ok(ok.then_some(bytes))
}

fn matches_descriptor(
    desc: &Descriptor,
    sha256: &str,
    size: u64,
    named_by: &str,
    problems: &mut Vec<String>,
) -> bool {
    let name = blob_name(desc);
    let mut ok = true;
    if desc.digest().digest() != sha256 {
        problems.push(format!(
            "{name}: sha256 is {sha256}, the descriptor in {named_by} says {}",
            desc.digest().digest()
        ));
        ok = false;
    }
    if desc.size() != size {
        problems.push(format!(
            "{name}: {size} bytes, the descriptor in {named_by} says {}",
            desc.size()
        ));
        ok = false;
    }
    ok
}
