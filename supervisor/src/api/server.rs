//! The control API server: axum on the supervisor's Unix socket.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use tokio::net::UnixListener;
use tokio::sync::{oneshot, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::types::{ApiError, PsReply};
use crate::engine::process::Command;
use crate::engine::Shared;

/// What the handlers need.
#[derive(Clone)]
pub struct ApiState {
    /// The engine's shared state.
    pub shared: Arc<Shared>,
    /// Set to true to ask the supervisor for an orderly shutdown.
    pub shutdown: watch::Sender<bool>,
}

/// A JSON error answer.
pub fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ApiError { error: msg.into() })).into_response()
}

fn unknown(shared: &Shared, name: &str) -> Response {
    let names: Vec<&str> = shared.processes.iter().map(|p| p.def.name()).collect();
    error(
        StatusCode::NOT_FOUND,
        format!("no process named {name:?} (known: {})", names.join(", ")),
    )
}

/// The router (exposed for tests).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/ps", get(ps))
        .route("/v1/logs/{name}", get(logs))
        .route("/v1/processes/{name}/{action}", post(action))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/audit", get(audit))
        .route("/v1/doctor", get(doctor))
        .route("/v1/sync", get(super::store::status))
        .route("/v1/sync/{name}/{action}", post(super::store::pass))
        .route("/v1/sync/{name}/history", get(super::store::history))
        .route("/v1/clone", post(super::store::clone))
        .route("/v1/restore", post(super::store::restore))
        .route("/v1/store/migrate", post(super::store::migrate))
        .route("/v1/upgrade", post(super::upgrade::upgrade))
        .route("/v1/rollback", post(super::upgrade::rollback))
        .route("/v1/agents/{name}/token", get(super::token::show))
        .route("/v1/agents/{name}/exec", post(super::exec::target))
        .route("/v1/agents/{name}/token/rotate", post(super::token::rotate))
        .with_state(state)
}

/// Bind the control socket at `socket` so that only root (and `group`'s members, when given)
/// can ever connect: it is made in a fresh 0700 directory beside it, given its owner and
/// mode there (0600, or root:group 0660) and only then renamed into place, so there is no
/// moment when it is reachable with looser rights (and no process-wide umask).
pub fn listen(socket: &std::path::Path, group: Option<u32>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = socket.parent().unwrap_or(std::path::Path::new("."));
    let private = parent.join(format!(".clawkeep.sock.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let made = (|| {
        let inner = private.join("sock");
        let listener = UnixListener::bind(&inner)?;
        let mode = match group {
            Some(gid) => {
                std::os::unix::fs::chown(&inner, None, Some(gid))?;
                0o660
            }
            None => 0o600,
        };
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&inner, socket)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    made
}

/// Who may use the control API: root, the user the supervisor runs as, and members of
/// `group` (the caller's own group or one of its supplementary groups). Checked on the
/// peer's credentials (SO_PEERCRED), whatever the socket's mode has become.
pub fn admit(peer: &tokio::net::UnixStream, group: Option<u32>) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    let c = peer.peer_cred().map_err(|e| {
        format!("permission denied: the control socket could not tell who is calling ({e})")
    })?;
    if c.uid() == 0 || c.uid() == me {
        return Ok(());
    }
    if let Some(gid) = group {
        let member = c.gid() == gid || c.pid().is_some_and(|pid| in_group(pid, gid));
        if member {
            return Ok(());
        }
    }
    Err(format!(
        "permission denied: uid {} may not use clawkeep's control socket (only root{} may; run the command with sudo{})",
        c.uid(),
        if group.is_some() { " and [node] control_group's members" } else { "" },
        if group.is_some() { ", or join that group" } else { ", or set [node] control_group" },
    ))
}

/// Whether process `pid` has `gid` among its supplementary groups (`Groups:` of its status).
fn in_group(pid: i32, gid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|g| g.split_whitespace().any(|n| n.parse() == Ok(gid)))
}

/// Serve the API on `listener` until the process ends: for root's callers (and `group`'s),
/// with the same connection bounds as an agent's model socket.
pub async fn serve(
    listener: UnixListener,
    state: ApiState,
    group: Option<u32>,
) -> std::io::Result<()> {
    clawkeep_gateway::listen::serve(
        listener,
        router(state),
        clawkeep_gateway::listen::Bounds::AGENT,
        "control socket".into(),
        move |peer: &tokio::net::UnixStream| admit(peer, group),
    )
    .await;
    Ok(())
}

async fn ps(State(st): State<ApiState>) -> Json<PsReply> {
    let shared = st.shared.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for p in &shared.processes {
            p.refresh();
        }
    })
    .await;
    Json(PsReply {
        node: st.shared.fleet.node.name.clone(),
        supervisor_pid: std::process::id() as i32,
        orphans_reaped: st.shared.reaper.orphans_reaped(),
        processes: st
            .shared
            .processes
            .iter()
            .map(|p| agent_row(&st.shared, p))
            .collect(),
    })
}

#[derive(Deserialize)]
struct LogQuery {
    lines: Option<usize>,
    follow: Option<bool>,
    /// Only clawkeep's events about the process (kept apart from its output).
    events: Option<bool>,
}

async fn logs(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Some(p) = st.shared.process(&name) else {
        return unknown(&st.shared, &name);
    };
    let events = q.events.unwrap_or(false);
    let sink = p.logs.clone();
    let pick = move |s: &crate::engine::logs::LogSink| {
        if events {
            s.events().follow()
        } else {
            s.follow()
        }
    };
    // Subscribe before reading the tail so nothing falls between them.
    let live = q.follow.unwrap_or(false).then(|| pick(&sink));
    let lines = q.lines.unwrap_or(100);
    let read = move || {
        if events {
            sink.events().tail(lines)
        } else {
            sink.tail(lines)
        }
    };
    let tail = match tokio::task::spawn_blocking(read).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let head = tokio_stream::once(Ok::<Bytes, std::io::Error>(Bytes::from(tail)));
    match live {
        None => Body::from_stream(head).into_response(),
        Some(rx) => {
            let rest = BroadcastStream::new(rx).map(|r| {
                Ok(r.unwrap_or_else(|_| {
                    Bytes::from_static(
                        b"\n[clawkeep] log follower fell behind; some output was skipped\n",
                    )
                }))
            });
            Body::from_stream(head.chain(rest)).into_response()
        }
    }
}

async fn action(
    State(st): State<ApiState>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let Some(p) = st.shared.process(&name) else {
        return unknown(&st.shared, &name);
    };
    let (tx, rx) = oneshot::channel();
    let cmd = match action.as_str() {
        "start" => Command::Start(tx),
        "stop" => Command::Stop(tx),
        "restart" => Command::Restart(tx),
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?} (use start, stop or restart)"),
            )
        }
    };
    if p.commands.send(cmd).await.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the supervisor is shutting down",
        );
    }
    match rx.await {
        Ok(Ok(())) => Json(p.row()).into_response(),
        Ok(Err(msg)) => error(StatusCode::CONFLICT, msg),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the supervisor is shutting down",
        ),
    }
}

async fn shutdown(State(st): State<ApiState>) -> Response {
    st.shutdown.send_replace(true);
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"shutdown": "started"})),
    )
        .into_response()
}

async fn audit(State(st): State<ApiState>) -> Json<crate::audit::AuditReport> {
    Json(crate::audit::run(&st.shared).await)
}

/// A process's row, with what only an agent has: its operator URL, model and tokens today.
fn agent_row(shared: &Shared, p: &crate::engine::process::Process) -> super::types::ProcessRow {
    let mut row = p.row();
    if let crate::engine::process::Def::Agent(a) = &p.def {
        row.runtime = p
            .runtime(&shared.fleet)
            .map(|r| crate::engine::upgrade::describe(&r));
        row.url = a
            .gateway_port
            .map(|port| format!("http://127.0.0.1:{port}"));
        if let Some(gw) = &shared.gateway {
            row.model = a.model.clone().or_else(|| {
                shared
                    .fleet
                    .models
                    .as_ref()
                    .and_then(|m| m.config.default.clone())
            });
            let (agent, _team) = gw.used_today(&a.name, a.team.as_deref());
            row.tokens_today = Some(agent);
        }
    }
    row
}

async fn doctor(State(st): State<ApiState>) -> Json<crate::audit::AuditReport> {
    Json(crate::doctor::run(&st.shared).await)
}
