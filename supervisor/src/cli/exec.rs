//! `clawkeep exec AGENT [-it] -- COMMAND`: ask the supervisor where the agent's sandbox is
//! (it logs the request), then run the single-threaded helper that enters it.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::Result;
use supervisor::api::exec::ExecAsk;

use super::context::Context;

pub(crate) fn run(
    ctx: &Context,
    agent: &str,
    command: Vec<String>,
    interactive: bool,
    tty: bool,
) -> Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "permission denied: exec enters the agent's namespaces and cgroup, which needs root on the node (hint: sudo clawkeep exec {agent} -- ...)"
        );
    }
    let api = ctx.api()?;
    let ask = ExecAsk {
        command: command.clone(),
        tty,
        caller: caller(),
    };
    let target = api.block_on(api.exec_target(agent, &ask))?;
    let request = clawkeep_sandbox::exec::Request {
        bundle: target.bundle,
        pid: target.pid,
        start_time: target.start_time,
        args: command,
        tty,
        stdin: interactive,
    };
    // Entering namespaces needs a single-threaded process, and this one has a runtime: the
    // helper replaces it (same pid, so signals sent to `clawkeep exec` reach the helper,
    // which forwards them to the command).
    let helper = clawkeep_sandbox::exec::helper_exe();
    let err = std::process::Command::new(helper)
        .arg0("clawkeep-exec")
        .args(request.to_args())
        .exec();
    Err(anyhow::Error::new(err).context(format!("run the exec helper {}", helper.display())))
}

/// Who runs this, for the agent's log: the uid, and the sudo user when there is one (as
/// the client says; only root and the control group reach the socket).
fn caller() -> String {
    let uid = nix::unistd::getuid();
    match std::env::var("SUDO_USER") {
        Ok(user) if !user.is_empty() => format!("uid {uid} (sudo from {user})"),
        _ => format!("uid {uid}"),
    }
}
