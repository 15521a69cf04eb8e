//! `clawkeep runtime prepare|install`: the pinned agent runtime; progress on stderr, the
//! result on stdout.

use std::process::ExitCode;

use anyhow::Result;

use super::args::RuntimeCmd;
use super::context::Context;

pub(crate) fn run(ctx: &Context, command: RuntimeCmd) -> Result<ExitCode> {
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
            json: _,
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
            let answer = serde_json::json!({
                "id": p.id,
                "openclaw": p.manifest.openclaw,
                "node": p.manifest.node,
                "files": p.manifest.files.len(),
                "bytes": p.bytes,
                "out": out,
            });
            ctx.show(&answer, || format!("{}\n", p.id))?;
        }
        RuntimeCmd::Install {
            bundle,
            dest,
            expect_id,
            json: _,
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
            let answer = serde_json::json!({
                "id": r.id,
                "path": r.path,
                "already_installed": r.already,
                "openclaw": r.manifest.openclaw,
                "node": r.manifest.node,
            });
            ctx.show(&answer, || format!("{}\n", r.path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
