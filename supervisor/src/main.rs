//! `clawkeep`: run a fleet of sandboxed OpenClaw agents on one node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run a fleet of sandboxed AI agents on hardware you own.
#[derive(Parser)]
#[command(name = "clawkeep", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate a fleet file and report every problem at once.
    ///
    /// Prints each problem as `file:line:col: what is wrong (hint)`. Exits 0 when the file is
    /// good, 2 when it has errors. Nothing is started.
    ///
    /// Example: clawkeep check examples/lab/fleet.toml
    Check {
        /// The fleet file.
        fleet: PathBuf,
    },
    /// Print the JSON Schema of the fleet file, for editors.
    ///
    /// Example: clawkeep schema > fleet.schema.json
    Schema,
    /// Run one OCI bundle in the foreground with clawkeep's launcher, like `runc run`.
    ///
    /// The bundle is a directory with config.json (see `clawkeep bundle`). Output goes to this
    /// terminal; the exit code is the process's (128+N for a signal, 137 for an OOM kill).
    ///
    /// Example: clawkeep run /var/lib/clawkeep/agents/research/bundle
    Run {
        /// Bundle directory.
        bundle: PathBuf,
    },
    /// The sandbox init (started by clawkeep itself inside each sandbox).
    #[command(name = "__sandbox-init", hide = true)]
    SandboxInit { bundle: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Check { fleet } => match supervisor::fleet::load(&fleet) {
            Ok(f) => {
                println!(
                    "{}: ok ({} agents, {} services)",
                    fleet.display(),
                    f.agents.len(),
                    f.services.len()
                );
                ExitCode::SUCCESS
            }
            Err(d) => {
                eprint!("{d}");
                ExitCode::from(2)
            }
        },
        Cmd::Run { bundle } => {
            use supervisor::sandbox::status::ExitReason;
            match supervisor::sandbox::run::run_bundle(&bundle, &Default::default()) {
                Ok(ExitReason::Code(c)) => ExitCode::from(c as u8),
                Ok(ExitReason::Signal(s)) => ExitCode::from(128 + s as u8),
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
        Cmd::SandboxInit { bundle } => {
            let (status, config) = supervisor::sandbox::init::launcher_fds();
            let _ = nix::sys::prctl::set_name(c"clawkeep-init");
            ExitCode::from(supervisor::sandbox::init::run(&bundle, status, config) as u8)
        }
        Cmd::Schema => {
            let schema = supervisor::fleet::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema).unwrap_or_default());
            ExitCode::SUCCESS
        }
    }
}
