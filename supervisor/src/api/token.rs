//! `clawkeep token show|rotate NAME`: an OpenClaw agent's gateway token, for the operator on
//! this node (the control socket is root-only). Rotating writes a new token and restarts the
//! agent, the way `clawkeep restart` does, so its gateway takes it.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::server::{error, ApiState};
use crate::api::types::State as RunState;
use crate::engine::process::Command;

/// The answer of `GET /v1/agents/NAME/token` and `POST /v1/agents/NAME/token/rotate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenReply {
    /// The agent.
    pub agent: String,
    /// Its gateway token (OPENCLAW_GATEWAY_TOKEN inside its sandbox).
    pub token: String,
    /// Rotate: whether the agent was restarted to take it (a stopped agent takes it at its
    /// next start).
    pub restarted: bool,
}

/// Why a token request failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenApiError {
    /// No agent has that name.
    #[error("no agent named {name:?} (agents: {known}); `clawkeep ps` lists them")]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// The fleet's agents.
        known: String,
    },
    /// The fleet runs no OpenClaw, so no agent has a gateway token.
    #[error("agent {name:?} has no gateway token: the fleet {fleet} does not pin OpenClaw (hint: add openclaw = \"2026.9.6\" under [runtime] to run its agents as OpenClaw gateways)")]
    NotOpenclaw {
        /// The agent.
        name: String,
        /// The fleet file.
        fleet: PathBuf,
    },
    /// The token file could not be read or written.
    #[error(transparent)]
    Token(#[from] crate::openclaw::token::TokenError),
    /// The new token is written but the restart failed.
    #[error("the new token of {name} is written, but restarting it failed: {reason} (hint: `clawkeep restart {name}` once fixed; it takes the new token then)")]
    Restart {
        /// The agent.
        name: String,
        /// Why.
        reason: String,
    },
}

impl TokenApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            TokenApiError::UnknownAgent { .. } => StatusCode::NOT_FOUND,
            TokenApiError::NotOpenclaw { .. } | TokenApiError::Restart { .. } => {
                StatusCode::CONFLICT
            }
            TokenApiError::Token(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, self.to_string())
    }
}

/// The agent's token file, if `name` is an agent of a fleet that pins OpenClaw.
fn token_path(st: &ApiState, name: &str) -> Result<PathBuf, TokenApiError> {
    let fleet = &st.shared.fleet;
    if !fleet.agents.iter().any(|a| a.name == name) {
        let known: Vec<&str> = fleet.agents.iter().map(|a| a.name.as_str()).collect();
        return Err(TokenApiError::UnknownAgent {
            name: name.into(),
            known: known.join(", "),
        });
    }
    if fleet.openclaw.is_none() {
        return Err(TokenApiError::NotOpenclaw {
            name: name.into(),
            fleet: fleet.path.clone(),
        });
    }
    Ok(st.shared.paths.token(name))
}

/// `GET /v1/agents/NAME/token`: the token (minted now if the agent never started).
pub async fn show(State(st): State<ApiState>, Path(name): Path<String>) -> Response {
    let shown = token_path(&st, &name).and_then(|p| Ok(crate::openclaw::token::load_or_mint(&p)?));
    match shown {
        Ok(token) => Json(TokenReply {
            agent: name,
            token,
            restarted: false,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/agents/NAME/token/rotate`: a new token, and a restart unless it is stopped.
pub async fn rotate(State(st): State<ApiState>, Path(name): Path<String>) -> Response {
    let rotated = token_path(&st, &name).and_then(|p| Ok(crate::openclaw::token::rotate(&p)?));
    let token = match rotated {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let stopped = st
        .shared
        .process(&name)
        .is_none_or(|p| matches!(p.row().state, RunState::Stopped | RunState::Exited));
    if !stopped {
        if let Err(reason) = super::store::send(&st, &name, Command::Restart).await {
            return TokenApiError::Restart { name, reason }.into_response();
        }
    }
    Json(TokenReply {
        agent: name,
        token,
        restarted: !stopped,
    })
    .into_response()
}
