//! `clawkeep clone|restore`: an agent's brain copied from another, or put back as it was.

use std::process::ExitCode;

use anyhow::Result;

use super::args::BrainCmd;
use super::context::Context;

pub(crate) fn run(ctx: &Context, command: BrainCmd) -> Result<ExitCode> {
    let api = ctx.api()?;
    match command {
        BrainCmd::Clone { from, to } => {
            let reply = api.block_on(api.clone_brain(&from, &to))?;
            println!("{}", reply["message"].as_str().unwrap_or_default());
        }
        BrainCmd::Restore {
            agent,
            at,
            dry_run,
            json: _,
        } => {
            let plan = api.block_on(api.restore(&agent, &at, dry_run))?;
            let verb = if dry_run { "would" } else { "did" };
            ctx.show(&plan, || {
                let mut out = format!(
                    "{agent}: back to the push of {} (snapshot {})\n",
                    plan.time, plan.snapshot
                );
                for p in &plan.write {
                    out.push_str(&format!("  {verb} write   {p}\n"));
                }
                for p in &plan.delete {
                    out.push_str(&format!("  {verb} remove  {p}\n"));
                }
                out.push_str(&format!(
                    "  {} files already as they were\n",
                    plan.unchanged
                ));
                out
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
