//! `clawkeep token show|rotate`: an OpenClaw agent's gateway token.

use std::process::ExitCode;

use anyhow::Result;

use super::args::TokenCmd;
use super::context::Context;

pub(crate) fn run(ctx: &Context, command: TokenCmd) -> Result<ExitCode> {
    let api = ctx.api()?;
    match command {
        TokenCmd::Show { agent } => println!("{}", api.block_on(api.token(&agent))?.token),
        TokenCmd::Rotate { agent } => {
            let r = api.block_on(api.rotate_token(&agent))?;
            eprintln!(
                "clawkeep: {agent}: new gateway token written; {}",
                if r.restarted {
                    "the agent was restarted and uses it now"
                } else {
                    "the agent is stopped and takes it at its next start"
                }
            );
            println!("{}", r.token);
        }
    }
    Ok(ExitCode::SUCCESS)
}
