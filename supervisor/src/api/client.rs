//! The CLI's side of the control API.

use std::path::{Path, PathBuf};

use super::types::{ApiError, ProcessRow, PsReply};

/// Why a CLI request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("no clawkeep supervisor is running with state dir {state_dir} (cannot connect to {socket}: {reason}); start one with `clawkeep up FLEET`, or point --state-dir / CLAWKEEP_STATE_DIR at its state dir")]
    NotRunning {
        /// The state dir in use.
        state_dir: PathBuf,
        /// The socket path.
        socket: PathBuf,
        /// The connect error.
        reason: String,
    },
    /// The socket is there but this user may not connect to it.
    #[error("permission denied: this user may not connect to {socket} (run the command with sudo, or ask for membership of the fleet's [node] control_group)")]
    Denied {
        /// The socket path.
        socket: PathBuf,
    },
    /// The supervisor answered with an error.
    #[error("{0}")]
    Api(String),
    /// The exchange failed midway.
    #[error("control API: {0}")]
    Http(String),
}

/// A client bound to one supervisor's socket.
pub struct Client {
    http: reqwest::Client,
    state_dir: PathBuf,
    socket: PathBuf,
}

impl Client {
    /// A client for the supervisor whose state dir is `state_dir`.
    pub fn new(state_dir: &Path) -> Result<Self, ClientError> {
        let socket = state_dir.join(super::SOCKET);
        let http = reqwest::Client::builder()
            .unix_socket(socket.clone())
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Self {
            http,
            state_dir: state_dir.to_path_buf(),
            socket,
        })
    }

    fn url(path: &str) -> String {
        format!("http://clawkeep{path}")
    }

    fn map_send(&self, e: reqwest::Error) -> ClientError {
        let denied = std::iter::successors(std::error::Error::source(&e), |s| s.source())
            .filter_map(|s| s.downcast_ref::<std::io::Error>())
            .any(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
        if denied {
            ClientError::Denied {
                socket: self.socket.clone(),
            }
        } else if e.is_connect() {
            let reason = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.to_string());
            ClientError::NotRunning {
                state_dir: self.state_dir.clone(),
                socket: self.socket.clone(),
                reason,
            }
        } else {
            ClientError::Http(e.to_string())
        }
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("{status}: {text}"));
        Err(ClientError::Api(msg))
    }

    /// Send a request and decode its JSON answer.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req.send().await.map_err(|e| self.map_send(e))?;
        Self::check(resp)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// `GET /v1/ps`.
    pub async fn ps(&self) -> Result<PsReply, ClientError> {
        self.json(self.http.get(Self::url("/v1/ps"))).await
    }

    /// `POST /v1/processes/NAME/ACTION` (start, stop, restart); waits until done.
    pub async fn action(&self, name: &str, action: &str) -> Result<ProcessRow, ClientError> {
        let url = Self::url(&format!("/v1/processes/{name}/{action}"));
        self.json(self.http.post(url)).await
    }

    /// `GET /v1/logs/NAME`; calls `out` with each chunk as it arrives.
    pub async fn logs(
        &self,
        name: &str,
        lines: usize,
        follow: bool,
        events: bool,
        mut out: impl FnMut(&[u8]),
    ) -> Result<(), ClientError> {
        let resp = self
            .http
            .get(Self::url(&format!(
                "/v1/logs/{name}?lines={lines}&follow={follow}&events={events}"
            )))
            .send()
            .await
            .map_err(|e| self.map_send(e))?;
        let mut resp = Self::check(resp).await?;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
        {
            out(&chunk);
        }
        Ok(())
    }

    /// `POST /v1/shutdown`.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let resp = self
            .http
            .post(Self::url("/v1/shutdown"))
            .send()
            .await
            .map_err(|e| self.map_send(e))?;
        Self::check(resp).await.map(drop)
    }

    /// `GET /v1/doctor`.
    pub async fn doctor(&self) -> Result<crate::audit::AuditReport, ClientError> {
        self.json(self.http.get(Self::url("/v1/doctor"))).await
    }

    /// `GET /v1/audit`.
    pub async fn audit(&self) -> Result<crate::audit::AuditReport, ClientError> {
        self.json(self.http.get(Self::url("/v1/audit"))).await
    }

    /// `GET /v1/sync`.
    pub async fn sync_status(&self) -> Result<crate::brains::SyncStatus, ClientError> {
        self.json(self.http.get(Self::url("/v1/sync"))).await
    }

    /// `POST /v1/sync/NAME/ACTION` (push, pull); waits for the pass.
    pub async fn sync_pass(
        &self,
        name: &str,
        action: &str,
        allow_deletes: bool,
    ) -> Result<clawkeep_store::SyncReport, ClientError> {
        let query = if allow_deletes {
            "?allow_deletes=true"
        } else {
            ""
        };
        self.json(
            self.http
                .post(Self::url(&format!("/v1/sync/{name}/{action}{query}"))),
        )
        .await
    }

    /// [`Client::sync_pass`] with its progress: `on` gets each snapshot the supervisor
    /// streams while the pass runs (`?progress=true`).
    pub async fn sync_pass_watched(
        &self,
        name: &str,
        action: &str,
        allow_deletes: bool,
        on: impl FnMut(&clawkeep_store::ProgressSnapshot),
    ) -> Result<clawkeep_store::SyncReport, ClientError> {
        let url = Self::url(&format!(
            "/v1/sync/{name}/{action}?progress=true&allow_deletes={allow_deletes}"
        ));
        let report: Box<clawkeep_store::SyncReport> = self.watched(self.http.post(url), on).await?;
        Ok(*report)
    }

    /// Send a request answered with a progress stream ([`super::store::StreamLine`]s): `on`
    /// gets each snapshot, the answer is the last line's.
    async fn watched<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        mut on: impl FnMut(&clawkeep_store::ProgressSnapshot),
    ) -> Result<T, ClientError> {
        use super::store::StreamLine;
        let resp = req.send().await.map_err(|e| self.map_send(e))?;
        let mut resp = Self::check(resp).await?;
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = resp
                .chunk()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?;
            let Some(chunk) = chunk else {
                return Err(ClientError::Http(
                    "the supervisor ended the progress stream without an answer".into(),
                ));
            };
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let parsed: StreamLine<T> = serde_json::from_slice(&line)
                    .map_err(|e| ClientError::Http(format!("a progress line: {e}")))?;
                match parsed {
                    StreamLine::Progress(p) => on(&p),
                    StreamLine::Report(r) => return Ok(r),
                    StreamLine::Error(e) => return Err(ClientError::Api(e)),
                }
            }
        }
    }

    /// `GET /v1/sync/NAME/history`: the newest `last` pushes, oldest first.
    pub async fn sync_history(
        &self,
        name: &str,
        last: usize,
    ) -> Result<Vec<clawkeep_store::history::Entry>, ClientError> {
        self.json(
            self.http
                .get(Self::url(&format!("/v1/sync/{name}/history?last={last}"))),
        )
        .await
    }

    /// `POST /v1/sync/NAME/takeover`: take the brain's lease; the reply's `message` says from
    /// whom.
    pub async fn sync_takeover(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.json(
            self.http
                .post(Self::url(&format!("/v1/sync/{name}/takeover"))),
        )
        .await
    }

    /// `POST /v1/clone`.
    pub async fn clone_brain(
        &self,
        from: &str,
        to: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let body = super::store::CloneRequest {
            from: from.into(),
            to: to.into(),
        };
        self.json(self.http.post(Self::url("/v1/clone")).json(&body))
            .await
    }

    /// `POST /v1/upgrade`: answers when the upgrade (or its rollback) is over.
    pub async fn upgrade(
        &self,
        req: &crate::engine::upgrade::UpgradeRequest,
    ) -> Result<crate::engine::upgrade::UpgradeReport, ClientError> {
        self.json(self.http.post(Self::url("/v1/upgrade")).json(req))
            .await
    }

    /// `POST /v1/rollback`.
    pub async fn rollback(&self) -> Result<crate::engine::upgrade::UpgradeReport, ClientError> {
        self.json(self.http.post(Self::url("/v1/rollback"))).await
    }

    /// `POST /v1/restore`.
    pub async fn restore(
        &self,
        agent: &str,
        at: &str,
        dry_run: bool,
    ) -> Result<clawkeep_store::history::RestorePlan, ClientError> {
        let body = super::store::RestoreRequest {
            agent: agent.into(),
            at: at.into(),
            dry_run,
        };
        self.json(self.http.post(Self::url("/v1/restore")).json(&body))
            .await
    }

    /// `POST /v1/store/migrate`.
    pub async fn migrate(
        &self,
        to: &str,
        credentials: &str,
        region: &str,
    ) -> Result<Vec<clawkeep_store::migrate::Copied>, ClientError> {
        let body = super::store::MigrateRequest {
            to: to.into(),
            credentials: credentials.into(),
            region: region.into(),
        };
        self.json(self.http.post(Self::url("/v1/store/migrate")).json(&body))
            .await
    }

    /// [`Client::migrate`] with its progress streamed to `on`.
    pub async fn migrate_watched(
        &self,
        to: &str,
        credentials: &str,
        region: &str,
        on: impl FnMut(&clawkeep_store::ProgressSnapshot),
    ) -> Result<Vec<clawkeep_store::migrate::Copied>, ClientError> {
        let body = super::store::MigrateRequest {
            to: to.into(),
            credentials: credentials.into(),
            region: region.into(),
        };
        let url = Self::url("/v1/store/migrate?progress=true");
        self.watched(self.http.post(url).json(&body), on).await
    }

    /// `GET /v1/agents/NAME/token`: an OpenClaw agent's gateway token.
    pub async fn token(&self, agent: &str) -> Result<super::token::TokenReply, ClientError> {
        let url = Self::url(&format!("/v1/agents/{agent}/token"));
        self.json(self.http.get(url)).await
    }

    /// `POST /v1/agents/NAME/token/rotate`: a new token; waits for the agent's restart.
    pub async fn rotate_token(&self, agent: &str) -> Result<super::token::TokenReply, ClientError> {
        let url = Self::url(&format!("/v1/agents/{agent}/token/rotate"));
        self.json(self.http.post(url)).await
    }

    /// `POST /v1/agents/NAME/exec`: where to enter the running agent's sandbox; the
    /// supervisor writes the request to the agent's log first.
    pub async fn exec_target(
        &self,
        agent: &str,
        ask: &super::exec::ExecAsk,
    ) -> Result<super::exec::ExecTarget, ClientError> {
        let url = Self::url(&format!("/v1/agents/{agent}/exec"));
        self.json(self.http.post(url).json(ask)).await
    }

    /// Whether a supervisor still answers.
    pub async fn alive(&self) -> bool {
        !matches!(self.ps().await, Err(ClientError::NotRunning { .. }))
    }
}
