//! Serving HTTP/1 on a socket a hostile peer can reach: a cap on open connections, a
//! deadline for every request head (which also closes a kept-alive connection left idle),
//! and connections that end with the serving task.
//!
//! The model gateway serves each agent's socket this way; the supervisor's control API and
//! egress proxy use the same bounds. Whatever a peer does, it holds at most
//! `max_connections` descriptors and tasks, and a connection that sends nothing is closed
//! after `head_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::serve::Listener;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How much of the server one peer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Connections open at once; more are accepted and closed at once.
    pub max_connections: usize,
    /// Time a client has to send a whole request head, counted from when the connection
    /// is ready for one: a new connection, or a kept-alive one after its last answer.
    pub head_timeout: Duration,
}

impl Bounds {
    /// The default for an agent's socket: 256 connections (a client at 64 requests in
    /// flight that drops and reopens connections briefly holds more), 30 s for a request head.
    pub const AGENT: Bounds = Bounds {
        max_connections: 256,
        head_timeout: Duration::from_secs(30),
    };
}

impl Default for Bounds {
    fn default() -> Self {
        Self::AGENT
    }
}

/// An HTTP/1 connection builder with `bounds`' head deadline and hyper's header limits.
pub fn http1(bounds: &Bounds) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(bounds.head_timeout);
    b
}

/// Why a connection was turned away before any request was read.
pub type Refusal = String;

/// Serve `router` on `listener` within `bounds` until the returned future is dropped (its
/// connections end with it). `admit` sees each accepted connection first: a refusal is
/// answered 403 with its text to every request on that connection. `name` says whose
/// socket it is in the warning when connections are turned away (at most one a minute).
pub async fn serve<L, A>(mut listener: L, router: Router, bounds: Bounds, name: String, admit: A)
where
    L: Listener,
    A: Fn(&L::Io) -> Result<(), Refusal> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(bounds.max_connections.max(1)));
    let builder = http1(&bounds);
    let mut conns = JoinSet::new();
    let mut turned_away = 0u64;
    let mut last_warning: Option<Instant> = None;
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(io); // The peer sees its connection closed at once.
            turned_away += 1;
            if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_warning = Some(Instant::now());
                tracing::warn!(
                    "{name}: {} connections are open, the most allowed; new ones are closed ({turned_away} so far)",
                    bounds.max_connections
                );
            }
            continue;
        };
        let svc = match admit(&io) {
            Ok(()) => router.clone(),
            Err(why) => refusing(why),
        };
        let conn = builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc))
            .with_upgrades();
        conns.spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
}

/// A router that answers every request 403 with `why`.
fn refusing(why: Refusal) -> Router {
    Router::new().fallback(move || {
        let why = why.clone();
        async move {
            let body = serde_json::json!({ "error": why }).to_string();
            (
                StatusCode::FORBIDDEN,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                Body::from(body),
            )
                .into_response()
        }
    })
}

/// Admit every connection.
pub fn anyone<T>(_: &T) -> Result<(), Refusal> {
    Ok(())
}
