//! `clawkeep bundle|run`: one agent's sandbox outside the supervisor, e.g. beside runc.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::args::SandboxCmd;
use super::context::Context;

pub(crate) fn run(ctx: &Context, command: SandboxCmd) -> Result<ExitCode> {
    match command {
        SandboxCmd::Bundle { fleet, agent, out } => {
            let f = match super::fleet::load(&fleet) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let Some(a) = f.agents.iter().find(|a| a.name == agent) else {
                let names: Vec<&str> = f.agents.iter().map(|a| a.name.as_str()).collect();
                anyhow::bail!(
                    "no agent named {agent:?} in {} (agents: {})",
                    fleet.display(),
                    names.join(", ")
                );
            };
            let paths = supervisor::engine::start::Paths {
                state_dir: ctx.state_dir_of(&f),
            };
            let plan = supervisor::engine::start::agent_plan(&f, a, &paths);
            supervisor::engine::start::write_agent_bundle(&f, a, &paths, None)?;
            let spec = clawkeep_sandbox::bundle::spec(&plan)?;
            let path = clawkeep_sandbox::bundle::write(&out, &spec)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        SandboxCmd::Run { bundle } => Ok(run_bundle(&bundle)),
    }
}

/// `clawkeep run BUNDLE`, like `runc run`: the exit code is the process's (128+N for a
/// signal, 137 for an OOM kill, 125 when the sandbox could not be set up).
fn run_bundle(bundle: &Path) -> ExitCode {
    use clawkeep_sandbox::status::ExitReason;
    match clawkeep_sandbox::run::run_bundle(bundle, &Default::default()) {
        Ok(ExitReason::Code(c)) => ExitCode::from(c as u8),
        Ok(ExitReason::Signal(s)) => ExitCode::from(128u8.wrapping_add(s as u8)),
        Ok(ExitReason::Oom) => {
            eprintln!("clawkeep: killed by the OOM killer (memory limit of the bundle)");
            ExitCode::from(137)
        }
        Ok(ExitReason::StartFailed) => ExitCode::from(125),
        Err(e) => {
            eprintln!("clawkeep: {e}");
            ExitCode::from(125)
        }
    }
}
