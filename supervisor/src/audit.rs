//! `clawkeep audit`: checks with stable IDs that the node is as locked down as the fleet
//! says. Each finding names what it concerns and how to fix it; any finding makes the
//! command exit 1. This holds the state-dir checks; the store's are in `brains::audit`, and
//! an OpenClaw fleet's in `openclaw_checks::audit`.

use serde::{Deserialize, Serialize};

use crate::engine::Shared;
pub use crate::findings::{finding, mode_finding, Finding};

/// The reply of `GET /v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditReport {
    /// Every check that ran, by ID, with what it checks.
    pub checks: Vec<(String, String)>,
    /// What they found.
    pub findings: Vec<Finding>,
}

/// Checks and their meaning; IDs never change meaning once published.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "CK-STATE-001",
        "the state dir, logs, control socket and secrets are private to root",
    ),
    (
        "CK-STORE-001",
        "the store enforces each agent's grants itself (not only clawkeep)",
    ),
    (
        "CK-STORE-002",
        "store keys and secrets on disk are readable by root only",
    ),
    (
        "CK-STORE-003",
        "no bucket holds what the sync boundary keeps home (secrets, sessions, .git)",
    ),
    ("CK-STORE-004", "the store answers"),
    (
        "CK-SBX-001",
        "every process of every running agent has no capabilities, no_new_privs, a seccomp filter and an unprivileged host uid",
    ),
    (
        "CK-SBX-002",
        "every running agent's network namespace has loopback only",
    ),
    (
        "CK-LOG-001",
        "no log holds a secret's value or an agent's gateway token",
    ),
    (
        "CK-EGR-001",
        "no agent's egress allow-list leads to the node itself, its link or a metadata service",
    ),
    (
        "CK-OC-001",
        "OpenClaw fleets: each agent's ~/.openclaw is 0700 and its openclaw.json private to it",
    ),
    (
        "CK-OC-002",
        "OpenClaw fleets: each agent's openclaw.json on disk keeps what clawkeep enforces (loopback bind, local mode, token auth, port 18789, no update checks, telemetry or catalog refreshes, the model provider at http://127.0.0.1:11434)",
    ),
    (
        "CK-OC-003",
        "OpenClaw fleets: each agent's gateway token file is 0600 and the token strong (never shown)",
    ),
    (
        "CK-OC-004",
        "OpenClaw fleets: the runtime agents mount is the pinned one, installed, read-only, its bundle.json unchanged",
    ),
    (
        "CK-OC-AUDIT",
        "OpenClaw fleets: OpenClaw's own `security audit` of each agent's configuration (a copy, in a sandbox like the agent's), its findings as CK-OC-AUDIT/<checkId> (critical: high, warn: medium); fs.* and gateway.trusted_proxies_missing are left out (see openclaw_checks::security_audit::IGNORED)",
    ),
];

/// Run every check.
pub async fn run(shared: &std::sync::Arc<Shared>) -> AuditReport {
    let mut findings = Vec::new();
    let state = &shared.paths.state_dir;
    for (p, mask, fix) in [
        (
            shared.paths.logs(),
            0o077,
            "chmod 700 it: agents' output may hold what they were told",
        ),
        (
            shared.paths.socket(),
            0o077,
            "chmod 600 it: whoever can connect controls the fleet",
        ),
        (
            state.join("brains"),
            0o077,
            "chmod 700 it: it holds every agent's store key",
        ),
        (
            state.join(crate::secrets::store::DIR),
            0o077,
            "chmod 700 it: it holds the node key and every agent's secrets",
        ),
        (
            crate::secrets::Store::new(state).key_path(),
            0o077,
            "chmod 600 it: it decrypts every agent's secrets",
        ),
        (
            crate::secrets::Store::new(state).file_path(),
            0o077,
            "chmod 600 it: the agents' secrets, encrypted",
        ),
        (
            state.join("ledger"),
            0o022,
            "chmod go-w it: the token ledger must not be forged",
        ),
    ] {
        findings.extend(mode_finding("CK-STATE-001", &p, mask, fix));
    }
    if let Some(b) = &shared.brains {
        findings.extend(b.audit().await);
    }
    let sh = shared.clone();
    if let Ok(more) = tokio::task::spawn_blocking(move || {
        let mut v = crate::sandbox_audit::sandboxes(&sh);
        v.extend(crate::sandbox_audit::logs(&sh));
        v.extend(crate::sandbox_audit::egress(&sh));
        v
    })
    .await
    {
        findings.extend(more);
    }
    findings.extend(crate::openclaw_checks::audit::run(shared).await);
    AuditReport {
        checks: CHECKS
            .iter()
            .map(|(i, d)| (i.to_string(), d.to_string()))
            .collect(),
        findings,
    }
}
