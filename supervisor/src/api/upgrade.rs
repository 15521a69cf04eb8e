//! `POST /v1/upgrade` and `POST /v1/rollback`: the running fleet onto another installed
//! OpenClaw runtime, canary first with a gate, or back (see `engine::upgrade`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::server::{error, ApiState};
use crate::engine::upgrade::{self, UpgradeRequest};

/// Upgrade; answers once every agent moved or the fleet was rolled back (minutes).
pub async fn upgrade(State(st): State<ApiState>, Json(req): Json<UpgradeRequest>) -> Response {
    let Ok(mut before) = st.shared.upgrades.try_lock() else {
        return error(
            StatusCode::CONFLICT,
            "an upgrade or rollback is already running (hint: wait for it; `clawkeep ps` shows each agent's runtime)",
        );
    };
    match upgrade::upgrade(&st.shared, &mut before, &req).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// Roll back the last upgrade.
pub async fn rollback(State(st): State<ApiState>) -> Response {
    let Ok(mut before) = st.shared.upgrades.try_lock() else {
        return error(
            StatusCode::CONFLICT,
            "an upgrade or rollback is already running (hint: wait for it)",
        );
    };
    match upgrade::rollback(&st.shared, &mut before).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}
