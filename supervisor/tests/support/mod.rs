//! Shared by the real-kernel tests and the benchmarks: a busybox test rootfs with `ckprobe`,
//! scratch directories the sandboxed agents can reach, and a supervisor harness.
#![allow(dead_code)]

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The clawkeep binary under test: the supervisor package's own when these are its tests;
/// for the end-to-end suites at the top (package clawkeep-tests), the one cargo built beside
/// them, which must be newer than every source file of the workspace's crates.
pub fn clawkeep() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| match option_env!("CARGO_BIN_EXE_clawkeep") {
        Some(bin) => PathBuf::from(bin),
        None => built_beside_the_tests(),
    })
    .clone()
}

/// target/debug/clawkeep for a test binary in target/debug/deps, checked to be fresh.
fn built_beside_the_tests() -> PathBuf {
    let build = "build it with `cargo build -p supervisor --bin clawkeep` \
                 (`cargo test --workspace` and scripts/test do), then run the test again";
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("clawkeep"))
        .expect("the test binary is in target/<profile>/deps");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {build}", bin.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for dir in [
        "supervisor/src",
        "supervisor/sandbox/src",
        "minio/src",
        "ollama/src",
        "image/src",
    ] {
        newest_source(&root.join(dir), &mut newest);
    }
    if let Some((when, file)) = newest {
        assert!(
            when <= built,
            "{} is older than {}: {build}",
            bin.display(),
            file.display()
        );
    }
    bin
}

fn newest_source(dir: &Path, newest: &mut Option<(std::time::SystemTime, PathBuf)>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            newest_source(&p, newest);
        } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                *newest = Some((t, p));
            }
        }
    }
}

/// The static stage-1 init (built once per test binary for the musl target) (as `clawkeep image prepare` wants it).
pub fn stage1() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(build_stage1).clone()
}

fn build_stage1() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "clawkeep-stage1",
            "--target",
            "x86_64-unknown-linux-musl",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building clawkeep-stage1 (scripts/install-deps adds the musl target): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("x86_64-unknown-linux-musl/release/clawkeep-stage1");
    let file = Command::new("file").arg(&bin).output().unwrap();
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(file.contains("static"), "stage 1 must be static: {file}");
    bin
}

/// clawkeep's cache of test dependencies (CLAWKEEP_CACHE, else ~/.cache/clawkeep).
pub fn cache() -> PathBuf {
    std::env::var_os("CLAWKEEP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/clawkeep")
        })
}

/// The kernel package scripts/install-image-tools keeps (CLAWKEEP_KERNEL_DEB, else its cache).
pub fn kernel_deb() -> PathBuf {
    if let Some(p) = std::env::var_os("CLAWKEEP_KERNEL_DEB") {
        return PathBuf::from(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("kernel-"))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    found.sort();
    found
        .pop()
        .expect("no kernel package: run scripts/install-image-tools")
}

/// Runs `cmd` to its end, its output captured.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// stdout and stderr of `out`, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../supervisor/tests/support/ckprobe.c");
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
    // List applets with the host's busybox: exec'ing the fresh copy can fail with ETXTBSY
    // while another test thread forks with the copy's write fd still open.
    let list = Command::new(busybox()).arg("--list").output().unwrap();
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

/// A `clawkeep up` running in the background on a fleet written into a scratch dir, with its
/// own state dir and cgroup parent. Stopped (and checked clean) on drop.
pub struct Supervisor {
    pub child: std::process::Child,
    pub dir: FleetDir,
    pub state: PathBuf,
    pub cgroup: String,
    pub stderr: PathBuf,
    /// A hosts file bind-mounted over /etc/hosts for this supervisor alone (in a mount
    /// namespace of its own), so that a test can point names where it likes.
    pub hosts: Option<PathBuf>,
}

static CGROUP_N: AtomicU32 = AtomicU32::new(0);

/// A cgroup parent name unique to this test process and call.
pub fn unique_cgroup() -> String {
    format!(
        "clawkeep-test-{}-{}",
        std::process::id(),
        CGROUP_N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fleet file in a fresh scratch dir: generated `[node]` (own state dir and cgroup) and
/// `[runtime]` (the busybox test rootfs), then `body`.
pub struct FleetDir {
    pub scratch: Scratch,
    pub fleet: PathBuf,
    pub state: PathBuf,
    pub cgroup: String,
}

/// Remove a cgroup tree (deepest first) from every hierarchy; for cleanup after runc, which
/// leaves the parent of its container's cgroup behind.
pub fn remove_cgroup_tree(name: &str) {
    fn walk(dir: &Path) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = h.path().join(name);
        if p.exists() {
            walk(&p);
        }
    }
    let v2 = Path::new("/sys/fs/cgroup").join(name);
    if v2.exists() {
        walk(&v2);
    }
}

impl Drop for FleetDir {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.cgroup);
    }
}

impl FleetDir {
    pub fn new(tag: &str, body: &str) -> Self {
        Self::with_runtime(tag, "", body)
    }

    /// Like [`FleetDir::new`] with more `[runtime]` lines (e.g. an OpenClaw pin).
    pub fn with_runtime(tag: &str, runtime: &str, body: &str) -> Self {
        let scratch = Scratch::new(tag);
        let rootfs = rootfs(&scratch.dir);
        let state = scratch.dir.join("state");
        let cgroup = unique_cgroup();
        let fleet = scratch.dir.join("fleet.toml");
        let text = format!(
            "[node]\nname = \"test-{tag}\"\nstate_dir = \"{}\"\ncgroup = \"{cgroup}\"\n\n[runtime]\nrootfs = \"{}\"\n{runtime}\n\n{body}",
            state.display(),
            rootfs.display()
        );
        std::fs::write(&fleet, text).unwrap();
        FleetDir {
            scratch,
            fleet,
            state,
            cgroup,
        }
    }
}

impl Supervisor {
    /// Write `body` (the fleet file without `[node]` and `[runtime]`, which are generated)
    /// and start `clawkeep up` on it; returns once the control socket answers.
    pub fn start(tag: &str, body: &str) -> Self {
        Self::start_in(FleetDir::new(tag, body))
    }

    /// Start `clawkeep up` on a fleet written beforehand (e.g. after setting secrets in its
    /// state dir); returns once the control socket answers.
    pub fn start_in(dir: FleetDir) -> Self {
        Self::start_with_hosts(dir, None)
    }

    /// [`Supervisor::start_in`] with `hosts` as the supervisor's /etc/hosts (its resolver's
    /// view of names; the test's and the node's stay as they are).
    pub fn start_with_hosts(dir: FleetDir, hosts: Option<&str>) -> Self {
        Self::start_with(dir, hosts, &[])
    }

    /// [`Supervisor::start_in`] with more environment variables for `clawkeep up`.
    pub fn start_in_with_env(dir: FleetDir, env: &[(&str, &str)]) -> Self {
        Self::start_with(dir, None, env)
    }

    fn start_with(dir: FleetDir, hosts: Option<&str>, env: &[(&str, &str)]) -> Self {
        let stderr = dir.scratch.dir.join("supervisor.log");
        let hosts = hosts.map(|text| {
            let file = dir.scratch.dir.join("hosts");
            std::fs::write(&file, text).unwrap();
            file
        });
        let child = Self::spawn(&dir, &stderr, env, hosts.as_deref());
        let (state, cgroup) = (dir.state.clone(), dir.cgroup.clone());
        let mut s = Supervisor {
            child,
            dir,
            state,
            cgroup,
            stderr,
            hosts,
        };
        s.wait_for_socket();
        s
    }

    fn spawn(
        dir: &FleetDir,
        stderr: &Path,
        env: &[(&str, &str)],
        hosts: Option<&Path>,
    ) -> std::process::Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr)
            .unwrap();
        let mut cmd = match hosts {
            // unshare and sh exec in place: the child's pid is the supervisor's.
            Some(hosts) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
                    .arg(hosts)
                    .arg(clawkeep());
                c
            }
            None => Command::new(clawkeep()),
        };
        cmd.arg("up")
            .arg(&dir.fleet)
            .env("CLAWKEEP_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(dir.scratch.dir.join("supervisor.out")).unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// `clawkeep up` the same fleet again after [`Supervisor::down`] (its log continues).
    pub fn up_again(&mut self) {
        self.up_again_with(&[]);
    }

    /// [`Supervisor::up_again`] with more environment variables for `clawkeep up`.
    pub fn up_again_with(&mut self, env: &[(&str, &str)]) {
        assert!(
            matches!(self.child.try_wait(), Ok(Some(_))),
            "the first supervisor is still running"
        );
        self.child = Self::spawn(&self.dir, &self.stderr, env, self.hosts.as_deref());
        self.wait_for_socket();
    }

    /// kill -9 the supervisor, as a crash or a power cut would (no last push); its agents
    /// stay behind in their cgroups until the next `up` clears them.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_for_socket(&mut self) {
        let s = self;
        let sock = s.state.join("clawkeep.sock");
        wait_for(Duration::from_secs(20), "the control socket", || {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("clawkeep up exited with {st}:\n{}", s.log());
            }
            (sock.exists() && s.cli(&["ps"]).status.success()).then_some(())
        });
    }

    /// The supervisor's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Run a CLI command against this supervisor.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(clawkeep())
            .args(args)
            .env("CLAWKEEP_STATE_DIR", &self.state)
            .output()
            .unwrap()
    }

    /// `clawkeep ps --json`.
    pub fn ps(&self) -> serde_json::Value {
        let out = self.cli(&["ps", "--json"]);
        assert!(
            out.status.success(),
            "ps failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// One process's row of `clawkeep ps --json`.
    pub fn row(&self, name: &str) -> serde_json::Value {
        self.ps()["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no process {name} in ps"))
    }

    /// Wait until `name` is in `state`; returns its row.
    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> serde_json::Value {
        wait_for(timeout, &format!("{name} to be {state}"), || {
            let r = self.row(name);
            (r["state"] == state).then_some(r)
        })
    }

    /// `clawkeep logs NAME -n 1000`.
    pub fn logs(&self, name: &str) -> String {
        let out = self.cli(&["logs", name, "-n", "1000"]);
        assert!(
            out.status.success(),
            "logs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `clawkeep down`, then wait for the supervisor to exit.
    pub fn down(&mut self) {
        let out = self.cli(&["down"]);
        assert!(
            out.status.success(),
            "down failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let st = self.child.wait().unwrap();
        assert!(st.success(), "supervisor exited with {st}:\n{}", self.log());
    }

    /// Whether the log file of `name` (read from disk, works after shutdown) contains `text`.
    pub fn logs_dir_has(&self, name: &str, text: &str) -> bool {
        std::fs::read_to_string(self.state.join("logs").join(format!("{name}.log")))
            .map(|s| s.contains(text))
            .unwrap_or(false)
    }

    /// cgroup directories of this fleet left on the host.
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = entry.path().join(&self.cgroup);
            if p.exists() {
                out.push(p);
            }
        }
        let v2 = Path::new("/sys/fs/cgroup").join(&self.cgroup);
        if v2.exists() && !out.contains(&v2) {
            out.push(v2);
        }
        out
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- supervisor log ---\n{}", self.log());
        }
    }
}

/// The script the isolation checks run inside an agent (needs HOST_PORT in its env).
pub const CHECKS: &str = r#"
echo "hostname=$(hostname)"
echo "uid=$(id -u)"
echo "links=$(ls /sys/class/net | tr '\n' ' ')"
echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
echo "pid1=$(cat /proc/1/comm)"
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
touch /bin/x 2>/dev/null && echo runtime=writable || echo runtime=read-only
touch /home/agent/written && echo home=writable
touch /tmp/t && echo tmp=writable
ckprobe mount
ckprobe unshare
ckprobe ptrace
ckprobe clone-ns
ckprobe connect 127.0.0.1 $HOST_PORT
echo "uidmap=$(cat /proc/self/uid_map | tr -s ' ')"
echo "rootflags=$(awk '$2 == "/" { f = $4 } END { print f }' /proc/self/mounts)"
cat /proc/1/environ >/dev/null 2>&1 && echo pid1mem=readable || echo pid1mem=denied
echo done=yes
"#;

/// `key=value` and `name: result` lines of the checks' output.
pub fn facts(log: &str) -> std::collections::HashMap<String, String> {
    log.lines()
        .filter(|l| !l.starts_with("[clawkeep"))
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(": ")))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The fleet body of an agent that runs [`CHECKS`] once.
pub fn inspector(host_port: u16) -> String {
    format!(
        r#"
[[agent]]
name = "inspector"
command = "/bin/sh"
args = ["-c", '''{CHECKS}''']
env = {{ HOST_PORT = "{host_port}" }}
restart = "never"
"#
    )
}

/// Assert what [`CHECKS`] printed: the isolation every sandbox must have. `pid1` is the
/// expected name of PID 1 inside (clawkeep's init, or the agent itself under runc).
pub fn assert_isolated(output: &str, pid1: &str) {
    let f = facts(output);
    assert_eq!(f.get("done").map(String::as_str), Some("yes"), "{output}");
    assert_eq!(f["hostname"], "inspector");
    assert_eq!(f["uid"], "0");
    assert_eq!(f["links"], "lo", "only loopback exists");
    let procs: u32 = f["procs"].parse().unwrap();
    assert!(
        procs <= 6,
        "host processes must be invisible, saw {procs} pids:\n{output}"
    );
    assert_eq!(f["pid1"], pid1);
    assert_eq!(f["capeff"], "0000000000000000");
    assert_eq!(f["runtime"], "read-only");
    assert_eq!(f["home"], "writable");
    assert_eq!(f["tmp"], "writable");
    for call in ["mount", "unshare", "ptrace", "clone-ns"] {
        assert_eq!(f[call], "EPERM", "{call} must fail with EPERM:\n{output}");
    }
    assert_eq!(
        f["connect"], "ECONNREFUSED",
        "the host's loopback must be out of reach"
    );
    assert_eq!(
        f["uidmap"], "0 1000000000 65536",
        "uid 0 inside is host uid 1000000000"
    );
}

/// The prepared OpenClaw runtime bundle: CLAWKEEP_OPENCLAW_BUNDLE, or where
/// scripts/install-openclaw-bundle caches it.
pub fn openclaw_bundle() -> PathBuf {
    if let Some(dir) = std::env::var_os("CLAWKEEP_OPENCLAW_BUNDLE") {
        return PathBuf::from(dir);
    }
    openclaw_bundle_of("2026.9.6")
}

/// The cached bundle of OpenClaw `version` on Node 24 (scripts/install-openclaw-bundle VERSION).
pub fn openclaw_bundle_of(version: &str) -> PathBuf {
    let root = std::env::var_os("CLAWKEEP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/clawkeep")
        });
    let dir = root.join(format!("openclaw-bundle-{version}-node24"));
    assert!(
        dir.join("bundle.json").is_file(),
        "no runtime bundle at {} (run scripts/install-openclaw-bundle {version})",
        dir.display()
    );
    dir
}

/// Install the OpenClaw bundle into `dest` (a runtimes directory) with `clawkeep runtime
/// install`; returns the installed runtime's directory.
pub fn install_runtime(dest: &Path) -> PathBuf {
    install_bundle(&openclaw_bundle(), dest)
}

/// Install `bundle` into the runtimes directory `dest`; returns the runtime's directory.
pub fn install_bundle(bundle: &Path, dest: &Path) -> PathBuf {
    let out = Command::new(clawkeep())
        .args(["runtime", "install"])
        .arg(bundle)
        .arg("--dest")
        .arg(dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runtime install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(path.trim().lines().last().expect("install prints the path"))
}

/// Add to `rootfs` the shared libraries `binary` loads (glibc, libstdc++, the loader):
/// what Node needs in a busybox rootfs (scripts/make-busybox-rootfs --libs-for).
pub fn add_libs_for(rootfs: &Path, binary: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-rootfs");
    let out = Command::new(script)
        .arg(rootfs)
        .arg("--libs-for")
        .arg(binary)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-busybox-rootfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `script` with /bin/sh inside the namespaces of the sandbox whose init is `pid` (as
/// the sandbox's root), returning stdout and stderr together.
pub fn in_sandbox(pid: i64, script: &str) -> String {
    // With the agent's supplementary groups (its collections'), which nsenter drops.
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-a",
            "/bin/ckprobe",
            "asagent",
            "/bin/sh",
            "-c",
            script,
        ])
        .output()
        .expect("nsenter (util-linux) not found");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A small tokio runtime for the async clients the blocking tests use (S3, HTTP).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run `cmd`, assert it succeeded (naming it and what it printed), and return its output.
pub fn ok(cmd: &mut std::process::Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    text(&out)
}

/// A child process killed and reaped when the test ends, passed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` started with its stderr read, and the address its ready line (starting with
/// `ready`) names, the word after `ready`.
pub fn started(mut cmd: std::process::Command, ready: &'static str) -> (KillOnDrop, String) {
    use std::io::BufRead;
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.strip_prefix(ready) {
                let _ = tx.send(rest.split(' ').next().unwrap_or_default().to_string());
            }
        }
    });
    let child = KillOnDrop(child);
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no {ready:?} line within 30 s"));
    (child, addr)
}

/// A ConfigMap's `data` laid out in `dir` as the kubelet mounts one: each key a link into
/// `..data`, itself a link to a timestamped directory.
pub fn kubelet_config_map(dir: &Path, data: &serde_json::Map<String, serde_json::Value>) {
    let stamped = dir.join("..2026_12_05_12_00_00.000000001");
    std::fs::create_dir_all(&stamped).unwrap();
    for (k, v) in data {
        std::fs::write(stamped.join(k), v.as_str().unwrap()).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(k), dir.join(k)).unwrap();
    }
    std::os::unix::fs::symlink(stamped.file_name().unwrap(), dir.join("..data")).unwrap();
}

/// `clawkeep spend --by agent --json` on the ledger under `state`; `None` until it answers.
pub fn spend_by_agent(state: &Path) -> Option<serde_json::Value> {
    let out = Command::new(clawkeep())
        .arg("--state-dir")
        .arg(state)
        .args(["spend", "--by", "agent", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
}
