//! The content side of an image build, on a small runtime shaped like the real one: the
//! image bundle (prepare, verify naming a flipped byte and a missing file), the runtime as
//! an OCI image layout (valid for umoci and our own check, identical when written twice),
//! the lock (naming a changed output) and the SBOM (openclaw at its version, valid for
//! pyspdxtools).

mod support;

use std::fs;
use std::io::Read;
use std::path::Path;

use clawkeep_image::bundle::{self, BundleInputs, BundleManifest, Placement, Role};
use clawkeep_image::lock::{self, Lock, LockError};
use clawkeep_image::oci::{self, OciError};
use clawkeep_image::sbom::{self, SbomInputs};
use support::*;

fn prepare_bundle(dir: &Path) -> (bundle::Prepared, OtherInputs, std::path::PathBuf) {
    let rt_bundle = runtime_bundle(dir);
    let other = other_inputs(dir);
    let inputs = BundleInputs {
        kernel: other.kernel.clone(),
        base_rootfs: other.base_rootfs.clone(),
        runtime: rt_bundle.clone(),
        clawkeep: other.clawkeep.clone(),
        stage1: other.stage1.clone(),
        clawkeep_version: Some("0.1.0".into()),
        models: vec![other.model.clone()],
        backends: Vec::new(),
    };
    let prepared = bundle::prepare(&inputs, &dir.join("bundle"), Placement::Copy).unwrap();
    (prepared, other, rt_bundle)
}

#[test]
fn bundle_verify_names_a_flipped_byte_and_a_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (prepared, other, rt_bundle) = prepare_bundle(tmp.path());
    let b = &prepared.dir;

    // What prepare pinned: each input under its role's folder, the runtime by its id.
    let m = BundleManifest::load(b).unwrap();
    assert_eq!(m, prepared.manifest);
    let rows: Vec<(Role, &str)> = m.inputs.iter().map(|i| (i.role, i.path.as_str())).collect();
    assert_eq!(
        rows,
        [
            (Role::Kernel, format!("kernel/{KERNEL_DEB}").as_str()),
            (Role::BaseRootfs, "rootfs/base.tar"),
            (Role::Runtime, "runtime"),
            (Role::Clawkeep, "clawkeep/clawkeep"),
            (Role::Stage1, "stage1/clawkeep-stage1"),
            (Role::Model, "models/tiny.gguf"),
        ]
    );
    let rt_id = sha256_hex(&fs::read(rt_bundle.join("bundle.json")).unwrap());
    assert_eq!(m.one(Role::Runtime).unwrap().sha256, rt_id);
    assert_eq!(
        m.one(Role::Runtime).unwrap().version.as_deref(),
        Some(OPENCLAW)
    );
    let rootfs = m.one(Role::BaseRootfs).unwrap().clone();
    assert_eq!(
        rootfs.sha256,
        sha256_hex(&fs::read(&other.base_rootfs).unwrap())
    );
    let verified = bundle::verify(b).unwrap();
    assert_eq!(verified.runtime.openclaw, OPENCLAW);

    // One flipped byte in the base rootfs: named, with both digests.
    let rootfs_path = b.join("rootfs/base.tar");
    flip_byte(&rootfs_path, 100);
    let actual = sha256_hex(&fs::read(&rootfs_path).unwrap());
    let e = bundle::verify(b).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "image bundle {} does not match its image-bundle.json:\n  rootfs/base.tar: expected sha256 {}, actual sha256 {actual}\n(hint: the bundle changed after it was prepared: copy the named files again from the machine that prepared it, or prepare the bundle again from the original inputs)",
            b.display(),
            rootfs.sha256
        )
    );
    flip_byte(&rootfs_path, 100);
    bundle::verify(b).unwrap();

    // A missing kernel package.
    let kernel = m.one(Role::Kernel).unwrap();
    fs::remove_file(b.join(&kernel.path)).unwrap();
    let e = bundle::verify(b).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "image bundle {} does not match its image-bundle.json:\n  kernel/{KERNEL_DEB}: missing (expected sha256 {})\n(hint: the bundle changed after it was prepared: copy the named files again from the machine that prepared it, or prepare the bundle again from the original inputs)",
            b.display(),
            kernel.sha256
        )
    );
    fs::copy(&other.kernel, b.join(&kernel.path)).unwrap();
    bundle::verify(b).unwrap();

    // A file of the runtime, checked through the runtime's own bundle.json; a stray file.
    flip_byte(&b.join("runtime/app/package-lock.json"), 10);
    fs::write(b.join("models/stray.bin"), "x").unwrap();
    let e = bundle::verify(b).unwrap_err();
    let bundle::BundleError::Corrupt { problems, .. } = &e else {
        panic!("{e}")
    };
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("runtime/app/package-lock.json: sha256 is "),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "models/stray.bin: not listed in image-bundle.json"
    );

    // prepare refuses a corrupt runtime bundle, and a kernel not named like a .deb.
    flip_byte(&rt_bundle.join("npm/npm-11.19.1.tgz"), 0);
    let mut inputs = BundleInputs {
        kernel: other.kernel.clone(),
        base_rootfs: other.base_rootfs.clone(),
        runtime: rt_bundle.clone(),
        clawkeep: other.clawkeep.clone(),
        stage1: other.stage1.clone(),
        clawkeep_version: None,
        models: Vec::new(),
        backends: Vec::new(),
    };
    let e = bundle::prepare(&inputs, &tmp.path().join("b2"), Placement::HardLink)
        .unwrap_err()
        .to_string();
    assert!(e.contains("npm/npm-11.19.1.tgz: sha256 is "), "{e}");
    inputs.kernel = other.clawkeep.clone();
    let e = bundle::prepare(&inputs, &tmp.path().join("b3"), Placement::HardLink)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not named like a Debian package"), "{e}");
    let e = bundle::prepare(&inputs, b, Placement::Copy)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists and is not empty"), "{e}");
}

/// One entry of a layer's tar.
struct Entry {
    path: String,
    /// `d`, `f` or `l`.
    kind: char,
    mode: u32,
    owner: (u64, u64),
    mtime: u64,
    link: Option<String>,
}

/// Reads the entries of a gzip tar layer, checking its gzip header on the way.
fn layer_entries(blob: &Path) -> Vec<Entry> {
    let bytes = fs::read(blob).unwrap();
    // gzip header: magic, deflate, no flags (no name, no comment, no extra), mtime 0.
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0], "gzip header flags");
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip header mtime");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        assert!(e.pax_extensions().unwrap().is_none(), "no PAX records");
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Regular => 'f',
            tar::EntryType::Symlink => 'l',
            other => panic!("unexpected entry type {other:?}"),
        };
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut sink = Vec::new();
        e.read_to_end(&mut sink).unwrap();
        out.push(Entry {
            path,
            kind,
            mode: h.mode().unwrap(),
            owner: (h.uid().unwrap(), h.gid().unwrap()),
            mtime: h.mtime().unwrap(),
            link,
        });
    }
    out
}

#[test]
fn oci_layout_is_valid_and_written_twice_is_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = installed_runtime(&runtime_bundle(tmp.path()), &tmp.path().join("rt"));
    let a = tmp.path().join("oci-a");
    let written = oci::write_layout(&rt, &a, EPOCH).unwrap();
    assert_eq!(written.tag, OPENCLAW);

    // The same tree again, and a copy of it elsewhere with other timestamps and umask:
    // every blob and index.json are the same bytes.
    let b = tmp.path().join("oci-b");
    oci::write_layout(&rt, &b, EPOCH).unwrap();
    let copy = installed_runtime(
        &runtime_bundle(&tmp.path().join("again")),
        &tmp.path().join("rt2"),
    );
    fs::set_permissions(
        copy.join("app/package.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    fs::File::options()
        .write(true)
        .open(copy.join("node/bin/node"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(12345))
        .unwrap();
    let c = tmp.path().join("oci-c");
    oci::write_layout(&copy, &c, EPOCH).unwrap();
    let da = tree_digests(&a);
    assert_eq!(da.len(), 5, "oci-layout, index.json, three blobs: {da:?}");
    assert_eq!(da, tree_digests(&b));
    assert_eq!(da, tree_digests(&c));
    // Another epoch is another image.
    let d = tmp.path().join("oci-d");
    let other = oci::write_layout(&rt, &d, EPOCH + 1).unwrap();
    assert_ne!(other.layer.digest(), written.layer.digest());

    // Our own check: every descriptor against its blob, the diff_id against the tar.
    let valid = oci::validate_layout(&a).unwrap();
    assert_eq!(valid.images.len(), 1);
    let image = &valid.images[0];
    assert_eq!(image.tag.as_deref(), Some(OPENCLAW));
    let config = &image.config;
    assert_eq!(config.os().to_string(), "linux");
    assert_eq!(config.architecture().to_string(), "amd64");
    assert_eq!(config.created().as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(config.rootfs().diff_ids(), &vec![written.diff_id.clone()]);
    let labels = config.config().as_ref().unwrap().labels().as_ref().unwrap();
    assert_eq!(labels[oci::labels::OPENCLAW], OPENCLAW);
    assert_eq!(labels[oci::labels::NODE], NODE);
    assert_eq!(labels[oci::labels::RUNTIME_ID], written.runtime_id);
    assert_eq!(
        config
            .config()
            .as_ref()
            .unwrap()
            .entrypoint()
            .as_ref()
            .unwrap(),
        &vec![
            "/opt/openclaw/node/bin/node".to_string(),
            "/opt/openclaw/app/node_modules/openclaw/openclaw.mjs".to_string()
        ]
    );
    let index = fs::read_to_string(a.join("index.json")).unwrap();
    assert!(
        index.contains("\"org.opencontainers.image.ref.name\":\"2026.9.6\""),
        "{index}"
    );
    assert_eq!(
        fs::read_to_string(a.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );

    // The layer: sorted, parents first, 0:0, one mtime, read-only modes, links kept.
    let layer_hex = written.layer.digest().digest().to_string();
    let entries = layer_entries(&a.join(oci::BLOBS).join(&layer_hex));
    assert_eq!(entries.len() as u64, written.entries);
    let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "opt",
            "opt/openclaw",
            "opt/openclaw/app",
            "opt/openclaw/app/node_modules"
        ]
    );
    for e in &entries {
        let path = e.path.as_str();
        assert_eq!((e.owner, e.mtime), ((0, 0), EPOCH), "{path}");
        let executable =
            path.ends_with("/node") || path.ends_with(".mjs") || path.ends_with("bin/openclaw");
        let want = match (e.kind, path) {
            ('d', "opt") => 0o755,
            ('d', _) => 0o555,
            ('l', _) => 0o777,
            _ if executable => 0o555,
            _ => 0o444,
        };
        assert_eq!(e.mode, want, "{path}");
    }
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p} not in {names:?}"))
    };
    assert_eq!(find("opt/openclaw/bin/node").kind, 'l');
    assert_eq!(
        find("opt/openclaw/bin/node").link.as_deref(),
        Some("../node/bin/node")
    );
    assert!(
        names.iter().any(|n| n.len() > 100),
        "a long path went in whole"
    );
    // Sorted name by name within each directory, parents first (GNU tar's --sort=name):
    // `dist/…` before `dist-legacy.js`, though '-' sorts before '/'.
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
    assert_eq!(sorted, names, "entries in sorted order");
    let dist = |n: &str| names.iter().position(|x| x.ends_with(n)).unwrap();
    assert!(dist("openclaw/dist/plugins") < dist("openclaw/dist-legacy.js"));

    // umoci reads it (checking digests and the diff_id) and unpacks the runtime.
    let unpacked = tmp.path().join("unpacked");
    umoci_unpack(&a, OPENCLAW, &unpacked);
    let root = unpacked.join("rootfs/opt/openclaw");
    assert_eq!(
        fs::read(root.join("app/node_modules/openclaw/openclaw.mjs")).unwrap(),
        fs::read(rt.join("app/node_modules/openclaw/openclaw.mjs")).unwrap()
    );
    assert_eq!(
        fs::read_link(root.join("bin/node")).unwrap(),
        Path::new("../node/bin/node")
    );
    let spec = fs::read_to_string(unpacked.join("config.json")).unwrap();
    assert!(spec.contains("/opt/openclaw/node/bin/node"), "{spec}");

    // A blob changed after writing: named, with both digests.
    let config_hex = written.config.digest().digest().to_string();
    let config_blob = a.join(oci::BLOBS).join(&config_hex);
    flip_byte(&config_blob, 2);
    let actual = sha256_hex(&fs::read(&config_blob).unwrap());
    let e = oci::validate_layout(&a).unwrap_err();
    let OciError::Invalid { problems, .. } = &e else {
        panic!("{e}")
    };
    let manifest_hex = written.manifest.digest().digest();
    assert_eq!(
        problems,
        &vec![format!(
            "blobs/sha256/{config_hex}: sha256 is {actual}, the descriptor in blobs/sha256/{manifest_hex} says {config_hex}"
        )]
    );
    let e = oci::write_layout(&rt, &a, EPOCH).unwrap_err().to_string();
    assert!(e.contains("already exists and is not empty"), "{e}");
}

/// An output directory as a build would leave it: the OCI layout and the SBOM, then the
/// lock.
fn build_outputs(tmp: &Path, name: &str) -> (std::path::PathBuf, BundleManifest) {
    let work = tmp.join(format!("{name}-work"));
    let (prepared, _, rt_bundle) = prepare_bundle(&work);
    let rt = installed_runtime(&rt_bundle, &work.join("rt"));
    let out = tmp.join(name);
    oci::write_layout(&rt, &out.join("oci"), EPOCH).unwrap();
    let doc = sbom::build(&SbomInputs {
        bundle: &prepared.manifest,
        runtime: &rt,
        epoch: EPOCH,
    })
    .unwrap();
    sbom::write(&doc, &out.join("sbom.spdx.json")).unwrap();
    Lock::new(&prepared.manifest, &out, EPOCH)
        .unwrap()
        .write(&out)
        .unwrap();
    (out, prepared.manifest)
}

#[test]
fn lock_lists_inputs_and_outputs_and_verify_names_a_changed_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, manifest) = build_outputs(tmp.path(), "out");
    let lock = lock::verify_outputs(&out).unwrap();
    assert_eq!(lock.inputs, manifest.inputs);
    assert_eq!(lock.source_date_epoch, EPOCH);
    let paths: Vec<&str> = lock.outputs.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(paths.len(), 6, "{paths:?}");
    assert_eq!(
        paths[3..],
        ["oci/index.json", "oci/oci-layout", "sbom.spdx.json"]
    );
    assert!(paths[..3]
        .iter()
        .all(|p| p.starts_with("oci/blobs/sha256/")));

    // Built again from the same inputs elsewhere: the same lock, byte for byte.
    let (again, _) = build_outputs(tmp.path(), "again");
    assert_eq!(
        fs::read(out.join(lock::LOCK)).unwrap(),
        fs::read(again.join(lock::LOCK)).unwrap()
    );
    assert_eq!(tree_digests(&out), tree_digests(&again));

    // A changed output: named, with the digest the lock expects and the one it has.
    let changed = lock
        .outputs
        .iter()
        .find(|o| o.path.ends_with("index.json"))
        .unwrap();
    let path = out.join(&changed.path);
    flip_byte(&path, 5);
    let actual = sha256_hex(&fs::read(&path).unwrap());
    let e = lock::verify_outputs(&out).unwrap_err();
    assert!(matches!(e, LockError::Mismatch { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "{} does not match its clawkeep.lock:\n  oci/index.json: expected sha256 {}, actual sha256 {actual}\n(hint: an output changed after the build: build again into a new directory, or copy the outputs again from where they were built)",
            out.display(),
            changed.sha256
        )
    );
}

#[test]
fn sbom_lists_openclaw_node_kernel_and_clawkeep_and_passes_the_validator() {
    let tmp = tempfile::tempdir().unwrap();
    let (prepared, _, rt_bundle) = prepare_bundle(tmp.path());
    let rt = installed_runtime(&rt_bundle, &tmp.path().join("rt"));
    let inputs = SbomInputs {
        bundle: &prepared.manifest,
        runtime: &rt,
        epoch: EPOCH,
    };
    let doc = sbom::build(&inputs).unwrap();
    assert_eq!(doc, sbom::build(&inputs).unwrap(), "deterministic");
    assert!(sbom::check(&doc).is_empty());
    assert_eq!(doc.creation_info.created, "2023-11-14T22:13:20Z");
    assert!(doc
        .document_namespace
        .starts_with("https://clawkeep.invalid/spdx/clawkeep-node-image-"));

    let by_name = |n: &str| {
        doc.packages
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("no package {n}"))
    };
    let oc = by_name("openclaw");
    assert_eq!(oc.version_info.as_deref(), Some(OPENCLAW));
    assert_eq!(
        oc.download_location,
        format!("https://registry.npmjs.org/openclaw/-/openclaw-{OPENCLAW}.tgz")
    );
    assert_eq!(oc.checksums[0].algorithm, "SHA512");
    assert_eq!(oc.checksums[0].checksum_value, "deec960bc6cd44c4a3dd54e72a1caa43d4acbdf3677e3f5a0f14be6b0e81246830f1d99f12c41ad80ed8bf559e77a3f60f56db4e566088000ed4ab3e5a8e1adf");
    assert_eq!(
        oc.external_refs[0].reference_locator,
        "pkg:npm/openclaw@2026.9.6"
    );
    let dep = by_name("@scope/dep");
    assert_eq!(dep.version_info.as_deref(), Some("1.2.3"));
    assert_eq!(dep.checksums[0].algorithm, "SHA1");
    assert_eq!(by_name("bundled").download_location, "NOASSERTION");
    assert!(
        doc.packages
            .iter()
            .all(|p| p.name != "@esbuild/darwin-arm64"),
        "a package locked for another platform is not in the runtime"
    );
    assert_eq!(by_name("node").version_info.as_deref(), Some(NODE));
    let kernel = by_name("linux-image-6.1.0-56-amd64");
    assert_eq!(kernel.version_info.as_deref(), Some("6.1.192-2"));
    assert_eq!(
        kernel.checksums[0].checksum_value,
        prepared.manifest.one(Role::Kernel).unwrap().sha256
    );
    assert_eq!(by_name("clawkeep").version_info.as_deref(), Some("0.1.0"));
    by_name("tiny.gguf");
    by_name("base.tar");
    let depends = doc
        .relationships
        .iter()
        .filter(|r| r.relationship_type == "DEPENDS_ON" && r.spdx_element_id == oc.spdx_id)
        .count();
    assert_eq!(depends, 2, "@scope/dep and bundled");

    let file = tmp.path().join("sbom.spdx.json");
    sbom::write(&doc, &file).unwrap();
    let back: sbom::spdx::Document = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(back, doc);
    spdx_validate(&file);
}
