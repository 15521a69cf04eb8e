//! Running OpenClaw gateways as agents: the configuration clawkeep generates for each, the
//! state written into its home before each start, and its gateway token.

pub mod audit;
pub mod backup;
pub mod checks;
pub mod config;
pub mod doctor;
pub mod provision;
pub mod ready;
pub mod security_audit;
pub mod token;
