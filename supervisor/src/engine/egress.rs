//! The egress allow-list: for an agent with `egress = ["host:port", ...]`, an HTTP CONNECT
//! proxy listening inside its network namespace (at 127.0.0.1:3128, HTTPS_PROXY points
//! there) that tunnels to exactly those destinations from the node. Anything else is refused
//! with 403 and logged in the agent's log. Without a list there is no proxy and no egress.
//! A name is resolved at each CONNECT and the tunnel goes to an address that passed
//! [`crate::fleet::egress::refusal`] (never the node itself, its link, a metadata service,
//! CGNAT, multicast, nor a private address unless the entry names it): a name that resolves,
//! or is rebound, to one of those is refused, and the address checked is the one connected to.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::logs::LogSink;

/// Where the proxy listens inside the agent's sandbox.
pub const EGRESS_PORT: u16 = 3128;

/// The environment that points an agent's HTTPS clients at the proxy.
pub fn proxy_env() -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{EGRESS_PORT}");
    vec![
        ("HTTPS_PROXY".into(), url.clone()),
        ("https_proxy".into(), url),
        ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
        ("no_proxy".into(), "127.0.0.1,localhost".into()),
    ]
}

/// Tunnels one agent may have open at once; more CONNECTs are answered 429.
pub const MAX_TUNNELS: usize = 64;

/// Serve the proxy on `listener` (made inside the agent's namespace) until aborted, with
/// the same connection bounds as the agent's model socket, and at most [`MAX_TUNNELS`]
/// tunnels open.
pub async fn serve(listener: TcpListener, allowed: Vec<String>, logs: Arc<LogSink>) {
    let ctx = Proxy {
        allowed: Arc::new(allowed),
        logs,
        tunnels: Arc::new(Semaphore::new(MAX_TUNNELS)),
    };
    let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let ctx = ctx.clone();
        async move { handle(req, ctx).await }
    });
    clawkeep_gateway::listen::serve(
        listener,
        router,
        clawkeep_gateway::listen::Bounds::AGENT,
        "egress proxy".into(),
        clawkeep_gateway::listen::anyone,
    )
    .await;
}

#[derive(Clone)]
struct Proxy {
    allowed: Arc<Vec<String>>,
    logs: Arc<LogSink>,
    tunnels: Arc<Semaphore>,
}

fn answer(status: StatusCode, text: String) -> Response {
    (status, text + "\n").into_response()
}

async fn handle(req: axum::extract::Request, ctx: Proxy) -> Response {
    let Proxy {
        allowed,
        logs,
        tunnels,
    } = ctx;
    if req.method() != Method::CONNECT {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "clawkeep's egress proxy only tunnels (CONNECT host:port, as HTTPS clients do); plain HTTP is not forwarded".into());
    }
    let Some(target) = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase())
    else {
        return answer(StatusCode::BAD_REQUEST, "CONNECT needs host:port".into());
    };
    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&target)) {
        logs.event(&format!(
            "egress denied: {target} is not in this agent's egress list ({})",
            allowed.join(", ")
        ));
        return answer(StatusCode::FORBIDDEN, format!("clawkeep: egress to {target} is not allowed for this agent (add it to egress in the fleet file)"));
    }
    let Ok(tunnel) = tunnels.try_acquire_owned() else {
        return answer(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "clawkeep: this agent already has {MAX_TUNNELS} tunnels open (close one first)"
            ),
        );
    };
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, connect(&target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(Unreachable::Refused(why))) => {
            logs.event(&format!("egress denied: {why}"));
            return answer(StatusCode::FORBIDDEN, format!("clawkeep: {why}"));
        }
        Ok(Err(Unreachable::Io(e))) => {
            return answer(
                StatusCode::BAD_GATEWAY,
                format!("clawkeep: cannot reach {target}: {e}"),
            )
        }
        Err(_) => {
            return answer(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "clawkeep: {target} did not answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )
        }
    };
    logs.event(&format!("egress: tunnel to {target}"));
    tokio::spawn(async move {
        if let Ok(up) = hyper::upgrade::on(req).await {
            let mut client = TokioIo::new(up);
            let mut upstream = upstream;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
        drop(tunnel);
    });
    StatusCode::OK.into_response()
}

/// How long resolving and connecting one tunnel may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a tunnel was not made.
enum Unreachable {
    /// Every address of the destination is of a refused class (the reason, for the agent).
    Refused(String),
    /// Resolving or connecting failed.
    Io(std::io::Error),
}

/// Resolve `target` (an allowed entry, `host:port`) and connect to the first address that
/// passes the rule; a literal private address passes, since the entry names it.
async fn connect(target: &str) -> Result<TcpStream, Unreachable> {
    use crate::fleet::egress::{self, Host, Refused};
    let dest = egress::entry(target).map_err(|_| {
        Unreachable::Refused(format!(
            "{target} is not an address the egress proxy may reach"
        ))
    })?;
    let addrs: Vec<std::net::SocketAddr> = match &dest.host {
        Host::Ip(ip) => vec![std::net::SocketAddr::new(*ip, dest.port)],
        Host::Name(_) => tokio::net::lookup_host(target)
            .await
            .map_err(Unreachable::Io)?
            .collect(),
    };
    let named = matches!(dest.host, Host::Ip(_));
    let mut refused = Vec::new();
    let mut only_private = true;
    let mut last = None;
    for addr in addrs {
        match egress::refusal(addr.ip()) {
            None => {}
            Some(Refused::Private) if named => {}
            Some(class) => {
                only_private &= class == Refused::Private;
                refused.push(format!("{} ({})", addr.ip(), class.describe()));
                continue;
            }
        }
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(Unreachable::Io(e)),
        None if refused.is_empty() => Err(Unreachable::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the name has no address",
        ))),
        None => Err(Unreachable::Refused(format!(
            "egress to {target} refused: it resolves to {}, which agents may not reach{}",
            refused.join(", "),
            if only_private {
                " (if this private address is meant, put it in egress instead of the name)"
            } else {
                ""
            }
        ))),
    }
}
