//! `POST /v1/agents/NAME/exec`: where `clawkeep exec` may enter a running agent's sandbox,
//! with the request written to the agent's log first (the audit trail).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::server::{error, ApiState};
use crate::api::types::State as RunState;
use crate::engine::process::Def;

/// What the operator asks to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecAsk {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Whether it gets a terminal.
    pub tty: bool,
    /// Who asks, as the client says (uid, and the sudo user when there is one): for the log.
    pub caller: String,
}

/// Where to enter: the sandbox init's host pid and start time, and the agent's bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecTarget {
    /// The agent.
    pub agent: String,
    /// Host pid of its sandbox init.
    pub pid: i32,
    /// That process's start time (/proc/PID/stat field 22), so a reused pid is refused.
    pub start_time: u64,
    /// Its bundle directory (config.json).
    pub bundle: std::path::PathBuf,
}

/// Why an exec was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No agent has that name.
    #[error("no agent named {name:?} (agents: {known}); `clawkeep ps` lists them")]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// The fleet's agents.
        known: String,
    },
    /// A service runs on the host, outside any sandbox.
    #[error("{name} is a service: it runs on the host, not in a sandbox, so there is nothing to exec into (hint: run the command on the host)")]
    Service {
        /// The service.
        name: String,
    },
    /// The agent is not running.
    #[error("agent {name} is {state}, not running: there is no sandbox to exec into (hint: `clawkeep start {name}`, then exec again)")]
    NotRunning {
        /// The agent.
        name: String,
        /// Its state.
        state: String,
    },
    /// Its init's start time could not be read (it just ended).
    #[error("agent {name}'s sandbox ended while exec was asked: {reason} (hint: `clawkeep ps`, then exec again)")]
    Gone {
        /// The agent.
        name: String,
        /// Why.
        reason: String,
    },
    /// The command is empty.
    #[error("no command to run (hint: clawkeep exec {name} -- sh)")]
    NoCommand {
        /// The agent.
        name: String,
    },
}

impl ExecError {
    fn into_response(self) -> Response {
        let status = match &self {
            ExecError::UnknownAgent { .. } => StatusCode::NOT_FOUND,
            ExecError::NoCommand { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        };
        error(status, self.to_string())
    }
}

/// The answer to an exec request, with its audit line written.
pub async fn target(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    Json(ask): Json<ExecAsk>,
) -> Response {
    match find(&st, &name, &ask) {
        Ok(t) => Json(t).into_response(),
        Err(e) => e.into_response(),
    }
}

fn find(st: &ApiState, name: &str, ask: &ExecAsk) -> Result<ExecTarget, ExecError> {
    let shared = &st.shared;
    let Some(p) = shared.process(name) else {
        let known: Vec<&str> = shared
            .fleet
            .agents
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        return Err(ExecError::UnknownAgent {
            name: name.into(),
            known: known.join(", "),
        });
    };
    if matches!(p.def, Def::Service(_)) {
        return Err(ExecError::Service { name: name.into() });
    }
    if ask.command.is_empty() {
        return Err(ExecError::NoCommand { name: name.into() });
    }
    let (state, pid) = {
        let s = p.status();
        (s.state, s.pid)
    };
    let pid = match (state, pid) {
        (RunState::Running, Some(pid)) => pid.as_raw(),
        _ => {
            return Err(ExecError::NotRunning {
                name: name.into(),
                state: state.as_str().into(),
            })
        }
    };
    let start_time = clawkeep_sandbox::exec::start_time(pid).map_err(|e| ExecError::Gone {
        name: name.into(),
        reason: e.to_string(),
    })?;
    p.logs.event(&format!(
        "exec by {}{}: {}",
        ask.caller,
        if ask.tty { " with a terminal" } else { "" },
        shell_words(&ask.command)
    ));
    tracing::info!(agent = %name, caller = %ask.caller, command = ?ask.command, "exec");
    Ok(ExecTarget {
        agent: name.into(),
        pid,
        start_time,
        bundle: shared.paths.agent(name).join("bundle"),
    })
}

/// The command as a shell would need it typed (a word with a NUL, which no exec can take,
/// is shown as Rust would quote it).
fn shell_words(words: &[String]) -> String {
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| format!("{words:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_command_reads_as_it_would_be_typed() {
        let words = ["sh", "-c", "echo 'hi' > /tmp/x", ""].map(String::from);
        let line = shell_words(&words);
        assert_eq!(shlex::split(&line).unwrap(), words);
        assert!(line.starts_with("sh -c "), "{line}");
    }
}
