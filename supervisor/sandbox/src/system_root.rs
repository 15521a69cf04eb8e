//! A root filesystem for a host program run in a sandbox (a model backend): the host's system
//! directories bound read-only, a small /etc of its own, and nothing else of the host.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::SandboxError;

/// Top-level host directories a dynamically linked program loads from. On a merged-/usr
/// host most are symlinks into /usr, and are made as the same symlinks.
pub const SYSTEM_DIRS: [&str; 7] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Host files under /etc the dynamic loader reads (bound read-only when the host has them).
pub const ETC_FILES: [&str; 1] = ["etc/ld.so.cache"];

/// The /etc files clawkeep writes itself: root's account (home: the sandbox's home) and
/// localhost. Nothing of the host's users, hosts or resolver reaches the sandbox.
const OWN_ETC: [(&str, &str); 3] = [
    ("passwd", "root:x:0:0:root:/home/agent:/bin/sh\n"),
    ("group", "root:x:0:\n"),
    ("hosts", "127.0.0.1 localhost\n::1 localhost\n"),
];

fn io(what: &str, path: &Path, e: std::io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_path_buf(),
        what: what.into(),
        source: e,
    }
}

/// Make (or refresh) the root at `dir` from the host whose `/` is `host_root`, and return
/// the read-only binds it needs as (host path, path inside).
pub fn make(dir: &Path, host_root: &Path) -> Result<Vec<(PathBuf, PathBuf)>, SandboxError> {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).map_err(|e| io("create", &etc, e))?;
    for d in [dir, etc.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io("chmod 755", d, e))?;
    }
    for (name, text) in OWN_ETC {
        let path = etc.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).map_err(|e| io("write", &path, e))?;
        }
    }
    let mut binds = Vec::new();
    for name in SYSTEM_DIRS {
        let host = host_root.join(name);
        let here = dir.join(name);
        let Ok(md) = host.symlink_metadata() else {
            continue;
        };
        if md.file_type().is_symlink() {
            let to = std::fs::read_link(&host).map_err(|e| io("read link", &host, e))?;
            if std::fs::read_link(&here).ok().as_ref() != Some(&to) {
                let _ = std::fs::remove_file(&here);
                std::os::unix::fs::symlink(&to, &here).map_err(|e| io("create link", &here, e))?;
            }
        } else if md.is_dir() {
            binds.push((host, Path::new("/").join(name)));
        }
    }
    for name in ETC_FILES {
        let host = host_root.join(name);
        if host.is_file() {
            binds.push((host, Path::new("/").join(name)));
        }
    }
    Ok(binds)
}

/// Whether `path` (inside) is already reached through one of `binds` (so needs no bind of
/// its own): `/usr/local/bin/llama-server` is, when /usr is bound.
pub fn covered(binds: &[(PathBuf, PathBuf)], path: &Path) -> bool {
    binds
        .iter()
        .any(|(host, inside)| host == inside && host.is_dir() && path.starts_with(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_mirrors_the_hosts_system_links_and_binds_its_system_directories() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(host.join("usr/lib")).unwrap();
        std::fs::create_dir_all(host.join("lib64")).unwrap();
        std::fs::create_dir_all(host.join("etc")).unwrap();
        std::fs::create_dir_all(host.join("root/secret")).unwrap();
        std::os::unix::fs::symlink("usr/lib", host.join("lib")).unwrap();
        std::fs::write(host.join("etc/ld.so.cache"), b"cache").unwrap();
        std::fs::write(host.join("etc/shadow"), b"root:x").unwrap();
        let root = t.path().join("root");
        let binds = make(&root, &host).unwrap();
        assert_eq!(
            binds,
            vec![
                (host.join("usr"), PathBuf::from("/usr")),
                (host.join("lib64"), PathBuf::from("/lib64")),
                (
                    host.join("etc/ld.so.cache"),
                    PathBuf::from("/etc/ld.so.cache")
                ),
            ]
        );
        assert_eq!(
            std::fs::read_link(root.join("lib")).unwrap(),
            PathBuf::from("usr/lib")
        );
        // Nothing else of the host: not its accounts, not root's files.
        assert!(!root.join("root").exists());
        assert!(!root.join("etc/shadow").exists());
        assert!(std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .starts_with("root:x:0:0:"));
        // Made again, it is the same.
        assert_eq!(make(&root, &host).unwrap(), binds);
    }

    #[test]
    fn a_program_under_a_bound_system_directory_needs_no_bind_of_its_own() {
        let binds = vec![(PathBuf::from("/usr"), PathBuf::from("/usr"))];
        assert!(covered(&binds, Path::new("/usr/local/bin/llama-server")));
        assert!(!covered(&binds, Path::new("/opt/llama/llama-server")));
        assert!(!covered(&binds, Path::new("/usrx/llama-server")));
    }
}
