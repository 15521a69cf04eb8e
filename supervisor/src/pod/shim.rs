//! `clawkeep pod shim`: the agent's model endpoint inside its pod. It listens on the pod's
//! loopback (127.0.0.1:11434, as on a node) and passes every request to the cluster's
//! `clawkeep gateway`, adding `Authorization: Bearer <the agent's credential>`, and the
//! answer back as it streams. The credential is mounted into the shim's container only:
//! the agent never holds it, and an `Authorization` header of its own is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use clawkeep_gateway::listen::Bounds;
use tokio_stream::StreamExt as _;

/// Why the shim did not start.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("the credential {path} cannot be read: {source} (mount the agent's credential Secret there)")]
    Credential {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the credential {path} {problem}")]
    Unfit {
        path: PathBuf,
        problem: clawkeep_gateway::server::CredentialError,
    },
    #[error("gateway address {url:?}: {why} (give the gateway's base URL, e.g. http://10.96.0.20:11434)")]
    Url { url: String, why: String },
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("build the HTTP client: {0}")]
    Client(String),
}

#[derive(Clone)]
struct Shim {
    gateway: reqwest::Url,
    authorization: String,
    client: reqwest::Client,
}

/// Headers that belong to one connection, not to the request or answer passed on.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
];

fn passed_on(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for h in HOP_BY_HOP
        .iter()
        .chain([&header::HOST, &header::AUTHORIZATION])
    {
        out.remove(h);
    }
    out.remove("keep-alive");
    out
}

async fn forward(State(shim): State<Shim>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(url) = shim.gateway.join(path.trim_start_matches('/')) else {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    };
    let mut headers = passed_on(req.headers());
    if let Ok(v) = shim.authorization.parse() {
        headers.insert(header::AUTHORIZATION, v);
    }
    let method = req.method().clone();
    let body = reqwest::Body::wrap_stream(req.into_body().into_data_stream());
    let sent = shim
        .client
        .request(method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) => {
            let status = r.status();
            let headers = passed_on(r.headers());
            let stream = r.bytes_stream().map(|c| c.map_err(std::io::Error::other));
            let mut out = Response::new(Body::from_stream(stream));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            out
        }
        Err(e) => {
            tracing::warn!("model gateway {}: {e}", shim.gateway);
            let body = serde_json::json!({
                "error": format!("the model gateway did not answer: {e}")
            });
            (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
        }
    }
}

/// Serve on `listen`, forwarding to `gateway` with the credential in `credential`, until the
/// task ends. Calls `ready` once listening.
pub async fn run(
    gateway: &str,
    credential: &Path,
    listen: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ShimError> {
    let text = std::fs::read_to_string(credential).map_err(|source| ShimError::Credential {
        path: credential.to_path_buf(),
        source,
    })?;
    // Checked as the gateway will check it, so a bad one fails here, at start.
    clawkeep_gateway::server::Credential::new(&text).map_err(|problem| ShimError::Unfit {
        path: credential.to_path_buf(),
        problem,
    })?;
    let mut url = reqwest::Url::parse(gateway).map_err(|e| ShimError::Url {
        url: gateway.to_string(),
        why: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ShimError::Url {
            url: gateway.to_string(),
            why: "not an http(s) base URL".into(),
        });
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    // No proxies from the environment and no redirects: a prompt goes to the gateway only.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ShimError::Client(e.to_string()))?;
    let shim = Shim {
        gateway: url,
        authorization: format!("Bearer {}", text.trim()),
        client,
    };
    let router = Router::new().fallback(forward).with_state(shim);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ShimError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    ready(local);
    clawkeep_gateway::listen::serve(
        listener,
        router,
        Bounds::AGENT,
        format!("model shim {local}"),
        clawkeep_gateway::listen::anyone,
    )
    .await;
    Ok(())
}
