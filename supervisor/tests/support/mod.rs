//! Shared by the real-kernel tests and the benchmarks: a busybox test rootfs with `ckprobe`,
//! scratch directories the sandboxed agents can reach, and a supervisor harness.
#![allow(dead_code)]

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The clawkeep binary under test.
pub fn clawkeep() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clawkeep"))
}

/// A fresh directory under /tmp that sandboxed ids can traverse (mode 0711), removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clawkeep-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("CLAWKEEP_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox not found: run scripts/install-deps (Debian package busybox-static)");
}

/// Build (once per test binary) the static probe program.
fn probe() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ckprobe");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ckprobe.c");
        let st = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("cc not found: run scripts/install-deps");
        assert!(st.success(), "building ckprobe failed");
        out
    })
    .clone()
}

/// A busybox root filesystem with every applet linked and `/bin/ckprobe`.
pub fn rootfs(under: &Path) -> PathBuf {
    let root = under.join("rootfs");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox(), bin.join("busybox")).unwrap();
    let list = Command::new(bin.join("busybox"))
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = bin.join(applet);
        if !link.exists() {
            symlink("busybox", link).unwrap();
        }
    }
    std::fs::copy(probe(), bin.join("ckprobe")).unwrap();
    for d in [&root, &bin] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

/// Poll `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
