//! The `clawkeep` binary's own modules (not the library's): its command line, what every
//! command gets, a module per group of commands, and how answers are shown. `main.rs`
//! parses and dispatches.

pub(crate) mod about;
pub(crate) mod args;
pub(crate) mod context;
pub(crate) mod exit;
pub(crate) mod tables;

pub(crate) mod brain;
pub(crate) mod checks;
pub(crate) mod exec;
pub(crate) mod fleet;
pub(crate) mod gateway;
pub(crate) mod image;
pub(crate) mod pod;
pub(crate) mod progress;
pub(crate) mod render;
pub(crate) mod runtime;
pub(crate) mod sandbox;
pub(crate) mod secrets;
pub(crate) mod spend;
pub(crate) mod store;
pub(crate) mod sync;
pub(crate) mod token;
pub(crate) mod upgrade;
