//! clawkeep's supervisor: the fleet file, the agent sandbox, the process engine, PID-1 duties
//! and the control API that the `clawkeep` CLI talks to.

pub mod api;
pub mod audit;
pub mod brains;
pub mod doctor;
pub mod engine;
pub mod findings;
pub mod fleet;
pub mod netns;
pub mod node_image;
pub mod openclaw;
pub mod openclaw_checks;
pub mod pid1;
pub mod power_button;
pub mod sandbox;
pub mod sandbox_audit;
pub mod secrets;
pub mod spend;
pub mod sys;
pub mod tcp_peer;
pub mod text;
pub mod up;
