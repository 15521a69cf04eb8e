//! One HTTP request to a server on an agent's own loopback, made from the supervisor through
//! a socket created inside the agent's network namespace (nothing is exposed to do it): the
//! health checks and the upgrade gate's test message use it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::process::Process;

/// Send `req` (its URI a path) to 127.0.0.1:`port` inside `me`'s sandbox; the status and at
/// most `max_body` bytes of the body (the rest is never read: the agent controls that
/// server and could answer with an endless body), or why there is none.
pub async fn send(
    me: &Process,
    port: u16,
    req: hyper::Request<Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let ns = me.netns().ok_or("the agent is not running")?;
    let attempt = async {
        let sock = clawkeep_sandbox::netns::tcp_socket(&ns).map_err(|e| format!("socket: {e}"))?;
        let stream = sock
            .connect(([127, 0, 0, 1], port).into())
            .await
            .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut got = bytes::BytesMut::new();
        while got.len() < max_body {
            let Some(frame) = body.frame().await else {
                break;
            };
            if let Ok(data) = frame.map_err(|e| format!("body: {e}"))?.into_data() {
                let room = max_body - got.len();
                got.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok((status, got.freeze()))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}
