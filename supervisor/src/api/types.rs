//! What the control API sends and receives, shared by the server and the CLI.

use serde::{Deserialize, Serialize};

pub use crate::engine::status::{Health, Kind, LastExit, ProcessRow, State};

/// Answer of `GET /v1/ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsReply {
    /// Node name.
    pub node: String,
    /// Supervisor pid.
    pub supervisor_pid: i32,
    /// Orphaned processes (not started by clawkeep) the supervisor has reaped as PID 1 or
    /// child subreaper.
    pub orphans_reaped: u64,
    /// Every supervised process, services first, in fleet order.
    pub processes: Vec<ProcessRow>,
}

/// An error answer of the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, with a hint.
    pub error: String,
}
