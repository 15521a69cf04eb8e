//! `clawkeep gateway`: the model gateway on its own, for a Kubernetes cluster. One listener
//! serves every agent of the fleet; each request names its agent by credential (the agent's
//! in-pod shim adds it), because a cluster's network cannot say who is calling. Budgets,
//! routing, metering and the ledger are the node's gateway's own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clawkeep_gateway::listen::Bounds;
use clawkeep_gateway::server::{Credential, CredentialError, Gateway, GatewayError};

use crate::fleet::Fleet;

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterGatewayError {
    #[error("the fleet has no [models] section: there is nothing for a gateway to serve")]
    NoModels,
    #[error("agent {agent:?}: its credential {path} cannot be read: {source} (write the agent's credential there, e.g. `head -c 32 /dev/urandom | base64 > {path}`, or mount the Secret that holds it)")]
    Unreadable {
        agent: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent {agent:?}: its credential {path} {problem} (use a random one: `head -c 32 /dev/urandom | base64 > {path}`)")]
    Credential {
        agent: String,
        path: PathBuf,
        problem: CredentialError,
    },
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("listen on {addr}: {source} (is another process on that port?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Each agent's credential, read from `dir/<agent>` (a mounted Secret with one key per agent
/// has exactly this layout).
pub fn credentials(
    fleet: &Fleet,
    dir: &Path,
) -> Result<Vec<(Credential, Arc<clawkeep_gateway::server::Caller>)>, ClusterGatewayError> {
    let mut out: Vec<(Credential, Arc<clawkeep_gateway::server::Caller>)> = Vec::new();
    for a in &fleet.agents {
        let path = dir.join(&a.name);
        let text =
            std::fs::read_to_string(&path).map_err(|source| ClusterGatewayError::Unreadable {
                agent: a.name.clone(),
                path: path.clone(),
                source,
            })?;
        let cred = Credential::new(&text).map_err(|problem| ClusterGatewayError::Credential {
            agent: a.name.clone(),
            path: path.clone(),
            problem,
        })?;
        if let Some((_, other)) = out.iter().find(|(c, _)| *c == cred) {
            return Err(ClusterGatewayError::Credential {
                agent: a.name.clone(),
                path,
                problem: CredentialError::Shared {
                    other: other.agent.clone(),
                },
            });
        }
        out.push((cred, Arc::new(a.gateway_caller())));
    }
    Ok(out)
}

/// Serve the fleet's agents on `listen` until the task ends, the ledger in `ledger_dir`,
/// `/metrics` on `metrics` if given. Calls `ready` once both are listening.
pub async fn run(
    fleet: &Fleet,
    credentials_dir: &Path,
    ledger_dir: &Path,
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ClusterGatewayError> {
    let models = fleet.models.as_ref().ok_or(ClusterGatewayError::NoModels)?;
    let callers = credentials(fleet, credentials_dir)?;
    let gw = Gateway::new(
        &models.config,
        models.settings.clone(),
        ledger_dir,
        Arc::new(clawkeep_gateway::clock::SystemClock),
    )?;
    gw.log_torn_records();
    gw.start_background(Duration::from_secs(5));
    let n = callers.len().max(1);
    // `credentials` refused a credential two agents share, the router's one refusal.
    let router =
        gw.credential_router(callers)
            .map_err(|problem| ClusterGatewayError::Credential {
                agent: String::new(),
                path: credentials_dir.to_path_buf(),
                problem,
            })?;
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ClusterGatewayError::Bind { addr, source })
    };
    if let Some(addr) = metrics {
        gw.serve_metrics(addr)
            .await
            .map_err(|source| ClusterGatewayError::Bind { addr, source })?;
    }
    let listener = bind(listen).await?;
    let local = listener.local_addr().unwrap_or(listen);
    ready(local);
    // Every agent's share of connections, on the one listener.
    let bounds = Bounds {
        max_connections: models
            .settings
            .connections
            .max_connections
            .saturating_mul(n),
        ..models.settings.connections
    };
    clawkeep_gateway::listen::serve(
        listener,
        router,
        bounds,
        format!("model gateway {local}"),
        clawkeep_gateway::listen::anyone,
    )
    .await;
    Ok(())
}
