//! `clawkeep pod ...`: the in-pod pieces; a line on stderr once each listens.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::args::PodCmd;

pub(crate) fn run(command: PodCmd) -> Result<ExitCode> {
    match command {
        PodCmd::Shim {
            gateway,
            credential,
            listen,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("start the async runtime")?;
            let shown = gateway.clone();
            let served = rt.block_on(supervisor::pod::shim::run(
                &gateway,
                &credential,
                listen,
                |addr| eprintln!("clawkeep pod shim: serving on {addr} for {shown}"),
            ));
            match served {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("clawkeep pod shim: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}
