//! The egress allow-list: for an agent with `egress = ["host:port", ...]`, an HTTP CONNECT
//! proxy listening inside its network namespace (at 127.0.0.1:3128, HTTPS_PROXY points
//! there) that tunnels to exactly those destinations from the node. Anything else is refused
//! with 403 and logged in the agent's log. Without a list there is no proxy and no egress.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

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

/// Serve the proxy on `listener` (made inside the agent's namespace) until aborted.
pub async fn serve(listener: TcpListener, allowed: Vec<String>, logs: Arc<LogSink>) {
    let allowed = Arc::new(allowed);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (allowed, logs) = (allowed.clone(), logs.clone());
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req| handle(req, allowed.clone(), logs.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

fn answer(status: StatusCode, text: String) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = Response::new(Full::new(Bytes::from(text + "\n")));
    *r.status_mut() = status;
    Ok(r)
}

async fn handle(
    req: Request<Incoming>,
    allowed: Arc<Vec<String>>,
    logs: Arc<LogSink>,
) -> Result<Response<Full<Bytes>>, Infallible> {
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
    });
    answer(StatusCode::OK, String::new()).map(|mut r| {
        *r.body_mut() = Full::new(Bytes::new());
        r
    })
}
