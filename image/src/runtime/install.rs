//! `clawkeep runtime install`: on the air-gapped node, check a bundle against its
//! manifest, build the runtime from it without network (`npm ci --offline` with the
//! bundled Node and npm cache), and move it, read-only, to `<runtimes>/<bundle id>/`.

use std::ffi::OsString;
use std::fs;
use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::error::RuntimeError;
use super::manifest::{bundle_id, Manifest, MANIFEST};
use super::{npm, tree};

/// Where runtimes are installed unless `--dest` says otherwise.
pub const DEFAULT_RUNTIMES_DIR: &str = "/var/lib/clawkeep/runtimes";

/// Name of the symlink in the runtimes dir that points at the newest installed runtime.
pub const CURRENT: &str = "current";

/// What to install, and where.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The bundle directory (written by `prepare`).
    pub bundle: PathBuf,
    /// The runtimes directory ([`DEFAULT_RUNTIMES_DIR`] by default).
    pub dest: PathBuf,
    /// The bundle id `prepare` printed, when known. `bundle.json` pins every file, but
    /// only this pins `bundle.json` against someone who could rewrite the whole bundle.
    pub expect_id: Option<String>,
}

/// An installed runtime.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The bundle's id (sha256 of its `bundle.json`), the runtime's directory name.
    pub id: String,
    /// The runtime's directory: `bin/openclaw`, `bin/node`, `node/`, `app/`, `bundle.json`.
    pub path: PathBuf,
    /// True when it was installed already and nothing was done.
    pub already: bool,
    /// The bundle's manifest.
    pub manifest: Manifest,
}

/// Installs `opts.bundle` into `opts.dest/<id>` and points `opts.dest/current` at it.
/// Installing a bundle that is installed already does nothing but that pointing. A bundle
/// whose files do not match its manifest installs nothing. `progress` gets one line per
/// step.
pub fn install(
    opts: &InstallOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Installed, RuntimeError> {
    let bundle =
        std::path::absolute(&opts.bundle).map_err(RuntimeError::io("resolve", &opts.bundle))?;
    let dest = std::path::absolute(&opts.dest).map_err(RuntimeError::io("resolve", &opts.dest))?;
    let (manifest, raw) = Manifest::load(&bundle)?;
    let id = bundle_id(&raw);
    if let Some(want) = &opts.expect_id {
        if !want.eq_ignore_ascii_case(&id) {
            return Err(RuntimeError::Corrupt {
                bundle,
                problems: vec![format!(
                    "{MANIFEST}: sha256 is {id}, --expect-id says {want}"
                )],
            });
        }
    }
    let path = dest.join(&id);
    if path.is_dir() {
        point_current(&dest, &id)?;
        return Ok(Installed {
            id,
            path,
            already: true,
            manifest,
        });
    }

    progress(&format!(
        "checking the sha256 of the bundle's {} files",
        manifest.files.len()
    ));
    let problems = manifest.verify(&bundle)?;
    if !problems.is_empty() {
        return Err(RuntimeError::Corrupt { bundle, problems });
    }

    fs::create_dir_all(&dest).map_err(RuntimeError::io("create directory", &dest))?;
    let tmp = Scratch(dest.join(format!(".tmp-{id}-{}", std::process::id())));
    if tmp.0.exists() {
        tree::make_writable(&tmp.0)?;
        fs::remove_dir_all(&tmp.0).map_err(RuntimeError::io("remove", &tmp.0))?;
    }
    let runtime = tmp.0.join("runtime");
    let work = tmp.0.join("work");

    progress(&format!("unpacking node {}", manifest.node));
    extract_package(&bundle.join(&manifest.node_tarball), &runtime.join("node"))?;
    extract_package(&bundle.join(&manifest.npm_tarball), &work.join("npm"))?;
    let app = runtime.join("app");
    fs::create_dir_all(&app).map_err(RuntimeError::io("create directory", &app))?;
    for f in ["package.json", "package-lock.json"] {
        let from = bundle.join("app").join(f);
        fs::copy(&from, app.join(f)).map_err(RuntimeError::io("copy", &from))?;
    }
    // npm writes to its cache (index, tmp): give it a copy, the bundle stays as it was.
    tree::copy_tree(&bundle.join("npm-cache"), &work.join("cache"))?;
    let home = work.join("home");
    fs::create_dir_all(&home).map_err(RuntimeError::io("create directory", &home))?;

    progress(&format!(
        "npm ci --offline: openclaw {} with node {} (about 30 s)",
        manifest.openclaw, manifest.node
    ));
    let node_bin = runtime.join("node/bin");
    let env = isolated_env(&node_bin, &home, &work)?;
    let out = npm::run(
        &node_bin.join("node"),
        &[
            work.join("npm/bin/npm-cli.js").into(),
            "ci".into(),
            "--offline".into(),
            "--no-audit".into(),
            "--no-fund".into(),
            "--cache".into(),
            work.join("cache").into(),
        ],
        &app,
        &env,
        "the bundle's npm cache should hold every locked package: prepare the bundle again",
    )?;
    if let Some(line) = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("added "))
    {
        progress(&format!("npm: {line}"));
    }

    write_launchers(&runtime, &manifest)?;
    fs::write(runtime.join(MANIFEST), &raw)
        .map_err(RuntimeError::io("write", runtime.join(MANIFEST)))?;
    smoke_test(&runtime, &manifest, &env)?;

    progress("making the runtime read-only");
    tree::make_read_only(&runtime)?;
    if let Err(e) = fs::rename(&runtime, &path) {
        // Someone installed the same bundle meanwhile: theirs is as good as ours.
        if !path.is_dir() {
            return Err(RuntimeError::io("rename into", &path)(e));
        }
    }
    point_current(&dest, &id)?;
    drop(tmp);
    Ok(Installed {
        id,
        path,
        already: false,
        manifest,
    })
}

/// A scratch directory removed when dropped (on success and on every error path).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = tree::make_writable(&self.0);
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Unpacks an npm package tarball (`package/…`) into `into`, dropping the `package/`.
/// Only plain files and directories with plain relative names are accepted.
fn extract_package(tarball: &Path, into: &Path) -> Result<(), RuntimeError> {
    let bad = |message: String| RuntimeError::Unexpected {
        what: tarball.display().to_string(),
        message,
        hint: "not an npm package tarball: prepare the bundle again",
    };
    let file = fs::File::open(tarball).map_err(RuntimeError::io("open", tarball))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    archive.set_preserve_permissions(true);
    let entries = archive
        .entries()
        .map_err(RuntimeError::io("read tarball", tarball))?;
    for entry in entries {
        let mut entry = entry.map_err(RuntimeError::io("read tarball", tarball))?;
        let name = entry
            .path()
            .map_err(RuntimeError::io("read tarball", tarball))?
            .into_owned();
        let rest: PathBuf = name.components().skip(1).collect();
        if rest.as_os_str().is_empty() {
            continue;
        }
        if !rest.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad(format!(
                "entry {} is not a plain relative path",
                name.display()
            )));
        }
        let kind = entry.header().entry_type();
        let target = into.join(&rest);
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(RuntimeError::io("create directory", &target))?;
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "entry {} is not a file or directory",
                name.display()
            )));
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(RuntimeError::io("create directory", parent))?;
        }
        entry
            .unpack(&target)
            .map_err(RuntimeError::io("unpack", &target))?;
    }
    Ok(())
}

/// The environment npm and the smoke test run in: the bundled Node first in PATH, a
/// scratch HOME, and no npm configuration from the host.
fn isolated_env(
    node_bin: &Path,
    home: &Path,
    work: &Path,
) -> Result<Vec<(&'static str, OsString)>, RuntimeError> {
    let mut path = OsString::from(node_bin);
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    Ok(vec![
        ("PATH", path),
        ("HOME", home.into()),
        ("NPM_CONFIG_USERCONFIG", home.join(".npmrc").into()),
        ("NPM_CONFIG_GLOBALCONFIG", work.join("npmrc").into()),
        ("npm_config_update_notifier", "false".into()),
        ("npm_config_offline", "true".into()),
        ("OPENCLAW_STATE_DIR", work.join("openclaw-state").into()),
        ("OPENCLAW_NO_AUTO_UPDATE", "1".into()),
    ])
}

/// The script OpenClaw's package names as its `openclaw` bin (e.g. `openclaw.mjs`),
/// relative to `app/node_modules/openclaw/` of the runtime at `runtime`.
pub(crate) fn openclaw_entry(runtime: &Path) -> Result<String, RuntimeError> {
    let pkg = runtime.join("app/node_modules/openclaw/package.json");
    let text = fs::read(&pkg).map_err(RuntimeError::io("read", &pkg))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| RuntimeError::Unexpected {
            what: pkg.display().to_string(),
            message: e.to_string(),
            hint: "the installed openclaw package is damaged",
        })?;
    let entry = match json.get("bin") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(m)) => m
            .get("openclaw")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        _ => None,
    }
    .ok_or_else(|| RuntimeError::Unexpected {
        what: pkg.display().to_string(),
        message: "no \"bin\" entry named openclaw".into(),
        hint: "an OpenClaw version whose layout this code does not know",
    })?;
    Ok(entry.trim_start_matches("./").to_string())
}

/// `bin/openclaw` (OpenClaw on the bundled Node, from wherever the runtime is mounted) and
/// `bin/node`.
fn write_launchers(runtime: &Path, manifest: &Manifest) -> Result<(), RuntimeError> {
    let entry = openclaw_entry(runtime)?;
    let bin = runtime.join("bin");
    fs::create_dir_all(&bin).map_err(RuntimeError::io("create directory", &bin))?;
    let script = format!(
        "#!/bin/sh\n\
         # OpenClaw {oc} on the bundled Node {node} (written by `clawkeep runtime install`).\n\
         here=$(dirname \"$(readlink -f \"$0\")\")/..\n\
         PATH=\"$here/node/bin:$PATH\" exec \"$here/node/bin/node\" \"$here/app/node_modules/openclaw/{entry}\" \"$@\"\n",
        oc = manifest.openclaw,
        node = manifest.node,
    );
    let launcher = bin.join("openclaw");
    fs::write(&launcher, script).map_err(RuntimeError::io("write", &launcher))?;
    fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755))
        .map_err(RuntimeError::io("chmod", &launcher))?;
    let node = bin.join("node");
    std::os::unix::fs::symlink("../node/bin/node", &node)
        .map_err(RuntimeError::io("symlink", &node))?;
    Ok(())
}

/// `bin/openclaw --version` must print the bundle's OpenClaw version.
fn smoke_test(
    runtime: &Path,
    manifest: &Manifest,
    env: &[(&str, OsString)],
) -> Result<(), RuntimeError> {
    let out = npm::run(
        &runtime.join("bin/openclaw"),
        &["--version".into()],
        runtime,
        env,
        "the runtime was built but OpenClaw does not start on the bundled Node",
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains(&manifest.openclaw) {
        return Err(RuntimeError::Unexpected {
            what: format!("{} --version", runtime.join("bin/openclaw").display()),
            message: format!("printed {:?}, not {}", text.trim(), manifest.openclaw),
            hint: "the bundle's lockfile does not install the OpenClaw its manifest names",
        });
    }
    Ok(())
}

/// Points `dest/current` at `id` (atomically: a new symlink renamed over the old one).
fn point_current(dest: &Path, id: &str) -> Result<(), RuntimeError> {
    let current = dest.join(CURRENT);
    if fs::read_link(&current).is_ok_and(|t| t == Path::new(id)) {
        return Ok(());
    }
    let tmp = dest.join(format!(".{CURRENT}-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(id, &tmp).map_err(RuntimeError::io("symlink", &tmp))?;
    fs::rename(&tmp, &current).map_err(RuntimeError::io("rename into", &current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A gzipped tarball of `(name, kind, data)` entries, names written as given (the
    /// `tar` crate would refuse to write `..` itself).
    fn tarball(dir: &Path, entries: &[(&str, tar::EntryType, &[u8])]) -> PathBuf {
        let path = dir.join("p.tgz");
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            let raw = &mut h.as_gnu_mut().unwrap().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            if *kind == tar::EntryType::Symlink {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap().flush().unwrap();
        path
    }

    #[test]
    fn unpacks_a_package_without_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let t = tarball(
            dir.path(),
            &[
                ("package/bin/node", tar::EntryType::Regular, b"#!"),
                ("package/README.md", tar::EntryType::Regular, b"hi"),
            ],
        );
        let into = dir.path().join("node");
        extract_package(&t, &into).unwrap();
        assert_eq!(fs::read(into.join("README.md")).unwrap(), b"hi");
        let mode = fs::metadata(into.join("bin/node"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn refuses_entries_that_leave_the_directory_or_are_links() {
        let dir = tempfile::tempdir().unwrap();
        let into = dir.path().join("out");
        let t = tarball(
            dir.path(),
            &[("package/../../evil", tar::EntryType::Regular, b"x")],
        );
        let e = extract_package(&t, &into).unwrap_err().to_string();
        assert!(e.contains("not a plain relative path"), "{e}");
        assert!(!dir.path().join("evil").exists());

        let t = tarball(
            dir.path(),
            &[("package/passwd", tar::EntryType::Symlink, b"")],
        );
        let e = extract_package(&t, &into).unwrap_err().to_string();
        assert!(e.contains("not a file or directory"), "{e}");
        assert!(fs::symlink_metadata(into.join("passwd")).is_err());
    }
}
