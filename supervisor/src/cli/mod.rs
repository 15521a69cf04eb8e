//! The `clawkeep` binary's own modules (not the library's): its command line and how it
//! shows answers. `main.rs` parses and dispatches.

pub(crate) mod args;
pub(crate) mod tables;
