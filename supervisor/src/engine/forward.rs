//! Operator access: a port on the host's loopback forwarded to 127.0.0.1:18789 inside an
//! agent's network namespace (where OpenClaw's gateway listens). Nothing else reaches in.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;

use super::process::Process;
use crate::netns;

/// The port an agent's gateway listens on inside its sandbox.
pub const AGENT_GATEWAY_PORT: u16 = 18789;

/// Bind the host side now (so a taken port fails `up` at once) and serve it in the background.
pub async fn start(agent: Arc<Process>, host_port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, host_port)).await?;
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let agent = agent.clone();
            tokio::spawn(async move {
                let Some(ns) = agent.netns() else {
                    return; // Not running: the client sees the connection close.
                };
                let inner = tokio::task::spawn_blocking(move || netns::tcp_socket(&ns)).await;
                let Ok(Ok(sock)) = inner else { return };
                let target = SocketAddr::from((Ipv4Addr::LOCALHOST, AGENT_GATEWAY_PORT));
                let Ok(mut upstream) = sock.connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    Ok(())
}
