//! The gateway's HTTP/1 client toward upstreams: hyper's client connections, kept alive in
//! a small pool per upstream and driven by the task of the request that uses them.
//!
//! Upstreams are plain-HTTP servers on this node, so there is no TLS, proxy or redirect
//! layer (no redirect can ever send a prompt elsewhere). A connection is not given a task of
//! its own, as hyper's pooled client does: the agent's request polls it while it waits, so
//! the request, the answer's head and every chunk of a stream move without a hand-over
//! between tasks (each hand-over was a wake-up and a scheduler turn; a streamed answer had
//! one per chunk). An idle connection is polled by nobody; one the upstream closed is seen
//! and dropped when it is next taken from the pool.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Idle connections kept per upstream address; more are closed.
const MAX_IDLE_PER_UPSTREAM: usize = 256;

/// Why an upstream call failed, with the whole cause chain in its message.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer (connection refused or reset, the request could not be sent).
    #[error("{message}")]
    Send {
        /// The whole cause chain.
        message: String,
        /// A kept-alive connection had been closed by the upstream before it answered any
        /// of the request (llama-server does this after a stream): sending it again, on a
        /// new connection, is safe.
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

/// One HTTP/1 connection: the handle requests are sent on, and the connection itself,
/// which does the reading and writing whenever it is polled.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    conn: Connection<TokioIo<TcpStream>, Full<Bytes>>,
}

/// Idle connections per upstream address ("host:port"), oldest first, with the time each
/// came back.
struct Pool {
    idle: Mutex<HashMap<String, VecDeque<(Conn, Instant)>>>,
    idle_timeout: Duration,
    /// False for a client that keeps nothing (health checks).
    keep: bool,
}

impl Pool {
    /// The most recently used idle connection to `key` that is still open.
    fn checkout(&self, key: &str) -> Option<Conn> {
        // Plain lists: a panic elsewhere cannot leave them half-changed.
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        while let Some((mut c, since)) = list.pop_back() {
            if since.elapsed() > self.idle_timeout {
                continue;
            }
            // A connection the upstream closed ends when polled (tokio caches readiness,
            // so this costs no system call when nothing happened).
            let mut cx = Context::from_waker(Waker::noop());
            if Pin::new(&mut c.conn).poll(&mut cx).is_ready() || !c.send.is_ready() {
                continue;
            }
            return Some(c);
        }
        None
    }

    fn checkin(&self, key: &str, c: Conn) {
        if !self.keep {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = match idle.get_mut(key) {
            Some(l) => l,
            None => idle.entry(key.to_string()).or_default(),
        };
        // Nobody polls an idle connection, so one the upstream closed stays open on this
        // side until it is taken: the oldest go when they expire or the list is full.
        let timeout = self.idle_timeout;
        while list
            .front()
            .is_some_and(|(_, since)| since.elapsed() > timeout)
            || list.len() >= MAX_IDLE_PER_UPSTREAM
        {
            list.pop_front();
        }
        list.push_back((c, Instant::now()));
    }
}

/// One pool of kept-alive connections shared by every agent's requests.
#[derive(Clone)]
pub struct UpstreamClient {
    pool: Arc<Pool>,
}

impl UpstreamClient {
    /// A client whose idle connections are closed after `idle`.
    pub fn new(idle: Duration) -> Self {
        Self::with(idle, true)
    }

    /// A client that keeps no connection open between calls (health checks: each one is a
    /// fresh connection, and none is left for agents' requests to meet).
    pub fn unpooled() -> Self {
        Self::with(Duration::ZERO, false)
    }

    fn with(idle_timeout: Duration, keep: bool) -> Self {
        let pool = Pool {
            idle: Mutex::new(HashMap::new()),
            idle_timeout,
            keep,
        };
        Self {
            pool: Arc::new(pool),
        }
    }

    /// POST a JSON body, on a kept-alive connection unless `fresh`; the answer's head, or
    /// why none came before `deadline`.
    pub async fn post_json(
        &self,
        uri: &Uri,
        body: Bytes,
        deadline: Deadline,
        fresh: bool,
    ) -> Result<Answer, CallError> {
        self.call(Method::POST, uri, Some(body), deadline, fresh)
            .await
    }

    /// GET `uri` on a new connection (health checks); the answer's head.
    pub async fn get(&self, uri: &Uri, deadline: Deadline) -> Result<Answer, CallError> {
        self.call(Method::GET, uri, None, deadline, true).await
    }

    async fn call(
        &self,
        method: Method,
        uri: &Uri,
        json: Option<Bytes>,
        deadline: Deadline,
        fresh: bool,
    ) -> Result<Answer, CallError> {
        let key = uri
            .authority()
            .ok_or_else(|| CallError::Build(format!("{uri} names no host")))?
            .as_str();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, key);
        if json.is_some() {
            let ct = HeaderValue::from_static("application/json");
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(json.unwrap_or_default()))
            .map_err(|e| CallError::Build(e.to_string()))?;
        let pooled = if fresh { None } else { self.pool.checkout(key) };
        let reused = pooled.is_some();
        let call = async {
            let mut c = match pooled {
                Some(c) => c,
                None => connect(key).await?,
            };
            let mut answer = std::pin::pin!(c.send.send_request(req));
            // Set when the connection ended (with its error, if it gave one).
            let mut closed: Option<Option<hyper::Error>> = None;
            let head = std::future::poll_fn(|cx| {
                // The connection writes the request and reads the head when polled.
                loop {
                    if let Poll::Ready(r) = answer.as_mut().poll(cx) {
                        return Poll::Ready(r);
                    }
                    if closed.is_some() {
                        return Poll::Pending;
                    }
                    match Pin::new(&mut c.conn).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        // It ended: the answer future now holds why.
                        Poll::Ready(r) => closed = Some(r.err()),
                    }
                }
            })
            .await;
            match head {
                Ok(resp) => Ok((resp, c)),
                Err(e) => {
                    let stale = reused && (e.is_incomplete_message() || e.is_canceled());
                    let mut message = error_chain(&e);
                    if let Some(c) = closed.flatten().filter(|c| c.to_string() != e.to_string()) {
                        message.push_str(&format!(" ({})", error_chain(&c)));
                    }
                    Err(CallError::Send { message, stale })
                }
            }
        };
        let (resp, c) = match tokio::time::timeout_at(deadline.at, call).await {
            Ok(r) => r?,
            Err(_) => return Err(CallError::Timeout(deadline.timeout)),
        };
        let (head, body) = resp.into_parts();
        Ok(Answer {
            status: head.status,
            body,
            conn: Some(c),
            pool: self.pool.clone(),
            key: key.to_string(),
            deadline,
            timer: None,
        })
    }
}

/// Open a connection to `addr` ("host:port").
async fn connect(addr: &str) -> Result<Conn, CallError> {
    let failed = |e: &dyn std::error::Error| CallError::Send {
        message: format!("connecting to {addr}: {}", error_chain(e)),
        stale: false,
    };
    let tcp = TcpStream::connect(addr).await.map_err(|e| failed(&e))?;
    // Small requests and stream frames: no Nagle delay.
    tcp.set_nodelay(true).map_err(|e| failed(&e))?;
    let (send, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| failed(&e))?;
    Ok(Conn { send, conn })
}

/// An upstream's answer: its status, and its body, read through the connection it came on
/// (which goes back to the pool once the body is whole).
pub struct Answer {
    status: StatusCode,
    body: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
    key: String,
    deadline: Deadline,
    /// The deadline's timer, made the first time the body is not there yet.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Answer {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The next bytes of the body, polling the connection for them; at the end the
    /// connection goes back to the pool. Fails when the body breaks off, or when the whole
    /// answer is not in by the deadline (`[models] timeout`).
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, CallError>>> {
        let mut polled_conn = false;
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(None) => {
                    self.release(cx);
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => return Poll::Ready(Some(Ok(data))),
                    // Trailers carry no answer.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(CallError::Body(error_chain(&e)))))
                }
                Poll::Pending => {}
            }
            // The connection hands the body over one chunk per poll (then waits for it to
            // be taken): poll it until a poll brings nothing.
            let Some(c) = self.conn.as_mut().filter(|_| !polled_conn) else {
                return self.poll_deadline(cx);
            };
            match Pin::new(&mut c.conn).poll(cx) {
                Poll::Pending => polled_conn = true,
                // The connection ended; the body now ends too (or fails): read that.
                Poll::Ready(_) => self.conn = None,
            }
        }
    }

    /// Nothing to read now: Pending, or the timeout error once the deadline has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, CallError>>> {
        let at = self.deadline.at;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(CallError::Timeout(self.deadline.timeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The body is whole: keep the connection if it is ready for another request.
    fn release(&mut self, cx: &mut Context<'_>) {
        if let Some(mut c) = self.conn.take() {
            if !c.send.is_ready() && Pin::new(&mut c.conn).poll(cx).is_ready() {
                return;
            }
            if c.send.is_ready() {
                self.pool.checkin(&self.key, c);
            }
        }
    }

    /// The whole body, if it arrives before the deadline.
    pub async fn bytes(mut self) -> Result<Bytes, CallError> {
        let mut out = bytes::BytesMut::new();
        while let Some(data) = std::future::poll_fn(|cx| self.poll_data(cx)).await {
            out.extend_from_slice(&data?);
        }
        Ok(out.freeze())
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A server that answers "ok" and counts connections; idle ones are closed after
    /// `idle_close` (hyper's header read timeout).
    async fn server(idle_close: Duration) -> (Uri, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/ok", l.local_addr().unwrap())
            .parse()
            .unwrap();
        let (accepted, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (a, c) = (accepted.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let (sock, _) = l.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(idle_close)
                        .serve_connection(TokioIo::new(sock), svc)
                        .await;
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (uri, accepted, closed)
    }

    fn soon() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    /// One call that must answer "ok".
    async fn call_ok(client: &UpstreamClient, uri: &Uri, fresh: bool) {
        let a = client
            .post_json(uri, Bytes::new(), soon(), fresh)
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::OK);
        assert_eq!(a.bytes().await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn kept_alive_connections_are_reused_and_closed_ones_are_not() {
        let (uri, accepted, _) = server(Duration::from_millis(200)).await;
        let client = UpstreamClient::new(Duration::from_secs(60));
        for _ in 0..3 {
            call_ok(&client, &uri, false).await;
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for three calls"
        );
        // The server closes it while it sits idle: the next call sees that and connects anew.
        tokio::time::sleep(Duration::from_millis(600)).await;
        call_ok(&client, &uri, false).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // fresh: never a kept connection.
        call_ok(&client, &uri, true).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_answer_dropped_unread_closes_its_connection() {
        let (uri, accepted, closed) = server(Duration::from_secs(30)).await;
        let client = UpstreamClient::new(Duration::from_secs(60));
        let a = client
            .post_json(&uri, Bytes::new(), soon(), false)
            .await
            .unwrap();
        drop(a);
        for _ in 0..100 {
            if closed.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            closed.load(Ordering::SeqCst),
            1,
            "the upstream saw the hang-up"
        );
        call_ok(&client, &uri, false).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refused_and_late_calls_say_so() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let client = UpstreamClient::new(Duration::from_secs(60));
        let uri: Uri = format!("http://{addr}/x").parse().unwrap();
        let e = client
            .post_json(&uri, Bytes::new(), soon(), false)
            .await
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with(&format!("connecting to {addr}: ")),
            "{e}"
        );
        // Accepts but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/x", silent.local_addr().unwrap())
            .parse()
            .unwrap();
        let late = Deadline::after(Duration::from_millis(200));
        let e = client
            .post_json(&uri, Bytes::new(), late, false)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, CallError::Timeout(_)), "{e}");
        assert!(e.to_string().contains("[models] timeout"), "{e}");
    }
}
