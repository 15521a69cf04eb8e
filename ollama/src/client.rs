//! The gateway's HTTP/1 client toward upstreams: hyper's pooled client and nothing between.
//! Upstreams are plain-HTTP servers on this node, so there is no TLS, proxy or redirect
//! layer to pay for on every request (reqwest's redirect layer alone parsed each request's
//! URL again, even with redirects off), and no redirect can ever send a prompt elsewhere.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::{header, HeaderValue, Method, Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Why an upstream call failed, with the whole cause chain in its message.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer (connection refused or reset, the request could not be sent).
    #[error("{message}")]
    Send {
        /// The whole cause chain.
        message: String,
        /// The pooled connection had been closed by the upstream before it answered any
        /// of the request (hyper's "incomplete message"): sending it again is safe.
        stale: bool,
    },
    /// The answer did not come in time.
    #[error("no whole answer within {0:?} (the gateway's upstream timeout; hint: raise [models] timeout for slow models)")]
    Timeout(Duration),
    /// The answer's body broke off.
    #[error("{0}")]
    Body(String),
    /// The request could not be built (an invalid URL part).
    #[error("bad request to upstream: {0}")]
    Build(String),
}

/// One pooled client shared by every agent's requests and the health checks.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl UpstreamClient {
    /// A client whose idle pooled connections close after `idle`.
    pub fn new(idle: Duration) -> Self {
        let mut connector = HttpConnector::new();
        // Streams and small answers: no Nagle delay on the request's last segment.
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(idle)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { inner }
    }

    /// A client that keeps no connection open between calls (health checks: each one is a
    /// fresh connection, and none is left in the pool agents' requests use).
    pub fn unpooled() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Self { inner }
    }

    /// POST a JSON body; the answer's head, or why none came before `deadline`.
    pub async fn post_json(
        &self,
        uri: &Uri,
        body: Bytes,
        deadline: Deadline,
    ) -> Result<Response<Incoming>, CallError> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Full::new(body))
            .map_err(|e| CallError::Build(e.to_string()))?;
        self.send(req, deadline).await
    }

    /// GET `uri` (health checks); the answer's head.
    pub async fn get(
        &self,
        uri: &Uri,
        deadline: Deadline,
    ) -> Result<Response<Incoming>, CallError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(uri.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Build(e.to_string()))?;
        self.send(req, deadline).await
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
        deadline: Deadline,
    ) -> Result<Response<Incoming>, CallError> {
        match tokio::time::timeout_at(deadline.at, self.inner.request(req)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(CallError::Send {
                message: error_chain(&e),
                stale: stale_connection(&e),
            }),
            Err(_) => Err(CallError::Timeout(deadline.timeout)),
        }
    }
}

/// When a call must be over: the whole answer, body included, must arrive by then.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// The instant.
    pub at: Instant,
    /// The timeout it was made from, for messages.
    pub timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self {
            at: Instant::now() + timeout,
            timeout,
        }
    }
}

/// Whether a send failed because the pooled connection it used had been closed by the
/// upstream before any of the request was answered.
fn stale_connection(e: &hyper_util::client::legacy::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message();
        }
        src = c.source();
    }
    false
}

/// A whole answer's body, if it arrives before `deadline`.
pub async fn read_body(resp: Response<Incoming>, deadline: Deadline) -> Result<Bytes, CallError> {
    match tokio::time::timeout_at(deadline.at, resp.into_body().collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) => Err(CallError::Body(error_chain(&e))),
        Err(_) => Err(CallError::Timeout(deadline.timeout)),
    }
}

/// An error and its causes, joined (hyper's Display hides the cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
