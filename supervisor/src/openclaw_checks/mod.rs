//! The checks of an OpenClaw fleet's running agents, for `clawkeep audit` and `clawkeep
//! doctor`: each agent's files and config as clawkeep enforces them, OpenClaw's own
//! `security audit`, the pinned runtime and each gateway answering through its port.

pub mod audit;
pub mod checks;
pub mod doctor;
pub mod security_audit;
