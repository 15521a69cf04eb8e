//! The process engine through the CLI: restarts with backoff, crash loops, orderly shutdown
//! that leaves nothing behind, logs, and stop/start/restart.

mod support;

use std::time::{Duration, Instant};

use support::{wait_for, Supervisor};

fn pid_of(sup: &Supervisor, name: &str) -> Option<i32> {
    sup.row(name)["pid"].as_i64().map(|p| p as i32)
}

#[test]
fn killed_agent_is_restarted_after_backoff() {
    let sup = Supervisor::start(
        "restart",
        r#"
[[agent]]
name = "worker"
command = "/bin/sh"
args = ["-c", "echo worker up; exec sleep 1000"]
backoff = { initial = "1s", max = "10s" }
"#,
    );
    let first = wait_for(Duration::from_secs(20), "worker to run", || {
        pid_of(&sup, "worker")
    });
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let second = wait_for(Duration::from_secs(20), "worker to come back", || {
        pid_of(&sup, "worker").filter(|p| *p != first)
    });
    let took = killed_at.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "restarted after {took:?}, before the 1s backoff"
    );
    let row = sup.row("worker");
    assert_eq!(row["state"], "running");
    assert_eq!(row["restarts"], 1);
    assert_eq!(row["last_exit"]["reason"]["kind"], "signal");
    assert_eq!(row["last_exit"]["reason"]["value"], 9);
    assert_ne!(first, second);
    let logs = wait_for(Duration::from_secs(10), "the second run's output", || {
        let l = sup.logs("worker");
        (l.matches("worker up").count() == 2).then_some(l)
    });
    assert!(logs.contains("exited: SIGKILL"), "{logs}");
}

#[test]
fn always_failing_command_ends_in_crash_loop() {
    let sup = Supervisor::start(
        "crashloop",
        r#"
[[agent]]
name = "broken"
command = "/bin/sh"
args = ["-c", "echo cannot work; exit 3"]
backoff = { initial = "100ms", max = "200ms" }
crash_loop = { failures = 4, window = "60s", hold = "10m" }
"#,
    );
    let row = sup.wait_state("broken", "crash-loop", Duration::from_secs(30));
    assert_eq!(
        row["last_exit"]["reason"],
        serde_json::json!({"kind": "code", "value": 3})
    );
    assert_eq!(row["restarts"], 3, "{row}");
    assert!(
        row["message"].as_str().unwrap().contains("next try in"),
        "{row}"
    );
    let table = String::from_utf8(sup.cli(&["ps"]).stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("broken") && l.contains("crash-loop")),
        "{table}"
    );
    // It stays held: no new attempt within the hold.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sup.row("broken")["restarts"], 3);
    // The operator can try again at once.
    let out = sup.cli(&["start", "broken"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sup
        .logs("broken")
        .contains("crash loop: 4 restarts within 1m"));
}

#[test]
fn down_stops_agents_then_services_in_reverse_order_and_leaves_nothing() {
    let marker = format!("{}", 500_000 + std::process::id());
    let mut sup = Supervisor::start(
        "down",
        &format!(
            r#"
[[service]]
name = "store"
command = "sleep"
args = ["{marker}"]

[[service]]
name = "models"
command = "/bin/sh"
args = ["-c", "sleep {marker} & sleep {marker} & wait"]
depends_on = ["store"]

[[agent]]
name = "alpha"
command = "/bin/sleep"
args = ["{marker}"]
depends_on = ["models"]

[[agent]]
name = "beta"
command = "/bin/sh"
args = ["-c", "trap 'echo beta got TERM; exit 0' TERM; while true; do sleep 1; done"]
"#
        ),
    );
    for n in ["store", "models", "alpha", "beta"] {
        sup.wait_state(n, "running", Duration::from_secs(30));
    }
    assert!(!sup.leftover_cgroups().is_empty());
    sup.down();
    // The order, from the supervisor's own log.
    let log = sup.log();
    let pos = |name: &str| {
        log.lines()
            .position(|l| l.contains("exited") && l.contains(&format!("process=\"{name}\"")))
            .unwrap_or_else(|| panic!("no exit of {name} in:\n{log}"))
    };
    assert!(
        pos("alpha") < pos("models") && pos("beta") < pos("models"),
        "{log}"
    );
    assert!(pos("models") < pos("store"), "{log}");
    assert!(
        sup.logs_dir_has("beta", "beta got TERM"),
        "beta was stopped with SIGTERM first"
    );
    // Nothing left: no process with our marker, no cgroup.
    let left = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert_eq!(sup.leftover_cgroups(), Vec::<std::path::PathBuf>::new());
    assert!(!sup.state.join("clawkeep.sock").exists());
}

#[test]
fn stop_start_restart_and_logs() {
    let mut sup = Supervisor::start(
        "control",
        r#"
[[agent]]
name = "echo"
command = "/bin/sh"
args = ["-c", "echo started-$$; exec sleep 1000"]
"#,
    );
    // Each run says hello once; wait for it before acting, or a quick stop can beat the echo.
    let said = |n: usize| {
        wait_for(
            Duration::from_secs(10),
            &format!("{n} starts in the log"),
            || (sup.logs("echo").matches("started-").count() == n).then_some(()),
        )
    };
    sup.wait_state("echo", "running", Duration::from_secs(20));
    said(1);
    let out = sup.cli(&["stop", "echo"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo: stopped\n");
    assert_eq!(sup.row("echo")["pid"], serde_json::Value::Null);
    let out = sup.cli(&["start", "echo"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo: running\n");
    said(2);
    let out = sup.cli(&["restart", "echo"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo: running\n");
    said(3);
    let tail = String::from_utf8(sup.cli(&["logs", "echo", "-n", "1"]).stdout).unwrap();
    assert_eq!(tail.lines().count(), 1, "{tail}");
    // Unknown names get a clear error listing what exists.
    let out = sup.cli(&["stop", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no process named \"nope\" (known: echo)"),
        "{err}"
    );
    sup.down();
    // A CLI without a supervisor explains what to do.
    let out = sup.cli(&["ps"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("start one with `clawkeep up FLEET`"));
}

#[test]
fn logs_follow_streams_new_output() {
    let sup = Supervisor::start(
        "follow",
        r#"
[[agent]]
name = "ticker"
command = "/bin/sh"
args = ["-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"]
"#,
    );
    sup.wait_state("ticker", "running", Duration::from_secs(20));
    let mut child = std::process::Command::new(support::clawkeep())
        .args(["logs", "ticker", "-f", "-n", "0"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 4096];
        let mut got = String::new();
        while got.matches("tick-").count() < 3 {
            let n = out.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    });
    wait_for(Duration::from_secs(10), "three followed ticks", || {
        reader.is_finished().then_some(())
    });
    let text = reader.join().unwrap();
    assert!(text.matches("tick-").count() >= 3, "{text}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn health_checks_show_in_ps_and_gate_dependents() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let www = support::Scratch::new("www");
    std::fs::write(www.dir.join("index.html"), "ok").unwrap();
    let sup = Supervisor::start(
        "health",
        &format!(
            r#"
[[service]]
name = "web"
command = "/bin/sh"
args = ["-c", "sleep 2; exec busybox httpd -f -p 127.0.0.1:{port} -h {www}"]
health = {{ http = "http://127.0.0.1:{port}/", interval = "1s" }}

[[service]]
name = "flaky"
command = "sleep"
args = ["1000"]
health = {{ command = ["false"], interval = "200ms", retries = 2 }}

[[agent]]
name = "client"
command = "/bin/sleep"
args = ["1000"]
depends_on = ["web"]
"#,
            www = www.dir.display()
        ),
    );
    // While web is not healthy yet, its dependent waits and says why.
    let waiting = wait_for(
        Duration::from_secs(2),
        "client to wait for web only",
        || {
            let r = sup.row("client");
            (r["message"] == "waiting for web").then_some(r)
        },
    );
    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert_eq!(sup.row("web")["health"], "starting");
    let client = sup.wait_state("client", "running", Duration::from_secs(20));
    assert_eq!(
        sup.row("web")["health"],
        "healthy",
        "client started before web was healthy"
    );
    let _ = client;
    let flaky = wait_for(Duration::from_secs(10), "flaky to turn unhealthy", || {
        let r = sup.row("flaky");
        (r["health"] == "unhealthy").then_some(r)
    });
    assert_eq!(
        flaky["state"], "running",
        "an unhealthy service keeps running"
    );
    let table = String::from_utf8(sup.cli(&["ps"]).stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("web") && l.contains("running (healthy)")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("flaky") && l.contains("running (unhealthy)")),
        "{table}"
    );
    assert!(sup
        .logs("flaky")
        .contains("unhealthy: 2 health checks failed in a row"));
}

#[test]
fn bad_fleet_starts_nothing() {
    let f = support::FleetDir::new(
        "bad",
        r#"
[[agent]]
name = "Bad_Name"
memory = "8MiB"
command = "/bin/sleep"
"#,
    );
    let out = std::process::Command::new(support::clawkeep())
        .arg("up")
        .arg(&f.fleet)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("name is not a DNS label"), "{err}");
    assert!(
        err.contains("memory \"8MiB\" is below the minimum of 16MiB"),
        "{err}"
    );
    assert!(err.ends_with("; nothing was started\n"), "{err}");
    assert!(
        !f.state.exists(),
        "a bad fleet must not even create the state dir"
    );
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(!h.path().join(&f.cgroup).exists());
    }
}

#[test]
fn second_supervisor_on_the_same_state_dir_is_refused() {
    let sup = Supervisor::start("lock", "");
    let out = std::process::Command::new(support::clawkeep())
        .arg("up")
        .arg(&sup.dir.fleet)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let pid = sup.child.id();
    assert!(
        err.contains(&format!(
            "another clawkeep supervisor (pid {pid}) is using state dir"
        )),
        "{err}"
    );
    // The first one is unharmed, and its socket is for root only.
    assert!(sup.cli(&["ps"]).status.success());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(sup.state.join("clawkeep.sock"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn an_agent_is_checked_from_inside_its_sandbox_and_restarted_when_it_stays_unhealthy() {
    // The agent serves /readyz on its own loopback (unreachable from the host), then stops
    // being ready after a while; its check fails twice and the agent is restarted, ready again.
    let body = r#"
[[agent]]
name = "web"
command = "/bin/sh"
args = ["-c", '''mkdir -p /tmp/www; echo ok > /tmp/www/readyz; (sleep 3; rm /tmp/www/readyz) & exec httpd -f -p 127.0.0.1:18789 -h /tmp/www''']
health = { http = "http://127.0.0.1:18789/readyz", interval = "300ms", timeout = "1s", retries = 2, start_period = "0s" }
"#;
    let mut sup = Supervisor::start("agent-health", body);
    wait_for(Duration::from_secs(20), "web healthy", || {
        (sup.row("web")["health"] == "healthy").then_some(())
    });
    assert_eq!(sup.row("web")["restarts"], 0);
    let first = pid_of(&sup, "web");
    wait_for(
        Duration::from_secs(20),
        "web restarted for being unhealthy",
        || (sup.row("web")["restarts"].as_u64() >= Some(1)).then_some(()),
    );
    assert!(
        sup.logs("web").contains("restarting: it stayed unhealthy"),
        "{}",
        sup.logs("web")
    );
    wait_for(Duration::from_secs(20), "web healthy again", || {
        let r = sup.row("web");
        (r["health"] == "healthy" && r["state"] == "running").then_some(())
    });
    assert_ne!(pid_of(&sup, "web"), first, "a new run");
    sup.down();
}

/// The supervisor's peak resident memory so far, in KiB.
fn peak_rss_kib(sup: &Supervisor) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", sup.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_health_answer_with_a_huge_body_costs_the_supervisor_no_memory() {
    // The agent's health endpoint starts answering with a 400 MB body (a sparse file in its
    // home): the supervisor reads the status and a little of the body, never all of it.
    let body = r#"
[[agent]]
name = "fat"
command = "/bin/sh"
args = ["-c", '''mkdir -p $HOME/www; echo ok > $HOME/www/readyz; (sleep 2; rm $HOME/www/readyz; truncate -s 400M $HOME/www/readyz) & exec httpd -f -p 127.0.0.1:18789 -h $HOME/www''']
health = { http = "http://127.0.0.1:18789/readyz", interval = "300ms", timeout = "5s", retries = 2, start_period = "0s" }
"#;
    let mut sup = Supervisor::start("fat-health", body);
    wait_for(Duration::from_secs(20), "fat healthy", || {
        (sup.row("fat")["health"] == "healthy").then_some(())
    });
    let before = peak_rss_kib(&sup);
    // A dozen probes of the big answer.
    std::thread::sleep(Duration::from_secs(6));
    let grown = peak_rss_kib(&sup).saturating_sub(before);
    assert!(
        grown < 50 * 1024,
        "the supervisor's peak memory grew by {grown} KiB while probing a 400 MB answer"
    );
    assert_eq!(sup.row("fat")["health"], "healthy", "status 200 is healthy");
    assert_eq!(sup.row("fat")["restarts"], 0);
    sup.down();
}

#[test]
fn the_supervisor_raises_its_own_open_file_limit_to_the_hard_one() {
    // Started as systemd or the kernel would start it: a soft limit of 1024 (util-linux's
    // prlimit sets it and execs clawkeep).
    let dir = support::FleetDir::new(
        "nofile",
        "[[agent]]\nname = \"a\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"sleep 1000\"]\n",
    );
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--nofile=1024:{hard}"))
        .arg(support::clawkeep())
        .arg("up")
        .arg(&dir.fleet)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Once clawkeep is up (its control socket is there), its limits are what it made them.
    let sock = dir.state.join("clawkeep.sock");
    wait_for(Duration::from_secs(20), "clawkeep up", || {
        sock.exists().then_some(())
    });
    let text = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums, [hard.to_string(), hard.to_string()], "{line}");
}

/// Run `clawkeep ARGS` as the unprivileged user `nobody`, against `sup`'s state dir.
fn cli_as_nobody(sup: &Supervisor, args: &[&str]) -> std::process::Output {
    cli_as(sup, "65534", args)
}

/// Run `clawkeep ARGS` as uid 65534 with group `gid` (and no others).
fn cli_as(sup: &Supervisor, gid: &str, args: &[&str]) -> std::process::Output {
    // nobody cannot reach the build's target dir on every machine: a copy it can run.
    let bin = sup.dir.fleet.parent().unwrap().join("clawkeep-for-nobody");
    if !bin.exists() {
        std::fs::copy(support::clawkeep(), &bin).unwrap();
    }
    std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
        ])
        .arg(&bin)
        .args(args)
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .output()
        .unwrap()
}

#[test]
fn a_user_other_than_root_is_told_permission_denied_even_through_a_loosened_socket() {
    let sup = Supervisor::start("peer", "");
    let out = cli_as_nobody(&sup, &["ps"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("permission denied"), "{err}");
    assert!(!err.contains("no clawkeep supervisor is running"), "{err}");
    // Were the socket's mode loosened, the supervisor still asks the kernel who calls.
    use std::os::unix::fs::PermissionsExt;
    let sock = sup.state.join("clawkeep.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = cli_as_nobody(&sup, &["ps"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody listed the fleet: {err}");
    assert!(err.contains("permission denied: uid 65534"), "{err}");
    assert!(sup.cli(&["ps"]).status.success(), "root is still served");
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn members_of_the_control_group_may_use_the_control_socket_and_no_one_else() {
    let dir = support::FleetDir::new("group", "");
    let text = std::fs::read_to_string(&dir.fleet).unwrap();
    std::fs::write(
        &dir.fleet,
        text.replacen("[node]\n", "[node]\ncontrol_group = \"nogroup\"\n", 1),
    )
    .unwrap();
    let sup = Supervisor::start_in(dir);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(sup.state.join("clawkeep.sock")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().unwrap();
    assert_eq!(meta.gid(), nogroup.gid.as_raw());
    let member = cli_as(&sup, &nogroup.gid.to_string(), &["ps"]);
    assert!(
        member.status.success(),
        "{}",
        String::from_utf8_lossy(&member.stderr)
    );
    // Not a member, even with the socket's mode loosened.
    use std::os::unix::fs::PermissionsExt;
    let sock = sup.state.join("clawkeep.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other = cli_as(&sup, "1", &["ps"]);
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success(), "a non-member listed the fleet");
    assert!(err.contains("control_group's members"), "{err}");
}

/// `nobody` opens 2,000 connections to an agent's operator port and holds them: the
/// supervisor keeps its share for that user (its descriptors barely move), and the
/// operator (root) still reaches the agent.
#[test]
fn a_connection_flood_from_another_user_neither_exhausts_the_supervisor_nor_locks_out_root() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let body = format!(
        r#"
[[agent]]
name = "web"
command = "/bin/sh"
args = ["-c", '''mkdir -p $HOME/www; echo ok > $HOME/www/readyz; exec httpd -f -p 127.0.0.1:18789 -h $HOME/www''']
gateway_port = {port}
health = {{ http = "http://127.0.0.1:18789/readyz", interval = "300ms", timeout = "2s", retries = 2, start_period = "0s" }}
"#
    );
    let mut sup = Supervisor::start("flood", &body);
    wait_for(Duration::from_secs(20), "web healthy", || {
        (sup.row("web")["health"] == "healthy").then_some(())
    });
    let readyz = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        use std::io::{Read, Write};
        s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
        let mut got = String::new();
        s.read_to_string(&mut got).ok()?;
        got.ends_with("ok\n").then_some(())
    };
    assert!(
        readyz().is_some(),
        "the operator port works before the flood"
    );
    let before = open_fds(sup.child.id());
    let flood = r#"
import socket, sys, time
held = []
for _ in range(2000):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        pass
print(len(held), flush=True)
time.sleep(60)
"#;
    let mut flooder = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        // The system's Python: a per-user install (pyenv) is not for nobody to run.
        .args(["/usr/bin/python3", "-c", flood, &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(flooder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let held: usize = line.trim().parse().unwrap_or(0);
    assert!(held >= 1000, "the flood opened only {held:?} connections");
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(sup.child.id());
    let reached = readyz();
    let _ = flooder.kill();
    let _ = flooder.wait();
    assert!(
        during < before + 2 * forward_share() + 16,
        "the supervisor went from {before} to {during} open descriptors under nobody's {} connections",
        line.trim()
    );
    assert!(
        reached.is_some(),
        "root could not reach the agent during the flood"
    );
    sup.down();
}

/// What one user other than root may hold through an operator port.
fn forward_share() -> usize {
    supervisor::engine::forward::PER_USER
}

#[test]
fn an_agents_output_reaches_the_operator_escaped_and_cannot_forge_clawkeeps_events() {
    let body = r#"
[[agent]]
name = "liar"
command = "/bin/sh"
args = ["-c", '''printf '\033[2J\033]0;pwned\007cleared\n[clawkeep 2026-01-01T00:00:00Z] stopped by the operator\n'; echo done=yes; sleep 600''']
"#;
    let mut sup = Supervisor::start("liar", body);
    let shown = wait_for(Duration::from_secs(20), "the agent's output", || {
        let l = sup.logs("liar");
        l.contains("done=yes").then_some(l)
    });
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "{shown:?}"
    );
    assert!(shown.contains("\\u{1b}[2J"), "{shown}");
    assert!(
        shown.contains("(output) [clawkeep 2026-01-01T00:00:00Z] stopped by the operator"),
        "{shown}"
    );
    let json = sup.cli(&["logs", "liar", "--json"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let theirs = |s: &str| {
        lines
            .iter()
            .filter(|l| l["source"] == s)
            .map(|l| l["line"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        theirs("clawkeep")
            .iter()
            .all(|l| !l.contains("stopped by the operator")),
        "{lines:?}"
    );
    assert!(
        theirs("clawkeep").iter().any(|l| l.contains("started")),
        "{lines:?}"
    );
    assert!(theirs("output").iter().any(|l| l.contains("done=yes")));
    let events = sup.cli(&["logs", "liar", "--events"]);
    let events = String::from_utf8_lossy(&events.stdout);
    assert!(
        events.contains("started") && !events.contains("done=yes"),
        "{events}"
    );
    sup.down();
}
