//! `clawkeep`: run a fleet of sandboxed OpenClaw agents on one node.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use clawkeep_sandbox::launch::INIT_SUBCOMMAND;

mod cli;

use cli::args::{Cli, Cmd, SandboxCmd};
use cli::context::Context;

/// Where the appliance image keeps its fleet file: what PID 1 runs when the kernel starts
/// clawkeep as /sbin/init without arguments (CLAWKEEP_FLEET, e.g. from the kernel command
/// line, names another).
const BOOT_FLEET: &str = "/etc/clawkeep/fleet.toml";

/// The command line, or `clawkeep up FLEET` when clawkeep is PID 1 and was given none.
fn boot_args() -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() > 1 || std::process::id() != 1 {
        return args;
    }
    let fleet = std::env::var_os("CLAWKEEP_FLEET").unwrap_or_else(|| BOOT_FLEET.into());
    // The kernel starts init with HOME and TERM only: programs the fleet names without a
    // path (garage, llama-server) are looked up in the usual PATH. Still one thread here.
    if std::env::var_os("PATH").is_none() {
        #[allow(clippy::disallowed_methods)] // PID 1 before any thread: the one place.
        std::env::set_var(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    let me = args.into_iter().next().unwrap_or_else(|| "clawkeep".into());
    vec![me, "up".into(), fleet]
}

fn main() -> ExitCode {
    // The sandbox init: checked before clap, since every sandbox start pays for this path.
    // Single-threaded on purpose (the init forks): no runtime, no logging setup.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(INIT_SUBCOMMAND)) {
        let bundle = PathBuf::from(args.next().unwrap_or_default());
        let fds = clawkeep_sandbox::init::launcher_fds();
        let _ = nix::sys::prctl::set_name(c"clawkeep-init");
        return ExitCode::from(clawkeep_sandbox::init::run(&bundle, fds) as u8);
    }
    // `clawkeep exec`'s helper: single-threaded too, since it enters namespaces (setns of a
    // user namespace refuses a threaded process).
    if let Some(request) = exec_helper_request() {
        let _ = nix::sys::prctl::set_name(c"clawkeep-exec");
        return ExitCode::from(clawkeep_sandbox::exec::run(&request) as u8);
    }
    let cli = Cli::parse_from(boot_args());
    // No logging setup for `run` either: it is measured against runc.
    if !matches!(cli.command, Cmd::Sandbox(SandboxCmd::Run { .. })) {
        init_logging(cli.log_format);
    }
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clawkeep: {e:#}");
            cli::exit::of_error(&e)
        }
    };
    if std::process::id() == 1 {
        // PID 1 must not return (the kernel panics): whatever stopped `up`, end the node.
        eprintln!("clawkeep: PID 1 is done; powering off");
        supervisor::pid1::power_off();
    }
    code
}

/// The request of `clawkeep __sandbox-exec ...`, when that is the command line.
fn exec_helper_request() -> Option<clawkeep_sandbox::exec::Request> {
    let mut args = std::env::args();
    if args.nth(1).as_deref() != Some(clawkeep_sandbox::exec::EXEC_SUBCOMMAND) {
        return None;
    }
    match clawkeep_sandbox::exec::Request::parse(args) {
        Some(r) => Some(r),
        None => {
            eprintln!("clawkeep: {} takes BUNDLE PID START_TIME FLAGS -- COMMAND (it is run by `clawkeep exec`)", clawkeep_sandbox::exec::EXEC_SUBCOMMAND);
            std::process::exit(2);
        }
    }
}

/// Log lines on stderr, as `format` says; colours only on a terminal and without NO_COLOR.
fn init_logging(format: cli::args::LogFormat) {
    use cli::args::LogFormat;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAWKEEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,notify=warn"));
    let colour = format == LogFormat::Text
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let base = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false);
    match format {
        LogFormat::Text => base.init(),
        LogFormat::Json => base.json().flatten_event(true).init(),
        LogFormat::Journal => base.without_time().init(),
    }
}

/// Each group of commands runs in its own module, with the context built here.
fn dispatch(cli: Cli) -> Result<ExitCode> {
    let ctx = Context::new(&cli);
    match cli.command {
        Cmd::Fleet(command) => cli::fleet::run(&ctx, command),
        Cmd::Spend(args) => cli::spend::run(&ctx, args),
        Cmd::Sync { command } => cli::sync::run(&ctx, command),
        Cmd::Upgrade(command) => cli::upgrade::run(&ctx, command),
        Cmd::Brain(command) => cli::brain::run(&ctx, command),
        Cmd::Checks(command) => cli::checks::run(&ctx, command),
        Cmd::Secrets { command } => cli::secrets::run(&ctx, command),
        Cmd::Token { command } => cli::token::run(&ctx, command),
        Cmd::Store { command } => cli::store::run(&ctx, command),
        Cmd::Sandbox(command) => cli::sandbox::run(&ctx, command),
        Cmd::Runtime { command } => cli::runtime::run(&ctx, command),
        Cmd::Image { command } => cli::image::run(&ctx, command),
        Cmd::Render { command } => cli::render::run(command),
        Cmd::Completions { shell } => cli::about::completions(shell),
        Cmd::Unit { fleet, binary } => cli::about::unit(&fleet, binary),
        Cmd::Man { dir } => cli::about::man(dir.as_deref()),
        Cmd::Pod { command } => cli::pod::run(command),
        Cmd::Gateway {
            fleet,
            credentials,
            ledger,
            listen,
            metrics,
        } => cli::gateway::run(&fleet, &credentials, &ledger, listen, metrics),
        // Only reached when an option comes first: the sandbox init is argument 1 or nothing.
        Cmd::SandboxInit { .. } => Ok(ExitCode::FAILURE),
    }
}
