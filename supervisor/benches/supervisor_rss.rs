//! Supervisor memory: RSS of `clawkeep up` with 0 and with 50 sandboxed idle agents, and
//! proof that no helper process runs per agent (the supervisor's only children are the
//! sandboxes' inits, which live inside the sandboxes).
//!
//! Run: cargo bench -p supervisor --bench supervisor_rss   (root)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

/// (VmRSS kB, Pss kB) of a process.
fn memory(pid: u32) -> (u64, u64) {
    let field = |file: &str, key: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("status", "VmRSS:"), field("smaps_rollup", "Pss:"))
}

/// Children of every thread of `pid` (each thread has its own children list).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .flat_map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn measure(agents: usize) -> (u64, u64, usize, u64, u64) {
    let body: String = (0..agents)
        .map(|i| {
            format!(
                "[[agent]]\nname = \"idle-{i}\"\ncommand = \"/bin/sleep\"\nargs = [\"100000\"]\nmemory = \"32MiB\"\n\n"
            )
        })
        .collect();
    let mut sup = support::Supervisor::start(&format!("rss{agents}"), &body);
    support::wait_for(Duration::from_secs(120), "every agent running", || {
        let ps = sup.ps();
        ps["processes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "running")
            .then_some(())
    });
    // Let the sampler and the API settle, then measure.
    std::thread::sleep(Duration::from_secs(3));
    let pid = sup.child.id();
    let (rss, pss) = memory(pid);
    let kids = children(pid);
    assert!(
        kids.iter().all(|k| comm(*k) == "clawkeep-init"),
        "only sandbox inits may be the supervisor's children: {:?}",
        kids.iter().map(|k| comm(*k)).collect::<Vec<_>>()
    );
    let (init_rss, init_pss) = kids
        .iter()
        .map(|k| memory(*k))
        .fold((0, 0), |(a, b), (r, p)| (a + r, b + p));
    let n = kids.len().max(1) as u64;
    sup.down();
    (rss, pss, kids.len(), init_rss / n, init_pss / n)
}

fn main() {
    println!("supervisor memory, `clawkeep up` with N idle sandboxed agents (busybox sleep)");
    println!();
    println!("| agents | supervisor RSS MiB | supervisor PSS MiB | children | per-agent init RSS KiB | per-agent init PSS KiB |");
    println!("|---|---|---|---|---|---|");
    for n in [0usize, 50] {
        let (rss, pss, kids, irss, ipss) = measure(n);
        println!(
            "| {n} | {:.1} | {:.1} | {kids} (all clawkeep-init) | {} | {} |",
            rss as f64 / 1024.0,
            pss as f64 / 1024.0,
            if n == 0 { 0 } else { irss },
            if n == 0 { 0 } else { ipss }
        );
    }
}
