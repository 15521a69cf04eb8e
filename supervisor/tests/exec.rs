//! `clawkeep exec`: a command run inside a running agent's sandbox sees what the agent sees
//! (namespaces, cgroup, user, environment) and has none of the privileges the agent lacks;
//! with `-it` a shell is interactive on a terminal; a stopped agent is refused. Real
//! namespaces, cgroups and a busybox agent; root.

mod support;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Supervisor;

const FLEET: &str = r#"
[[agent]]
name = "worker"
command = "/bin/sh"
args = ["-c", "exec sleep 100000"]
env = { GREETING = "hello from the fleet" }
memory = "64MiB"
"#;

fn exec(sup: &Supervisor, args: &[&str]) -> std::process::Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    sup.cli(&all)
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exec failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's own process: the sandbox init's only child.
fn agent_pid(init: i64) -> i64 {
    support::wait_for(Duration::from_secs(10), "the agent's process", || {
        let children =
            std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    })
}

/// The lines of a /proc status file that say what a process may do.
fn privileges(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| {
            [
                "CapInh",
                "CapPrm",
                "CapEff",
                "CapBnd",
                "CapAmb",
                "NoNewPrivs",
                "Seccomp:",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn exec_runs_inside_the_agents_sandbox_with_its_view_and_none_of_its_privileges() {
    let mut sup = Supervisor::start("exec", FLEET);
    let row = sup.wait_state("worker", "running", Duration::from_secs(30));
    let init = row["pid"].as_i64().unwrap();
    let agent = agent_pid(init);

    // The same user and network as the agent's own view (nsenter into its namespaces).
    let id = stdout(&exec(&sup, &["worker", "--", "id"]));
    assert_eq!(id, support::in_sandbox(init, "id"));
    assert!(id.starts_with("uid=0 gid=0"), "{id}");
    let links = stdout(&exec(&sup, &["worker", "--", "ip", "link"]));
    assert_eq!(links, support::in_sandbox(init, "ip link"));
    assert!(
        links.contains("lo:") && links.lines().count() == 2,
        "{links}"
    );

    // No capability, no_new_privs, the seccomp filter: exactly what the agent has.
    let status = stdout(&exec(&sup, &["worker", "--", "cat", "/proc/self/status"]));
    let mine = privileges(&status);
    assert!(
        mine.contains(&"CapEff: 0000000000000000".to_string()),
        "{mine:?}"
    );
    assert!(
        mine.contains(&"CapBnd: 0000000000000000".to_string()),
        "{mine:?}"
    );
    assert!(mine.contains(&"NoNewPrivs: 1".to_string()), "{mine:?}");
    assert!(mine.contains(&"Seccomp: 2".to_string()), "{mine:?}");
    let agents = privileges(&std::fs::read_to_string(format!("/proc/{agent}/status")).unwrap());
    assert_eq!(mine, agents, "exec's privileges are the agent's");

    // Every namespace is the agent's, and the cgroup is its cgroup (the root of its
    // cgroup namespace), the pid namespace the one whose PID 1 is clawkeep's init.
    let script = "for n in cgroup ipc mnt net pid user uts; do readlink /proc/self/ns/$n; done";
    let inside = stdout(&exec(&sup, &["worker", "--", "sh", "-c", script]));
    let host: String = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
        .iter()
        .map(|n| {
            let link = std::fs::read_link(format!("/proc/{agent}/ns/{n}")).unwrap();
            format!("{}\n", link.display())
        })
        .collect();
    assert_eq!(inside, host);
    let cgroups = stdout(&exec(&sup, &["worker", "--", "cat", "/proc/self/cgroup"]));
    assert!(
        cgroups.lines().all(|l| l.ends_with(":/")),
        "exec must be in the agent's own cgroup:\n{cgroups}"
    );
    let pid1 = stdout(&exec(&sup, &["worker", "--", "cat", "/proc/1/comm"]));
    assert_eq!(pid1.trim(), "clawkeep-init");

    // Nothing the caller had open reaches the sandbox (this test leaves an fd open without
    // close-on-exec on purpose): the command has stdin, stdout, stderr, and `ls`'s own.
    let leaked = std::fs::File::open("/etc/hostname").unwrap();
    let keep = nix::unistd::dup(&leaked).unwrap();
    let fds = stdout(&exec(&sup, &["worker", "--", "ls", "/proc/self/fd"]));
    assert_eq!(fds, "0\n1\n2\n3\n");
    drop(keep);

    // Its environment and working directory.
    let env = stdout(&exec(
        &sup,
        &["worker", "--", "sh", "-c", "echo $GREETING; pwd"],
    ));
    assert_eq!(env, "hello from the fleet\n/home/agent\n");

    // stdin only with -i; the command's exit code comes back; no such program is 127.
    let mut cat = Command::new(support::clawkeep())
        .args(["exec", "-i", "worker", "--", "cat"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin.take().unwrap().write_all(b"typed in\n").unwrap();
    let out = cat.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "typed in\n");
    // A MiB each way through `cat`: the relay keeps reading while the command's input pipe
    // is full, so neither side waits on the other.
    let mut cat = Command::new(support::clawkeep())
        .args(["exec", "-i", "worker", "--", "cat"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = cat.stdin.take().unwrap();
    let sent: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let writer = {
        let sent = sent.clone();
        std::thread::spawn(move || input.write_all(&sent).unwrap())
    };
    let out = cat.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), sent.len());
    assert!(out.stdout == sent, "the bytes came back changed");
    // Without -t the command's stdin, stdout and stderr are clawkeep's pipes, even when the
    // caller's are a terminal: a process in the sandbox holding the caller's terminal could
    // push keystrokes into the caller's (root) shell with TIOCSTI.
    let pty = nix::pty::openpty(None, None).unwrap();
    let term = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut on_tty = Command::new(support::clawkeep())
        .args(["exec", "-i", "worker", "--", "sh", "-c"])
        .arg("for f in 0 1 2; do readlink /proc/self/fd/$f; done; [ -t 1 ] && echo on-a-tty || echo no-tty")
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .stdin(term(&pty.slave))
        .stdout(term(&pty.slave))
        .stderr(term(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = String::new();
    read_until(&mut master, &mut seen, "tty");
    assert!(on_tty.wait().unwrap().success());
    assert!(seen.contains("no-tty"), "{seen}");
    assert_eq!(seen.matches("pipe:[").count(), 3, "{seen}");
    assert!(!seen.contains("/dev/pts"), "{seen}");
    let mut closed = Command::new(support::clawkeep())
        .args(["exec", "worker", "--", "cat"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(closed.status.success() && closed.stdout.is_empty());
    closed.stdout.clear();
    let code = exec(&sup, &["worker", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code.status.code(), Some(7));
    let missing = exec(&sup, &["worker", "--", "no-such-program"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no-such-program"),
        "{missing:?}"
    );

    // SIGTERM to `clawkeep exec` reaches the command.
    let mut sleeper = Command::new(support::clawkeep())
        .args(["exec", "worker", "--", "sleep", "4242"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .spawn()
        .unwrap();
    support::wait_for(Duration::from_secs(10), "the exec'd sleep", || {
        let ps = stdout(&exec(&sup, &["worker", "--", "ps"]));
        ps.contains("sleep 4242").then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = sleeper.wait().unwrap();
    assert_eq!(st.code(), Some(128 + 15), "the command died of SIGTERM");

    // Each request is in the agent's log, as it was typed.
    let events =
        String::from_utf8_lossy(&sup.cli(&["logs", "worker", "--events"]).stdout).into_owned();
    assert!(events.contains("exec by uid 0: id\n"), "{events}");
    assert!(
        events.contains("exec by uid 0: sh -c 'exit 7'\n"),
        "{events}"
    );
    // The agent itself was not disturbed.
    assert_eq!(sup.row("worker")["restarts"], 0);
    sup.down();
}

#[test]
fn exec_into_a_stopped_agent_is_refused_with_how_to_start_it() {
    let mut sup = Supervisor::start("exec-stopped", FLEET);
    sup.wait_state("worker", "running", Duration::from_secs(30));
    assert!(sup.cli(&["stop", "worker"]).status.success());
    let out = exec(&sup, &["worker", "--", "id"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("agent worker is stopped, not running"),
        "{err}"
    );
    assert!(err.contains("clawkeep start worker"), "{err}");
    // Not root: refused before anything is asked, saying why.
    let out = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(support::clawkeep())
        .args(["exec", "worker", "--", "id"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("needs root"),
        "{err}"
    );
    let unknown = exec(&sup, &["nobody", "--", "id"]);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no agent named \"nobody\""),
        "{unknown:?}"
    );
    sup.down();
}

/// Whether a `sleep 600` runs as the foreground process group of its terminal (its stat's
/// pgrp equals the terminal's foreground group, tpgid).
fn foreground_sleep() -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let dir = e.path();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            if cmdline != b"sleep\x00600\x00" {
                return false;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            // After the name: state, ppid, pgrp, session, tty_nr, tpgid.
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 5 && fields[2] == fields[5]
        })
}

/// Read from the terminal's master side until `want` shows up (or fail after 20 s).
fn read_until(master: &mut std::fs::File, seen: &mut String, want: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !seen.contains(want) {
        assert!(
            Instant::now() < end,
            "no {want:?} on the terminal; saw:\n{seen}"
        );
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(master),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(250u16)).unwrap_or(0) == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) => panic!("the terminal closed before {want:?}; saw:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the terminal: {e}; saw:\n{seen}"),
        }
    }
}

#[test]
fn exec_with_a_terminal_runs_an_interactive_shell_where_ctrl_c_stops_only_the_command() {
    let mut sup = Supervisor::start("exec-tty", FLEET);
    sup.wait_state("worker", "running", Duration::from_secs(30));
    // The test is the operator's terminal: a pseudo-terminal of 40 rows and 120 columns.
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut child = Command::new(support::clawkeep())
        .args(["exec", "-it", "worker", "--", "sh"])
        .env("CLAWKEEP_STATE_DIR", &sup.state)
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = String::new();
    read_until(&mut master, &mut seen, "# ");
    // A terminal inside, the size of ours; `st''arted` is echoed as typed, printed joined.
    master
        .write_all(b"[ -t 0 ] && echo on-a-tty; stty size; echo st''arted; sleep 600\n")
        .unwrap();
    read_until(&mut master, &mut seen, "started");
    assert!(seen.contains("on-a-tty"), "{seen}");
    assert!(
        seen.contains("40 120"),
        "the window size is the caller's: {seen}"
    );
    // Ctrl-C interrupts the sleep (the foreground job), not the shell, which prompts again
    // and says the sleep died of SIGINT. Sent once the shell has made the sleep the
    // terminal's foreground group (before that, Ctrl-C would reach the shell instead).
    support::wait_for(
        Duration::from_secs(20),
        "sleep 600 in the foreground",
        || foreground_sleep().then_some(()),
    );
    master.write_all(b"\x03").unwrap();
    read_until(&mut master, &mut seen, "^C");
    master.write_all(b"echo af''ter $?\n").unwrap();
    read_until(&mut master, &mut seen, "after 130");
    // Nothing of the caller's is open in the shell (the test's own pseudo-terminal and the
    // harness's fds were open without close-on-exec): only the terminal, which ash also
    // keeps as /dev/tty.
    master
        .write_all(
            b"for f in /proc/$$/fd/*; do readlink $f; done | sed 's/[0-9]*$//' | sort -u | tr '\\n' ' '; echo fd''s-listed\n",
        )
        .unwrap();
    read_until(&mut master, &mut seen, "fds-listed");
    assert!(seen.contains("/dev/pts/ /dev/tty fds-listed"), "{seen}");
    master.write_all(b"exit 4\n").unwrap();
    let st = child.wait().unwrap();
    assert_eq!(
        st.code(),
        Some(4),
        "the shell's exit code comes back:\n{seen}"
    );
    let events =
        String::from_utf8_lossy(&sup.cli(&["logs", "worker", "--events"]).stdout).into_owned();
    assert!(
        events.contains("exec by uid 0 with a terminal: sh\n"),
        "{events}"
    );
    sup.down();
}
