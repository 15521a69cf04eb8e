//! clawkeep's supervisor: the fleet file, the process engine that runs each agent in its
//! sandbox (crate `clawkeep_sandbox`), PID-1 duties and the control API that the `clawkeep`
//! CLI talks to.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod brains;
pub mod cluster_gateway;
pub mod doctor;
pub mod engine;
pub mod findings;
pub mod fleet;
pub mod k8s;
pub mod node_image;
pub mod openclaw;
pub mod openclaw_checks;
pub mod pid1;
pub mod pod;
pub mod power_button;
pub mod sandbox_audit;
pub mod secrets;
pub mod spend;
pub mod systemd;
pub mod tcp_peer;
pub mod text;
pub mod up;
