//! clawkeep's model gateway: agents reach local models only through it. It speaks Ollama's
//! native API and the OpenAI-compatible API to agents, routes to local upstreams in either
//! dialect, meters every token per agent and team, and enforces budgets and fair sharing.

#![forbid(unsafe_code)]

pub mod backend;
pub mod budget;
pub mod client;
pub mod clock;
pub mod config;
pub mod dialect;
pub mod ledger;
pub mod listen;
pub mod metrics;
pub mod queue;
pub mod route;
pub mod server;
