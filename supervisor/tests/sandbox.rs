//! The agent sandbox as a user sees it through `clawkeep up`, `ps` and `logs`: isolation
//! from inside, and the cgroup limits (memory, pids, CPU). Real namespaces and cgroups; root.

mod support;

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use support::Supervisor;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn isolation_from_inside() {
    // A listener on the host's loopback: the agent must not reach it.
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let mut sup = Supervisor::start("isolation", &support::inspector(port));
    sup.wait_state("inspector", "exited", Duration::from_secs(30));
    let out = sup.logs("inspector");
    support::assert_isolated(&out, "clawkeep-init");
    let f = support::facts(&out);
    // The read-only root honours no set-uid bit and no device node.
    let root: Vec<&str> = f["rootflags"].split(',').collect();
    for flag in ["ro", "nosuid", "nodev"] {
        assert!(root.contains(&flag), "/ is mounted {root:?}");
    }
    // The init (same uid as the agent) is not dumpable: its memory and fds stay its own.
    assert_eq!(f["pid1mem"], "denied", "{out}");
    // uid 0 inside is an unprivileged uid outside.
    let written = sup.state.join("agents/inspector/home/written");
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), 1_000_000_000);
    assert_eq!(sup.row("inspector")["last_exit"]["reason"]["kind"], "code");
    drop(host);
    sup.down();
}

#[test]
fn oom_kill_is_confined_to_its_agent() {
    let port = free_port();
    let mut sup = Supervisor::start(
        "oom",
        &format!(
            r#"
[[agent]]
name = "hog"
command = "/bin/ckprobe"
args = ["hog"]
memory = "32MiB"
restart = "never"

[[agent]]
name = "steady"
command = "/bin/sh"
args = ["-c", "echo steady > /tmp/index.html; exec httpd -f -p 127.0.0.1:18789 -h /tmp"]
memory = "64MiB"
gateway_port = {port}
"#
        ),
    );
    let hog = sup.wait_state("hog", "exited", Duration::from_secs(60));
    assert_eq!(hog["last_exit"]["reason"]["kind"], "oom", "{hog}");
    let table = String::from_utf8(sup.cli(&["ps"]).stdout).unwrap();
    let line = table.lines().find(|l| l.starts_with("hog")).unwrap();
    assert!(line.contains("oom"), "ps must say oom: {line}");
    let steady = sup.row("steady");
    assert_eq!(steady["state"], "running");
    // Swap is bounded too: as much as memory, no more (memory + swap = 128 MiB).
    let memsw = std::path::Path::new("/sys/fs/cgroup/memory")
        .join(&sup.cgroup)
        .join("steady/memory.memsw.limit_in_bytes");
    if memsw.exists() {
        let v = std::fs::read_to_string(&memsw).unwrap();
        assert_eq!(v.trim(), (128u64 << 20).to_string(), "{}", memsw.display());
    }
    assert_eq!(steady["restarts"], 0);
    assert_eq!(
        steady["url"],
        format!("http://127.0.0.1:{port}"),
        "ps shows where to reach it"
    );
    let body = support::wait_for(Duration::from_secs(10), "steady to answer", || {
        http_get(port).filter(|b| b.contains("steady"))
    });
    assert!(body.contains("steady"));
    sup.down();
}

/// GET / on 127.0.0.1:port; the body, if the exchange worked.
fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.").then_some(out)
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let mut sup = Supervisor::start(
        "forkbomb",
        r#"
[[agent]]
name = "bomb"
command = "/bin/ckprobe"
args = ["forkbomb"]
pids = 32
"#,
    );
    let line = support::wait_for(
        Duration::from_secs(30),
        "the fork bomb to hit the limit",
        || {
            sup.logs("bomb")
                .lines()
                .find(|l| l.starts_with("forkbomb:"))
                .map(str::to_string)
        },
    );
    assert!(line.contains("EAGAIN"), "{line}");
    let forks: u32 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(forks < 32, "{line}");
    // The agent is still alive and stoppable; the supervisor still answers.
    assert_eq!(sup.row("bomb")["state"], "running");
    assert!(sup.cli(&["stop", "bomb"]).status.success());
    sup.down();
    assert!(sup.leftover_cgroups().is_empty());
}

#[test]
fn cpu_quota_holds_a_spinner_to_half_a_core() {
    let mut sup = Supervisor::start(
        "cpu",
        r#"
[[agent]]
name = "spinner"
command = "/bin/ckprobe"
args = ["spin"]
cpu = 0.5
"#,
    );
    sup.wait_state("spinner", "running", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let (t0, c0) = (
        Instant::now(),
        sup.row("spinner")["cpu_ns"].as_u64().unwrap(),
    );
    std::thread::sleep(Duration::from_secs(5));
    let (t1, c1) = (
        Instant::now(),
        sup.row("spinner")["cpu_ns"].as_u64().unwrap(),
    );
    let cores = (c1 - c0) as f64 / (t1 - t0).as_nanos() as f64;
    assert!(cores <= 0.6, "used {cores:.2} cores with cpu = 0.5");
    assert!(
        cores >= 0.25,
        "the spinner should use about half a core, used {cores:.2}"
    );
    sup.down();
}

/// What the seccomp policy refuses, as a program inside sees it: each call with its errno.
/// EPERM for the calls named in the policy, ENOSYS for everything not on its allow-list
/// (x32 numbers, io_uring, unknown numbers, socket families and personalities it does not
/// list). The same list is in README.md, "How the sandbox works".
const REFUSED: [(&str, &str); 25] = [
    ("io_uring_setup", "ENOSYS"),
    ("io_uring_enter", "ENOSYS"),
    ("io_uring_register", "ENOSYS"),
    ("userfaultfd", "EPERM"),
    ("bpf", "EPERM"),
    ("perf_event_open", "EPERM"),
    ("keyctl", "EPERM"),
    ("add_key", "EPERM"),
    ("request_key", "EPERM"),
    ("kexec_load", "EPERM"),
    ("init_module", "EPERM"),
    ("finit_module", "EPERM"),
    ("open_by_handle_at", "EPERM"),
    ("mount", "EPERM"),
    ("setns", "EPERM"),
    ("unshare", "EPERM"),
    ("ptrace", "EPERM"),
    ("personality", "ENOSYS"),
    ("socket-vsock", "ENOSYS"),
    ("socket-packet", "ENOSYS"),
    ("socket-netlink-audit", "ENOSYS"),
    ("x32-getpid", "ENOSYS"),
    ("x32-socket", "ENOSYS"),
    ("unknown-1000", "ENOSYS"),
    ("clone-newnet", "EPERM"),
];

#[test]
fn every_refused_call_and_escape_is_refused_inside_and_the_rest_still_works() {
    let mut sup = Supervisor::start(
        "refused",
        r#"
[[agent]]
name = "prober"
command = "/bin/ckprobe"
args = ["refused"]
restart = "never"
"#,
    );
    sup.wait_state("prober", "exited", Duration::from_secs(30));
    let out = sup.logs("prober");
    assert!(out.contains("refused: done"), "{out}");
    let seen: Vec<(String, String)> = out
        .lines()
        .filter(|l| {
            !l.starts_with("[clawkeep") && !l.starts_with("allowed-") && !l.starts_with("refused:")
        })
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    let expected: Vec<(String, String)> = REFUSED
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(seen, expected, "{out}");
    for allowed in [
        "allowed-socket-inet",
        "allowed-socket-netlink-route",
        "allowed-personality-query",
    ] {
        assert!(out.contains(&format!("{allowed}: ok")), "{allowed}: {out}");
    }
    sup.down();
}
