//! clawkeep under systemd: the unit `clawkeep unit` writes passes `systemd-analyze verify`,
//! and `clawkeep up` tells the service manager what systemd's `Type=notify` and watchdog
//! expect, through a NOTIFY_SOCKET the test listens on: watchdog pings while it runs, ready
//! only once every agent runs, stopping at `down`; its log lines as JSON or for journald;
//! and the client finding it by the state dir its fleet names, as `systemctl` users expect.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{FleetDir, Supervisor};

const AGENT: &str = r#"
[[agent]]
name = "worker"
command = "/bin/sh"
args = ["-c", "sleep 1; while :; do sleep 1; done"]
stop_grace = "20s"
"#;

#[test]
fn the_unit_verifies_and_waits_for_the_fleets_graces_and_last_pushes() {
    let dir = FleetDir::new("unit", AGENT);
    let out = Command::new(support::clawkeep())
        .arg("unit")
        .arg(&dir.fleet)
        .output()
        .unwrap();
    let unit = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", support::text(&out));
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "Delegate=yes",
        "WatchdogSec=30s",
        // 20 s of grace, 30 s of last pushes, 30 s of margin.
        "TimeoutStopSec=80s",
        &format!(
            "ExecStart={} up {}",
            support::clawkeep().display(),
            dir.fleet.display()
        ),
    ] {
        assert!(unit.lines().any(|l| l == line), "{line:?} not in:\n{unit}");
    }
    let file = dir.scratch.dir.join("clawkeep.service");
    std::fs::write(&file, &unit).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze (systemd) not found");
    assert!(verify.status.success(), "{}", support::text(&verify));
    // The check has teeth: a broken line fails it.
    std::fs::write(&file, unit.replace("ExecStart=/", "ExecStart=")).unwrap();
    let broken = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!broken.status.success(), "{}", support::text(&broken));
    // A fleet that cannot start gets no unit.
    let bad = dir.scratch.dir.join("bad.toml");
    std::fs::write(&bad, "[[agent]]\nname = 3\n").unwrap();
    let out = Command::new(support::clawkeep())
        .arg("unit")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", support::text(&out));
}

#[test]
fn up_tells_systemd_it_is_ready_once_every_agent_runs_and_pings_the_watchdog() {
    let dir = FleetDir::new("notify", AGENT);
    let socket = dir.scratch.dir.join("notify.sock");
    let listener = UnixDatagram::bind(&socket).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut sup = Supervisor::start_in_with_env(
        dir,
        &[
            ("NOTIFY_SOCKET", socket.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got: Vec<(Duration, String)> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut ready_state = None;
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(n) = listener.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            if msg.contains("READY=1") && ready_state.is_none() {
                // What a client sees at the moment systemd hears "ready".
                let ps = sup.cli(&["ps", "--json"]);
                ready_state = Some(String::from_utf8_lossy(&ps.stdout).to_string());
            }
            got.push((started.elapsed(), msg));
        }
        let pings = got.iter().filter(|(_, m)| m == "WATCHDOG=1").count();
        if ready_state.is_some() && pings >= 3 {
            break;
        }
    }
    let ready = got
        .iter()
        .find(|(_, m)| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {got:?}\n{}", sup.log()));
    assert!(
        ready.1.contains("STATUS=1 agent and 0 services running on"),
        "{ready:?}"
    );
    let ps: serde_json::Value = serde_json::from_str(ready_state.as_deref().unwrap()).unwrap();
    let worker = ps["processes"]
        .as_array()
        .or_else(|| ps.as_array())
        .unwrap()
        .iter()
        .find(|p| p["name"] == "worker")
        .unwrap_or_else(|| panic!("{ps}"));
    assert_eq!(worker["state"], "running", "ready only once it runs: {ps}");
    // Pinged at about half the period (200 ms), from the start.
    let pings: Vec<Duration> = got
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    assert!(pings.len() >= 3, "{got:?}");
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(400)),
        "pings further apart than the period: {gaps:?}"
    );
    sup.down();
    let mut stopping = false;
    for _ in 0..20 {
        if let Ok(n) = listener.recv(&mut buf) {
            stopping |= String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
        }
    }
    assert!(stopping, "no STOPPING=1 at down");
}

#[test]
fn log_lines_come_as_json_or_for_the_journal() {
    for (format, check) in [("json", "json"), ("journal", "journal")] {
        let dir = FleetDir::new(&format!("log-{format}"), AGENT);
        let mut sup = Supervisor::start_in_with_env(dir, &[("CLAWKEEP_LOG_FORMAT", format)]);
        support::wait_for(Duration::from_secs(20), "the ready line", || {
            sup.log().contains("clawkeep ready").then_some(())
        });
        sup.down();
        let log = sup.log();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() >= 3, "{log}");
        for line in &lines {
            match check {
                "json" => {
                    let v: serde_json::Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
                }
                _ => {
                    // No time stamp of its own: journald adds one.
                    assert!(
                        line.starts_with(" INFO ")
                            || line.starts_with(" WARN ")
                            || line.starts_with("ERROR ")
                            || line.starts_with("DEBUG ")
                            || line.starts_with("INFO ")
                            || line.starts_with("WARN "),
                        "{line}"
                    );
                }
            }
        }
    }
}

#[test]
fn client_commands_find_the_supervisor_by_the_state_dir_its_fleet_names() {
    let dir = FleetDir::new("by-fleet", AGENT);
    let fleet = dir.fleet.clone();
    let sup = Supervisor::start_in(dir);
    let ps = |args: &[&str]| {
        Command::new(support::clawkeep())
            .args(args)
            .env_remove("CLAWKEEP_STATE_DIR")
            .env_remove("CLAWKEEP_FLEET")
            .output()
            .unwrap()
    };
    let fleet = fleet.display().to_string();
    for args in [
        vec!["--fleet", fleet.as_str(), "ps"],
        vec!["ps", "--fleet", fleet.as_str()],
    ] {
        let out = ps(&args);
        assert!(out.status.success(), "{args:?}: {}", support::text(&out));
        assert!(support::text(&out).contains("worker"), "{args:?}");
    }
    let out = Command::new(support::clawkeep())
        .arg("ps")
        .env_remove("CLAWKEEP_STATE_DIR")
        .env("CLAWKEEP_FLEET", &fleet)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out));
    // An explicit state dir wins over the fleet's.
    let out = ps(&["--fleet", &fleet, "--state-dir", "/nonexistent", "ps"]);
    assert_eq!(out.status.code(), Some(4), "{}", support::text(&out));
    drop(sup);
}
