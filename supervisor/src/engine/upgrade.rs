//! `clawkeep upgrade` and `clawkeep rollback`: move a running OpenClaw fleet to another
//! installed runtime one agent at a time, canary first. Each agent is restarted on the new
//! runtime and must pass a gate (its gateway's `/readyz`, then one real message answered
//! through its own `/v1/chat/completions`) before the next one moves; any failure puts every
//! agent moved so far back on the runtime it ran before, automatically.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
// tokio's clock, so the gate's deadlines follow paused time in the unit tests.
use tokio::time::Instant;

use super::process::{Command, Def, Process};
use super::status::Health;
use super::Shared;
use crate::fleet::runtime::{pick, OpenclawRuntime};

/// How long an agent may take to pass the gate after its restart.
const GATE_TIMEOUT: Duration = Duration::from_secs(240);
/// The gate's test message when the request names none.
const DEFAULT_MESSAGE: &str = "Reply with one word: are you there?";

/// What `POST /v1/upgrade` asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeRequest {
    /// OpenClaw version to move to (installed with `clawkeep runtime install`).
    pub openclaw: String,
    /// Node pin the runtime must match ("24", "24.21.0"), if any.
    pub node: Option<String>,
    /// Agent upgraded first; the others follow only if it passes.
    pub canary: Option<String>,
    /// Test message each upgraded agent must answer.
    pub message: Option<String>,
}

/// What an upgrade or a rollback did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpgradeReport {
    /// Whether every agent ended on the requested runtime (a rollback: on the old one).
    pub ok: bool,
    /// The runtime moved to, as "openclaw V on node N (id)".
    pub to: String,
    /// Agents that passed the gate on it, in order.
    pub upgraded: Vec<String>,
    /// Agents put back on their previous runtime after a failure.
    pub rolled_back: Vec<String>,
    /// What failed, if anything.
    pub error: Option<String>,
    /// One line per step, for the operator.
    pub steps: Vec<String>,
}

/// Each agent's runtime before the last upgrade, for `rollback`.
pub type Before = Vec<(String, Option<OpenclawRuntime>)>;

/// Describe a runtime for messages.
pub fn describe(rt: &OpenclawRuntime) -> String {
    format!(
        "openclaw {} on node {} ({})",
        rt.openclaw,
        rt.node,
        &rt.id[..12.min(rt.id.len())]
    )
}

/// The OpenClaw agents, canary first, then fleet order.
fn order(shared: &Shared, canary: Option<&str>) -> Result<Vec<Arc<Process>>, String> {
    let agents: Vec<Arc<Process>> = shared
        .processes
        .iter()
        .filter(|p| matches!(p.def, Def::Agent(_)))
        .cloned()
        .collect();
    let Some(c) = canary else { return Ok(agents) };
    let Some(first) = agents.iter().find(|p| p.def.name() == c).cloned() else {
        let names: Vec<&str> = agents.iter().map(|p| p.def.name()).collect();
        return Err(format!(
            "no agent named {c:?} to use as the canary (agents: {})",
            names.join(", ")
        ));
    };
    let mut out = vec![first];
    out.extend(agents.into_iter().filter(|p| p.def.name() != c));
    Ok(out)
}

async fn command(
    p: &Process,
    make: fn(oneshot::Sender<Result<(), String>>) -> Command,
) -> Result<(), String> {
    let (tx, rx) = oneshot::channel();
    p.commands
        .send(make(tx))
        .await
        .map_err(|_| "the supervisor is shutting down".to_string())?;
    rx.await
        .map_err(|_| "the supervisor is shutting down".to_string())?
}

/// What happens to the agent's OpenClaw state while it is stopped between two runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// Moving forward: save the state of the runtime it leaves.
    Save,
    /// Moving back: put back the state saved when it left the runtime it returns to.
    Restore,
}

/// Save or restore the agent's state (it is stopped) for a move from `from` to `to`.
async fn handle_state(
    shared: &Shared,
    p: &Process,
    from: Option<&OpenclawRuntime>,
    to: Option<&OpenclawRuntime>,
    how: Carry,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    let name = p.def.name().to_string();
    let dir = shared.paths.agent(&name);
    let home = dir.join("home");
    match (how, from, to) {
        (Carry::Save, Some(from), _) => {
            let dest = dir.join("pre-upgrade").join(&from.id);
            let bytes =
                tokio::task::spawn_blocking(move || crate::openclaw::backup::save(&home, &dest))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            steps.push(format!(
                "{name}: saved its OpenClaw state ({bytes} bytes) for a rollback"
            ));
        }
        (Carry::Restore, from, Some(to)) => {
            let backup = dir.join("pre-upgrade").join(&to.id);
            if !backup.is_dir() {
                return Ok(());
            }
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let left = from
                .map(|r| r.id[..12.min(r.id.len())].to_string())
                .unwrap_or_default();
            let aside = dir.join("set-aside").join(format!("{stamp}-{left}"));
            let shown = aside.display().to_string();
            tokio::task::spawn_blocking(move || {
                crate::openclaw::backup::restore(&home, &backup, &aside)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            steps.push(format!(
                "{name}: put back its pre-upgrade OpenClaw state (what the newer runtime wrote is kept in {shown})"
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Wait until the agent's health check passes (its gateway's /readyz); fail as soon as it
/// exits instead.
async fn ready(p: &Process, deadline: Instant) -> Result<(), String> {
    use super::status::State;
    let restarts = p.status().restarts;
    loop {
        let st = p.status().clone();
        if st.health == Some(Health::Healthy) && st.state == State::Running {
            return Ok(());
        }
        let gone = matches!(st.state, State::Exited | State::Backoff | State::CrashLoop);
        if gone || st.restarts > restarts {
            let how = st
                .last_exit
                .map(|e| e.detail.unwrap_or_else(|| format!("{:?}", e.reason)))
                .or(st.message)
                .unwrap_or_else(|| "see clawkeep logs".into());
            return Err(format!("it exited ({how})"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "its gateway was not ready within {}s",
                GATE_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Send the test message to the agent's OpenClaw and require an answer.
async fn answers(
    shared: &Shared,
    p: &Process,
    message: &str,
    deadline: Instant,
) -> Result<String, String> {
    let token = crate::openclaw::token::load_or_mint(&shared.paths.token(p.def.name()))
        .map_err(|e| e.to_string())?;
    let body = serde_json::json!({
        "model": "openclaw/main",
        "messages": [{ "role": "user", "content": message }]
    });
    let port = crate::openclaw::config::GATEWAY_PORT;
    let req = hyper::Request::post("/v1/chat/completions")
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let left = deadline.saturating_duration_since(Instant::now());
    // An answer of a few words; a megabyte is plenty, and bounds what the agent can send.
    let (status, body) = shared.launcher.request(p, port, req, left, 1 << 20).await?;
    if status == hyper::StatusCode::NOT_FOUND {
        return Err("the test message got HTTP 404: the agent's OpenAI-compatible endpoint is off (hint: do not set gateway.http.endpoints.chatCompletions.enabled = false in its openclaw settings; clawkeep's template turns it on)".into());
    }
    if !status.is_success() {
        return Err(format!(
            "the test message got HTTP {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let text = v
        .pointer("/choices/0/message/content")
        .and_then(|c| c.as_str())
        .unwrap_or_default()
        .trim()
        .to_string();
    if text.is_empty() {
        return Err(format!("the test message got an empty answer: {v}"));
    }
    Ok(text)
}

/// Move `p` to `rt` (None: the fleet's pin) and check it: stop, save or restore its state,
/// start, ready, then (when `message` is set) one answer.
async fn move_to(
    shared: &Shared,
    p: &Process,
    rt: Option<OpenclawRuntime>,
    how: Carry,
    message: Option<&str>,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    let name = p.def.name().to_string();
    let from = p.runtime(&shared.fleet);
    let to = rt.clone().or_else(|| shared.fleet.openclaw.clone());
    let label = to.as_ref().map(describe).unwrap_or_default();
    p.logs.event(&format!("moving to {label}"));
    command(p, Command::Stop).await?;
    handle_state(shared, p, from.as_ref(), to.as_ref(), how, steps).await?;
    p.set_runtime(rt);
    command(p, Command::Start).await?;
    let deadline = Instant::now() + GATE_TIMEOUT;
    ready(p, deadline).await?;
    steps.push(format!("{name}: ready on {label}"));
    if let Some(m) = message {
        let t0 = Instant::now();
        let answer = answers(shared, p, m, deadline).await?;
        steps.push(format!(
            "{name}: answered the test message in {:.1}s ({} chars)",
            t0.elapsed().as_secs_f64(),
            answer.len()
        ));
    }
    Ok(())
}

/// Upgrade the running fleet (see the module docs). Holds `before` (each agent's previous
/// runtime) for a later `rollback`.
pub async fn upgrade(
    shared: &Shared,
    before: &mut Option<Before>,
    req: &UpgradeRequest,
) -> Result<UpgradeReport, String> {
    let Some(pinned) = &shared.fleet.openclaw else {
        return Err(
            "this fleet pins no OpenClaw runtime ([runtime] openclaw): nothing to upgrade".into(),
        );
    };
    let (id, m) = pick(&pinned.runtimes, &req.openclaw, req.node.as_deref()).ok_or_else(|| {
        format!(
            "no installed runtime in {} has OpenClaw {}{} (hint: clawkeep runtime install BUNDLE --dest {})",
            pinned.runtimes.display(),
            req.openclaw,
            req.node.as_deref().map(|n| format!(" on node {n}")).unwrap_or_default(),
            pinned.runtimes.display()
        )
    })?;
    let target = OpenclawRuntime {
        openclaw: m.openclaw,
        node: m.node,
        path: pinned.runtimes.join(&id),
        id,
        runtimes: pinned.runtimes.clone(),
    };
    let agents = order(shared, req.canary.as_deref())?;
    let message = req.message.as_deref().unwrap_or(DEFAULT_MESSAGE);
    let mut report = UpgradeReport {
        to: describe(&target),
        ..Default::default()
    };
    let previous: Before = agents
        .iter()
        .map(|p| (p.def.name().to_string(), p.runtime(&shared.fleet)))
        .collect();
    for p in &agents {
        let name = p.def.name().to_string();
        if p.runtime(&shared.fleet).is_some_and(|r| r.id == target.id) {
            report.steps.push(format!("{name}: already on it"));
            report.upgraded.push(name);
            continue;
        }
        match move_to(
            shared,
            p,
            Some(target.clone()),
            Carry::Save,
            Some(message),
            &mut report.steps,
        )
        .await
        {
            Ok(()) => report.upgraded.push(name),
            Err(e) => {
                let what = format!("{name} failed the gate on {}: {e}", report.to);
                tracing::warn!("upgrade: {what}; rolling back");
                report.steps.push(what.clone());
                report.error = Some(what);
                // Back, in reverse, for every agent moved so far (this one included).
                let moved: Vec<&Arc<Process>> = agents
                    .iter()
                    .filter(|q| {
                        report.upgraded.iter().any(|n| n == q.def.name())
                            || q.def.name() == p.def.name()
                    })
                    .collect();
                for q in moved.into_iter().rev() {
                    let old = previous
                        .iter()
                        .find(|(n, _)| n == q.def.name())
                        .and_then(|(_, r)| r.clone());
                    let keep = if shared.fleet.openclaw.as_ref().map(|r| &r.id)
                        == old.as_ref().map(|r| &r.id)
                    {
                        None
                    } else {
                        old
                    };
                    match move_to(shared, q, keep, Carry::Restore, None, &mut report.steps).await {
                        Ok(()) => report.rolled_back.push(q.def.name().to_string()),
                        Err(e) => report.steps.push(format!(
                            "{}: rollback did not come back ready: {e}",
                            q.def.name()
                        )),
                    }
                }
                report.upgraded.clear();
                return Ok(report);
            }
        }
    }
    *before = Some(previous);
    report.ok = true;
    Ok(report)
}

/// Put every agent back on the runtime it ran before the last upgrade.
pub async fn rollback(
    shared: &Shared,
    before: &mut Option<Before>,
) -> Result<UpgradeReport, String> {
    let Some(prev) = before.take() else {
        return Err("no upgrade to roll back since this supervisor started (hint: an automatic rollback already ran if an upgrade failed; `clawkeep ps` shows each agent's runtime)".into());
    };
    let mut report = UpgradeReport::default();
    for (name, rt) in prev.iter().rev() {
        let Some(p) = shared.process(name) else {
            continue;
        };
        let keep = if shared.fleet.openclaw.as_ref().map(|r| &r.id) == rt.as_ref().map(|r| &r.id) {
            None
        } else {
            rt.clone()
        };
        report.to = rt.as_ref().map(describe).unwrap_or_default();
        match move_to(shared, p, keep, Carry::Restore, None, &mut report.steps).await {
            Ok(()) => report.rolled_back.push(name.clone()),
            Err(e) => {
                report.error = Some(format!("{name}: {e}"));
                report
                    .steps
                    .push(format!("{name}: not ready after the rollback: {e}"));
            }
        }
    }
    report.ok = report.error.is_none();
    Ok(report)
}
