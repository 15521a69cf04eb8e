//! The OpenClaw part of `clawkeep audit`, for a fleet that pins OpenClaw: the file checks
//! (CK-OC-001..004, see [`super::checks`]) and OpenClaw's own security audit of every agent
//! (CK-OC-AUDIT/*, see [`super::security_audit`]), run a few at a time within
//! [`AUDIT_BUDGET`] in all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{checks, security_audit};
use crate::engine::Shared;
use crate::findings::{finding, Finding};

/// How long OpenClaw's audits of the whole fleet may take (one takes ~5 s of CPU).
pub const AUDIT_BUDGET: Duration = Duration::from_secs(20);

/// At most this many of OpenClaw's audits run at once (each is a ~600 MB Node process).
const MAX_PARALLEL: usize = 4;

/// One audit of the fleet's OpenClaw agents at a time: each uses the agent's `audit` dir.
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every OpenClaw finding of the fleet (none when it does not pin OpenClaw).
pub async fn run(shared: &Arc<Shared>) -> Vec<Finding> {
    let Some(rt) = shared.fleet.openclaw.clone() else {
        return Vec::new();
    };
    let (sh, pinned) = (shared.clone(), rt.clone());
    let files = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for a in &sh.fleet.agents {
            let home = sh.paths.agent(&a.name).join("home");
            out.extend(checks::state_modes(&a.name, &home));
            let expected = crate::openclaw::config::for_agent(&sh.fleet, a);
            out.extend(checks::config_drift(&a.name, &home, &expected));
            out.extend(checks::token_file(&a.name, &sh.paths.token(&a.name)));
        }
        let names: Vec<&str> = sh.fleet.agents.iter().map(|a| a.name.as_str()).collect();
        out.extend(checks::runtime(&names, &pinned));
        out
    })
    .await
    .unwrap_or_else(|e| {
        vec![finding(
            "CK-OC-001",
            "high",
            "clawkeep",
            format!("the file checks failed: {e}"),
            "a bug: see the supervisor's log",
        )]
    });
    let mut out = files;
    out.extend(openclaw_audits(shared, &rt.path).await);
    out
}

/// OpenClaw's own audit of every agent, [`MAX_PARALLEL`] at a time, within [`AUDIT_BUDGET`].
/// Runs that fail the same way make one finding naming every agent they concern.
async fn openclaw_audits(shared: &Arc<Shared>, runtime: &std::path::Path) -> Vec<Finding> {
    let _one = RUNNING.lock().await;
    let deadline = Instant::now() + AUDIT_BUDGET;
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_PARALLEL);
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut runs = tokio::task::JoinSet::new();
    for (i, a) in shared.fleet.agents.iter().enumerate() {
        let (sh, a, gate) = (shared.clone(), a.clone(), gate.clone());
        runs.spawn(async move {
            let left = deadline.saturating_duration_since(Instant::now());
            let permit = tokio::time::timeout(left, gate.acquire_owned()).await;
            let left = deadline.saturating_duration_since(Instant::now());
            let r = match permit {
                Ok(Ok(_p)) if left > Duration::from_secs(1) => {
                    security_audit::audit_agent(&sh, &a, left).await
                }
                _ => Err(format!(
                    "not run: the {}s given to OpenClaw's audits were used up by other agents",
                    AUDIT_BUDGET.as_secs()
                )),
            };
            (i, a.name, r)
        });
    }
    let mut results = runs.join_all().await;
    results.sort_by_key(|(i, _, _)| *i);
    let mut out = Vec::new();
    let mut failed: Vec<(String, Vec<String>)> = Vec::new();
    for (_, name, r) in results {
        match r {
            Ok(f) => out.extend(f),
            Err(e) => match failed.iter_mut().find(|(m, _)| *m == e) {
                Some((_, names)) => names.push(name),
                None => failed.push((e, vec![name])),
            },
        }
    }
    for (e, names) in failed {
        out.push(finding(
            "CK-OC-AUDIT",
            "medium",
            names.join(", "),
            format!(
                "OpenClaw's own security audit (from {}) could not run: {e}",
                runtime.display()
            ),
            "see CK-OC-004 for the runtime; run `clawkeep audit` again when the node is less busy",
        ));
    }
    out
}
