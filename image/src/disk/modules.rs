//! The kernel modules stage 1 loads before it can mount the root filesystem, found in a
//! kernel's `lib/modules/<kver>` tree through its `modules.dep`.
//!
//! Debian's kernels build virtio, virtio-blk and ext4 as modules (see
//! ../shared/research/image.md, section 2), so an ext4 root on a virtio disk needs
//! [`STAGE1_MODULES`] loaded, each after the modules it depends on.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::error::DiskError;
use super::initramfs::Initramfs;

/// What stage 1 loads for an ext4 root on virtio-blk, in an order that works:
/// `modprobe --show-depends` of Debian 12's 6.1 kernel. `crc32c_generic` is named because
/// ext4 and jbd2 only have a soft dependency on some crc32c (and `crc32c-intel` fails
/// without SSE4.2, as under QEMU's TCG). `quota_tree` and `quota_v2` are the format of
/// ext4's quota files: the root filesystem has project quotas, and ext4 refuses to mount it
/// read-write without them (the kernel would ask a modprobe that stage 1 does not have).
pub const STAGE1_MODULES: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "crc32c_generic",
    "crc16",
    "mbcache",
    "jbd2",
    "ext4",
    "quota_tree",
    "quota_v2",
];

/// What stage 1 also loads for clawkeep as PID 1: the ACPI power button and the input
/// event interface it reports through (`/dev/input/event*`), so a power-button press
/// (QEMU's `system_powerdown`, a node's front button) shuts the fleet down in order.
pub const NODE_MODULES: &[&str] = &["button", "evdev"];

/// Where the initramfs lists the modules to load, one absolute path a line, in load order.
pub const STAGE1_LIST: &str = "stage1.modules";

/// One module file to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelModule {
    /// Its name (`virtio_blk`: dashes read as underscores, as the kernel does).
    pub name: String,
    /// Its path inside the modules tree (`kernel/drivers/block/virtio_blk.ko`).
    pub rel: String,
    /// The file on the host.
    pub path: PathBuf,
}

/// The modules to load, dependencies first, from one kernel's modules tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelModules {
    /// The kernel release (the tree's directory name, like `6.1.0-56-amd64`).
    pub kver: String,
    /// The `lib/modules/<kver>` directory on the host.
    pub tree: PathBuf,
    /// The files to load, in order: every module after the ones it depends on.
    pub load: Vec<KernelModule>,
    /// Modules asked for that are built into this kernel (nothing to load).
    pub builtin: Vec<String>,
}

/// Resolves `names` (and everything they depend on) in the modules tree `tree`
/// (`…/lib/modules/<kver>`, with the `modules.dep` that `depmod` writes). The load order
/// keeps the order of `names` where dependencies allow. A name that is neither in
/// `modules.dep` nor in `modules.builtin` is [`DiskError::ModuleMissing`].
pub fn resolve_modules(tree: &Path, names: &[&str]) -> Result<KernelModules, DiskError> {
    let kver = tree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| DiskError::NotADirectory {
            path: tree.to_path_buf(),
            hint: "give the kernel's lib/modules/<kver> directory",
        })?;
    if !tree.is_dir() {
        return Err(DiskError::NotADirectory {
            path: tree.to_path_buf(),
            hint: "give the kernel's lib/modules/<kver> directory",
        });
    }
    let dep_path = tree.join("modules.dep");
    let text = fs::read_to_string(&dep_path).map_err(DiskError::io("read", &dep_path))?;
    let deps = parse_modules_dep(&text, &dep_path, &kver)?;
    let builtin_path = tree.join("modules.builtin");
    let builtin: BTreeSet<String> = match fs::read_to_string(&builtin_path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| module_name(l.trim()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => return Err(DiskError::io("read", &builtin_path)(e)),
    };

    let mut order: Vec<String> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut builtin_asked = Vec::new();
    for name in names {
        let name = name.replace('-', "_");
        if deps.contains_key(&name) {
            visit(&name, &deps, &mut seen, &mut order, &dep_path)?;
        } else if builtin.contains(&name) {
            builtin_asked.push(name);
        } else {
            return Err(DiskError::ModuleMissing {
                module: name,
                tree: tree.to_path_buf(),
            });
        }
    }

    let mut load = Vec::with_capacity(order.len());
    for name in order {
        let rel = deps[&name].rel.clone();
        let path = tree.join(&rel);
        let meta = fs::metadata(&path).map_err(DiskError::io("stat module", &path))?;
        if !meta.is_file() {
            return Err(DiskError::ModuleMissing {
                module: format!("{name} ({} is not a file)", path.display()),
                tree: tree.to_path_buf(),
            });
        }
        load.push(KernelModule { name, rel, path });
    }
    Ok(KernelModules {
        kver,
        tree: tree.to_path_buf(),
        load,
        builtin: builtin_asked,
    })
}

impl KernelModules {
    /// Adds the module files to `initramfs` at `lib/modules/<kver>/<rel>` (mode 0644) and
    /// [`STAGE1_LIST`], their absolute paths in load order, for stage 1 to read.
    pub fn add_to(&self, initramfs: &mut Initramfs) -> Result<(), DiskError> {
        let mut list = String::new();
        for m in &self.load {
            let target = format!("lib/modules/{}/{}", self.kver, m.rel);
            initramfs.add_file(&target, &m.path, 0o644)?;
            list.push('/');
            list.push_str(&target);
            list.push('\n');
        }
        initramfs.add_data(STAGE1_LIST, list, 0o644)?;
        Ok(())
    }
}

/// One line of `modules.dep`: the module's path in the tree, the names it depends on, and
/// the line's number.
struct DepLine {
    rel: String,
    deps: Vec<String>,
    line: usize,
}

/// Depth-first: every dependency of `name` (in `modules.dep`'s order) before `name`.
fn visit(
    name: &str,
    deps: &BTreeMap<String, DepLine>,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<String>,
    dep_path: &Path,
) -> Result<(), DiskError> {
    if seen.contains(name) {
        return Ok(());
    }
    let mut stack: Vec<(String, usize)> = vec![(name.to_string(), 0)];
    let mut on_stack: BTreeSet<String> = BTreeSet::from([name.to_string()]);
    while let Some((current, next)) = stack.pop() {
        let entry = &deps[&current];
        if let Some(dep) = entry.deps.get(next) {
            stack.push((current.clone(), next + 1));
            if seen.contains(dep) {
                continue;
            }
            if !deps.contains_key(dep) {
                return Err(DiskError::ModulesDep {
                    path: dep_path.to_path_buf(),
                    line: entry.line,
                    message: format!("{current} depends on {dep}, which has no line of its own"),
                });
            }
            if !on_stack.insert(dep.clone()) {
                return Err(DiskError::ModulesDep {
                    path: dep_path.to_path_buf(),
                    line: entry.line,
                    message: format!("{dep} depends on itself through {current}"),
                });
            }
            stack.push((dep.clone(), 0));
        } else {
            on_stack.remove(&current);
            seen.insert(current.clone());
            order.push(current);
        }
    }
    Ok(())
}

/// `modules.dep` by module name.
fn parse_modules_dep(
    text: &str,
    dep_path: &Path,
    kver: &str,
) -> Result<BTreeMap<String, DepLine>, DiskError> {
    let mut deps = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| DiskError::ModulesDep {
            path: dep_path.to_path_buf(),
            line: line_no,
            message,
        };
        let (module, rest) = line
            .split_once(':')
            .ok_or_else(|| err(format!("no ':' in {line:?}")))?;
        let rel = in_tree(module.trim(), kver)
            .ok_or_else(|| err(format!("{module} is outside lib/modules/{kver}")))?;
        let line = DepLine {
            deps: rest.split_whitespace().map(module_name).collect(),
            rel,
            line: line_no,
        };
        deps.insert(module_name(&line.rel), line);
    }
    Ok(deps)
}

/// A `modules.dep` path relative to the tree (absolute ones only under `/lib/modules/<kver>/`).
fn in_tree(path: &str, kver: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(path.to_string());
    }
    ["/lib/modules/", "/usr/lib/modules/"]
        .iter()
        .find_map(|base| {
            path.strip_prefix(base)?
                .strip_prefix(kver)?
                .strip_prefix('/')
        })
        .map(str::to_string)
}

/// A module's name from its file's path: the base name without `.ko` (and a compression
/// suffix), dashes as underscores.
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split_once(".ko").map_or(base, |(stem, _)| stem);
    stem.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree in depmod's format with the modules the research listed for Debian 12's kernel.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("lib/modules/6.1.0-56-amd64");
        let dep = "\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/block/virtio_blk.ko:
kernel/crypto/crc32c_generic.ko:
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/quota/quota_tree.ko:
kernel/fs/quota/quota_v2.ko: kernel/fs/quota/quota_tree.ko
kernel/arch/x86/crypto/crc32c-intel.ko:
";
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("modules.dep"), dep).unwrap();
        fs::write(
            tree.join("modules.builtin"),
            "kernel/drivers/block/loop.ko\n",
        )
        .unwrap();
        for line in dep.lines() {
            let rel = line.split(':').next().unwrap();
            let path = tree.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, rel).unwrap();
        }
        (dir, tree)
    }

    #[test]
    fn stage1_modules_resolve_in_dependency_order() {
        let (_dir, tree) = tree();
        let m = resolve_modules(&tree, STAGE1_MODULES).unwrap();
        let names: Vec<&str> = m.load.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, STAGE1_MODULES);
        assert_eq!(m.kver, "6.1.0-56-amd64");
        assert_eq!(m.load[5].rel, "kernel/drivers/block/virtio_blk.ko");
        assert_eq!(
            m.load[5].path,
            tree.join("kernel/drivers/block/virtio_blk.ko")
        );
    }

    #[test]
    fn dependencies_come_first_whatever_order_is_asked() {
        let (_dir, tree) = tree();
        let m = resolve_modules(&tree, &["ext4", "virtio_pci", "crc32c-intel", "loop"]).unwrap();
        let names: Vec<&str> = m.load.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "crc16",
                "mbcache",
                "jbd2",
                "ext4",
                "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev",
                "virtio_pci",
                "crc32c_intel"
            ]
        );
        assert_eq!(m.builtin, ["loop"]);
    }

    #[test]
    fn a_missing_module_names_itself_and_the_tree() {
        let (_dir, tree) = tree();
        let err = resolve_modules(&tree, &["virtio_blk", "nvme"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("nvme"), "{text}");
        assert!(text.contains(&tree.display().to_string()), "{text}");
    }

    #[test]
    fn a_broken_modules_dep_names_the_line() {
        let (_dir, tree) = tree();
        fs::write(
            tree.join("modules.dep"),
            "kernel/a.ko:\nthis is not a dep line\n",
        )
        .unwrap();
        let text = resolve_modules(&tree, &["a"]).unwrap_err().to_string();
        assert!(text.contains("modules.dep:2:"), "{text}");
        fs::write(
            tree.join("modules.dep"),
            "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n",
        )
        .unwrap();
        fs::write(tree.join("kernel/a.ko"), "").unwrap();
        let text = resolve_modules(&tree, &["a"]).unwrap_err().to_string();
        assert!(
            text.contains("modules.dep:2: a depends on itself"),
            "{text}"
        );
        fs::write(tree.join("modules.dep"), "kernel/a.ko: kernel/c.ko\n").unwrap();
        let text = resolve_modules(&tree, &["a"]).unwrap_err().to_string();
        assert!(
            text.contains("modules.dep:1: a depends on c, which has no line"),
            "{text}"
        );
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            module_name("kernel/arch/x86/crypto/crc32c-intel.ko"),
            "crc32c_intel"
        );
        assert_eq!(module_name("kernel/fs/ext4/ext4.ko.xz"), "ext4");
        assert_eq!(
            in_tree("/lib/modules/6.1/kernel/x.ko", "6.1").as_deref(),
            Some("kernel/x.ko")
        );
        assert_eq!(in_tree("/opt/x.ko", "6.1"), None);
    }

    #[test]
    fn modules_go_into_the_initramfs_with_their_list() {
        let (_dir, tree) = tree();
        let m = resolve_modules(&tree, &["ext4"]).unwrap();
        let mut i = Initramfs::new(0);
        m.add_to(&mut i).unwrap();
        let entries = i.entries();
        let list = entries.iter().find(|e| e.0 == STAGE1_LIST).unwrap();
        assert_eq!(
            list.2,
            crate::disk::EntryKind::Data(
                "/lib/modules/6.1.0-56-amd64/kernel/lib/crc16.ko\n\
                 /lib/modules/6.1.0-56-amd64/kernel/fs/mbcache.ko\n\
                 /lib/modules/6.1.0-56-amd64/kernel/fs/jbd2/jbd2.ko\n\
                 /lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko\n"
                    .into()
            )
        );
        assert!(entries
            .iter()
            .any(|e| e.0 == "lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko"));
    }
}
