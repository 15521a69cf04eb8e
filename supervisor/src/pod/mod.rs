//! What runs inside an agent's pod on Kubernetes (`clawkeep pod ...`), where clawkeep is not
//! PID 1 of the node: the brain's init step and sync sidecar, the agent container's
//! entrypoint, which re-applies the enforced OpenClaw config at every start, its readiness
//! probe, and the model shim, which gives the agent the same 127.0.0.1:11434 it has on a
//! node and adds its credential for the cluster's gateway.

pub mod brain;
pub mod ready;
pub mod run;
pub mod shim;
