//! clawkeep's supervisor: the fleet file, the agent sandbox, the process engine, PID-1 duties
//! and the control API that the `clawkeep` CLI talks to.

pub mod fleet;
pub mod sandbox;
pub mod sys;
