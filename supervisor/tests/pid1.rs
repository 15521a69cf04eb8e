//! clawkeep as PID 1 of a new PID namespace: it reaps every orphan and shuts down on SIGTERM.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{wait_for, FleetDir};

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// (state, ppid) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

fn zombies_of(parent: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|(state, ppid)| *state == 'Z' && *ppid == parent)
        .count()
}

#[test]
fn pid1_reaps_orphans_and_shuts_down_on_sigterm() {
    let f = FleetDir::new(
        "pid1",
        r#"
[[service]]
name = "orphans"
command = "/bin/sh"
args = ["-c", "for i in $(seq 100); do (sleep 0.3 &); done; echo spawned; exec sleep 1000"]

[[agent]]
name = "agent"
command = "/bin/sleep"
args = ["1000"]
"#,
    );
    // As the kernel starts /sbin/init in the appliance image: no arguments; the fleet file
    // comes from CLAWKEEP_FLEET (default /etc/clawkeep/fleet.toml).
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(support::clawkeep())
        .env("CLAWKEEP_FLEET", &f.fleet)
        .stderr(std::fs::File::create(f.scratch.dir.join("pid1.log")).unwrap())
        .spawn()
        .unwrap();
    let pid1 = wait_for(Duration::from_secs(10), "clawkeep under unshare", || {
        children(unshare.id()).first().copied()
    });
    let ps = || {
        let out = Command::new(support::clawkeep())
            .args(["ps", "--json"])
            .env("CLAWKEEP_STATE_DIR", &f.state)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    };
    let reply = wait_for(Duration::from_secs(30), "100 orphans reaped", || {
        ps().filter(|r| r["orphans_reaped"].as_u64().unwrap_or(0) >= 100)
    });
    assert_eq!(
        reply["supervisor_pid"], 1,
        "clawkeep must be PID 1 of its namespace"
    );
    let log = std::fs::read_to_string(f.scratch.dir.join("pid1.log")).unwrap_or_default();
    assert!(zombies_of(pid1) == 0, "zombies left under PID 1:\n{log}");
    assert_eq!(reply["processes"][1]["state"], "running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid1 as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_for(Duration::from_secs(30), "PID 1 to shut down", || {
        unshare.try_wait().unwrap()
    });
    let log = std::fs::read_to_string(f.scratch.dir.join("pid1.log")).unwrap_or_default();
    assert!(
        log.contains("SIGTERM: stopping agents, then services"),
        "{log}"
    );
    assert!(log.contains("powering off"), "{log}");
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !e.path().join(&f.cgroup).exists(),
            "cgroup left in {}",
            e.path().display()
        );
    }
}
