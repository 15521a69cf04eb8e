//! The exit codes every command keeps to, so scripts can tell "it failed" from "it found
//! something" from "there is no supervisor to ask" (listed in `clawkeep --help`).

use std::process::ExitCode;

/// The command could not do its work (the message says why).
pub(crate) const FAILED: u8 = 1;
/// What it was given is wrong: the fleet file, an argument (clap's usage errors too).
pub(crate) const INVALID: u8 = 2;
/// It ran and found problems: doctor and audit findings, brains behind or held
/// (`sync status`), an image that does not match its lock (`image verify`).
pub(crate) const FINDINGS: u8 = 3;
/// No supervisor answers: none runs with this state dir, or this user may not talk to it.
pub(crate) const UNREACHABLE: u8 = 4;

/// Success, or [`FINDINGS`].
pub(crate) fn findings(any: bool) -> ExitCode {
    if any {
        ExitCode::from(FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

/// The code for an error that ended a command.
pub(crate) fn of_error(e: &anyhow::Error) -> ExitCode {
    use supervisor::api::client::ClientError;
    let unreachable = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ClientError>(),
            Some(ClientError::NotRunning { .. } | ClientError::Denied { .. })
        )
    });
    ExitCode::from(if unreachable { UNREACHABLE } else { FAILED })
}
