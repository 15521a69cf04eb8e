//! The image builder. For now: the pinned agent runtime (Node + OpenClaw) as an offline
//! bundle, and its read-only, content-addressed install on an air-gapped node
//! ([`runtime`]).

pub mod disk;
pub mod runtime;
