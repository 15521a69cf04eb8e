//! The fleet file: parsing with positions, validation that reports every problem at once,
//! and the resolved model the supervisor runs.

pub mod changes;
pub mod cluster;
mod cycles;
mod diag;
pub mod disk;
pub mod egress;
mod file;
mod host;
mod models;
mod names;
pub mod openclaw;
mod resolve;
pub mod runtime;
mod schema_check;
pub mod secrets;
mod settings;
mod spans;
mod store;
mod units;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use diag::{Diagnostic, Diagnostics};
pub use file::{FleetFile, NetworkFlavour, RestartMode};
pub use names::is_dns_label;
pub use store::{garage as garage_of, minio_of, STORE_SERVICE};
pub use validate::{
    load, load_file, load_for_cluster, load_for_cluster_gateway, load_for_image, load_in_root,
    parse,
};

/// JSON Schema of the fleet file, for editors (`clawkeep schema`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FleetFile)).unwrap_or_default()
}

/// A validated fleet: defaults applied, sizes and durations parsed, paths absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Absolute path of the fleet file.
    pub path: PathBuf,
    /// Node settings.
    pub node: Node,
    /// Absolute path of the agents' read-only root filesystem.
    pub rootfs: PathBuf,
    /// The pinned OpenClaw runtime, when `[runtime] openclaw` is set.
    pub openclaw: Option<runtime::OpenclawRuntime>,
    /// Agents in file order.
    pub agents: Vec<Agent>,
    /// Services in file order.
    pub services: Vec<Service>,
    /// The model gateway, when the fleet has `[models]`.
    pub models: Option<Models>,
    /// The knowledge store, when the fleet has `[store]`.
    pub store: Option<clawkeep_store::config::StoreSettings>,
    /// `[cluster]`: what `clawkeep render k8s` renders for.
    pub cluster: cluster::Cluster,
}

/// Resolved `[models]` and `[teams]`.
#[derive(Debug, Clone)]
pub struct Models {
    /// The section as written (checked).
    pub config: clawkeep_gateway::config::GatewayConfig,
    /// Sizes, durations and team budgets, parsed.
    pub settings: clawkeep_gateway::server::Settings,
    /// Loopback address of `/metrics`, if any.
    pub metrics: Option<std::net::SocketAddr>,
}

/// What a team's Kubernetes namespace is called after the prefix (`clawkeep render k8s`):
/// `clawkeep-<team>`, so a team rendered for a cluster must keep that a DNS label.
pub const TEAM_NAMESPACE_PREFIX: &str = "clawkeep-";

/// Teams that cannot be rendered for a cluster: their namespaces are clawkeep's own (the
/// gateway's `clawkeep-system`; `clawkeep-operators`, whose pods may reach agents' gateway
/// ports). An agent there would share them.
pub const TEAM_NAMES_RESERVED: [&str; 2] = ["system", "operators"];

/// Host ids per agent: agent N's ids 0..65536 inside map onto `uid_base + N * 65536`.
pub const IDS_PER_AGENT: u32 = clawkeep_sandbox::bundle::ID_RANGE;

/// First of the host gids kept for shared collections (the last 65536 ids but the invalid
/// `u32::MAX`): collection N in name order has group `COLLECTION_GIDS + N`, which only the
/// agents granted it have, so no one else on the host reads it.
pub const COLLECTION_GIDS: u32 = u32::MAX - (IDS_PER_AGENT - 1);

impl Fleet {
    /// The first host id of `agent`'s range (its root inside the sandbox).
    pub fn host_id(&self, agent: &Agent) -> u32 {
        self.node.uid_base + agent.index * IDS_PER_AGENT
    }

    /// The shared collections agents are granted, in name order.
    pub fn collections(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .agents
            .iter()
            .flat_map(|a| a.knowledge.iter().map(|(c, _)| c.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Host gid of shared collection `c`'s group (see [`COLLECTION_GIDS`]), if granted.
    pub fn collection_gid(&self, c: &str) -> Option<u32> {
        let i = self.collections().iter().position(|n| *n == c)?;
        u32::try_from(i).ok().map(|i| COLLECTION_GIDS + i)
    }

    /// First host id of a sandboxed service (a model backend): the ranges just below
    /// `uid_base`, which `check` makes sure are above the host's own users.
    pub fn service_host_id(&self, sandbox: &ServiceSandbox) -> u32 {
        self.node
            .uid_base
            .saturating_sub((sandbox.index + 1).saturating_mul(IDS_PER_AGENT))
    }
}

impl PartialEq for Models {
    fn eq(&self, other: &Self) -> bool {
        self.metrics == other.metrics
            && self.settings.max_body == other.settings.max_body
            && self.settings.timeout == other.settings.timeout
            && self.settings.cooldown == other.settings.cooldown
            && self.settings.connections == other.settings.connections
            && self.settings.body_timeout == other.settings.body_timeout
            && self.settings.team_budgets == other.settings.team_budgets
            && self.config.known_models() == other.config.known_models()
    }
}

/// Resolved `[node]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// State directory (absolute).
    pub state_dir: PathBuf,
    /// Parent cgroup path relative to each hierarchy root, e.g. `clawkeep`.
    pub cgroup: String,
    /// First host id of the agents' id ranges.
    pub uid_base: u32,
    /// Host group whose members may use the control socket besides root.
    pub control_group: Option<String>,
}

/// Program, arguments and environment of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Program path (inside the sandbox for agents; on the host for services).
    pub program: String,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

/// Restart policy with backoff and crash-loop detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    /// When to restart.
    pub mode: RestartMode,
    /// First backoff delay.
    pub backoff_initial: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Failures in `crash_window` that make a crash loop.
    pub crash_failures: u32,
    /// Crash-loop window.
    pub crash_window: Duration,
    /// How long a crash loop holds the process before one more try.
    pub crash_hold: Duration,
}

/// Log rotation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogPolicy {
    /// Rotate at this size in bytes.
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: u32,
}

/// What a health check does.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthProbe {
    /// Run argv on the host; exit 0 is healthy.
    Command(Vec<String>),
    /// GET this URL; 2xx/3xx is healthy.
    Http(String),
}

/// A resolved health check.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The probe.
    pub probe: HealthProbe,
    /// Time between checks.
    pub interval: Duration,
    /// Time limit of one check.
    pub timeout: Duration,
    /// Consecutive failures before unhealthy.
    pub retries: u32,
    /// Grace period after start.
    pub start_period: Duration,
}

/// Resource limits of an agent sandbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resources {
    /// CPU cores (> 0).
    pub cpu: f64,
    /// Memory limit in bytes (>= 16 MiB).
    pub memory: u64,
    /// Process/thread limit.
    pub pids: u64,
    /// RLIMIT_NOFILE.
    pub nofile: u64,
    /// Size of /tmp in bytes.
    pub tmp_size: u64,
    /// Disk limit of the agent's home in bytes (a project quota), if any.
    pub disk: Option<u64>,
}

/// A resolved `[[agent]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// DNS-label name; also the sandbox hostname.
    pub name: String,
    /// Position in the fleet file, which picks its host id range.
    pub index: u32,
    /// Team, if any.
    pub team: Option<String>,
    /// SOUL.md source (absolute), copied into the home (an OpenClaw agent: its workspace) on
    /// first start.
    pub soul: Option<PathBuf>,
    /// More workspace files of an OpenClaw agent (name, absolute source), on first start.
    pub workspace: Vec<(String, PathBuf)>,
    /// Host loopback port forwarded to the agent's 127.0.0.1:18789.
    pub gateway_port: Option<u16>,
    /// What runs inside.
    pub command: Command,
    /// Limits.
    pub resources: Resources,
    /// Restart policy.
    pub restart: Restart,
    /// Grace between SIGTERM and kill on stop.
    pub stop_grace: Duration,
    /// Log rotation.
    pub log: LogPolicy,
    /// Services it waits for.
    pub depends_on: Vec<String>,
    /// Model used when a request names none.
    pub model: Option<String>,
    /// Models it may use (all when None).
    pub models: Option<Vec<String>>,
    /// Daily token budget.
    pub tokens_per_day: Option<u64>,
    /// Model requests in flight at once.
    pub max_concurrent: u32,
    /// Shared collections granted, by name.
    pub knowledge: Vec<(String, clawkeep_store::grants::Access)>,
    /// HTTP health check inside the sandbox; failing it restarts the agent.
    pub health: Option<Health>,
    /// Destinations ("host:port", lowercase) its egress proxy tunnels to; empty: no egress.
    pub egress: Vec<String>,
    /// OpenClaw settings from `[defaults]` and the agent, merged (template not applied).
    pub openclaw: Option<serde_json::Value>,
    /// Names of the secrets it gets (each must be set before it can start).
    pub secrets: Vec<String>,
    /// How it gets them.
    pub secrets_as: secrets::SecretsAs,
}

impl Agent {
    /// The gateway's view of the agent: fixed by where (or with what credential) its
    /// requests arrive, never taken from the requests themselves.
    pub fn gateway_caller(&self) -> clawkeep_gateway::server::Caller {
        clawkeep_gateway::server::Caller {
            agent: self.name.clone(),
            team: self.team.clone(),
            default_model: self.model.clone(),
            allowed: self.models.clone(),
            tokens_per_day: self.tokens_per_day,
            max_concurrent: self.max_concurrent as usize,
        }
    }
}

/// A resolved `[[service]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// DNS-label name.
    pub name: String,
    /// What runs (program resolved to an absolute host path).
    pub command: Command,
    /// Working directory (absolute).
    pub cwd: PathBuf,
    /// Restart policy.
    pub restart: Restart,
    /// Services started before this one.
    pub depends_on: Vec<String>,
    /// Health check.
    pub health: Option<Health>,
    /// Host ports it listens on.
    pub ports: Vec<u16>,
    /// Grace between SIGTERM and kill on stop.
    pub stop_grace: Duration,
    /// Log rotation.
    pub log: LogPolicy,
    /// Run in a sandbox of its own (a managed model backend), not as a host process.
    pub sandbox: Option<ServiceSandbox>,
}

/// How a managed model backend is sandboxed: its own namespaces and unprivileged host ids,
/// the host's system directories, its program and its model read-only, and only the device
/// nodes the fleet gives it. It listens inside its own network namespace; the supervisor
/// forwards its port from the host's loopback to there, for root alone (the gateway).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSandbox {
    /// Its place among the backends: its host ids are the range that far below `uid_base`.
    pub index: u32,
    /// Host files and directories bound read-only at the same path (program, model).
    pub binds: Vec<PathBuf>,
    /// Host device nodes it gets (GPUs).
    pub devices: Vec<PathBuf>,
}

impl Service {
    /// A server clawkeep runs itself (a model backend, the store): default restart policy and
    /// logs, ready once `health_url` answers.
    pub(crate) fn launched(
        name: String,
        command: Command,
        health_url: String,
        cwd: PathBuf,
        ports: Vec<u16>,
    ) -> Service {
        use settings::{builtin, LogLayer, RestartLayer};
        Service {
            name,
            command,
            cwd,
            restart: RestartLayer::default().finish(),
            depends_on: Vec::new(),
            health: Some(Health {
                probe: HealthProbe::Http(health_url),
                interval: builtin::HEALTH_INTERVAL,
                timeout: builtin::HEALTH_TIMEOUT,
                retries: builtin::HEALTH_RETRIES,
                start_period: builtin::HEALTH_START_PERIOD,
            }),
            ports,
            stop_grace: builtin::STOP_GRACE,
            log: LogLayer::default().finish(),
            sandbox: None,
        }
    }
}
