//! The process engine: every agent and service of the fleet as a supervised process with a
//! restart policy, dependencies, health checks, logs, and an orderly shutdown.

pub mod backoff;
pub mod egress;
pub mod forward;
pub mod health;
pub mod launcher;
pub mod log_text;
pub mod logs;
pub mod process;
pub mod reaper;
pub mod run_once;
pub mod sandbox_http;
pub mod sandbox_launcher;
pub mod start;
pub mod status;
pub mod upgrade;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::fleet::Fleet;
use clawkeep_sandbox::launch::Host;
use launcher::Launcher;
use process::{Command, Def, Process};
use reaper::Reaper;
use start::Paths;

/// Everything the process tasks share.
pub struct Shared {
    /// The validated fleet.
    pub fleet: Fleet,
    /// State-dir layout.
    pub paths: Paths,
    /// Host paths for the launcher.
    pub host: Host,
    /// The reaper.
    pub reaper: Reaper,
    /// Services then agents, in fleet order.
    pub processes: Vec<Arc<Process>>,
    /// The model gateway, when the fleet has `[models]`.
    pub gateway: Option<Arc<clawkeep_gateway::server::Gateway>>,
    /// The knowledge store, when the fleet has `[store]`.
    pub brains: Option<Arc<crate::brains::Brains>>,
    /// Each agent's runtime before the last upgrade (for `rollback`); held for the whole
    /// of an upgrade, so two never run at once.
    pub upgrades: tokio::sync::Mutex<Option<upgrade::Before>>,
    /// How runs start ([`sandbox_launcher::SandboxLauncher`] but in the engine's unit tests).
    pub launcher: Arc<dyn Launcher>,
}

impl Shared {
    /// A process by name.
    pub fn process(&self, name: &str) -> Option<&Arc<Process>> {
        self.processes.iter().find(|p| p.def.name() == name)
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state dir or log dir could not be prepared.
    #[error("{what} {path}: {source}")]
    Io {
        /// What clawkeep was doing.
        what: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The knowledge store could not be set up.
    #[error("{0}")]
    Brains(#[from] crate::brains::BrainsError),
    /// The model gateway could not start.
    #[error("model gateway: {0}")]
    Gateway(#[from] clawkeep_gateway::server::GatewayError),
    /// The metrics address could not be bound.
    #[error("[models] metrics {addr}: {source} (hint: another program uses it; pick a free loopback port)")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An agent's operator port could not be bound on the host's loopback.
    #[error("gateway_port {port} of agent {agent:?} on 127.0.0.1: {source} (hint: another program uses it; pick a free port in the fleet file)")]
    Port {
        /// The port.
        port: u16,
        /// The agent.
        agent: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A model backend's port could not be bound on the host's loopback.
    #[error("port {port} of model backend {backend:?} on 127.0.0.1: {source} (hint: another program uses it, perhaps a backend started by hand; pick a free port in [[models.backend]])")]
    BackendPort {
        /// The port.
        port: u16,
        /// The backend.
        backend: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    fn port(port: u16, agent: &str, source: std::io::Error) -> Self {
        EngineError::Port {
            port,
            agent: agent.to_string(),
            source,
        }
    }
}

/// The running engine.
pub struct Engine {
    /// Shared state (also used by the control API).
    pub shared: Arc<Shared>,
}

impl Engine {
    /// Create the processes of `fleet` and start their lifecycle tasks (inside a tokio runtime,
    /// with the reaper already running).
    pub async fn start(
        fleet: Fleet,
        paths: Paths,
        host: Host,
        reaper: Reaper,
    ) -> Result<Self, EngineError> {
        let launcher = Arc::new(sandbox_launcher::SandboxLauncher);
        Self::start_with(fleet, paths, host, reaper, launcher).await
    }

    /// [`Engine::start`] with runs started by `launcher`.
    pub async fn start_with(
        fleet: Fleet,
        paths: Paths,
        host: Host,
        reaper: Reaper,
        launcher: Arc<dyn Launcher>,
    ) -> Result<Self, EngineError> {
        let logs_dir = paths.logs();
        std::fs::create_dir_all(&logs_dir).map_err(|source| EngineError::Io {
            what: "create log directory",
            path: logs_dir.clone(),
            source,
        })?;
        // Agents' output may hold what they were told: only root reads the logs.
        std::fs::set_permissions(
            &logs_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|source| EngineError::Io {
            what: "chmod 700 log directory",
            path: logs_dir.clone(),
            source,
        })?;
        let mut defs: Vec<(Def, crate::fleet::LogPolicy)> = Vec::new();
        for s in &fleet.services {
            defs.push((Def::Service(s.clone()), s.log));
        }
        for a in &fleet.agents {
            defs.push((Def::Agent(a.clone()), a.log));
        }
        let mut processes = Vec::new();
        let mut receivers = Vec::new();
        for (def, policy) in defs {
            let sink = Arc::new(logs::LogSink::new(&logs_dir, def.name(), policy));
            let (p, rx) = Process::new(def, sink);
            processes.push(p);
            receivers.push(rx);
        }
        let gateway = match &fleet.models {
            Some(m) => {
                let gw = clawkeep_gateway::server::Gateway::new(
                    &m.config,
                    m.settings.clone(),
                    &paths.state_dir.join("ledger"),
                    Arc::new(clawkeep_gateway::clock::SystemClock),
                )?;
                gw.log_torn_records();
                gw.start_background(Duration::from_secs(5));
                if let Some(addr) = m.metrics {
                    gw.serve_metrics(addr)
                        .await
                        .map_err(|source| EngineError::Metrics { addr, source })?;
                }
                Some(gw)
            }
            None => None,
        };
        // OpenClaw's config is written from the fleet at every start: a writer to the bucket
        // must not change it under a running agent.
        let push_only: &[&str] = if fleet.openclaw.is_some() {
            &[crate::openclaw::provision::CONFIG_REL]
        } else {
            &[]
        };
        let brains = crate::brains::Brains::new(&fleet, &paths.state_dir, push_only)?;
        if let Some(b) = &brains {
            b.start_pruning();
        }
        let shared = Arc::new(Shared {
            fleet,
            paths,
            host,
            reaper,
            processes,
            gateway,
            brains,
            upgrades: tokio::sync::Mutex::new(None),
            launcher,
        });
        for p in &shared.processes {
            match &p.def {
                Def::Agent(a) => {
                    if let Some(port) = a.gateway_port {
                        let inner = forward::AGENT_GATEWAY_PORT;
                        forward::start(p.clone(), port, inner, forward::Who::Shared)
                            .await
                            .map_err(|e| EngineError::port(port, &a.name, e))?;
                    }
                }
                // A sandboxed backend listens in its own namespace: the gateway reaches it
                // through the same port on the host, and no one else does.
                Def::Service(s) if s.sandbox.is_some() => {
                    for &port in &s.ports {
                        forward::start(p.clone(), port, port, forward::Who::Root)
                            .await
                            .map_err(|source| EngineError::BackendPort {
                                port,
                                backend: s.name.clone(),
                                source,
                            })?;
                    }
                }
                Def::Service(_) => {}
            }
        }
        for (p, rx) in shared.processes.iter().zip(receivers) {
            tokio::spawn(process::run(shared.clone(), p.clone(), rx));
            let check = match &p.def {
                Def::Service(s) => s.health.clone(),
                Def::Agent(a) => a.health.clone(),
            };
            if let Some(h) = check {
                tokio::spawn(health::run(shared.clone(), p.clone(), h));
            }
        }
        let sampler = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let s = sampler.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for p in &s.processes {
                        p.sample();
                    }
                })
                .await;
            }
        });
        Ok(Self { shared })
    }

    /// Orderly shutdown: every agent at once (SIGTERM, grace, kill), then the services in
    /// reverse start order, then the cgroup parent.
    pub async fn shutdown(&self) {
        let agents: Vec<_> = self
            .shared
            .processes
            .iter()
            .filter(|p| matches!(p.def, Def::Agent(_)))
            .cloned()
            .collect();
        let mut all = tokio::task::JoinSet::new();
        for p in &agents {
            all.spawn(send_shutdown(p));
        }
        while all.join_next().await.is_some() {}
        // Every brain pushed a last time while the store still runs.
        if let Some(b) = &self.shared.brains {
            b.shutdown().await;
        }
        for p in start_order(&self.shared).into_iter().rev() {
            let _ = send_shutdown(&p).await;
        }
        self.shared.launcher.clean_up(&self.shared).await;
    }
}

fn send_shutdown(p: &Arc<Process>) -> impl std::future::Future<Output = ()> + use<> {
    let (tx, rx) = oneshot::channel();
    let cmds = p.commands.clone();
    async move {
        if cmds.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Services in dependency order (validation has ruled out cycles).
pub fn start_order(shared: &Shared) -> Vec<Arc<Process>> {
    let services: Vec<_> = shared
        .processes
        .iter()
        .filter(|p| matches!(p.def, Def::Service(_)))
        .cloned()
        .collect();
    let mut done: Vec<Arc<Process>> = Vec::new();
    let mut left = services;
    while !left.is_empty() {
        let before = left.len();
        let mut i = 0;
        while i < left.len() {
            let ready = left[i]
                .def
                .depends_on()
                .iter()
                .all(|d| done.iter().any(|p| p.def.name() == d));
            if ready {
                done.push(left.remove(i));
            } else {
                i += 1;
            }
        }
        if left.len() == before {
            // A cycle (impossible after validation): keep file order for the rest.
            done.append(&mut left);
        }
    }
    done
}
