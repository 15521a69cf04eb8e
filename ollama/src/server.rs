//! The gateway itself: one axum router per agent socket (whoever connects on an agent's
//! socket is that agent), translating, routing with failover, metering and budgets.
//!
//! Every request an upstream took on is billed, even when the agent hangs up before the
//! answer is delivered: a stream when its relay is dropped (`relay`), a whole answer by
//! reading it to its end on a task of its own (`Unabandoned`).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::StreamExt as _;

use crate::budget::Budgets;
use crate::client::{Answer, CallError, Deadline, UpstreamClient};
use crate::clock::Clock;
use crate::config::GatewayConfig;
use crate::dialect::{self, ApiError, Dialect, Endpoint, ErrorKind, Request, StreamTranslator};
use crate::ledger::{self, Ledger, LedgerError, Outcome, Record};
use crate::metrics::Metrics;
use crate::route::{RouteError, Routes, Upstream};

mod by_credential;
mod relay;

pub use by_credential::{Credential, CredentialError, MIN_CREDENTIAL_LEN};

/// Gateway-wide settings, resolved by the supervisor from the fleet file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body in bytes.
    pub max_body: usize,
    /// Time an upstream may take for a whole answer.
    pub timeout: Duration,
    /// How long a failed upstream is skipped.
    pub cooldown: Duration,
    /// Daily token budgets of teams.
    pub team_budgets: HashMap<String, u64>,
    /// What one agent's socket may hold: connections, and time for a request head.
    pub connections: crate::listen::Bounds,
    /// Time a request body may take to arrive, once its head has.
    pub body_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body: 8 << 20,
            timeout: Duration::from_secs(600),
            cooldown: Duration::from_secs(10),
            team_budgets: HashMap::new(),
            connections: crate::listen::Bounds::AGENT,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Who is calling: fixed per socket, never taken from the request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Agent name.
    pub agent: String,
    /// Its team.
    pub team: Option<String>,
    /// Model used when a request names none.
    pub default_model: Option<String>,
    /// Models it may use (all when None).
    pub allowed: Option<Vec<String>>,
    /// Its daily token budget.
    pub tokens_per_day: Option<u64>,
    /// Requests it may have in flight at once.
    pub max_concurrent: usize,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The routing table is unusable.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The ledger could not be opened or read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The model gateway, shared by every agent's socket.
pub struct Gateway {
    /// Routing table.
    pub routes: Arc<Routes>,
    settings: Settings,
    /// The output-token cap and the extra fields passed upstream (`[models]`).
    forwarding: dialect::Forwarding,
    ledger: Ledger,
    budgets: Budgets,
    /// Live metrics.
    pub metrics: Metrics,
    client: UpstreamClient,
    clock: Arc<dyn Clock>,
    agent_slots: Mutex<HashMap<String, AgentLimits>>,
    /// Torn ledger lines found at start (a crash mid-write), for the operator's log.
    pub torn_records: usize,
}

impl Gateway {
    /// Build the gateway; today's spending is rebuilt from the ledger in `ledger_dir`.
    pub fn new(
        cfg: &GatewayConfig,
        settings: Settings,
        ledger_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, GatewayError> {
        let routes = Arc::new(Routes::new(cfg)?);
        let ledger = Ledger::open(ledger_dir)?;
        let now = clock.now();
        // Today's spending, read a record at a time: a ledger of any size costs no memory.
        let budgets = Budgets::default();
        let torn = ledger::for_each(
            ledger_dir,
            ledger::next_midnight(now) - Duration::from_secs(86_400),
            |r| {
                budgets.add(
                    &r,
                    std::time::UNIX_EPOCH + Duration::from_millis(r.ts_ms),
                    now,
                )
            },
        )?;
        // Plain HTTP to node-local addresses only: no proxies, and no redirect is followed,
        // so a prompt never leaves the node, not even when an upstream answers with one.
        let client = UpstreamClient::new(Duration::from_secs(60));
        Ok(Arc::new(Self {
            routes,
            settings,
            forwarding: cfg.forwarding(),
            ledger,
            budgets,
            metrics: Metrics::default(),
            client,
            clock,
            agent_slots: Mutex::new(HashMap::new()),
            torn_records: torn.count,
        }))
    }

    /// Start the health checks and the periodic ledger flush (inside a tokio runtime).
    pub fn start_background(self: &Arc<Self>, health_every: Duration) {
        // Health checks on connections of their own: a kept-alive connection a check used
        // could be closed by the upstream under an agent's request.
        tokio::spawn(crate::route::health_loop(
            self.routes.clone(),
            UpstreamClient::unpooled(),
            health_every,
        ));
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let m = me.clone();
                let _ = tokio::task::spawn_blocking(move || m.ledger.sync()).await;
            }
        });
    }

    /// Today's tokens of an agent and its team.
    pub fn used_today(&self, agent: &str, team: Option<&str>) -> (u64, u64) {
        self.budgets.used(agent, team, self.clock.now())
    }

    /// The router for one agent's socket.
    pub fn router(self: &Arc<Self>, caller: Arc<Caller>) -> Router {
        let st = Ctx {
            gw: self.clone(),
            caller,
        };
        Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route(
                "/api/version",
                get(|| async { axum::Json(dialect::version()) }),
            )
            .route("/api/tags", get(tags))
            .route("/api/show", post(show))
            .route(
                "/api/chat",
                post(|s: State<Ctx>, b: Body| serve(s, Dialect::Ollama, Endpoint::Chat, b)),
            )
            .route(
                "/api/generate",
                post(|s: State<Ctx>, b: Body| serve(s, Dialect::Ollama, Endpoint::Generate, b)),
            )
            .route(
                "/api/embed",
                post(|s: State<Ctx>, b: Body| serve(s, Dialect::Ollama, Endpoint::Embed, b)),
            )
            .route("/v1/models", get(models))
            .route(
                "/v1/chat/completions",
                post(|s: State<Ctx>, b: Body| serve(s, Dialect::OpenAi, Endpoint::Chat, b)),
            )
            .route(
                "/v1/completions",
                post(|s: State<Ctx>, b: Body| serve(s, Dialect::OpenAi, Endpoint::Generate, b)),
            )
            .route(
                "/v1/embeddings",
                post(|s: State<Ctx>, b: Body| serve(s, Dialect::OpenAi, Endpoint::Embed, b)),
            )
            .fallback(not_found)
            .with_state(st)
    }

    /// Serve one agent's socket until the task is dropped (its connections end with it),
    /// within the fleet's connection bounds.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener, caller: Arc<Caller>) {
        let name = format!("model gateway socket of agent {}", caller.agent);
        // Streams are many small writes: without TCP_NODELAY, Nagle's algorithm holds each
        // one back until the agent's delayed ACK (about 40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let bounds = self.settings.connections;
        crate::listen::serve(
            listener,
            self.router(caller),
            bounds,
            name,
            crate::listen::anyone,
        )
        .await;
    }

    /// Serve the operator's `/metrics` endpoint on `addr` from now on (in a task of its own).
    /// Whoever can reach the address can use it, so it is bounded like an agent's socket,
    /// with fewer connections.
    pub async fn serve_metrics(
        self: &Arc<Self>,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(crate::listen::serve(
            listener,
            self.metrics_router(),
            crate::listen::Bounds {
                max_connections: 16,
                ..crate::listen::Bounds::AGENT
            },
            format!("metrics endpoint {addr}"),
            crate::listen::anyone,
        ));
        Ok(())
    }

    /// Say in the log when the ledger had torn records (a crash mid-write), which were skipped.
    pub fn log_torn_records(&self) {
        if self.torn_records > 0 {
            tracing::warn!(
                "the token ledger has {} torn record(s) from a crash; they are skipped",
                self.torn_records
            );
        }
    }

    /// The operator's `/metrics` endpoint.
    pub fn metrics_router(self: &Arc<Self>) -> Router {
        let gw = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let gw = gw.clone();
                async move {
                    for u in &gw.routes.upstreams {
                        let (up, _, _) = u.state();
                        gw.metrics.upstream(&u.name, up, u.queue.load().1);
                    }
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        gw.metrics.encode(),
                    )
                }
            }),
        )
    }

    fn agent_limits(&self, caller: &Caller) -> AgentLimits {
        let mut m = self.agent_slots.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(caller.agent.clone())
            .or_insert_with(|| AgentLimits {
                slots: Arc::new(Semaphore::new(caller.max_concurrent.max(1))),
                body_bytes: Arc::new(Semaphore::new(body_permits(self.settings.max_body))),
            })
            .clone()
    }

    fn bill(&self, r: Record) {
        if let Err(e) = self.ledger.append(&r) {
            tracing::error!("{e}");
        }
        let now = self.clock.now();
        self.budgets.add(
            &r,
            std::time::UNIX_EPOCH + Duration::from_millis(r.ts_ms),
            now,
        );
        self.metrics.record(&r);
    }
}

/// What one agent may hold in the gateway at once.
#[derive(Clone)]
struct AgentLimits {
    /// Requests in flight (`max_concurrent`).
    slots: Arc<Semaphore>,
    /// Bytes of request bodies in memory: one body of `max_body`, or several smaller ones.
    body_bytes: Arc<Semaphore>,
}

/// Permits of the body-bytes budget for a body of `len` bytes (a semaphore counts in u32).
fn body_permits(len: usize) -> usize {
    len.min(u32::MAX as usize)
}

#[derive(Clone)]
struct Ctx {
    gw: Arc<Gateway>,
    caller: Arc<Caller>,
}

/// The longest model name a request may give (longer ones are refused before anything else).
pub const MODEL_NAME_MAX: usize = 256;

/// Bodies larger than this have their model name measured before they are parsed.
const PRECHECK_OVER: usize = 64 << 10;

/// Everything known about a request while it is being served, for its ledger record.
struct Bill {
    started: Instant,
    ts: SystemTime,
    /// A configured model name once the request's resolved, [`ledger::REFUSED_MODEL`] before.
    model: String,
    /// What the request asked for while `model` is the placeholder (cut short).
    requested: Option<String>,
}

impl Bill {
    fn record(&self, c: &Caller, upstream: Option<&str>, status: u16, outcome: Outcome) -> Record {
        Record {
            ts_ms: ledger::unix_ms(self.ts),
            agent: c.agent.clone(),
            team: c.team.clone(),
            model: self.model.clone(),
            requested: self.requested.clone(),
            upstream: upstream.map(str::to_string),
            prompt_tokens: 0,
            completion_tokens: 0,
            latency_ms: self.started.elapsed().as_millis() as u64,
            status,
            outcome,
            estimated: false,
        }
    }
}

fn error_response(dialect: Dialect, err: &ApiError) -> Response {
    let (body, ct) = dialect::error_body(dialect, err);
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

fn api_error(status: u16, kind: ErrorKind, message: String) -> ApiError {
    ApiError {
        status,
        message,
        kind,
    }
}

/// Answer with an error and bill it (no tokens).
fn refuse(ctx: &Ctx, bill: &Bill, dialect: Dialect, err: ApiError) -> Response {
    ctx.gw
        .bill(bill.record(&ctx.caller, None, err.status, Outcome::Refused));
    error_response(dialect, &err)
}

async fn serve(
    State(ctx): State<Ctx>,
    dialect: Dialect,
    endpoint: Endpoint,
    body: Body,
) -> Response {
    let gw = ctx.gw.clone();
    let mut bill = Bill {
        started: Instant::now(),
        ts: gw.clock.now(),
        model: ledger::REFUSED_MODEL.to_string(),
        requested: None,
    };
    let too_large = || {
        let msg = format!(
            "request body is larger than the gateway's limit of {} bytes (hint: send less context, or raise [models] max_body)",
            gw.settings.max_body
        );
        api_error(413, ErrorKind::TooLarge, msg)
    };
    // A declared length over the limit is refused before a byte of the body is read.
    if axum::body::HttpBody::size_hint(&body).lower() > gw.settings.max_body as u64 {
        return refuse(&ctx, &bill, dialect, too_large());
    }
    // The agent's slot, and room in its body budget for what the body says it will be, are
    // taken before a byte of it is read: however many connections it opens, at most
    // `max_concurrent` requests and `max_body` bytes of bodies of its are in memory at once.
    let limits = gw.agent_limits(&ctx.caller);
    let declared = axum::body::HttpBody::size_hint(&body)
        .exact()
        .map_or(gw.settings.max_body, |n| n as usize)
        .min(gw.settings.max_body);
    let held = async {
        let slot = limits.slots.clone().acquire_owned().await?;
        let bytes = limits
            .body_bytes
            .clone()
            .acquire_many_owned(body_permits(declared) as u32)
            .await?;
        Ok::<_, tokio::sync::AcquireError>((slot, bytes))
    };
    let (agent_slot, _body_bytes) = match held.await {
        Ok(p) => p,
        Err(_) => {
            let msg = "the gateway is shutting down".to_string();
            return refuse(
                &ctx,
                &bill,
                dialect,
                api_error(503, ErrorKind::Upstream, msg),
            );
        }
    };
    let read = read_body(body, declared, gw.settings.max_body);
    let bytes = match tokio::time::timeout(gw.settings.body_timeout, read).await {
        Ok(Some(b)) => b,
        Ok(None) => return refuse(&ctx, &bill, dialect, too_large()),
        Err(_) => {
            let msg = format!(
                "the request body did not arrive within {} s (hint: send the whole body at once)",
                gw.settings.body_timeout.as_secs()
            );
            return refuse(
                &ctx,
                &bill,
                dialect,
                api_error(408, ErrorKind::InvalidRequest, msg),
            );
        }
    };
    // A model name too long to be one is refused before the body is parsed (parsing would
    // copy it twice). Only a large body can hold one: a small one costs no second read.
    let huge_name = (bytes.len() > PRECHECK_OVER)
        .then(|| model_name_len(&bytes))
        .flatten()
        .filter(|n| *n > MODEL_NAME_MAX);
    if let Some(len) = huge_name {
        let msg = format!(
            "the model name is {len} bytes: names are at most {MODEL_NAME_MAX} bytes, without control characters"
        );
        return refuse(
            &ctx,
            &bill,
            dialect,
            api_error(400, ErrorKind::InvalidRequest, msg),
        );
    }
    let req = match dialect::parse_request(dialect, endpoint, &bytes) {
        Ok(r) => r,
        Err(e) => return refuse(&ctx, &bill, dialect, e),
    };
    let caller = ctx.caller.clone();
    let requested = req
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| caller.default_model.clone())
        .or_else(|| gw.routes.default.clone());
    let Some(requested) = requested else {
        let msg = "the request names no model and this agent has no default (hint: set model in the request, or model = \"...\" for the agent in the fleet file)".to_string();
        return refuse(
            &ctx,
            &bill,
            dialect,
            api_error(400, ErrorKind::InvalidRequest, msg),
        );
    };
    // Until it resolves to a model the fleet configures, the name is the agent's alone: a
    // refusal bills and labels it as the placeholder, and keeps it (cut) only in the ledger
    // line and the error message.
    let asked = |bill: &mut Bill| {
        let shown = ledger::cut(&requested, ledger::REQUESTED_MAX);
        bill.requested = Some(shown.clone());
        shown
    };
    if requested.len() > MODEL_NAME_MAX || requested.chars().any(char::is_control) {
        let shown = asked(&mut bill);
        let msg = format!(
            "model {shown:?} is not a model name: names are at most {MODEL_NAME_MAX} bytes, without control characters"
        );
        return refuse(
            &ctx,
            &bill,
            dialect,
            api_error(400, ErrorKind::InvalidRequest, msg),
        );
    }
    // Only an error names what this agent could use instead.
    let visible = || -> String {
        gw.routes
            .names()
            .into_iter()
            .filter(|n| caller.allowed.as_ref().is_none_or(|a| a.contains(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(allowed) = &caller.allowed {
        if !allowed.contains(&requested) {
            let shown = asked(&mut bill);
            let msg = format!(
                "model {shown:?} is not allowed for agent {} (allowed: {})",
                caller.agent,
                visible()
            );
            return refuse(
                &ctx,
                &bill,
                dialect,
                api_error(403, ErrorKind::Forbidden, msg),
            );
        }
    }
    let Some(target) = gw.routes.resolve(&requested) else {
        let shown = asked(&mut bill);
        let msg = format!("model {shown:?} not found (available: {})", visible());
        return refuse(
            &ctx,
            &bill,
            dialect,
            api_error(404, ErrorKind::NotFound, msg),
        );
    };
    // A name the fleet configures from here on: a bounded set of ledger keys and series.
    bill.model = requested.clone();
    let now = gw.clock.now();
    let team_limit = caller
        .team
        .as_ref()
        .and_then(|t| gw.settings.team_budgets.get(t).copied());
    if let Err(ex) = gw.budgets.check(
        &caller.agent,
        caller.tokens_per_day,
        caller.team.as_deref(),
        team_limit,
        now,
    ) {
        let wait = ex
            .resets_at
            .duration_since(now)
            .unwrap_or_default()
            .as_secs()
            .max(1);
        let mut resp = refuse(
            &ctx,
            &bill,
            dialect,
            api_error(429, ErrorKind::BudgetExceeded, ex.to_string()),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let mut pending = Pending {
        req,
        bill,
        model: requested,
        agent_slot,
    };
    let mut last_error = String::from("no upstream serves it");
    for up in gw.routes.candidates(&target) {
        let slot = up.queue.acquire(&caller.agent).await;
        let call = dialect::upstream_call(&pending.req, up.dialect, &target.model, &gw.forwarding);
        let uri = match up.endpoint(call.path) {
            Ok(u) => u,
            Err(e) => {
                last_error = format!("{}: bad URL {e}", up.name);
                continue;
            }
        };
        // A Value always serialises (its map keys are strings).
        let body = Bytes::from(serde_json::to_vec(&call.body).unwrap_or_default());
        let exchange = attempt(gw.clone(), caller.clone(), up, uri, body, slot, pending);
        match Unabandoned::new(gw.clone(), Box::pin(exchange)).await {
            Attempt::Failed {
                error,
                pending: back,
            } => {
                last_error = error;
                pending = back;
            }
            Attempt::Answered { response, record } => {
                if let Some(r) = record {
                    gw.bill(r);
                }
                return response;
            }
        }
    }
    let msg = format!(
        "no upstream for model {:?} could answer: {last_error}",
        pending.model
    );
    refuse(
        &ctx,
        &pending.bill,
        dialect,
        api_error(502, ErrorKind::Upstream, msg),
    )
}

/// Read a request body of `declared` bytes (its Content-Length, else `limit`) into one
/// buffer of that size; `None` when it is longer than `limit`, or the connection broke.
async fn read_body(mut body: Body, declared: usize, limit: usize) -> Option<Bytes> {
    use http_body_util::BodyExt as _;
    let mut buf = bytes::BytesMut::with_capacity(declared.min(limit));
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue; // Trailers.
        };
        if buf.len() + data.len() > limit {
            return None;
        }
        buf.extend_from_slice(&data);
    }
    Some(buf.freeze())
}

/// The length of a request's `model` string, read without copying the body or the name;
/// `None` when it has none, or is not a JSON object (the parser then says why).
fn model_name_len(body: &[u8]) -> Option<usize> {
    #[derive(serde::Deserialize)]
    struct Model<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    let m: Model = serde_json::from_slice(body).ok()?;
    m.model.map(|m| m.len())
}

/// A request on its way to one upstream after another (failover), and the agent's slot.
struct Pending {
    req: Request,
    bill: Bill,
    /// The model as the agent named it (after defaults), which the answer names back.
    model: String,
    agent_slot: OwnedSemaphorePermit,
}

/// What one upstream's try at a request came to.
enum Attempt {
    /// It could not answer (a 5xx, or no answer at all): the next upstream gets the request.
    Failed { error: String, pending: Pending },
    /// An answer, or the upstream's refusal, and its ledger record (none for a stream: its
    /// relay bills it when it ends).
    Answered {
        response: Response,
        record: Option<Record>,
    },
}

/// One upstream's try at the request: sent (again, on a new connection, if the pooled one
/// was closed), then a whole answer read and translated, or a stream's head and relay. It
/// holds the agent's and the upstream's slots until a whole answer is in.
async fn attempt(
    gw: Arc<Gateway>,
    caller: Arc<Caller>,
    up: Arc<Upstream>,
    uri: axum::http::Uri,
    body: Bytes,
    slot: crate::queue::Permit,
    p: Pending,
) -> Attempt {
    let deadline = Deadline::after(gw.settings.timeout);
    let send = |fresh| gw.client.post_json(&uri, body.clone(), deadline, fresh);
    let mut sent = send(false).await;
    if matches!(sent, Err(CallError::Send { stale: true, .. })) {
        // llama-server closes a kept-alive connection after a streamed answer without
        // saying so; the request never reached it, so sending it again (on a new
        // connection) is safe.
        tracing::debug!(upstream = %up.name, "pooled connection was closed; retrying once");
        sent = send(true).await;
    }
    let resp = match sent {
        Ok(r) if r.status().is_server_error() => {
            let status = r.status();
            let body = r.bytes().await.unwrap_or_default();
            let error = format!(
                "{} answered HTTP {status}: {}",
                up.name,
                dialect::upstream_error_message(up.dialect, &body)
            );
            up.failed(gw.settings.cooldown, &error);
            return Attempt::Failed { error, pending: p };
        }
        Ok(r) => r,
        Err(e) => {
            let error = format!("{} did not answer: {e}", up.name);
            up.failed(gw.settings.cooldown, &error);
            return Attempt::Failed { error, pending: p };
        }
    };
    up.succeeded();
    if !resp.status().is_success() {
        // The upstream refused the request itself (4xx): pass its reason on.
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let msg = dialect::upstream_error_message(up.dialect, &body);
        let record = p
            .bill
            .record(&caller, Some(&up.name), status, Outcome::UpstreamError);
        let err = api_error(status, ErrorKind::InvalidRequest, msg);
        return Attempt::Answered {
            response: error_response(p.req.dialect, &err),
            record: Some(record),
        };
    }
    if p.req.stream {
        let slots = (p.agent_slot, slot);
        let response = stream(gw, caller, p.req, p.bill, up, resp, slots, p.model).await;
        Attempt::Answered {
            response,
            record: None,
        }
    } else {
        let (response, record) = whole(&caller, &p.req, &p.bill, &up, resp, &p.model).await;
        Attempt::Answered {
            response,
            record: Some(record),
        }
    }
}

/// An upstream attempt that runs to its end even when the agent hangs up. hyper drops the
/// handler when the agent's connection closes; dropped before its end, the attempt moves
/// onto a task of its own and finishes there: a whole answer is read to its end (the
/// upstream was generating it anyway) and billed with the upstream's own counts as
/// [`Outcome::ClientClosed`]; a stream is cut and billed as a cut stream is (an estimate);
/// an upstream that fails costs nothing, as it would have. One allocation per attempt
/// (the box that lets the running attempt move); no task unless the agent hangs up.
struct Unabandoned {
    gw: Arc<Gateway>,
    attempt: Option<Pin<Box<dyn Future<Output = Attempt> + Send>>>,
}

impl Unabandoned {
    fn new(gw: Arc<Gateway>, attempt: Pin<Box<dyn Future<Output = Attempt> + Send>>) -> Self {
        Self {
            gw,
            attempt: Some(attempt),
        }
    }
}

impl Future for Unabandoned {
    type Output = Attempt;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempt> {
        let me = self.get_mut();
        let Some(attempt) = me.attempt.as_mut() else {
            // Polled again after its end: there is nothing more to give.
            return Poll::Pending;
        };
        let out = std::task::ready!(attempt.as_mut().poll(cx));
        me.attempt = None;
        Poll::Ready(out)
    }
}

impl Drop for Unabandoned {
    fn drop(&mut self) {
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        let gw = self.gw.clone();
        let finish = async move {
            // The response goes nowhere; a stream's relay bills itself as it is dropped.
            if let Attempt::Answered {
                record: Some(mut r),
                ..
            } = attempt.await
            {
                if r.outcome == Outcome::Ok {
                    r.outcome = Outcome::ClientClosed;
                }
                gw.bill(r);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(finish);
            }
            Err(_) => tracing::warn!(
                "an agent hung up mid-answer with no runtime left to finish it on: not billed"
            ),
        }
    }
}

/// A whole answer read, translated, and its ledger record (not yet written).
async fn whole(
    caller: &Caller,
    req: &Request,
    bill: &Bill,
    up: &Upstream,
    resp: Answer,
    model: &str,
) -> (Response, Record) {
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            let err = api_error(
                504,
                ErrorKind::Timeout,
                format!("{} failed mid-answer: {e}", up.name),
            );
            let record = bill.record(caller, Some(&up.name), 504, Outcome::UpstreamError);
            return (error_response(req.dialect, &err), record);
        }
    };
    match dialect::translate_response(req, up.dialect, model, &body) {
        Ok((out, ct, usage)) => {
            let mut r = bill.record(caller, Some(&up.name), 200, Outcome::Ok);
            r.prompt_tokens = usage.prompt_tokens.unwrap_or(0);
            r.completion_tokens = usage.completion_tokens.unwrap_or(0);
            let response = (StatusCode::OK, [(header::CONTENT_TYPE, ct)], out).into_response();
            (response, r)
        }
        Err(e) => {
            let record = bill.record(caller, Some(&up.name), e.status, Outcome::UpstreamError);
            (error_response(req.dialect, &e), record)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    gw: Arc<Gateway>,
    caller: Arc<Caller>,
    req: Request,
    bill: Bill,
    up: Arc<Upstream>,
    resp: Answer,
    slots: (OwnedSemaphorePermit, crate::queue::Permit),
    model: String,
) -> Response {
    let tr = StreamTranslator::new(&req, up.dialect, &model);
    let ct = tr.content_type();
    let billing = relay::Billing {
        gw,
        caller,
        req,
        bill,
        up,
        _slots: slots,
    };
    let mut relay = relay::Relay::new(resp, tr, billing);
    let first = relay.ready_now().await;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(tokio_stream::iter(first).chain(relay)),
    )
        .into_response()
}

async fn tags(State(ctx): State<Ctx>) -> Response {
    let infos = ctx.gw.routes.model_infos(ctx.caller.allowed.as_deref());
    axum::Json(dialect::list_models(Dialect::Ollama, &infos)).into_response()
}

async fn models(State(ctx): State<Ctx>) -> Response {
    let infos = ctx.gw.routes.model_infos(ctx.caller.allowed.as_deref());
    axum::Json(dialect::list_models(Dialect::OpenAi, &infos)).into_response()
}

async fn show(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = api_error(
                400,
                ErrorKind::InvalidRequest,
                format!("request body is not JSON: {e}"),
            );
            return error_response(Dialect::Ollama, &err);
        }
    };
    let name = v
        .get("model")
        .or_else(|| v.get("name"))
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    let infos = ctx.gw.routes.model_infos(ctx.caller.allowed.as_deref());
    match infos.iter().find(|i| i.name == name) {
        Some(i) => axum::Json(dialect::show_model(i)).into_response(),
        None => {
            let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
            let msg = format!("model {name:?} not found (available: {})", names.join(", "));
            error_response(Dialect::Ollama, &api_error(404, ErrorKind::NotFound, msg))
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let dialect = if uri.path().starts_with("/v1/") {
        Dialect::OpenAi
    } else {
        Dialect::Ollama
    };
    let msg = format!(
        "{} is not an endpoint of the model gateway (Ollama: /api/chat, /api/generate, /api/embed, /api/tags, /api/show, /api/version; OpenAI: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models)",
        uri.path()
    );
    error_response(dialect, &api_error(404, ErrorKind::NotFound, msg))
}
