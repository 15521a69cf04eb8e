//! OpenClaw's own `openclaw security audit --json`, merged into `clawkeep audit` as
//! `CK-OC-AUDIT/<its checkId>` (critical → high, warn → medium; info is left out).
//!
//! It never runs on the agent's live home, nor as root: each agent's openclaw.json (read
//! without following symlinks) is copied into a fresh home under `<state>/agents/<name>/audit`
//! and the audit runs from the pinned runtime in a sandbox built like the agent's own (its
//! uid range, its rootfs, `/opt/openclaw` read-only, only loopback, no capabilities,
//! seccomp), with the agent's gateway token handed over as the agent gets it. The copy is
//! removed afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::engine::Shared;
use crate::findings::{finding, Finding};
use crate::fleet::Agent;

/// OpenClaw checks left out of the merge, and why. A prefix ending in `.` covers a family.
pub const IGNORED: &[(&str, &str)] = &[
    (
        "fs.",
        "they look at the copy's files, not the agent's (CK-OC-001 checks those); and fs.synced_dir would flag the brain's sync to the store, which is clawkeep's design (secrets and sessions never go)",
    ),
    (
        "gateway.trusted_proxies_missing",
        "about reverse proxies: clawkeep forwards the operator port at the TCP level from the host's loopback (no headers to spoof) and the gateway still demands its token",
    ),
];

/// The directory (in the agent's directory) the copy and its sandbox bundle live in.
pub const DIR: &str = "audit";

/// One finding of OpenClaw's audit, as its `--json` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct OcFinding {
    /// Stable id, e.g. `gateway.bind_no_auth`.
    #[serde(rename = "checkId")]
    pub check_id: String,
    /// `critical`, `warn` or `info`.
    pub severity: String,
    /// One line.
    pub title: String,
    /// What it saw.
    #[serde(default)]
    pub detail: String,
    /// What OpenClaw suggests.
    #[serde(default)]
    pub remediation: Option<String>,
}

#[derive(Deserialize)]
struct Report {
    findings: Vec<OcFinding>,
}

/// The findings in the audit's stdout (a JSON object, possibly after other lines).
pub fn parse(stdout: &[u8]) -> Result<Vec<OcFinding>, String> {
    let start = stdout
        .iter()
        .position(|b| *b == b'{')
        .ok_or("no JSON object in its output")?;
    let mut it = serde_json::Deserializer::from_slice(&stdout[start..]).into_iter::<Report>();
    match it.next() {
        Some(Ok(r)) => Ok(r.findings),
        Some(Err(e)) => Err(format!("its JSON does not read as an audit report: {e}")),
        None => Err("no JSON object in its output".into()),
    }
}

/// Why a check is left out, if it is.
pub fn ignored(check_id: &str) -> Option<&'static str> {
    IGNORED
        .iter()
        .find(|(id, _)| {
            if id.ends_with('.') {
                check_id.starts_with(id)
            } else {
                check_id == *id
            }
        })
        .map(|(_, why)| *why)
}

/// OpenClaw's findings as clawkeep's, for `agent`; `token` is removed from every text.
pub fn to_findings(agent: &str, found: &[OcFinding], token: Option<&str>) -> Vec<Finding> {
    let clean = |s: &str| {
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        match token {
            Some(t) if !t.is_empty() => s.replace(t, "<gateway token>"),
            _ => s,
        }
    };
    found
        .iter()
        .filter(|f| ignored(&f.check_id).is_none())
        .filter_map(|f| {
            let severity = match f.severity.as_str() {
                "critical" => "high",
                "info" => return None,
                _ => "medium",
            };
            let message = if f.detail.is_empty() {
                format!("OpenClaw: {}", clean(&f.title))
            } else {
                format!("OpenClaw: {}: {}", clean(&f.title), clean(&f.detail))
            };
            let advice = f.remediation.as_deref().map(clean).unwrap_or_else(|| {
                format!("see OpenClaw's docs/gateway/security/audit-checks.md for {}", f.check_id)
            });
            Some(finding(
                &format!("CK-OC-AUDIT/{}", f.check_id),
                severity,
                agent,
                message,
                format!(
                    "{advice} (in the agent's `openclaw` table of the fleet file, then `clawkeep restart {agent}`; what clawkeep enforces is written again at every start)"
                ),
            ))
        })
        .collect()
}

/// One agent's audit, ready to run: its sandbox plan and bundle directory, the token.
struct Prepared {
    dir: PathBuf,
    plan: clawkeep_sandbox::bundle::SandboxPlan,
    token: Option<String>,
}

fn remove(dir: &Path) {
    if dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The copy of the agent's configuration in a fresh home, and the sandbox to audit it in;
/// `None` when there is nothing to audit (not started yet, or a config CK-OC-001/002 report).
fn prepare(shared: &Shared, agent: &Agent) -> Result<Option<Prepared>, String> {
    use std::os::unix::fs::PermissionsExt;
    let live = shared.paths.agent(&agent.name).join("home");
    let Ok(bytes) = super::checks::read_config(&live) else {
        return Ok(None);
    };
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    let dir = shared.paths.agent(&agent.name).join(DIR);
    remove(&dir);
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what} {}: {e}", dir.display());
    std::fs::create_dir_all(&dir).map_err(|e| err("create", &e))?;
    // The sandbox's init (the agent's uid on the host) bind-mounts the home by path.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| err("chmod", &e))?;
    let mut plan = crate::engine::start::agent_plan(&shared.fleet, agent, &shared.paths);
    plan.home = dir.join("home");
    clawkeep_sandbox::bundle::prepare_home(&plan.home, plan.host_id).map_err(|e| e.to_string())?;
    crate::openclaw::provision::provision(&crate::openclaw::provision::Provision {
        home: &plan.home,
        scratch: &dir,
        owner: plan.host_id,
        config: &config,
        seeds: &[],
    })
    .map_err(|e| e.to_string())?;
    // Its own cgroup beside the agent's: a dot never appears in a process name.
    plan.cgroup = format!("{}.audit", plan.cgroup);
    let (node, mut args) = crate::fleet::runtime::OpenclawRuntime::gateway_command();
    args.truncate(1);
    plan.args = [node]
        .into_iter()
        .chain(args)
        .chain(["security", "audit", "--json"].map(String::from))
        .collect();
    plan.knowledge.clear();
    plan.secrets_tmpfs = false;
    // Node and OpenClaw's CLI need about 600 MB and a core for a few seconds.
    plan.memory = plan.memory.max(1 << 30);
    plan.cpu = plan.cpu.max(1.0);
    plan.pids = plan.pids.max(256);
    let token = std::fs::read_to_string(shared.paths.token(&agent.name))
        .ok()
        .map(|t| t.trim().to_string());
    Ok(Some(Prepared {
        dir: dir.join("bundle"),
        plan,
        token,
    }))
}

/// Run OpenClaw's audit for one agent within `limit`: its findings, or why it could not run.
pub async fn audit_agent(
    shared: &std::sync::Arc<Shared>,
    agent: &Agent,
    limit: Duration,
) -> Result<Vec<Finding>, String> {
    let (sh, a) = (shared.clone(), agent.clone());
    let prepared = tokio::task::spawn_blocking(move || prepare(&sh, &a))
        .await
        .map_err(|e| e.to_string())??;
    let Some(p) = prepared else {
        return Ok(Vec::new());
    };
    let secrets = match &p.token {
        Some(t) => {
            let payload = crate::secrets::Payload {
                files: Vec::new(),
                env: vec![(
                    crate::openclaw::token::ENV.into(),
                    crate::secrets::Value::new(t.clone()),
                )],
            };
            Some(clawkeep_sandbox::secrets::to_memfd(&payload).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let out = crate::engine::run_once::run(
        &p.dir,
        &p.plan,
        secrets,
        &shared.host,
        &shared.reaper,
        limit,
    )
    .await;
    let copy = p.dir.parent().map(Path::to_path_buf);
    let _ = tokio::task::spawn_blocking(move || copy.as_deref().map(remove)).await;
    let out = out.map_err(|e| e.to_string())?;
    let found = parse(&out.stdout).map_err(|e| {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        format!("{e} (exit {:?}; stderr ends: {tail})", out.code)
    })?;
    Ok(to_findings(&agent.name, &found, p.token.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `openclaw security audit --json` (2026.9.6) printed for a copy of a rendered
    /// config with bind "lan", a world-readable file and a short token.
    const SAMPLE: &str = r#"{
  "ts": 1795957729123,
  "summary": { "critical": 2, "warn": 2, "info": 1 },
  "findings": [
    { "checkId": "summary.attack_surface", "severity": "info", "title": "Attack surface summary",
      "detail": "groups: open=0, allowlist=0\ntools.elevated: enabled" },
    { "checkId": "gateway.control_ui.allowed_origins_required", "severity": "critical",
      "title": "Non-loopback Control UI missing explicit allowed origins",
      "detail": "Control UI is enabled on a non-loopback bind but gateway.controlUi.allowedOrigins is empty." },
    { "checkId": "gateway.token_too_short", "severity": "warn", "title": "Gateway token looks short",
      "detail": "gateway auth token is 3 chars; prefer a long random token (was abc)." },
    { "checkId": "fs.config.perms_world_readable", "severity": "critical", "title": "Config file is world-readable",
      "detail": "/home/agent/.openclaw/openclaw.json mode=644" },
    { "checkId": "gateway.trusted_proxies_missing", "severity": "warn", "title": "Reverse proxy headers are not trusted",
      "detail": "gateway.bind is loopback and gateway.trustedProxies is empty.",
      "remediation": "Set gateway.trustedProxies to your proxy IPs or keep the Control UI local-only." }
  ],
  "secretDiagnostics": []
}"#;

    #[test]
    fn severities_map_and_ignored_checks_are_left_out() {
        let found = parse(format!("some banner\n{SAMPLE}\n").as_bytes()).unwrap();
        assert_eq!(found.len(), 5);
        let f = to_findings("research", &found, Some("abc"));
        let got: Vec<(&str, &str, &str)> = f
            .iter()
            .map(|f| (f.id.as_str(), f.severity.as_str(), f.subject.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "CK-OC-AUDIT/gateway.control_ui.allowed_origins_required",
                    "high",
                    "research"
                ),
                ("CK-OC-AUDIT/gateway.token_too_short", "medium", "research"),
            ]
        );
        assert!(!f[1].message.contains("abc"), "{:?}", f[1]);
        assert!(f[1].message.contains("(was <gateway token>)"), "{:?}", f[1]);
        assert!(f[0].fix.contains("audit-checks.md"), "{:?}", f[0]);
    }

    #[test]
    fn every_ignored_check_says_why() {
        assert!(ignored("fs.state_dir.perms_readable").is_some());
        assert!(ignored("gateway.trusted_proxies_missing").is_some());
        assert!(ignored("gateway.trusted_proxies_missing_more").is_none());
        assert!(ignored("gateway.bind_no_auth").is_none());
        assert!(IGNORED.iter().all(|(_, why)| !why.is_empty()));
    }

    #[test]
    fn output_that_is_not_a_report() {
        assert!(parse(b"Error: boom").unwrap_err().contains("no JSON"));
        assert!(parse(b"{\"x\": 1}").unwrap_err().contains("audit report"));
    }
}
