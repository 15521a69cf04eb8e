//! Running OpenClaw gateways as agents: the configuration clawkeep generates for each, the
//! state written into its home before each start, and its gateway token.

pub mod backup;
pub mod config;
pub mod provision;
pub mod token;
