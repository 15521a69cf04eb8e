//! `clawkeep pod ready`: the agent container's startup and readiness probe. Kubernetes' own
//! HTTP probe takes any 2xx as ready, but OpenClaw's control UI answers every path with a
//! 200 page; this asks OpenClaw's `/readyz` and is ready only when its JSON says so.

use std::time::Duration;

use crate::openclaw::ready::ANSWER_MAX;

/// Ready, or why not: GET `url` within `timeout` and judge the (bounded) answer as the
/// node does.
pub async fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("build the HTTP client: {e}"))?;
    let mut answer = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        let room = ANSWER_MAX.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= ANSWER_MAX {
            break;
        }
    }
    crate::openclaw::ready::verdict(&body).map_err(|why| format!("{url}: {why}"))
}
