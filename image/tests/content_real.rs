//! The content side of an image build on the real runtime: the cached Node 24 + OpenClaw
//! 2026.9.6 bundle (scripts/install-openclaw-bundle) pinned in an image bundle and
//! installed, written as an OCI image layout that umoci reads (twice: the same bytes),
//! with an SBOM of its real npm tree that pyspdxtools accepts, and a lock over all of it.

mod support;

use std::time::Instant;

use clawkeep_image::bundle::{self, BundleInputs, Placement, Role};
use clawkeep_image::lock::{self, Lock};
use clawkeep_image::oci;
use clawkeep_image::runtime::{self, InstallOptions};
use clawkeep_image::sbom::{self, SbomInputs};
use support::*;

#[test]
fn the_real_runtime_as_an_oci_image_with_its_sbom_and_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let rt_bundle = openclaw_bundle();
    let other = other_inputs(tmp.path());

    let t = Instant::now();
    let prepared = bundle::prepare(
        &BundleInputs {
            kernel: other.kernel.clone(),
            base_rootfs: other.base_rootfs.clone(),
            runtime: rt_bundle.clone(),
            clawkeep: other.clawkeep.clone(),
            stage1: other.stage1.clone(),
            clawkeep_version: Some(env!("CARGO_PKG_VERSION").into()),
            models: Vec::new(),
            backends: Vec::new(),
        },
        &tmp.path().join("bundle"),
        Placement::HardLink,
    )
    .unwrap();
    let verified = bundle::verify(&prepared.dir).unwrap();
    eprintln!("bundle prepared and verified in {:?}", t.elapsed());
    assert_eq!(verified.runtime.openclaw, OPENCLAW);

    // Installed from the bundle's own copy: the runtime the image carries.
    let installed = runtime::install(
        &InstallOptions {
            bundle: prepared.dir.join("runtime"),
            dest: cache_root().join("runtimes"),
            expect_id: Some(prepared.manifest.one(Role::Runtime).unwrap().sha256.clone()),
        },
        &mut |line| eprintln!("install: {line}"),
    )
    .unwrap();

    let out = tmp.path().join("out");
    let t = Instant::now();
    let written = oci::write_layout(&installed.path, &out.join("oci"), EPOCH).unwrap();
    eprintln!(
        "OCI layout of the runtime ({} entries, layer {} bytes) written in {:?}",
        written.entries,
        written.layer.size(),
        t.elapsed()
    );
    // Written again: the same bytes in every blob and in index.json.
    let again = tmp.path().join("oci-again");
    oci::write_layout(&installed.path, &again, EPOCH).unwrap();
    assert_eq!(tree_digests(&out.join("oci")), tree_digests(&again));
    std::fs::remove_dir_all(&again).unwrap();

    let t = Instant::now();
    let valid = oci::validate_layout(&out.join("oci")).unwrap();
    eprintln!("validated in {:?}", t.elapsed());
    let labels = valid.images[0]
        .config
        .config()
        .as_ref()
        .unwrap()
        .labels()
        .clone()
        .unwrap();
    assert_eq!(labels[oci::labels::OPENCLAW], OPENCLAW);
    assert_eq!(labels[oci::labels::NODE], verified.runtime.node);
    assert_eq!(labels[oci::labels::RUNTIME_ID], installed.id);

    // umoci reads the layout: the tag, the manifest and the config with our history.
    let stat = umoci()
        .arg("stat")
        .arg("--json")
        .arg("--image")
        .arg(format!("{}:{OPENCLAW}", out.join("oci").display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(
        stat.status.success(),
        "umoci stat: {}",
        String::from_utf8_lossy(&stat.stderr)
    );
    assert!(text.contains(&written.diff_id), "{text}");
    let tags = umoci()
        .arg("ls")
        .arg("--layout")
        .arg(out.join("oci"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tags.stdout).trim(), OPENCLAW);

    // The SBOM of the real npm tree.
    let doc = sbom::build(&SbomInputs {
        bundle: &prepared.manifest,
        runtime: &installed.path,
        epoch: EPOCH,
    })
    .unwrap();
    let oc = doc.packages.iter().find(|p| p.name == "openclaw").unwrap();
    assert_eq!(oc.version_info.as_deref(), Some(OPENCLAW));
    assert_eq!(
        oc.download_location,
        format!("https://registry.npmjs.org/openclaw/-/openclaw-{OPENCLAW}.tgz")
    );
    assert_eq!(oc.checksums[0].algorithm, "SHA512");
    let node = doc.packages.iter().find(|p| p.name == "node").unwrap();
    assert_eq!(
        node.version_info.as_deref(),
        Some(verified.runtime.node.as_str())
    );
    let npm = doc
        .packages
        .iter()
        .filter(|p| p.spdx_id.starts_with("SPDXRef-npm-"))
        .count();
    eprintln!("SBOM: {} packages, {npm} from npm", doc.packages.len());
    assert!(npm > 100, "{npm} npm packages");
    let file = out.join("sbom.spdx.json");
    sbom::write(&doc, &file).unwrap();
    spdx_validate(&file);

    // The lock over it all.
    Lock::new(&prepared.manifest, &out, EPOCH)
        .unwrap()
        .write(&out)
        .unwrap();
    let lock = lock::verify_outputs(&out).unwrap();
    assert_eq!(lock.outputs.len(), 6);
    assert_eq!(lock.inputs, prepared.manifest.inputs);
}
