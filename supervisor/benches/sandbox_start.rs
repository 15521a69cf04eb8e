//! Sandbox start latency: create → exec of `/bin/true` inside → exit, for the same OCI bundle
//! under `clawkeep run` and `runc run`, and for a bare `unshare` of the same namespaces (the
//! floor), plus the same bundle under the deny-list filter clawkeep had before and without
//! its compiled filter kept beside it. Runs are interleaved so machine noise hits all alike.
//!
//! Run: cargo bench -p supervisor --bench sandbox_start   (root; CLAWKEEP_BENCH_RUNS=100)

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clawkeep_sandbox::bundle::{self, SandboxPlan};

fn time(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let st = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("spawn");
    let d = t.elapsed();
    assert!(st.success(), "{cmd:?} failed: {st}");
    d
}

/// A runner: its name, how to build its command for run i, and its samples.
type Side<'a> = (&'a str, Box<dyn Fn(usize) -> Command + 'a>, Vec<Duration>);

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let runs: usize = std::env::var("CLAWKEEP_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let scratch = support::Scratch::new("bench-start");
    let rootfs = support::rootfs(&scratch.dir);
    let plan = SandboxPlan {
        name: "bench".into(),
        rootfs,
        home: scratch.dir.join("home"),
        cgroup: "clawkeep-bench/true".into(),
        host_id: 1_500_000_000,
        args: vec!["/bin/true".into()],
        env: vec![],
        cpu: 1.0,
        memory: 256 << 20,
        pids: 128,
        nofile: 1024,
        tmp_size: 16 << 20,
        knowledge: Vec::new(),
        secrets_tmpfs: false,
        runtime: None,
        binds: Vec::new(),
        devices: Vec::new(),
        groups: Vec::new(),
    };
    let spec = bundle::spec(&plan).expect("spec");
    bundle::prepare_rootfs(&spec).expect("rootfs");
    bundle::prepare_home(&plan.home, plan.host_id).expect("home");
    let dir = scratch.dir.join("bundle");
    bundle::write(&dir, &spec).expect("bundle");
    // The same bundle under the deny-list filter clawkeep had before default-deny (default
    // allow, the same EPERM/ENOSYS denials), to measure what the allow-list costs.
    let mut deny_only = spec.clone();
    if let Some(linux) = deny_only.linux_mut() {
        if let Some(sec) = linux.seccomp_mut() {
            let denials: Vec<_> = sec
                .syscalls()
                .iter()
                .flatten()
                .filter(|s| s.action() != oci_spec::runtime::LinuxSeccompAction::ScmpActAllow)
                .cloned()
                .collect();
            sec.set_default_action(oci_spec::runtime::LinuxSeccompAction::ScmpActAllow);
            sec.set_default_errno_ret(None);
            sec.set_syscalls(Some(denials));
        }
    }
    let deny_dir = scratch.dir.join("bundle-deny-list");
    bundle::write(&deny_dir, &deny_only).expect("bundle");
    // The same bundle without the filter compiled beside it: `clawkeep run` compiles it at
    // every start (what a bundle written by another tool gets).
    let cold_dir = scratch.dir.join("bundle-uncompiled");
    std::fs::create_dir_all(&cold_dir).expect("mkdir");
    std::fs::copy(dir.join("config.json"), cold_dir.join("config.json")).expect("copy");

    let clawkeep = support::clawkeep();
    let mut sides: Vec<Side> = vec![
        (
            "clawkeep run",
            Box::new(|_| {
                let mut c = Command::new(&clawkeep);
                c.arg("run").arg(&dir);
                c
            }),
            vec![],
        ),
        (
            "clawkeep run, deny-list filter (before)",
            Box::new(|_| {
                let mut c = Command::new(&clawkeep);
                c.arg("run").arg(&deny_dir);
                c
            }),
            vec![],
        ),
        (
            "runc run",
            Box::new(|i| {
                let mut c = Command::new("runc");
                c.arg("run")
                    .arg("-b")
                    .arg(&dir)
                    .arg(format!("ck-bench-{}-{i}", std::process::id()));
                c
            }),
            vec![],
        ),
        (
            "unshare (floor)",
            Box::new(|_| {
                let mut c = Command::new("unshare");
                c.args([
                    "--pid",
                    "--mount",
                    "--net",
                    "--uts",
                    "--ipc",
                    "--fork",
                    "/bin/true",
                ]);
                c
            }),
            vec![],
        ),
        (
            "clawkeep run, filter compiled at start (no seccomp.bpf)",
            Box::new(|_| {
                let mut c = Command::new(&clawkeep);
                c.arg("run").arg(&cold_dir);
                c
            }),
            vec![],
        ),
    ];
    for i in 0..5 {
        for (_, cmd, _) in &sides {
            time(&mut cmd(1_000_000 + i));
        }
    }
    for i in 0..runs {
        for (_, cmd, samples) in sides.iter_mut() {
            samples.push(time(&mut cmd(i)));
        }
    }
    let stats: Vec<(&str, f64, f64)> = sides
        .iter_mut()
        .map(|(name, _, s)| {
            s.sort();
            (*name, pct(s, 0.5), pct(s, 0.95))
        })
        .collect();
    support::remove_cgroup_tree("clawkeep-bench");
    let (ck50, ck95) = (stats[0].1, stats[0].2);
    println!(
        "sandbox start latency, create -> exec /bin/true -> exit, {runs} interleaved runs each"
    );
    println!();
    println!("| runner | p50 ms | p95 ms | clawkeep p50 / this p50 |");
    println!("|---|---|---|---|");
    for (name, p50, p95) in &stats {
        println!("| {name} | {p50:.2} | {p95:.2} | {:.2} |", ck50 / p50);
    }
    println!();
    println!(
        "default-deny / deny-list = {:.2} (target <= 1.1)",
        ck50 / stats[1].1
    );
    println!(
        "clawkeep / runc = {:.2} (target <= 0.3); clawkeep / floor = {:.2} (target <= 3); p95 clawkeep {ck95:.2} ms",
        ck50 / stats[2].1,
        ck50 / stats[3].1
    );
}
