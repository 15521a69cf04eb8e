//! Running OpenClaw gateways as agents: the state written into an agent's home before each
//! start, its gateway token, its backups and what its readiness answer means. The
//! configuration rules live with the fleet (`fleet::openclaw`, re-exported here as
//! `config`); the checks of running agents live above the engine, in `openclaw_checks`.

pub mod backup;
pub use crate::fleet::openclaw as config;
pub mod provision;
pub mod ready;
pub mod token;
