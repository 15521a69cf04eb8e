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
        Cmd::Schema => {
            let schema = supervisor::fleet::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
    }
}
