//! `clawkeep image build|verify|inspect` end to end, with the real tools and inputs: a
//! busybox base rootfs tarball made here (GNU tar, numeric owners, a device node, usrmerge
//! symlinks), the cached Debian kernel package (scripts/install-image-tools), the cached
//! OpenClaw 2026.9.6 runtime bundle (scripts/install-openclaw-bundle) and this clawkeep.
//! Two builds from the same inputs (the second without network) give the same bytes in
//! every output; the root filesystem holds what it should; verify names a
//! flipped byte; a non-empty --out, a changed bundle and a fleet failing `check` are refused.
//! Needs root (the root filesystem keeps owners).

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use clawkeep_image::bundle::{self, BundleInputs, Placement};
use support::{cache, clawkeep, kernel_deb, openclaw_bundle, run, stage1, text};

const EPOCH: &str = "1700000000";

/// debugfs from the e2fsprogs scripts/install-image-tools caches (CLAWKEEP_DEBUGFS).
fn debugfs() -> PathBuf {
    if let Some(p) = std::env::var_os("CLAWKEEP_DEBUGFS") {
        return PathBuf::from(p);
    }
    let cached = cache().join("e2fsprogs/bin/debugfs");
    if cached.is_file() {
        cached
    } else {
        PathBuf::from("/usr/sbin/debugfs")
    }
}

/// The inputs, the bundle and a fleet that passes `clawkeep check`.
struct Fixture {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    fleet: PathBuf,
}

impl Fixture {
    fn new(placement: Placement) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inputs = dir.path().join("inputs");
        fs::create_dir_all(&inputs).unwrap();

        // A busybox base: usrmerge symlinks, a file of uid 1000, a device node (left out).
        let base = dir.path().join("base");
        for d in ["usr/bin", "usr/sbin", "etc", "home/user", "dev"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", base.join("usr/bin/busybox")).unwrap();
        symlink("busybox", base.join("usr/bin/sh")).unwrap();
        symlink("usr/bin", base.join("bin")).unwrap();
        symlink("usr/sbin", base.join("sbin")).unwrap();
        // As Debian has it: replaced by clawkeep, never followed out of the tree.
        symlink("/lib/systemd/systemd", base.join("usr/sbin/init")).unwrap();
        fs::write(base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(base.join("home/user/notes"), "mine\n").unwrap();
        chown(base.join("home/user"), Some(1000), Some(1000)).unwrap();
        chown(base.join("home/user/notes"), Some(1000), Some(1000)).unwrap();
        let st = run(Command::new("mknod")
            .args(["-m", "666"])
            .arg(base.join("dev/null"))
            .args(["c", "1", "3"]));
        assert!(st.status.success(), "{}", text(&st));
        let tarball = inputs.join("base.tar.gz");
        let st = run(Command::new("tar")
            .args(["--numeric-owner", "--sort=name", "-C"])
            .arg(&base)
            .arg("-czf")
            .arg(&tarball)
            .arg("."));
        assert!(st.status.success(), "{}", text(&st));

        let ck = inputs.join("clawkeep");
        fs::copy(clawkeep(), &ck).unwrap();
        let bundle = bundle::prepare(
            &BundleInputs {
                kernel: kernel_deb(),
                base_rootfs: tarball,
                runtime: openclaw_bundle(),
                clawkeep: ck,
                clawkeep_version: Some(env!("CARGO_PKG_VERSION").into()),
                stage1: stage1(),
                models: Vec::new(),
                backends: Vec::new(),
            },
            &dir.path().join("bundle"),
            placement,
        )
        .unwrap()
        .dir;

        // The fleet and what it names; the agents' rootfs only for `check`.
        let fleet_dir = dir.path().join("lab");
        fs::create_dir_all(fleet_dir.join("souls")).unwrap();
        fs::create_dir_all(fleet_dir.join("rootfs/bin")).unwrap();
        fs::write(fleet_dir.join("rootfs/bin/sh"), "").unwrap();
        fs::set_permissions(
            fleet_dir.join("rootfs/bin/sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::write(fleet_dir.join("souls/alpha.md"), "You are alpha.\n").unwrap();
        let fleet = fleet_dir.join("fleet.toml");
        fs::write(
            &fleet,
            "[node]\nname = \"image-test\"\n\n[runtime]\nrootfs = \"rootfs\"\n\n\
             [[agent]]\nname = \"alpha\"\nteam = \"lab\"\nsoul = \"souls/alpha.md\"\ncommand = \"/bin/sh\"\n\n\
             [[agent]]\nname = \"beta\"\ncommand = \"/bin/sh\"\n",
        )
        .unwrap();
        Fixture { dir, bundle, fleet }
    }

    fn build(&self, out: &Path, extra: &[&str]) -> Output {
        self.build_with(Command::new(clawkeep()), out, extra)
    }

    /// `clawkeep image build FLEET` of another fleet file with this bundle.
    fn build_fleet(&self, fleet: &Path, out: &Path) -> Output {
        run(Command::new(clawkeep())
            .args(["image", "build"])
            .arg(fleet)
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--out")
            .arg(out))
    }

    /// The build without network: in a new network namespace (only `lo`, down); `--json`.
    fn build_offline(&self, out: &Path) -> Output {
        let mut cmd = Command::new("unshare");
        cmd.arg("--net").arg(clawkeep());
        self.build_with(cmd, out, &["--json"])
    }

    fn build_with(&self, mut cmd: Command, out: &Path, extra: &[&str]) -> Output {
        run(cmd
            .args(["image", "build"])
            .arg(&self.fleet)
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--out")
            .arg(out)
            .args(["--epoch", EPOCH])
            .args(extra))
    }
}

/// sha256 of every file under `root`, by relative path (with `sha256sum`, as a user checks).
fn sha256s(root: &Path) -> BTreeMap<String, String> {
    let out = run(Command::new("sh")
        .arg("-c")
        .arg("find . -type f -print0 | sort -z | xargs -0 sha256sum")
        .current_dir(root));
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (sum, path) = l.split_once("  ").unwrap();
            (path.to_string(), sum.to_string())
        })
        .collect()
}

fn flip_byte(path: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 1;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
}

#[test]
fn two_builds_are_identical_and_verify_names_a_flipped_byte() {
    let fx = Fixture::new(Placement::HardLink);
    let out1 = fx.dir.path().join("out1");
    let out2 = fx.dir.path().join("out2");

    let t = Instant::now();
    let built = fx.build(&out1, &[]);
    let first = t.elapsed();
    assert!(built.status.success(), "{}", text(&built));
    eprintln!("first build in {first:?}:\n{}", text(&built));
    let t = Instant::now();
    let built = fx.build_offline(&out2);
    assert!(built.status.success(), "{}", text(&built));
    // --json: one object on stdout, the progress still on stderr.
    let v: serde_json::Value =
        serde_json::from_slice(&built.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&built)));
    assert_eq!(v["lock_file"], out2.join("clawkeep.lock").to_str().unwrap());
    assert_eq!(v["info"]["agents"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(
        v["stage_seconds"]
            .as_object()
            .is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert!(String::from_utf8_lossy(&built.stderr).contains("built: openclaw"));
    eprintln!("second build, without network, in {:?}", t.elapsed());

    for name in [
        "oci/index.json",
        "node.raw",
        "node.qcow2",
        "vmlinuz",
        "vmlinux",
        "initramfs.img",
        "sbom.spdx.json",
        "image.json",
        "clawkeep.lock",
    ] {
        assert!(out1.join(name).is_file(), "{name} missing");
    }
    assert_eq!(
        fs::read(out1.join("clawkeep.lock")).unwrap(),
        fs::read(out2.join("clawkeep.lock")).unwrap()
    );
    let sums = sha256s(&out1);
    assert_eq!(sums, sha256s(&out2));
    assert!(!sums.keys().any(|p| p.contains(".build")), "{sums:?}");
    for name in ["node.raw", "node.qcow2"] {
        eprintln!(
            "{name}: {} bytes on disk of {}",
            fs::metadata(out1.join(name)).unwrap().len(),
            sums[&format!("./{name}")]
        );
    }

    // What is inside, as a user would look.
    let inspect = run(Command::new(clawkeep())
        .args(["image", "inspect", "--json"])
        .arg(&out1));
    assert!(inspect.status.success(), "{}", text(&inspect));
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let info = &json["info"];
    assert_eq!(info["openclaw"], "2026.9.6");
    assert_eq!(info["agents"][0]["name"], "alpha");
    assert_eq!(info["agents"][0]["team"], "lab");
    assert_eq!(info["agents"][1]["name"], "beta");
    assert_eq!(
        info["fleet_files"],
        serde_json::json!(["rootfs", "souls/alpha.md"])
    );
    assert!(info["kernel_release"].as_str().unwrap().ends_with("-amd64"));
    assert!(info["stage1_modules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "ext4"));
    assert!(
        info["stage1_init"]
            .as_str()
            .unwrap()
            .starts_with("clawkeep-stage1 "),
        "{info}"
    );
    let inspect = run(Command::new(clawkeep())
        .args(["image", "inspect"])
        .arg(&out1));
    let shown = text(&inspect);
    assert!(inspect.status.success(), "{shown}");
    for want in [
        "OpenClaw  2026.9.6",
        "alpha",
        "beta",
        "node.raw",
        "kernel    ",
    ] {
        assert!(shown.contains(want), "{want:?} in:\n{shown}");
    }
    eprintln!("{shown}");

    // The OCI layout is valid (every descriptor against its blob), the SBOM is valid SPDX.
    let layout = clawkeep_image::oci::validate_layout(&out1.join("oci")).unwrap();
    assert_eq!(layout.images[0].tag.as_deref(), Some("2026.9.6"));
    let spdx = cache().join("spdx-venv/bin/pyspdxtools");
    if spdx.is_file() {
        let checked = run(Command::new(&spdx)
            .arg("-i")
            .arg(out1.join("sbom.spdx.json")));
        assert!(checked.status.success(), "{}", text(&checked));
    } else {
        eprintln!(
            "no {} (scripts/install-spdx-tools): SBOM not validated",
            spdx.display()
        );
    }

    // The root filesystem, read from the raw disk's partition with debugfs.
    let fs = format!("{}?offset={}", out1.join("node.raw").display(), 1 << 20);
    let look = |request: &str| {
        let out = run(Command::new(debugfs()).arg("-R").arg(request).arg(&fs));
        assert!(out.status.success(), "debugfs {request}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(look("cat /etc/clawkeep/souls/alpha.md"), "You are alpha.\n");
    // The agents' rootfs the fleet names (relative) lies beside it on the node.
    assert!(look("ls -l /etc/clawkeep/rootfs/bin").contains("sh"));
    assert_eq!(
        look("cat /etc/clawkeep/fleet.toml").as_bytes(),
        fs::read(&fx.fleet).unwrap()
    );
    let init = look("stat /usr/sbin/init");
    assert!(
        init.contains("Fast link dest: \"/usr/bin/clawkeep\""),
        "{init}"
    );
    let notes = look("stat /home/user/notes");
    assert!(notes.contains("User:  1000   Group:  1000"), "{notes}");
    let runtimes = look("ls /var/lib/clawkeep/runtimes");
    let id = info["runtime_id"].as_str().unwrap();
    assert!(
        runtimes.contains(id) && runtimes.contains("current"),
        "{runtimes}"
    );
    let dev = look("ls /dev");
    assert!(!dev.contains("null"), "device nodes are left out: {dev}");

    // The initramfs holds the modules and their list, as cpio shows it.
    let list = run(Command::new("sh").arg("-c").arg(format!(
        "zstd -dc {} | cpio -it 2>/dev/null",
        out1.join("initramfs.img").display()
    )));
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(names.contains("stage1.modules"), "{names}");
    assert!(names.lines().any(|l| l == "init"), "{names}");
    assert!(names.lines().any(|l| l.ends_with("/ext4.ko")), "{names}");

    // verify: passes, then names the flipped byte of node.raw.
    let ok = run(Command::new(clawkeep())
        .args(["image", "verify"])
        .arg(&out1));
    assert!(ok.status.success(), "{}", text(&ok));
    let ok = run(Command::new(clawkeep())
        .args(["image", "verify", "--json"])
        .arg(&out1));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["problem"].is_null()),
        (Some(true), true),
        "{v}"
    );
    flip_byte(&out1.join("node.raw"), (1 << 20) + 1024 + 40);
    let bad = run(Command::new(clawkeep())
        .args(["image", "verify"])
        .arg(&out1));
    let said = text(&bad);
    assert_eq!(bad.status.code(), Some(3), "{said}");
    let bad_json = run(Command::new(clawkeep())
        .args(["image", "verify", "--json"])
        .arg(&out1));
    assert_eq!(bad_json.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&bad_json.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["problem"]
            .as_str()
            .unwrap()
            .contains("node.raw: expected sha256"),
        "{v}"
    );
    assert!(
        said.contains(&format!(
            "node.raw: expected sha256 {}, actual sha256 ",
            sums["./node.raw"]
        )),
        "{said}"
    );
    assert!(!said.contains("node.qcow2"), "{said}");

    // A non-empty --out is refused without --force.
    let again = fx.build(&out1, &[]);
    let said = text(&again);
    assert_eq!(again.status.code(), Some(1), "{said}");
    assert!(
        said.contains("is not empty: it holds clawkeep.lock"),
        "{said}"
    );
    assert!(said.contains("--force"), "{said}");
}

#[test]
fn a_changed_bundle_a_bad_fleet_and_a_foreign_out_dir_build_nothing() {
    // Copied, so the flipped byte changes the test's copy only.
    let fx = Fixture::new(Placement::Copy);

    // A fleet failing `check`: exit 2, every problem as file:line:col, nothing written.
    let bad_fleet = fx.fleet.with_file_name("bad.toml");
    fs::write(
        &bad_fleet,
        "[runtime]\nrootfs = \"rootfs\"\n\n[[agent]]\nname = \"Alpha_1\"\nsoul = \"souls/missing.md\"\ncommand = \"/bin/sh\"\n",
    )
    .unwrap();
    let out = fx.dir.path().join("out-fleet");
    let r = fx.build_fleet(&bad_fleet, &out);
    let said = text(&r);
    assert_eq!(r.status.code(), Some(2), "{said}");
    assert!(said.contains("bad.toml:5:"), "{said}");
    assert!(said.contains("souls/missing.md"), "{said}");
    assert!(!out.exists());

    // An --out holding something else: refused even with --force, the file kept.
    let out = fx.dir.path().join("out-foreign");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("notes.txt"), "mine").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let r = fx.build(&out, extra);
        let said = text(&r);
        assert_eq!(r.status.code(), Some(1), "{said}");
        assert!(said.contains("is not empty: it holds notes.txt"), "{said}");
    }
    assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"mine");

    // One flipped byte in the bundle: the file named with both digests, nothing built.
    let ck = fx.bundle.join("clawkeep/clawkeep");
    let want = image_sha256(&ck);
    flip_byte(&ck, 100);
    let out = fx.dir.path().join("out-bundle");
    let r = fx.build(&out, &[]);
    let said = text(&r);
    assert_eq!(r.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "clawkeep/clawkeep: expected sha256 {want}, actual sha256 {}",
            image_sha256(&ck)
        )),
        "{said}"
    );
    assert!(!out.exists() || fs::read_dir(&out).unwrap().next().is_none());
    fs::write(&ck, fs::read(clawkeep()).unwrap()).unwrap();

    // A fleet that holds on this machine but not on the node: its rootfs is an absolute
    // path of the build machine, which the image does not have. Checked inside the staged
    // image: named with its line, nothing left in --out.
    let host_only = fx.fleet.with_file_name("host-only.toml");
    let host_rootfs = fx.fleet.parent().unwrap().join("rootfs");
    fs::write(
        &host_only,
        format!(
            "[runtime]\nrootfs = \"{}\"\n\n[[agent]]\nname = \"alpha\"\ncommand = \"/bin/sh\"\n",
            host_rootfs.display()
        ),
    )
    .unwrap();
    let ok = run(Command::new(clawkeep()).arg("check").arg(&host_only));
    assert!(ok.status.success(), "{}", text(&ok));
    let out = fx.dir.path().join("out-host-only");
    let r = fx.build_fleet(&host_only, &out);
    let said = text(&r);
    assert_eq!(r.status.code(), Some(1), "{said}");
    assert!(
        said.contains("the fleet does not hold in the image"),
        "{said}"
    );
    assert!(said.contains("/etc/clawkeep/fleet.toml:2:"), "{said}");
    assert!(said.contains(&host_rootfs.display().to_string()), "{said}");
    assert!(!out.join("node.raw").exists());
}

fn image_sha256(path: &Path) -> String {
    clawkeep_image::disk::sha256_file(path).unwrap()
}
