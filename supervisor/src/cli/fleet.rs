//! `clawkeep check|schema|up|ps|logs|stop|start|restart|down`: the fleet file and the fleet.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use supervisor::fleet::Fleet;

use super::args::FleetCmd;
use super::context::{Context, Format};
use super::tables::{log_line_json, ps_table};

pub(crate) fn run(ctx: &Context, command: FleetCmd) -> Result<ExitCode> {
    match command {
        FleetCmd::Check { fleet, json: true } => {
            let loaded = supervisor::fleet::load(&fleet);
            let (agents, services) = loaded
                .as_ref()
                .map(|f| (f.agents.len(), f.services.len()))
                .unwrap_or_default();
            let problems = loaded
                .as_ref()
                .err()
                .map(|d| d.items.clone())
                .unwrap_or_default();
            let report = serde_json::json!({
                "file": fleet.display().to_string(),
                "ok": loaded.is_ok(),
                "agents": agents,
                "services": services,
                "problems": problems,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if loaded.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::exit::INVALID)
            })
        }
        FleetCmd::Check { fleet, json: false } => Ok(match load(&fleet) {
            Ok(f) => {
                println!(
                    "{}: ok ({} agents, {} services)",
                    fleet.display(),
                    f.agents.len(),
                    f.services.len()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }),
        FleetCmd::Schema => {
            let schema = supervisor::fleet::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        FleetCmd::Up { fleet } => {
            let f = match load(&fleet) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let dir = ctx.state_dir_of(&f);
            supervisor::up::run(f, dir)?;
            Ok(ExitCode::SUCCESS)
        }
        FleetCmd::Ps { json: _ } => {
            let api = ctx.api()?;
            let reply = api.block_on(api.ps())?;
            ctx.show(&reply, || ps_table(&reply))?;
            Ok(ExitCode::SUCCESS)
        }
        FleetCmd::Logs {
            name,
            follow,
            lines,
            events,
            json: _,
        } => logs(ctx, &name, lines, follow, events),
        FleetCmd::Stop { name } => action(ctx, &name, "stop"),
        FleetCmd::Start { name } => action(ctx, &name, "start"),
        FleetCmd::Restart { name } => action(ctx, &name, "restart"),
        FleetCmd::Down { timeout } => down(ctx, timeout),
        FleetCmd::Exec {
            interactive,
            tty,
            agent,
            command,
        } => super::exec::run(ctx, &agent, command, interactive, tty),
    }
}

/// The fleet file, or exit 2 once its problems are printed.
pub(crate) fn load(path: &Path) -> std::result::Result<Fleet, ExitCode> {
    supervisor::fleet::load(path).map_err(|d| {
        eprint!("{d}");
        ExitCode::from(super::exit::INVALID)
    })
}

/// `clawkeep logs`: the output as it comes, or (`--json`) one object per line.
fn logs(ctx: &Context, name: &str, lines: usize, follow: bool, events: bool) -> Result<ExitCode> {
    let json = ctx.format == Format::Json;
    let api = ctx.api()?;
    let mut out = std::io::stdout();
    let mut partial: Vec<u8> = Vec::new();
    api.block_on(api.logs(name, lines, follow, events, |chunk| {
        if !json {
            let _ = out.write_all(chunk);
            let _ = out.flush();
            return;
        }
        partial.extend_from_slice(chunk);
        while let Some(i) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=i).collect();
            let _ = writeln!(out, "{}", log_line_json(&line[..i]));
        }
        let _ = out.flush();
    }))?;
    if json && !partial.is_empty() {
        let _ = writeln!(out, "{}", log_line_json(&partial));
    }
    Ok(ExitCode::SUCCESS)
}

/// `clawkeep stop|start|restart NAME`.
fn action(ctx: &Context, name: &str, what: &str) -> Result<ExitCode> {
    let api = ctx.api()?;
    let row = api.block_on(api.action(name, what))?;
    println!("{}: {}", row.name, row.state.as_str());
    Ok(ExitCode::SUCCESS)
}

/// `clawkeep down`: ask for the shutdown, then wait until the supervisor is gone.
fn down(ctx: &Context, timeout: std::time::Duration) -> Result<ExitCode> {
    let api = ctx.api()?;
    api.block_on(api.shutdown())?;
    eprintln!("clawkeep: shutting down (agents, then services)...");
    let deadline = std::time::Instant::now() + timeout;
    while api.block_on(api.alive()) {
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "the supervisor is still shutting down after {}; `clawkeep ps` shows what it waits for",
                humantime::format_duration(timeout)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("clawkeep: stopped");
    Ok(ExitCode::SUCCESS)
}
