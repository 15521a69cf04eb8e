//! `fleet::load` on the good fixture: defaults applied field by field, paths made absolute,
//! programs resolved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use supervisor::fleet::{self, HealthProbe, RestartMode};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn fleets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fleets")
}

#[test]
fn good_fleet_resolves() {
    let dir = fleets_dir();
    let fleet = fleet::load(&dir.join("good.toml")).expect("good.toml is valid");

    assert_eq!(fleet.path, dir.join("good.toml"));
    assert_eq!(fleet.rootfs, dir.join("rootfs"));
    assert_eq!(fleet.node.name, "lab-1");
    assert_eq!(fleet.node.state_dir, dir.join("state"));
    assert_eq!(fleet.node.cgroup, "clawkeep/lab");
    assert_eq!(fleet.node.uid_base, 2_000_000_000);

    let [research, writer] = fleet.agents.as_slice() else {
        panic!("two agents expected: {:?}", fleet.agents);
    };
    assert_eq!((research.name.as_str(), research.index), ("research", 0));
    assert_eq!((writer.name.as_str(), writer.index), ("writer-2", 1));

    // research: [defaults] with its own overrides.
    assert_eq!(research.command.program, "/usr/local/bin/openclaw");
    assert_eq!(research.command.args, ["gateway"]);
    assert_eq!(research.command.env["LOG_LEVEL"], "debug", "agent env wins");
    assert_eq!(
        research.command.env["REGION"], "lab",
        "defaults env is kept"
    );
    assert_eq!(
        research.soul.as_deref(),
        Some(dir.join("souls/research.md").as_path())
    );
    assert_eq!(research.gateway_port, Some(18789));
    assert_eq!(research.team.as_deref(), Some("science"));
    assert_eq!(research.depends_on, ["minio", "ollama"]);
    assert_eq!(research.resources.cpu, 1.5);
    assert_eq!(research.resources.memory, 512 * MIB);
    assert_eq!(research.resources.pids, 512);
    assert_eq!(research.resources.nofile, 4096);
    assert_eq!(research.resources.tmp_size, 256 * MIB);
    assert_eq!(research.restart.mode, RestartMode::OnFailure);
    assert_eq!(
        research.restart.backoff_initial,
        Duration::from_millis(500),
        "from [defaults]"
    );
    assert_eq!(
        research.restart.backoff_max,
        Duration::from_secs(120),
        "its own"
    );
    assert_eq!(research.restart.crash_failures, 3);
    assert_eq!(research.restart.crash_window, Duration::from_secs(60));
    assert_eq!(research.restart.crash_hold, Duration::from_secs(300));
    assert_eq!(research.stop_grace, Duration::from_secs(10));
    assert_eq!((research.log.max_size, research.log.keep), (5 * MIB, 3));

    // writer-2: its own command, sub-field overrides of log.
    assert_eq!(writer.command.program, "/usr/bin/env");
    assert_eq!(writer.command.args, ["sh"]);
    assert_eq!(writer.team, None);
    assert_eq!(writer.resources.cpu, 2.0);
    assert_eq!(writer.resources.memory, GIB);
    assert_eq!(writer.resources.tmp_size, 64 * MIB);
    assert_eq!((writer.log.max_size, writer.log.keep), (5 * MIB, 10));
    assert!(writer.depends_on.is_empty());

    let [minio, ollama] = fleet.services.as_slice() else {
        panic!("two services expected: {:?}", fleet.services);
    };
    // "sh" is looked up in PATH: resolved to an absolute path.
    assert!(
        Path::new(&minio.command.program).is_absolute(),
        "{}",
        minio.command.program
    );
    assert!(minio.command.program.ends_with("/sh"));
    assert_eq!(minio.cwd, dir, "cwd defaults to the fleet file's directory");
    assert_eq!(minio.ports, [9000, 9001]);
    assert_eq!(minio.restart.mode, RestartMode::Always);
    assert_eq!(
        minio.restart.backoff_initial,
        Duration::from_secs(1),
        "services ignore [defaults]"
    );
    let health = minio.health.as_ref().expect("minio has a health check");
    assert_eq!(
        health.probe,
        HealthProbe::Http("http://127.0.0.1:9000/minio/health/live".into())
    );
    assert_eq!(health.interval, Duration::from_secs(5));
    assert_eq!(health.timeout, Duration::from_secs(5));
    assert_eq!(health.retries, 3);
    assert_eq!(health.start_period, Duration::ZERO);

    assert_eq!(ollama.command.program, "/bin/sh");
    assert_eq!(ollama.cwd, dir.join("souls"));
    assert_eq!(ollama.depends_on, ["minio"]);
    assert_eq!(ollama.stop_grace, Duration::from_secs(30));
    assert_eq!((ollama.log.max_size, ollama.log.keep), (10 * MIB, 3));
    let health = ollama.health.as_ref().expect("ollama has a health check");
    assert_eq!(health.probe, HealthProbe::Command(vec!["true".into()]));
    assert_eq!(health.start_period, Duration::from_secs(60));
}

#[test]
fn defaults_without_any_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("rootfs/bin")).expect("rootfs");
    std::fs::write(dir.path().join("rootfs/bin/agent"), "").expect("program");
    let text =
        "[runtime]\nrootfs = \"rootfs\"\n[[agent]]\nname = \"a\"\ncommand = \"/bin/agent\"\n";
    let fleet = fleet::parse("fleet.toml", text, dir.path()).expect("valid");
    assert_eq!(fleet.path, dir.path().join("fleet.toml"));
    assert_eq!(fleet.node.state_dir, Path::new("/var/lib/clawkeep"));
    assert_eq!(fleet.node.cgroup, "clawkeep");
    assert_eq!(fleet.node.uid_base, 1_000_000_000);
    assert!(!fleet.node.name.is_empty(), "defaults to the host name");
    let a = &fleet.agents[0];
    assert_eq!(a.resources.cpu, 1.0);
    assert_eq!(a.resources.memory, 2 * GIB);
    assert_eq!(a.resources.pids, 512);
    assert_eq!(a.resources.nofile, 4096);
    assert_eq!(a.resources.tmp_size, 256 * MIB);
    assert_eq!(a.restart.mode, RestartMode::Always);
    assert_eq!(a.restart.backoff_initial, Duration::from_secs(1));
    assert_eq!(a.restart.backoff_max, Duration::from_secs(60));
    assert_eq!(a.restart.crash_failures, 5);
    assert_eq!(a.restart.crash_window, Duration::from_secs(60));
    assert_eq!(a.restart.crash_hold, Duration::from_secs(300));
    assert_eq!(a.stop_grace, Duration::from_secs(10));
    assert_eq!((a.log.max_size, a.log.keep), (10 * MIB, 3));
    assert!(a.command.args.is_empty() && a.command.env.is_empty());
}

#[test]
fn a_fleet_of_services_needs_no_runtime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = "[[service]]\nname = \"s\"\ncommand = \"/bin/sh\"\nhealth.command = [\"true\"]\n";
    let fleet = fleet::parse("fleet.toml", text, dir.path()).expect("valid");
    assert!(fleet.agents.is_empty());
    let health = fleet.services[0].health.as_ref().expect("health");
    assert_eq!(
        (health.interval, health.timeout),
        (Duration::from_secs(10), Duration::from_secs(5))
    );
}

#[test]
fn an_empty_file_is_an_empty_fleet() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = fleet::parse("fleet.toml", "", dir.path()).expect("valid");
    assert!(fleet.agents.is_empty() && fleet.services.is_empty());
}
