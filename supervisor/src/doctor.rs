//! `clawkeep doctor`: is the node working? Processes up and healthy, brains in step with the
//! store, room on the state dir's disk, agents' disk limits enforceable and not nearly used. Findings carry stable IDs, what they concern and what
//! to do, like `clawkeep audit` (which asks instead whether the node is locked down). An
//! OpenClaw fleet's runtime and gateways are checked in `openclaw_checks::doctor`.

use crate::audit::AuditReport;
use crate::engine::status::{Health, State};
use crate::engine::Shared;
use crate::findings::finding;

/// Checks and their meaning; IDs never change meaning once published.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "CK-DOC-001",
        "every agent and service runs (not stopped, crash-looping or failed)",
    ),
    ("CK-DOC-002", "every process with a health check is healthy"),
    (
        "CK-DOC-003",
        "every brain and collection is in step with the store (no error, lag under a minute)",
    ),
    (
        "CK-DOC-004",
        "the state dir's disk has room (at least 10% and 1 GiB free)",
    ),
    (
        "CK-DOC-005",
        "OpenClaw fleets: the pinned runtime is installed (low when the node's current runtime differs: an upgrade in progress), and each running agent with a gateway_port answers /readyz through it",
    ),
    (
        "CK-DOC-006",
        "no brain or collection has deletions held back (a pass that would delete much of it waits for `sync push NAME --allow-deletes`)",
    ),
    (
        "CK-DOC-007",
        "agents with a disk limit: the state dir's filesystem enforces project quotas, and no agent uses 90% or more of its limit",
    ),
    (
        "CK-DOC-008",
        "fleets with shared collections: the kernel has Landlock (ABI 2 or later), so agents cannot make FIFOs, sockets or device nodes in a collection",
    ),
];

/// Run every check.
pub async fn run(shared: &std::sync::Arc<Shared>) -> AuditReport {
    let mut findings = Vec::new();
    for p in &shared.processes {
        p.refresh();
        let row = p.row();
        if row.state != State::Running {
            let why = row
                .message
                .clone()
                .or_else(|| row.last_exit.as_ref().and_then(|e| e.detail.clone()))
                .unwrap_or_default();
            findings.push(finding(
                "CK-DOC-001",
                "high",
                &row.name,
                format!("{} is {} {why}", row.name, row.state.as_str())
                    .trim_end()
                    .to_string(),
                format!(
                    "see `clawkeep logs {}`; `clawkeep start {}` once fixed",
                    row.name, row.name
                ),
            ));
        } else if row.health == Some(Health::Unhealthy) {
            findings.push(finding(
                "CK-DOC-002",
                "high",
                &row.name,
                format!("{} fails its health check", row.name),
                format!("see `clawkeep logs {}`", row.name),
            ));
        }
    }
    if let Some(b) = &shared.brains {
        let st = b.status().await;
        if !st.healthy {
            findings.push(finding(
                "CK-DOC-003",
                "high",
                &st.endpoint,
                "the store does not answer: changes wait on this node",
                "see `clawkeep logs store` (managed) or the store's own logs",
            ));
        }
        for r in st.rows {
            let lagging = r.lag_seconds.is_some_and(|s| s > 60.0);
            if r.last_error.is_some() || lagging {
                let what = match (&r.last_error, r.lag_seconds) {
                    (Some(e), _) => format!("last sync failed: {e}"),
                    (None, Some(s)) => format!("{} change(s) waiting for {s:.0}s", r.pending),
                    _ => String::new(),
                };
                findings.push(finding("CK-DOC-003", "medium", format!("{} {}", r.kind, r.name), what, "`clawkeep sync status` shows the detail; `clawkeep sync push NAME` retries now"));
            }
            if let Some(h) = &r.held {
                let target = if r.kind == "agent" {
                    r.name.clone()
                } else {
                    format!("shared:{}", r.name)
                };
                findings.push(finding(
                    "CK-DOC-006",
                    "medium",
                    format!("{} {}", r.kind, r.name),
                    format!("{} deletion(s) in the store held back: {}", h.count, h.reason),
                    format!("if they are meant, `clawkeep sync push {target} --allow-deletes`; until then the store keeps the files"),
                ));
            }
        }
    }
    let dir = &shared.paths.state_dir;
    if let Ok(v) = nix::sys::statvfs::statvfs(dir) {
        let (free, total) = (
            v.blocks_available() * v.fragment_size(),
            v.blocks() * v.fragment_size(),
        );
        if total > 0 && (free * 10 < total || free < 1 << 30) {
            findings.push(finding(
                "CK-DOC-004",
                "high",
                dir.display().to_string(),
                format!("{} MiB free of {} MiB", free >> 20, total >> 20),
                "free space: logs rotate, but brains, the ledger and the store's data grow",
            ));
        }
    }
    findings.extend(disk_limits(shared));
    findings.extend(landlock(
        &shared.fleet.collections(),
        clawkeep_sandbox::special_files::kernel_abi(),
    ));
    findings.extend(crate::openclaw_checks::doctor::run(shared).await);
    AuditReport {
        checks: CHECKS
            .iter()
            .map(|(i, d)| (i.to_string(), d.to_string()))
            .collect(),
        findings,
    }
}

const MIB: f64 = (1u64 << 20) as f64;

/// CK-DOC-008: with shared collections, whether the kernel (Landlock ABI `abi`) keeps
/// special files out of them.
fn landlock(collections: &[&str], abi: Option<i32>) -> Option<crate::findings::Finding> {
    use clawkeep_sandbox::special_files::NEEDED_ABI;
    if collections.is_empty() || abi.is_some_and(|v| v >= NEEDED_ABI) {
        return None;
    }
    let has = match abi {
        Some(v) => format!("Landlock ABI {v} (older than {NEEDED_ABI})"),
        None => "no Landlock (or it is off)".to_string(),
    };
    Some(finding(
        "CK-DOC-008",
        "medium",
        collections.join(", "),
        format!(
            "this kernel has {has}: agents can make FIFOs and sockets in the shared collections {}, channels between agents that no one meters",
            collections.join(", ")
        ),
        "boot Linux 5.19 or later with CONFIG_SECURITY_LANDLOCK and `landlock` in its `lsm=` list; until then the supervisor removes such files whenever it sets a collection up",
    ))
}

/// CK-DOC-007: agents' `disk` limits can be enforced here, and none is nearly used up.
fn disk_limits(shared: &Shared) -> Vec<crate::findings::Finding> {
    let limited: Vec<_> = shared
        .fleet
        .agents
        .iter()
        .filter_map(|a| a.resources.disk.map(|d| (a, d)))
        .collect();
    if limited.is_empty() {
        return Vec::new();
    }
    let dir = &shared.paths.state_dir;
    if let Some(problem) = crate::fleet::disk::quota_problem(dir) {
        let names: Vec<&str> = limited.iter().map(|(a, _)| a.name.as_str()).collect();
        return vec![finding(
            "CK-DOC-007",
            "high",
            dir.display().to_string(),
            format!(
                "disk limits of {} cannot be enforced on this host, so those agents do not start: the state dir {}",
                names.join(", "),
                problem.problem()
            ),
            problem.hint(),
        )];
    }
    let mut out = Vec::new();
    for (a, _) in limited {
        let project = crate::engine::start::host_id(&shared.fleet, a);
        let Ok(u) = clawkeep_sandbox::quota::usage(&shared.paths.agent(&a.name), project) else {
            continue;
        };
        if u.limit > 0 && u.used.saturating_mul(10) >= u.limit.saturating_mul(9) {
            out.push(finding(
                "CK-DOC-007",
                "medium",
                &a.name,
                format!(
                    "{} uses {:.1} MiB of its {:.1} MiB disk limit",
                    a.name,
                    u.used as f64 / MIB,
                    u.limit as f64 / MIB
                ),
                "raise its `disk` in the fleet file, or clear out its home; past the limit its writes fail with \"Disk quota exceeded\"",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_collections_on_a_kernel_without_landlock_are_a_finding() {
        let f = landlock(&["papers"], None).expect("a finding");
        assert_eq!(f.id, "CK-DOC-008");
        assert!(f.message.contains("no Landlock"), "{}", f.message);
        let old = landlock(&["papers"], Some(1)).expect("ABI 1 has no Refer");
        assert!(old.message.contains("ABI 1"), "{}", old.message);
        assert!(landlock(&["papers"], Some(2)).is_none());
        assert!(
            landlock(&[], None).is_none(),
            "nothing shared, nothing to refuse"
        );
    }
}
