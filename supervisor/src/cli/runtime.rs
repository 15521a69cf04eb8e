//! `clawkeep runtime prepare|install`: the pinned agent runtime; progress on stderr, the
//! result on stdout.

use std::process::ExitCode;

use anyhow::Result;

use super::args::RuntimeCmd;

pub(crate) fn run(command: RuntimeCmd) -> Result<ExitCode> {
    use clawkeep_image::runtime;
    let start = std::time::Instant::now();
    let mut progress = |line: &str| {
        eprintln!("clawkeep: [{:5.1}s] {line}", start.elapsed().as_secs_f64());
    };
    match command {
        RuntimeCmd::Prepare {
            openclaw,
            node,
            out,
        } => {
            let opts = runtime::PrepareOptions {
                openclaw,
                node,
                out: out.clone(),
            };
            let p = runtime::prepare(&opts, &mut progress)?;
            progress(&format!(
                "bundle of openclaw {} on node {}: {} files, {} MB",
                p.manifest.openclaw,
                p.manifest.node,
                p.manifest.files.len(),
                p.bytes / 1_000_000
            ));
            println!("{}", p.id);
        }
        RuntimeCmd::Install {
            bundle,
            dest,
            expect_id,
        } => {
            let opts = runtime::InstallOptions {
                bundle,
                dest,
                expect_id,
            };
            let r = runtime::install(&opts, &mut progress)?;
            if r.already {
                progress(&format!("already installed: {} (nothing to do)", r.id));
            } else {
                progress(&format!(
                    "installed openclaw {} on node {}",
                    r.manifest.openclaw, r.manifest.node
                ));
            }
            println!("{}", r.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
