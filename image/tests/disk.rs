//! The disk side of the appliance image with the real tools: initramfs, ext4 (mke2fs),
//! GPT raw disk and qcow2 (qemu-img), built twice from the same inputs in different places
//! with different source times, and looked at as a user would (cpio, debugfs, e2fsck,
//! sfdisk, qemu-img). Needs root (the test tree has files owned by 1000) and the tools that
//! `scripts/install-image-tools` installs; it finds them through the variables that script
//! prints, or in its cache.

use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use clawkeep_image::disk::{
    build_ext4, build_qcow2, build_raw_disk, resolve_modules, sha256_file, Compression, DiskError,
    Ext4Options, Ext4Size, Initramfs, RawDiskOptions, ROOT_X86_64, STAGE1_LIST, STAGE1_MODULES,
};

const EPOCH: u64 = 1_700_000_000;

fn cache() -> PathBuf {
    std::env::var_os("CLAWKEEP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/clawkeep")
        })
}

/// `$VAR`, else the first of `candidates` that exists, else the last candidate.
fn tool(var: &str, candidates: &[PathBuf]) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    candidates
        .iter()
        .find(|p| p.exists())
        .or(candidates.last())
        .cloned()
        .expect("a candidate")
}

fn mke2fs() -> PathBuf {
    tool(
        "CLAWKEEP_MKE2FS",
        &[
            cache().join("e2fsprogs/bin/mke2fs"),
            "/usr/sbin/mke2fs".into(),
        ],
    )
}

fn debugfs() -> PathBuf {
    tool(
        "CLAWKEEP_DEBUGFS",
        &[
            cache().join("e2fsprogs/bin/debugfs"),
            "/usr/sbin/debugfs".into(),
        ],
    )
}

fn e2fsck() -> PathBuf {
    debugfs().with_file_name("e2fsck")
}

fn qemu_img() -> PathBuf {
    tool("CLAWKEEP_QEMU_IMG", &["/usr/bin/qemu-img".into()])
}

fn sfdisk() -> PathBuf {
    tool("CLAWKEEP_SFDISK", &["/usr/sbin/sfdisk".into()])
}

/// The Debian kernel's modules tree that scripts/install-image-tools unpacked.
fn kernel_modules() -> PathBuf {
    if let Some(p) = std::env::var_os("CLAWKEEP_KERNEL_MODULES") {
        return PathBuf::from(p);
    }
    let mut found = Vec::new();
    for kernel in fs::read_dir(cache()).into_iter().flatten().flatten() {
        if kernel.file_name().to_string_lossy().starts_with("kernel-") {
            for tree in fs::read_dir(kernel.path().join("root/lib/modules"))
                .into_iter()
                .flatten()
                .flatten()
            {
                found.push(tree.path());
            }
        }
    }
    found.sort();
    found
        .pop()
        .expect("no kernel modules tree: run scripts/install-image-tools")
}

fn run(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_bytes(cmd)).into_owned()
}

fn run_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn debugfs_cmd(image: &Path, request: &str) -> String {
    run(Command::new(debugfs()).arg("-R").arg(request).arg(image))
}

fn set_mtime(path: &Path, when: SystemTime) {
    let f = fs::File::open(path).unwrap();
    f.set_modified(when).unwrap();
}

/// The test root tree: a few files, a symlink, a setuid file, a 0700 directory, owners 0
/// and 1000, a hardlink, a device node and a path too long for a plain tar header. `reverse` creates things in the other order (other inode numbers and
/// directory order); `when` is every source mtime.
fn make_tree(root: &Path, reverse: bool, when: SystemTime) {
    let mut steps: Vec<fn(&Path)> = vec![
        |r| {
            fs::create_dir_all(r.join("etc")).unwrap();
            fs::write(r.join("etc/hostname"), "node\n").unwrap();
        },
        |r| {
            fs::create_dir_all(r.join("usr/bin")).unwrap();
            fs::write(r.join("usr/bin/tool"), vec![0x7fu8; 10_000]).unwrap();
            fs::set_permissions(r.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
            fs::write(r.join("usr/bin/su"), "setuid\n").unwrap();
            fs::set_permissions(r.join("usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
            fs::hard_link(r.join("usr/bin/tool"), r.join("usr/bin/tool-again")).unwrap();
        },
        |r| {
            symlink("usr/bin", r.join("bin")).unwrap();
            // A name longer than a tar header holds (GNU long-name records).
            let deep = r.join("opt").join("a".repeat(60)).join("b".repeat(60));
            fs::create_dir_all(&deep).unwrap();
            fs::write(deep.join("c".repeat(60)), "deep\n").unwrap();
        },
        |r| {
            fs::create_dir_all(r.join("dev")).unwrap();
            run(Command::new("mknod")
                .args(["-m", "666"])
                .arg(r.join("dev/null"))
                .args(["c", "1", "3"]));
        },
        |r| {
            fs::create_dir_all(r.join("home/agent/private")).unwrap();
            fs::write(r.join("home/agent/private/notes"), "mine\n").unwrap();
            fs::set_permissions(
                r.join("home/agent/private"),
                fs::Permissions::from_mode(0o700),
            )
            .unwrap();
            for p in [
                "home/agent",
                "home/agent/private",
                "home/agent/private/notes",
            ] {
                chown(r.join(p), Some(1000), Some(1000)).unwrap();
            }
        },
    ];
    if reverse {
        steps.reverse();
    }
    fs::create_dir_all(root).unwrap();
    for step in &steps {
        step(root);
    }
    for p in [
        "",
        "etc",
        "etc/hostname",
        "usr",
        "usr/bin",
        "usr/bin/tool",
        "usr/bin/su",
        "home",
        "home/agent",
        "home/agent/private",
        "home/agent/private/notes",
    ] {
        set_mtime(&root.join(p), when);
    }
}

struct Built {
    initramfs: String,
    ext4: String,
    raw: String,
    qcow2: String,
    dir: tempfile::TempDir,
}

/// Builds everything from the tree at `tree` (and an init program with `init` as its
/// contents) into a fresh temporary directory.
fn build_all(tree: &Path, init: &[u8]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let init_path = out.join("init-program");
    fs::write(&init_path, init).unwrap();

    let modules = resolve_modules(&kernel_modules(), STAGE1_MODULES).unwrap();
    let mut ramfs = Initramfs::new(EPOCH as u32);
    ramfs.add_file("/init", &init_path, 0o755).unwrap();
    ramfs.add_dir("/dev", 0o755).unwrap();
    ramfs.add_char_device("/dev/console", 0o600, 5, 1).unwrap();
    ramfs.add_dir("/proc", 0o555).unwrap();
    ramfs.add_dir("/sys", 0o555).unwrap();
    ramfs.add_dir("/newroot", 0o755).unwrap();
    ramfs.add_symlink("/sbin", "bin").unwrap();
    modules.add_to(&mut ramfs).unwrap();
    let initramfs = ramfs
        .write(&out.join("initrd.cpio.zst"), Compression::Zstd(19))
        .unwrap();
    ramfs
        .write(&out.join("initrd.cpio"), Compression::None)
        .unwrap();

    let ext4 = build_ext4(
        tree,
        &out.join("root.ext4"),
        &Ext4Options::new(mke2fs(), EPOCH),
    )
    .unwrap();
    let raw = build_raw_disk(
        &ext4.path,
        &out.join("node.raw"),
        &RawDiskOptions::default(),
    )
    .unwrap();
    let qcow2 = build_qcow2(&qemu_img(), &raw.path, &out.join("node.qcow2"), false).unwrap();

    // What each builder says it wrote is what is on disk.
    assert_eq!(sha256_file(&initramfs.path).unwrap(), initramfs.sha256);
    assert_eq!(sha256_file(&ext4.path).unwrap(), ext4.sha256);
    assert_eq!(sha256_file(&raw.path).unwrap(), raw.sha256);
    assert_eq!(sha256_file(&qcow2.path).unwrap(), qcow2.sha256);
    Built {
        initramfs: initramfs.sha256,
        ext4: ext4.sha256,
        raw: raw.sha256,
        qcow2: qcow2.sha256,
        dir,
    }
}

#[test]
fn same_inputs_give_identical_outputs_and_one_byte_changes_them() {
    let trees = tempfile::tempdir().unwrap();
    let a = trees.path().join("a");
    let b = trees.path().join("elsewhere/b");
    make_tree(&a, false, SystemTime::now());
    make_tree(
        &b,
        true,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
    );
    // Reading a file moves its atime; that must not matter either.
    fs::read(b.join("etc/hostname")).unwrap();

    let first = build_all(&a, b"#!init v1\n");
    let second = build_all(&b, b"#!init v1\n");
    assert_eq!(first.initramfs, second.initramfs, "initramfs");
    assert_eq!(first.ext4, second.ext4, "ext4");
    assert_eq!(first.raw, second.raw, "raw disk");
    assert_eq!(first.qcow2, second.qcow2, "qcow2");

    // One byte of one file.
    fs::write(b.join("etc/hostname"), "nodf\n").unwrap();
    let changed = build_all(&b, b"#!init v2\n");
    assert_ne!(changed.ext4, first.ext4, "ext4 after a changed byte");
    assert_ne!(changed.raw, first.raw, "raw after a changed byte");
    assert_ne!(changed.qcow2, first.qcow2, "qcow2 after a changed byte");
    assert_ne!(
        changed.initramfs, first.initramfs,
        "initramfs after a changed init"
    );
    drop((first.dir, second.dir, changed.dir));
}

#[test]
fn ext4_holds_the_tree_as_debugfs_and_e2fsck_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree, false, SystemTime::now());
    let image = dir.path().join("root.ext4");
    let mut opts = Ext4Options::new(mke2fs(), EPOCH);
    opts.label = "clawkeep-root".to_string();
    let built = build_ext4(&tree, &image, &opts).unwrap();
    assert!(
        built.mke2fs_version.starts_with("1.47"),
        "{}",
        built.mke2fs_version
    );

    // Clean, the project quota's usage included (mke2fs -d alone leaves it at the empty
    // filesystem's, which e2fsck reports as "Usage inconsistent").
    run(Command::new(e2fsck()).arg("-fn").arg(&image));
    // Project quotas on, for agents' `disk` limits, and charged with what the tree holds.
    let stats = debugfs_cmd(&image, "stats");
    let features = stats
        .lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .unwrap_or_default();
    assert!(
        features.contains(" quota") && features.contains(" project"),
        "{features}"
    );
    assert!(stats.contains("Project quota inode:"), "{stats}");
    let quota = debugfs_cmd(&image, "list_quota project");
    let project0: Vec<u64> = quota
        .lines()
        .find(|l| l.split_whitespace().next() == Some("0"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        project0
            .get(1)
            .is_some_and(|&space| space >= built.content.blocks * 4096 / 2),
        "project 0 is charged less than the tree holds: {quota}"
    );

    let stat = |p: &str| debugfs_cmd(&image, &format!("stat {p}"));
    let notes = stat("/home/agent/private/notes");
    assert!(notes.contains("User:  1000   Group:  1000"), "{notes}");
    assert!(notes.contains("Type: regular"), "{notes}");
    assert!(notes.contains(&format!("mtime: {:#x}", EPOCH)), "{notes}");
    let private = stat("/home/agent/private");
    assert!(
        private.contains("Type: directory    Mode:  0700"),
        "{private}"
    );
    assert!(private.contains("User:  1000"), "{private}");
    let su = stat("/usr/bin/su");
    assert!(su.contains("Mode:  04755"), "{su}");
    assert!(su.contains("User:     0   Group:     0"), "{su}");
    let link = stat("/bin");
    assert!(link.contains("Type: symlink"), "{link}");
    assert!(link.contains("Fast link dest: \"usr/bin\""), "{link}");
    let tool = stat("/usr/bin/tool");
    assert!(tool.contains("Links: 2"), "{tool}");
    let inode = |text: &str| text.split_whitespace().nth(1).map(str::to_string);
    assert_eq!(
        inode(&tool),
        inode(&stat("/usr/bin/tool-again")),
        "hardlinks share an inode"
    );
    let null = stat("/dev/null");
    assert!(null.contains("Type: character special"), "{null}");
    assert!(null.contains("Device major/minor number: 01:03"), "{null}");
    let deep = format!(
        "/opt/{}/{}/{}",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60)
    );
    assert_eq!(debugfs_cmd(&image, &format!("cat {deep}")), "deep\n");
    let hostname = debugfs_cmd(&image, "cat /etc/hostname");
    assert_eq!(hostname, "node\n");
    let tool = debugfs_cmd(&image, "cat /usr/bin/tool");
    assert_eq!(tool.len(), 10_000);

    let dumpe2fs = run(Command::new(debugfs().with_file_name("dumpe2fs"))
        .arg("-h")
        .arg(&image));
    assert!(
        dumpe2fs.contains(&format!("Filesystem UUID:          {}", built.uuid)),
        "{dumpe2fs}"
    );
    assert!(
        dumpe2fs.contains("Filesystem volume name:   clawkeep-root"),
        "{dumpe2fs}"
    );
    assert!(dumpe2fs.contains(&format!("Directory Hash Seed:      {}", built.hash_seed)));
    assert_eq!(built.size % (1 << 20), 0);
}

#[test]
fn gpt_as_sfdisk_sees_it_and_qcow2_as_qemu_img_does() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree, false, SystemTime::now());
    let ext4 = build_ext4(
        &tree,
        &dir.path().join("root.ext4"),
        &Ext4Options::new(mke2fs(), EPOCH),
    )
    .unwrap();
    let raw = build_raw_disk(
        &ext4.path,
        &dir.path().join("node.raw"),
        &RawDiskOptions::default(),
    )
    .unwrap();

    let json = run(Command::new(sfdisk()).arg("--json").arg(&raw.path));
    let table: serde_json::Value = serde_json::from_str(&json).unwrap();
    let table = &table["partitiontable"];
    assert_eq!(table["label"], "gpt", "{json}");
    assert_eq!(
        table["id"].as_str().unwrap().to_lowercase(),
        raw.disk_guid.to_string(),
        "{json}"
    );
    let parts = table["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{json}");
    let p = &parts[0];
    assert_eq!(p["start"], 2048, "{json}");
    assert_eq!(p["size"].as_u64().unwrap() * 512, ext4.size, "{json}");
    assert_eq!(
        p["type"].as_str().unwrap().to_lowercase(),
        ROOT_X86_64.to_string(),
        "{json}"
    );
    assert_eq!(
        p["uuid"].as_str().unwrap().to_lowercase(),
        raw.partition_guid.to_string()
    );
    assert_eq!(p["name"], "root");
    // sfdisk --verify finds nothing wrong (it prints "No errors detected.")
    let verify = run(Command::new(sfdisk()).arg("--verify").arg(&raw.path));
    assert!(verify.contains("No errors detected"), "{verify}");

    // The partition is the filesystem, byte for byte: e2fsck reads it in place.
    let offset = raw.partition_offset;
    run(Command::new(e2fsck())
        .arg("-fn")
        .arg(format!("{}?offset={offset}", raw.path.display())));

    let qcow2 = build_qcow2(
        &qemu_img(),
        &raw.path,
        &dir.path().join("node.qcow2"),
        false,
    )
    .unwrap();
    run(Command::new(qemu_img()).arg("check").arg(&qcow2.path));
    run(Command::new(qemu_img())
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&raw.path)
        .arg(&qcow2.path));
    let info = run(Command::new(qemu_img())
        .args(["info", "--output=json"])
        .arg(&qcow2.path));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"].as_u64().unwrap(), raw.size);

    let compressed =
        build_qcow2(&qemu_img(), &raw.path, &dir.path().join("c1.qcow2"), true).unwrap();
    let again = build_qcow2(&qemu_img(), &raw.path, &dir.path().join("c2.qcow2"), true).unwrap();
    assert_eq!(compressed.sha256, again.sha256);
    run(Command::new(qemu_img())
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&raw.path)
        .arg(&compressed.path));
}

#[test]
fn initramfs_as_gnu_cpio_lists_it_with_the_stage1_modules_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let tree = kernel_modules();
    let modules = resolve_modules(&tree, STAGE1_MODULES).unwrap();
    // The order `modprobe --show-depends` gives for Debian 12's kernel.
    let names: Vec<&str> = modules.load.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, STAGE1_MODULES);

    let init = dir.path().join("init");
    fs::write(&init, "init").unwrap();
    let mut ramfs = Initramfs::new(EPOCH as u32);
    ramfs.add_file("init", &init, 0o755).unwrap();
    ramfs.add_char_device("dev/console", 0o600, 5, 1).unwrap();
    modules.add_to(&mut ramfs).unwrap();
    let plain = ramfs
        .write(&dir.path().join("initrd.cpio"), Compression::None)
        .unwrap();
    let listing = run(Command::new("cpio")
        .args(["-itv", "--quiet", "-F"])
        .arg(&plain.path));
    let lines: Vec<&str> = listing.lines().collect();
    let console = lines.iter().find(|l| l.ends_with(" dev/console")).unwrap();
    assert!(console.starts_with("crw-------"), "{console}");
    assert!(console.contains(" root     root "), "{console}");
    assert!(console.contains("5,   1"), "{console}");
    let init_line = lines.iter().find(|l| l.ends_with(" init")).unwrap();
    assert!(init_line.starts_with("-rwxr-xr-x"), "{init_line}");
    assert!(init_line.contains("Nov 14  2023"), "{init_line}");
    let ext4 = format!("lib/modules/{}/kernel/fs/ext4/ext4.ko", modules.kver);
    assert!(lines.iter().any(|l| l.ends_with(&ext4)), "{listing}");
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");

    // The list stage 1 reads, as GNU cpio extracts it.
    let extract = dir.path().join("x");
    fs::create_dir(&extract).unwrap();
    run(Command::new("cpio")
        .args(["-id", "--quiet", "-F"])
        .arg(&plain.path)
        .arg(STAGE1_LIST)
        .current_dir(&extract));
    let list = fs::read_to_string(extract.join(STAGE1_LIST)).unwrap();
    let listed: Vec<String> = list
        .lines()
        .map(|l| {
            let base = l.rsplit('/').next().unwrap();
            base.trim_end_matches(".ko").replace('-', "_")
        })
        .collect();
    assert_eq!(listed, STAGE1_MODULES);
    for line in list.lines() {
        assert!(
            names.contains(&line.trim_start_matches('/')),
            "{line} is in the archive"
        );
    }

    // zstd: smaller, and the same archive inside.
    let zst = ramfs
        .write(&dir.path().join("initrd.cpio.zst"), Compression::Zstd(19))
        .unwrap();
    assert!(zst.size * 2 < plain.size, "{} vs {}", zst.size, plain.size);
    let unpacked = run_bytes(Command::new("zstd").arg("-dc").arg(&zst.path));
    assert!(unpacked == fs::read(&plain.path).unwrap());
}

#[test]
fn missing_modules_name_themselves_and_the_tree() {
    let tree = kernel_modules();
    let err = resolve_modules(&tree, &["virtio_blk", "no_such_driver"]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DiskError::ModuleMissing { .. }), "{text}");
    assert!(text.contains("no_such_driver"), "{text}");
    assert!(text.contains(&tree.display().to_string()), "{text}");
}

#[test]
fn bad_inputs_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("root.ext4");

    // The source directory is missing.
    let missing = dir.path().join("no-such-tree");
    let err = build_ext4(&missing, &out, &Ext4Options::new(mke2fs(), EPOCH)).unwrap_err();
    assert!(matches!(err, DiskError::NotADirectory { .. }), "{err}");
    assert!(err.to_string().contains("no-such-tree"), "{err}");

    // A size too small for the content: refused before mke2fs runs, naming both sizes.
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("big"), vec![1u8; 12 << 20]).unwrap();
    let mut opts = Ext4Options::new(mke2fs(), EPOCH);
    opts.size = Ext4Size::Bytes(10 << 20);
    let err = build_ext4(&tree, &out, &opts).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DiskError::TooSmall { .. }), "{text}");
    assert!(text.contains("10485760 bytes (10 MiB)"), "{text}");
    // 12 MiB of file and a block of root directory.
    assert!(text.contains("12587008 bytes in 2 entries"), "{text}");
    assert!(!out.exists());
    // The size it names is enough.
    let DiskError::TooSmall { needed, .. } = err else {
        unreachable!()
    };
    opts.size = Ext4Size::Bytes(needed);
    build_ext4(&tree, &out, &opts).unwrap();

    // mke2fs is missing.
    let opts = Ext4Options::new(dir.path().join("bin/mke2fs"), EPOCH);
    let err = build_ext4(&tree, &out, &opts).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DiskError::ToolMissing { .. }), "{text}");
    assert!(text.contains("bin/mke2fs"), "{text}");
    assert!(text.contains("scripts/install-image-tools"), "{text}");

    // An mke2fs too old to be reproducible (Debian 12's own, where it is one).
    let system = Path::new("/usr/sbin/mke2fs");
    let old = Command::new(system)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).contains("mke2fs 1.47.0"))
        .unwrap_or(false);
    if old {
        let err = build_ext4(&tree, &out, &Ext4Options::new(system, EPOCH)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DiskError::Mke2fsTooOld { .. }), "{text}");
        assert!(
            text.contains("1.47.0") && text.contains(">= 1.47.1"),
            "{text}"
        );
    }

    // qemu-img is missing.
    let err = build_qcow2(
        &dir.path().join("qemu-img"),
        &out,
        &dir.path().join("x"),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("qemu-utils"), "{err}");
}
