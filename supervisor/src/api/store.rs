//! Control-API handlers of the knowledge store: sync status, push and pull by hand, clone
//! and restore.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::server::{error, ApiState};
use crate::brains::Brains;
use crate::engine::process::Command;

fn brains(st: &ApiState) -> Result<&Brains, Box<Response>> {
    st.shared.brains.as_deref().ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "this fleet has no [store]: there is nothing to sync",
        ))
    })
}

/// `GET /v1/sync`.
pub async fn status(State(st): State<ApiState>) -> Response {
    match brains(&st) {
        Ok(b) => Json(b.status().await).into_response(),
        Err(r) => *r,
    }
}

/// Query of `POST /v1/sync/{name}/{action}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PassQuery {
    /// Make the deletions a pass would hold back (`--allow-deletes`).
    #[serde(default)]
    pub allow_deletes: bool,
    /// Answer with a stream of [`PassLine`]s (NDJSON): the pass's progress every
    /// [`PROGRESS_EVERY`] while it runs, then its report.
    #[serde(default)]
    pub progress: bool,
}

/// Query of `POST /v1/store/migrate`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MigrateQuery {
    /// Answer with a stream of [`StreamLine`]s: the copy's progress, then what was copied.
    #[serde(default)]
    pub progress: bool,
}

/// How often a progress stream says where the pass is.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// One line of a progress stream (NDJSON): where the work is, then its answer or error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamLine<T> {
    /// Where the work is.
    Progress(clawkeep_store::ProgressSnapshot),
    /// The work ended: what it did.
    Report(T),
    /// The work could not be done.
    Error(String),
}

/// A sync pass's progress stream.
pub type PassLine = StreamLine<Box<clawkeep_store::SyncReport>>;

impl<T: Serialize> StreamLine<T> {
    fn bytes(&self) -> Result<bytes::Bytes, std::io::Error> {
        let mut line = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok(line.into())
    }
}

/// Run `work` in its own task and stream `progress` every [`PROGRESS_EVERY`], then its
/// answer. A client that goes away stops the stream, not the work.
fn streamed<T, F>(progress: std::sync::Arc<clawkeep_store::PassProgress>, work: F) -> Response
where
    T: Serialize + Send + 'static,
    F: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let end = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tick.tick() => {
                    let line = StreamLine::<T>::Progress(progress.snapshot());
                    let _ = tx.send(line.bytes()).await;
                }
            }
        };
        let last = match end {
            Ok(r) => StreamLine::Report(r),
            Err(e) => StreamLine::Error(e),
        };
        let _ = tx
            .send(StreamLine::<T>::Progress(progress.snapshot()).bytes())
            .await;
        let _ = tx.send(last.bytes()).await;
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}

/// A sync pass with its progress streamed (the follower finishes it if the client goes).
fn streamed_pass(st: &ApiState, name: String, mut opts: clawkeep_store::PassOptions) -> Response {
    let Some(brains) = st.shared.brains.clone() else {
        return error(StatusCode::NOT_FOUND, "this fleet has no [store]");
    };
    let progress = std::sync::Arc::new(clawkeep_store::PassProgress::new());
    opts.progress = Some(progress.clone());
    streamed(progress, async move {
        brains.pass(&name, opts).await.map(Box::new)
    })
}

/// `POST /v1/sync/{name}/{push|pull|takeover}`.
pub async fn pass(
    State(st): State<ApiState>,
    Path((name, action)): Path<(String, String)>,
    Query(q): Query<PassQuery>,
) -> Response {
    let b = match brains(&st) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let full = match action.as_str() {
        "push" => false,
        "pull" => true,
        "takeover" => return takeover(&st, b, &name).await,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown sync action {other:?} (use push, pull or takeover)"),
            )
        }
    };
    let opts = clawkeep_store::PassOptions {
        full,
        allow_deletes: q.allow_deletes,
        progress: None,
    };
    if q.progress {
        return streamed_pass(&st, name, opts);
    }
    match b.pass(&name, opts).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// Query of `GET /v1/sync/{name}/history`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// How many of the newest pushes (default 20).
    pub last: Option<usize>,
}

/// `GET /v1/sync/{name}/history`.
pub async fn history(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let b = match brains(&st) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match b.history(&name, q.last.unwrap_or(20).clamp(1, 1000)).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// Take the brain's lease, then start the agent if it is not running (it was refused).
async fn takeover(st: &ApiState, b: &Brains, name: &str) -> Response {
    let msg = match b.takeover(name).await {
        Ok(m) => m,
        Err(e) => return error(StatusCode::CONFLICT, e),
    };
    let running = st
        .shared
        .process(name)
        .is_some_and(|p| p.status().state == crate::api::types::State::Running);
    let started = if running {
        Ok(())
    } else {
        send(st, name, Command::Start).await
    };
    let msg = match started {
        Ok(()) => msg,
        Err(e) => format!("{msg}; starting {name} failed: {e}"),
    };
    Json(serde_json::json!({ "message": msg })).into_response()
}

/// Body of `POST /v1/clone`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CloneRequest {
    /// Agent whose brain is copied.
    pub from: String,
    /// New agent name.
    pub to: String,
}

/// `POST /v1/clone`.
pub async fn clone(State(st): State<ApiState>, Json(req): Json<CloneRequest>) -> Response {
    let b = match brains(&st) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if !crate::fleet::is_dns_label(&req.to) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{:?} cannot name an agent (use 1-63 lowercase letters, digits and '-')",
                req.to
            ),
        );
    }
    match b.clone_brain(&req.from, &req.to).await {
        Ok(msg) => Json(serde_json::json!({ "message": msg })).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// Body of `POST /v1/restore`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// Agent.
    pub agent: String,
    /// The time, as the user wrote it.
    pub at: String,
    /// Only say what would change.
    pub dry_run: bool,
}

/// Send a lifecycle command to a process and wait for its answer (as `clawkeep restart`).
pub(super) async fn send(
    st: &ApiState,
    name: &str,
    make: fn(oneshot::Sender<Result<(), String>>) -> Command,
) -> Result<(), String> {
    let p = st
        .shared
        .process(name)
        .ok_or_else(|| format!("no agent named {name:?}"))?;
    let (tx, rx) = oneshot::channel();
    p.commands
        .send(make(tx))
        .await
        .map_err(|_| "the supervisor is shutting down".to_string())?;
    rx.await
        .map_err(|_| "the supervisor is shutting down".to_string())?
}

/// `POST /v1/restore`: stop the agent, restore its brain, start it again.
pub async fn restore(State(st): State<ApiState>, Json(req): Json<RestoreRequest>) -> Response {
    let b = match brains(&st) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let at = match clawkeep_store::history::parse_time(&req.at) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if req.dry_run {
        return match b.restore(&req.agent, at, true).await {
            Ok(plan) => Json(plan).into_response(),
            Err(e) => error(StatusCode::CONFLICT, e),
        };
    }
    if let Err(e) = send(&st, &req.agent, Command::Stop).await {
        return error(
            StatusCode::CONFLICT,
            format!("cannot stop {} for the restore: {e}", req.agent),
        );
    }
    let result = b.restore(&req.agent, at, false).await;
    let started = send(&st, &req.agent, Command::Start).await;
    match (result, started) {
        (Ok(plan), Ok(())) => Json(plan).into_response(),
        (Ok(_), Err(e)) => error(
            StatusCode::CONFLICT,
            format!("restored, but {} did not start again: {e}", req.agent),
        ),
        (Err(e), _) => error(StatusCode::CONFLICT, format!("nothing was restored: {e}")),
    }
}

/// Body of `POST /v1/store/migrate`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MigrateRequest {
    /// Target store URL; its path is the new bucket prefix.
    pub to: String,
    /// File with the target's `access_key:secret_key`.
    pub credentials: String,
    /// The target's region.
    pub region: String,
}

/// `POST /v1/store/migrate`.
pub async fn migrate(
    State(st): State<ApiState>,
    Query(q): Query<MigrateQuery>,
    Json(req): Json<MigrateRequest>,
) -> Response {
    let b = match brains(&st) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let progress = std::sync::Arc::new(clawkeep_store::PassProgress::new());
    if q.progress {
        let Some(brains) = st.shared.brains.clone() else {
            return error(StatusCode::NOT_FOUND, "this fleet has no [store]");
        };
        let p = progress.clone();
        return streamed(progress, async move {
            let credentials = std::path::PathBuf::from(&req.credentials);
            brains.migrate(&req.to, &credentials, &req.region, &p).await
        });
    }
    match b
        .migrate(
            &req.to,
            std::path::Path::new(&req.credentials),
            &req.region,
            &progress,
        )
        .await
    {
        Ok(copied) => Json(copied).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}
