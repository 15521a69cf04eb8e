//! `clawkeep runtime prepare`: on a connected machine, write an offline bundle of Node and
//! OpenClaw (Node's tarball, npm's tarball, a lockfile with resolved URLs, the npm cache
//! holding every package it names, and `bundle.json` with every file's sha256).

use std::fs;
use std::path::{Path, PathBuf};

use semver::Version;

use super::engines::NodeRange;
use super::error::{EnginesMismatch, RuntimeError};
use super::manifest::{bundle_id, Manifest, FORMAT};
use super::{npm, tree};

/// What to put in a bundle.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Exact OpenClaw version, e.g. `2026.9.6`.
    pub openclaw: String,
    /// Node major (`24`), or any npm spec of the `node` package (`24.21.0`, `^24.16`).
    pub node: String,
    /// Directory to write the bundle into (created; must not hold anything yet).
    pub out: PathBuf,
}

/// A prepared bundle.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its id (the directory name `install` will give the runtime).
    pub id: String,
    /// Total size of its files, in bytes.
    pub bytes: u64,
}

/// Resolves the versions, refuses a Node that does not satisfy OpenClaw's `engines.node`
/// (before downloading anything big), then writes the bundle into `opts.out`.
/// `progress` gets one line per step.
pub fn prepare(
    opts: &PrepareOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Prepared, RuntimeError> {
    let out = std::path::absolute(&opts.out).map_err(RuntimeError::io("resolve", &opts.out))?;
    ensure_empty(&out)?;
    let here = out.parent().unwrap_or(Path::new("/")).to_path_buf();

    progress(&format!(
        "resolving node@{} and openclaw@{}'s engines",
        opts.node, opts.openclaw
    ));
    let node = resolve_node(&opts.node, &here)?;
    let (openclaw, range) = openclaw_engines(&opts.openclaw, &here)?;
    if !range.matches(&node) {
        return Err(mismatch(&openclaw, &range, &opts.node, &node, &here));
    }
    let platform = platform()?;
    progress(&format!(
        "node {node} satisfies openclaw {openclaw}'s engines.node {}",
        range.as_str()
    ));

    for d in ["node", "npm", "app", "npm-cache"] {
        let p = out.join(d);
        fs::create_dir_all(&p).map_err(RuntimeError::io("create directory", &p))?;
    }
    progress(&format!("downloading node-{platform}@{node} (about 50 MB)"));
    let node_tarball = pack(&format!("node-{platform}@{node}"), "node", &out)?;
    let npm_version = String::from_utf8_lossy(&npm::host_npm(&["--version"], &here)?.stdout)
        .trim()
        .to_string();
    progress(&format!("downloading npm@{npm_version}"));
    let npm_tarball = pack(&format!("npm@{npm_version}"), "npm", &out)?;

    let app = out.join("app");
    let cache = out.join("npm-cache");
    let cache_arg = cache.to_string_lossy().into_owned();
    let package_json = serde_json::json!({
        "name": "clawkeep-runtime",
        "private": true,
        "dependencies": { "openclaw": openclaw.to_string() },
    });
    let p = app.join("package.json");
    fs::write(&p, format!("{package_json:#}\n")).map_err(RuntimeError::io("write", &p))?;
    progress(&format!(
        "locking openclaw@{openclaw} with resolved URLs (about 30 s)"
    ));
    npm::host_npm(
        &[
            "install",
            "--package-lock-only",
            "--omit-lockfile-registry-resolved=false",
            "--no-audit",
            "--no-fund",
            "--cache",
            &cache_arg,
        ],
        &app,
    )?;
    let locked = check_lock(&app.join("package-lock.json"))?;

    progress(&format!(
        "downloading the {locked} locked packages into the bundle's npm cache (about 30 s)"
    ));
    let scratch = out.join(".fill");
    fs::create_dir_all(&scratch).map_err(RuntimeError::io("create directory", &scratch))?;
    for f in ["package.json", "package-lock.json"] {
        fs::copy(app.join(f), scratch.join(f)).map_err(RuntimeError::io("copy", app.join(f)))?;
    }
    npm::host_npm(
        &[
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--cache",
            &cache_arg,
        ],
        &scratch,
    )?;
    fs::remove_dir_all(&scratch).map_err(RuntimeError::io("remove", &scratch))?;
    keep_only_cacache(&cache)?;

    progress("hashing every file of the bundle");
    let files = tree::hash_tree(&out)?;
    let mut bytes = 0;
    for rel in files.keys() {
        let p = out.join(rel);
        bytes += fs::metadata(&p)
            .map_err(RuntimeError::io("stat", &p))?
            .len();
    }
    let manifest = Manifest {
        format: FORMAT,
        openclaw: openclaw.to_string(),
        engines_node: range.as_str().to_string(),
        node: node.to_string(),
        platform,
        node_tarball,
        npm: npm_version,
        npm_tarball,
        files,
    };
    let raw = manifest.write(&out)?;
    Ok(Prepared {
        manifest,
        id: bundle_id(&raw),
        bytes,
    })
}

fn ensure_empty(out: &Path) -> Result<(), RuntimeError> {
    match crate::out_dir::is_new_or_empty(out) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RuntimeError::OutNotEmpty {
            path: out.to_path_buf(),
        }),
        Err(e) => Err(RuntimeError::io("read directory", out)(e)),
    }
}

/// The newest version of the `node` package matching `spec` (`24` → `24.21.0`).
fn resolve_node(spec: &str, cwd: &Path) -> Result<Version, RuntimeError> {
    let found = npm::view(&format!("node@{spec}"), &["version"], cwd)?;
    npm::versions(&found)
        .into_iter()
        .max()
        .ok_or_else(|| RuntimeError::Unexpected {
            what: format!("npm view node@{spec} version"),
            message: format!("no version in {found}"),
            hint: "give a Node major such as 24, or an exact version",
        })
}

/// OpenClaw's exact version and its `engines.node` (`*` when it declares none).
fn openclaw_engines(spec: &str, cwd: &Path) -> Result<(Version, NodeRange), RuntimeError> {
    let what = format!("npm view openclaw@{spec} version engines");
    let found = npm::view(&format!("openclaw@{spec}"), &["version", "engines"], cwd)?;
    let Some(version) = found
        .get("version")
        .and_then(|v| v.as_str())
        .and_then(|v| Version::parse(v).ok())
    else {
        return Err(RuntimeError::Unexpected {
            what,
            message: "not one exact version".into(),
            hint: "give an exact OpenClaw version such as 2026.9.6 (`npm view openclaw versions` lists them)",
        });
    };
    let text = found
        .pointer("/engines/node")
        .and_then(|v| v.as_str())
        .unwrap_or("*");
    let range = NodeRange::parse(text).map_err(|e| RuntimeError::Unexpected {
        what,
        message: format!(
            "engines.node {text:?} (read as {:?}): {}",
            e.part, e.message
        ),
        hint: "an npm range this code cannot read; please report it",
    })?;
    Ok((version, range))
}

fn mismatch(
    openclaw: &Version,
    range: &NodeRange,
    asked: &str,
    node: &Version,
    cwd: &Path,
) -> RuntimeError {
    let all = npm::view("node", &["versions"], cwd)
        .map(|v| npm::versions(&v))
        .unwrap_or_default();
    let fits = range.fitting_majors(&all);
    let suggest = fits
        .iter()
        .find(|(m, _)| *m > node.major)
        .or(fits.first())
        .map(|(m, _)| m.to_string())
        .unwrap_or_else(|| "a version that satisfies the range".into());
    let fits = if fits.is_empty() {
        "none found in the registry".to_string()
    } else {
        fits.iter()
            .map(|(m, v)| format!("{m} ({v} or later)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    RuntimeError::EnginesMismatch(Box::new(EnginesMismatch {
        openclaw: openclaw.to_string(),
        range: range.as_str().to_string(),
        asked: asked.to_string(),
        node: node.to_string(),
        fits,
        suggest,
    }))
}

/// Node's platform suffix on the npm registry for this machine (`linux-x64`).
fn platform() -> Result<String, RuntimeError> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => {
            return Err(RuntimeError::Unexpected {
                what: "this machine's architecture".into(),
                message: format!("{other} has no Node package on the npm registry here"),
                hint: "prepare on an x86_64 or aarch64 machine",
            })
        }
    };
    Ok(format!("linux-{arch}"))
}

/// `npm pack SPEC` into `out/dir`; returns the tarball's bundle-relative path.
fn pack(spec: &str, dir: &str, out: &Path) -> Result<String, RuntimeError> {
    let dest = out.join(dir);
    let dest_arg = dest.to_string_lossy().into_owned();
    let res = npm::host_npm(
        &["pack", spec, "--json", "--pack-destination", &dest_arg],
        out,
    )?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&res.stdout).map_err(|e| RuntimeError::Unexpected {
            what: format!("npm pack {spec}"),
            message: format!("not JSON: {e}"),
            hint: "a registry or npm version this code does not know",
        })?;
    let name = parsed
        .pointer("/0/filename")
        .and_then(|v| v.as_str())
        .ok_or_else(|| RuntimeError::Unexpected {
            what: format!("npm pack {spec}"),
            message: format!("no filename in {parsed}"),
            hint: "a registry or npm version this code does not know",
        })?;
    Ok(format!("{dir}/{name}"))
}

/// Every package in the lockfile must carry its `resolved` URL (else `npm ci --offline`
/// asks the registry). Returns how many packages it locks.
fn check_lock(path: &Path) -> Result<usize, RuntimeError> {
    let text = fs::read(path).map_err(RuntimeError::io("read", path))?;
    let lock: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| RuntimeError::Unexpected {
            what: path.display().to_string(),
            message: e.to_string(),
            hint: "npm wrote a lockfile that is not JSON",
        })?;
    let packages = lock
        .get("packages")
        .and_then(|p| p.as_object())
        .ok_or_else(|| RuntimeError::Unexpected {
            what: path.display().to_string(),
            message: "no \"packages\" (lockfileVersion 2 or 3 expected)".into(),
            hint: "use npm 7 or later",
        })?;
    let mut count = 0;
    for (name, entry) in packages {
        // The root, links to local dirs, and packages shipped inside their parent's tarball
        // (bundleDependencies) have no URL of their own.
        if name.is_empty() || entry.get("link").is_some() || entry.get("inBundle").is_some() {
            continue;
        }
        count += 1;
        if entry.get("resolved").and_then(|r| r.as_str()).is_none() {
            return Err(RuntimeError::Unexpected {
                what: path.display().to_string(),
                message: format!("{name} has no resolved URL"),
                hint: "npm did not honour --omit-lockfile-registry-resolved=false",
            });
        }
    }
    Ok(count)
}

/// Leaves only `_cacache` (the content and its index) in the npm cache: logs and
/// timestamps would make the bundle differ for nothing.
fn keep_only_cacache(cache: &Path) -> Result<(), RuntimeError> {
    for entry in fs::read_dir(cache).map_err(RuntimeError::io("read directory", cache))? {
        let entry = entry.map_err(RuntimeError::io("read directory", cache))?;
        let path = entry.path();
        if entry.file_name() == "_cacache" {
            let tmp = path.join("tmp");
            if tmp.exists() {
                fs::remove_dir_all(&tmp).map_err(RuntimeError::io("remove", &tmp))?;
            }
            continue;
        }
        let res = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        res.map_err(RuntimeError::io("remove", &path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_needs_a_resolved_url_for_every_fetched_package() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("package-lock.json");
        let good = serde_json::json!({ "lockfileVersion": 3, "packages": {
            "": { "dependencies": { "openclaw": "2026.9.6" } },
            "node_modules/openclaw": { "version": "2026.9.6", "resolved": "https://registry.npmjs.org/openclaw/-/openclaw-2026.9.6.tgz" },
            "node_modules/openclaw/node_modules/chrome-devtools-mcp": { "version": "1.8.0", "inBundle": true },
            "node_modules/local": { "resolved": "../local", "link": true },
        }});
        fs::write(&lock, good.to_string()).unwrap();
        assert_eq!(check_lock(&lock).unwrap(), 1);
        let bad = serde_json::json!({ "lockfileVersion": 3, "packages": {
            "node_modules/openclaw": { "version": "2026.9.6" },
        }});
        fs::write(&lock, bad.to_string()).unwrap();
        let e = check_lock(&lock).unwrap_err().to_string();
        assert!(
            e.contains("node_modules/openclaw has no resolved URL"),
            "{e}"
        );
    }

    #[test]
    fn out_must_be_new_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        ensure_empty(&dir.path().join("new")).unwrap();
        ensure_empty(dir.path()).unwrap();
        fs::write(dir.path().join("x"), "").unwrap();
        let e = ensure_empty(dir.path()).unwrap_err().to_string();
        assert!(e.contains("already exists and is not empty"), "{e}");
    }
}
