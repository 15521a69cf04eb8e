//! The egress allow-list: for an agent with `egress = ["host:port", ...]`, an HTTP CONNECT
//! proxy listening inside its network namespace (at 127.0.0.1:3128, HTTPS_PROXY points
//! there) that tunnels to exactly those destinations from the node. Anything else is refused
//! with 403 and logged in the agent's log. Without a list there is no proxy and no egress.

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
    let upstream =
        match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&target)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return answer(
                    StatusCode::BAD_GATEWAY,
                    format!("clawkeep: cannot reach {target}: {e}"),
                )
            }
            Err(_) => {
                return answer(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("clawkeep: {target} did not answer within 10s"),
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
