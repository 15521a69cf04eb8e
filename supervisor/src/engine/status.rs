//! What the engine knows of each supervised process: its kind, state, health, last exit
//! and `ps` row. The control API sends these as they are.

use serde::{Deserialize, Serialize};

use clawkeep_sandbox::status::ExitReason;

/// Agent or service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An agent in its sandbox.
    Agent,
    /// A supervised host process.
    Service,
}

/// Lifecycle state of a supervised process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Waiting for its dependencies.
    Waiting,
    /// Being started.
    Starting,
    /// Running.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped by the operator or at shutdown.
    Stopped,
    /// Ended and not restarted (policy `never` or `on-failure`).
    Exited,
    /// Waiting to be restarted.
    Backoff,
    /// Restarted too often in a short time; held before one more try.
    CrashLoop,
}

impl State {
    /// The word `clawkeep ps` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Backoff => "backoff",
            State::CrashLoop => "crash-loop",
        }
    }
}

/// Result of the latest health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not checked yet, or within the start period.
    Starting,
    /// The check passes.
    Healthy,
    /// The check failed `retries` times in a row.
    Unhealthy,
}

/// How and when a process last ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// Exit code, signal, OOM kill or failed start.
    pub reason: ExitReason,
    /// When, RFC 3339.
    pub at: String,
    /// Detail, e.g. why a start failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One row of `clawkeep ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRow {
    /// Name from the fleet file.
    pub name: String,
    /// Agent or service.
    pub kind: Kind,
    /// Team (agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Lifecycle state.
    pub state: State,
    /// Host pid (for an agent: its sandbox's init).
    pub pid: Option<i32>,
    /// Restarts since the supervisor started.
    pub restarts: u32,
    /// The last exit, if any.
    pub last_exit: Option<LastExit>,
    /// CPU use over the last sampling interval, in % of one core.
    pub cpu_percent: Option<f64>,
    /// CPU time used by the current run, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, in bytes.
    pub memory_bytes: Option<u64>,
    /// Memory limit, in bytes (agents).
    pub memory_limit: Option<u64>,
    /// OOM kills in the current run.
    pub oom_kills: u64,
    /// Seconds since the current run started.
    pub uptime_secs: Option<u64>,
    /// Health, for processes with a health check.
    pub health: Option<Health>,
    /// What is going on, e.g. `restarting in 4s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Agents with a `gateway_port`: where the operator reaches them on the host's loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Agents: the model their requests use when they name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Agents: prompt plus completion tokens billed today (UTC), when the fleet has `[models]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_today: Option<u64>,
    /// OpenClaw agents: the runtime they run ("openclaw V on node N (id)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}
