// scratch: run the engine with a hand-built fleet until validation lands
use std::time::Duration;
use supervisor::fleet::*;
fn restart(mode: RestartMode) -> Restart {
    Restart {
        mode,
        backoff_initial: Duration::from_millis(500),
        backoff_max: Duration::from_secs(5),
        crash_failures: 4,
        crash_window: Duration::from_secs(30),
        crash_hold: Duration::from_secs(60),
    }
}
fn agent(i: u32, name: &str, script: &str, mem: u64) -> Agent {
    Agent {
        name: name.into(),
        index: i,
        team: None,
        soul: None,
        gateway_port: None,
        command: Command {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: Default::default(),
        },
        resources: Resources {
            cpu: 0.5,
            memory: mem,
            pids: 64,
            nofile: 1024,
            tmp_size: 16 << 20,
        },
        restart: restart(RestartMode::Always),
        stop_grace: Duration::from_secs(2),
        log: LogPolicy {
            max_size: 1 << 20,
            keep: 2,
        },
        depends_on: vec!["web".into()],
    }
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.get(1).map(|s| s.as_str()) == Some("__sandbox-init") {
        let (st, cfg) = supervisor::sandbox::init::launcher_fds();
        std::process::exit(supervisor::sandbox::init::run(
            std::path::Path::new(&a[2]),
            st,
            cfg,
        ));
    }
    tracing_subscriber::fmt().init();
    let fleet = Fleet {
        path: "/tmp/ck/fleet.toml".into(),
        node: Node {
            name: "scratch".into(),
            state_dir: "/tmp/ck/state".into(),
            cgroup: "clawkeep-scratch".into(),
            uid_base: 1_000_000_000,
        },
        rootfs: "/tmp/ckrootfs".into(),
        agents: vec![
            {
                let mut a = agent(0, "alpha", "echo hello-from-alpha > /tmp/index.html; exec httpd -f -p 127.0.0.1:18789 -h /tmp", 64 << 20);
                a.gateway_port = Some(18900);
                a
            },
            agent(1, "beta", "echo beta fails; exit 3", 64 << 20),
        ],
        services: vec![Service {
            name: "web".into(),
            command: Command {
                program: "/usr/bin/python3".into(),
                args: vec![
                    "-m".into(),
                    "http.server".into(),
                    "--bind".into(),
                    "127.0.0.1".into(),
                    "18555".into(),
                ],
                env: Default::default(),
            },
            cwd: "/tmp".into(),
            restart: restart(RestartMode::Always),
            depends_on: vec![],
            health: Some(Health {
                probe: HealthProbe::Http("http://127.0.0.1:18555/".into()),
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(2),
                retries: 2,
                start_period: Duration::ZERO,
            }),
            ports: vec![18555],
            stop_grace: Duration::from_secs(2),
            log: LogPolicy {
                max_size: 1 << 20,
                keep: 2,
            },
        }],
    };
    supervisor::up::run(fleet, "/tmp/ck/state".into()).unwrap();
}
