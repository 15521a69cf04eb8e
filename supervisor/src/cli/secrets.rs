//! `clawkeep secrets set|list|rm`: agents' secrets in the state dir (no supervisor needed).

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::args::SecretsCmd;
use super::context::Context;
use super::tables::secrets_table;

pub(crate) fn run(ctx: &Context, command: SecretsCmd) -> Result<ExitCode> {
    let store = supervisor::secrets::Store::new(ctx.state_dir());
    match command {
        SecretsCmd::Set { agent, name } => {
            let value = read_value(&agent, &name)?;
            let replaced = store.set(&agent, &name, &value)?;
            drop(value);
            println!(
                "{agent}/{name}: {} (the agent gets it when it next starts: clawkeep restart {agent})",
                if replaced { "replaced" } else { "set" }
            );
            Ok(ExitCode::SUCCESS)
        }
        SecretsCmd::List { agent, json: _ } => {
            let names = store.names(agent.as_deref())?;
            ctx.show(&serde_json::json!({ "agents": names }), || {
                secrets_table(&names)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        SecretsCmd::Rm { agent, name } => {
            if store.remove(&agent, &name)? {
                println!("{agent}/{name}: removed");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "clawkeep: {agent}/{name} is not set in {} (see clawkeep secrets list {agent})",
                    store.file_path().display()
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// A secret's value from stdin: without echo on a terminal, one trailing newline dropped.
fn read_value(agent: &str, name: &str) -> Result<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::io::Read;
    let stdin = std::io::stdin();
    let mut value = String::new();
    match termios::tcgetattr(&stdin) {
        Ok(saved) => {
            eprint!("value of {agent}/{name} (not echoed): ");
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turn off echo")?;
            let read = stdin.read_line(&mut value);
            let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &saved);
            eprintln!();
            read.context("read the value from the terminal")?;
        }
        Err(_) => {
            stdin
                .lock()
                .read_to_string(&mut value)
                .context("read the value from stdin")?;
        }
    }
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}
