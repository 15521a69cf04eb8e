//! The control API: axum over a Unix socket (mode 0600) in the state dir; the CLI is a thin
//! client of it.

pub mod client;
pub mod exec;
pub mod server;
pub mod store;
pub mod token;
pub mod types;
pub mod upgrade;

pub use crate::engine::start::SOCKET;
