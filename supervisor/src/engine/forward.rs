//! Ports on the host's loopback forwarded into a sandbox's network namespace: operator
//! access to 127.0.0.1:18789 inside an agent (where OpenClaw's gateway listens), and the
//! gateway's way to a sandboxed model backend's port (root alone). Nothing else reaches in.
//!
//! Any local user can connect to a loopback port, so the forwarder shares itself out: each
//! user other than root may hold [`PER_USER`] connections and all of them together
//! [`OTHERS`]; root (the operator) has [`ROOT`] of its own, so a flood from another account
//! never locks the operator out. Connections over a share are closed at once. Everything
//! is async: one thread per agent (its [`Dialer`]) makes the sockets inside its namespace.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use super::process::Process;
use clawkeep_sandbox::netns::Dialer;

/// The port an agent's gateway listens on inside its sandbox.
pub const AGENT_GATEWAY_PORT: u16 = 18789;

/// Connections root may hold through one forwarder.
pub const ROOT: usize = 256;
/// Connections all other users together may hold through one forwarder.
pub const OTHERS: usize = 128;
/// Connections one user other than root may hold through one forwarder.
pub const PER_USER: usize = 16;

/// Time the agent's side has to accept a forwarded connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may connect through a forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Any local user, each within a share, root with a reserve (an agent's operator port).
    Shared,
    /// Root alone: the supervisor's gateway and health checks (a model backend's port).
    /// Every other user's connection is closed unanswered.
    Root,
}

/// Bind the host side now (so a taken port fails `up` at once) and serve it in the
/// background, each connection forwarded to 127.0.0.1:`inner_port` inside `process`'s
/// network namespace.
pub async fn start(
    process: Arc<Process>,
    host_port: u16,
    inner_port: u16,
    who: Who,
) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, host_port)).await?;
    tokio::spawn(serve(listener, process, inner_port, who));
    Ok(())
}

/// Open connections per user, and who is over their share.
#[derive(Default)]
struct Shares {
    open: Mutex<HashMap<u32, usize>>,
}

/// A connection's place in its user's share, given back when it ends.
struct Held {
    shares: Arc<Shares>,
    uid: u32,
}

impl Shares {
    /// Take a place for `uid`, or `None` when its share (or the others' pool) is full.
    fn take(self: &Arc<Self>, uid: u32) -> Option<Held> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.get(&uid).copied().unwrap_or(0);
        let others: usize = open.iter().filter(|(u, _)| **u != 0).map(|(_, n)| n).sum();
        let room = if uid == 0 {
            mine < ROOT
        } else {
            mine < PER_USER && others < OTHERS
        };
        if !room {
            return None;
        }
        *open.entry(uid).or_default() += 1;
        Some(Held {
            shares: self.clone(),
            uid,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.shares.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.uid);
            }
        }
    }
}

/// Lets a warning about refused connections through at most once a minute: a client that
/// opens them in a loop must not fill the log.
#[derive(Default)]
struct Quiet(Option<Instant>);

impl Quiet {
    fn due(&mut self) -> bool {
        let due = self
            .0
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

async fn serve(mut listener: TcpListener, agent: Arc<Process>, inner_port: u16, who: Who) {
    let shares = Arc::new(Shares::default());
    let local = listener.local_addr().ok();
    let mut dialer: Option<Arc<Dialer>> = None;
    let mut warned = Quiet::default();
    loop {
        // axum's accept backs off on errors such as EMFILE instead of spinning.
        let (client, peer) = axum::serve::Listener::accept(&mut listener).await;
        // Unknown owner (the peer already left): treated as a user other than root.
        let uid = local
            .and_then(|l| crate::tcp_peer::uid(peer, l))
            .unwrap_or(u32::MAX);
        if who == Who::Root && uid != 0 {
            drop(client);
            if warned.due() {
                tracing::warn!(
                    service = agent.def.name(),
                    "uid {uid} tried the model backend's port; only the gateway may use it"
                );
            }
            continue;
        }
        let Some(held) = shares.take(uid) else {
            drop(client);
            if warned.due() {
                tracing::warn!(
                    agent = agent.def.name(),
                    "operator port: uid {uid} holds all the connections it may ({PER_USER} per user, {OTHERS} for all but root); new ones are closed"
                );
            }
            continue;
        };
        let Some(ns) = agent.netns() else {
            continue; // Not running: the client sees the connection close.
        };
        let d = match &dialer {
            Some(d) if d.serves(&ns) => d.clone(),
            _ => match Dialer::new(ns) {
                Ok(d) => {
                    let d = Arc::new(d);
                    dialer = Some(d.clone());
                    d
                }
                Err(e) => {
                    tracing::warn!(agent = agent.def.name(), "operator port: {e}");
                    continue;
                }
            },
        };
        tokio::spawn(relay(client, d, held, inner_port));
    }
}

async fn relay(mut client: TcpStream, dialer: Arc<Dialer>, held: Held, inner_port: u16) {
    let Ok(sock) = dialer.socket().await else {
        return;
    };
    drop(dialer);
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, inner_port));
    let Ok(Ok(mut upstream)) = tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(target)).await
    else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    drop(held);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_but_root_gets_a_share_and_root_keeps_its_own() {
        let s = Arc::new(Shares::default());
        let mut held: Vec<Held> = (0..PER_USER).map(|_| s.take(65534).unwrap()).collect();
        assert!(s.take(65534).is_none(), "one user over its share");
        // Other users fill the others' pool; root is not in it.
        for uid in 1000..1000 + (OTHERS / PER_USER - 1) as u32 {
            held.extend((0..PER_USER).map(|_| s.take(uid).unwrap()));
        }
        assert!(s.take(4242).is_none(), "the others' pool is full");
        let root: Vec<Held> = (0..ROOT).map(|_| s.take(0).unwrap()).collect();
        assert!(s.take(0).is_none());
        drop(root);
        held.truncate(held.len() - 1);
        assert!(s.take(4242).is_some(), "a place given back is free again");
    }
}
