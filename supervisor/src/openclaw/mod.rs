//! Running OpenClaw gateways as agents: the configuration clawkeep generates for each.

pub mod config;
