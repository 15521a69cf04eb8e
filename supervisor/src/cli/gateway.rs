//! `clawkeep gateway`: the model gateway on its own, for a cluster; a line on stderr once it
//! listens, then it serves until stopped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

pub(crate) fn run(
    fleet: &Path,
    credentials: &Path,
    ledger: &Path,
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
) -> Result<ExitCode> {
    let f = match supervisor::fleet::load_for_cluster_gateway(fleet) {
        Ok(f) => f,
        Err(d) => {
            eprint!("{d}");
            return Ok(ExitCode::from(super::exit::INVALID));
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let agents = f.agents.len();
    let served = rt.block_on(supervisor::cluster_gateway::run(
        &f,
        credentials,
        ledger,
        listen,
        metrics,
        |addr| {
            let s = if agents == 1 { "" } else { "s" };
            eprintln!("clawkeep gateway: serving {agents} agent{s} on {addr}")
        },
    ));
    match served {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("clawkeep gateway: {}: {e}", fleet.display());
            Ok(ExitCode::from(super::exit::INVALID))
        }
    }
}
