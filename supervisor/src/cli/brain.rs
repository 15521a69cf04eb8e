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
        BrainCmd::Restore { agent, at, dry_run } => {
            let plan = api.block_on(api.restore(&agent, &at, dry_run))?;
            let verb = if dry_run { "would" } else { "did" };
            println!(
                "{agent}: back to the push of {} (snapshot {})",
                plan.time, plan.snapshot
            );
            for p in &plan.write {
                println!("  {verb} write   {p}");
            }
            for p in &plan.delete {
                println!("  {verb} remove  {p}");
            }
            println!("  {} files already as they were", plan.unchanged);
        }
    }
    Ok(ExitCode::SUCCESS)
}
