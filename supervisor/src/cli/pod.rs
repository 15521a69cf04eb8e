//! `clawkeep pod ...`: the in-pod pieces; a line on stderr once each listens.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::args::PodCmd;

pub(crate) fn run(command: PodCmd) -> Result<ExitCode> {
    match command {
        PodCmd::Run { config, command } => {
            use std::os::unix::process::CommandExt;
            let Some(home) = std::env::var_os("HOME") else {
                eprintln!(
                    "clawkeep pod run: HOME is not set (the manifests set it to the home volume)"
                );
                return Ok(ExitCode::from(2));
            };
            let mut cmd = std::process::Command::new(&command[0]);
            cmd.args(&command[1..]);
            match supervisor::pod::run::prepare(std::path::Path::new(&home), &config) {
                Ok(Some(done)) => {
                    if !done.seeded.is_empty() {
                        eprintln!("clawkeep pod run: seeded {}", done.seeded.join(", "));
                    }
                    cmd.envs(supervisor::pod::run::openclaw_env());
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("clawkeep pod run: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
            let e = cmd.exec();
            eprintln!("clawkeep pod run: exec {}: {e}", command[0]);
            Ok(ExitCode::from(127))
        }
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
