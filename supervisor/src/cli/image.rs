//! `clawkeep image prepare|build|verify|inspect`: the appliance image; progress on stderr,
//! results on stdout.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::args::ImageCmd;
use super::context::Context;
use super::tables::human_bytes;

pub(crate) fn run(ctx: &Context, command: ImageCmd) -> Result<ExitCode> {
    use clawkeep_image::build;
    use supervisor::node_image;
    match command {
        ImageCmd::Prepare {
            kernel,
            base_rootfs,
            runtime,
            clawkeep,
            model,
            backend,
            link,
            out,
            stage1,
        } => {
            let stage1 = match stage1 {
                Some(p) => p,
                None => {
                    let exe = std::env::current_exe().context("locate this clawkeep binary")?;
                    let beside = exe.with_file_name("clawkeep-stage1");
                    anyhow::ensure!(
                        beside.is_file(),
                        "no stage-1 init given and none at {} (hint: build it with `cargo build --release -p clawkeep-stage1 --target x86_64-unknown-linux-musl` and pass --stage1 target/x86_64-unknown-linux-musl/release/clawkeep-stage1)",
                        beside.display()
                    );
                    beside
                }
            };
            let (clawkeep, clawkeep_version) = match clawkeep {
                Some(path) => (path, None),
                None => (
                    std::env::current_exe().context("locate this clawkeep binary")?,
                    Some(env!("CARGO_PKG_VERSION").to_string()),
                ),
            };
            let inputs = clawkeep_image::bundle::BundleInputs {
                kernel,
                base_rootfs,
                runtime,
                clawkeep,
                clawkeep_version,
                stage1,
                models: model,
                backends: backend,
            };
            let placement = if link {
                clawkeep_image::bundle::Placement::HardLink
            } else {
                clawkeep_image::bundle::Placement::Copy
            };
            let prepared = clawkeep_image::bundle::prepare(&inputs, &out, placement)?;
            eprintln!(
                "clawkeep: {} inputs pinned in {}",
                prepared.manifest.inputs.len(),
                out.join(clawkeep_image::bundle::MANIFEST).display()
            );
            println!("{}", prepared.dir.display());
        }
        ImageCmd::Build {
            fleet,
            bundle,
            out,
            force,
            epoch,
            mke2fs,
            qemu_img,
            depmod,
            json: _,
        } => {
            // `clawkeep check` here (a fleet with errors builds nothing; this machine's state
            // dir is not the node's), and again inside the staged image, where the paths the
            // fleet names are the node's.
            if let Err(d) = supervisor::fleet::load_for_image(&fleet) {
                eprint!("{d}");
                return Ok(ExitCode::from(super::exit::INVALID));
            }
            let fleet_path = std::path::absolute(&fleet).context("locate the fleet file")?;
            let (f, base) = match supervisor::fleet::load_file(&fleet) {
                Ok(f) => f,
                Err(d) => {
                    eprint!("{d}");
                    return Ok(ExitCode::from(super::exit::INVALID));
                }
            };
            let start = std::time::Instant::now();
            let mut progress = |line: &str| {
                eprintln!("clawkeep: [{:5.1}s] {line}", start.elapsed().as_secs_f64());
            };
            progress(&format!(
                "{}: ok ({} agents); building into {}",
                fleet.display(),
                f.agent.len(),
                out.display()
            ));
            let opts = build::BuildOptions {
                bundle,
                out,
                force,
                epoch,
                fleet: node_image::fleet_input(&f, &fleet_path, &base),
                tools: node_image::tools(mke2fs, qemu_img, depmod),
                check_fleet: Some(node_image::check_in_root),
            };
            let report = build::build(&opts, &mut progress)?;
            let size = |name: &str| {
                report
                    .lock
                    .outputs
                    .iter()
                    .find(|o| o.path == name)
                    .map_or(0, |o| o.size)
            };
            progress(&format!(
                "built: openclaw {} on node {}, kernel {}, {} agents; node.raw {}, node.qcow2 {}",
                report.info.openclaw,
                report.info.node,
                report.info.kernel_release,
                report.info.agents.len(),
                human_bytes(size(build::RAW)),
                human_bytes(size(build::QCOW2)),
            ));
            let lock_path = report.out.join(clawkeep_image::lock::LOCK);
            let stages: serde_json::Map<String, serde_json::Value> = report
                .stages
                .iter()
                .map(|s| (s.name.to_string(), s.took.as_secs_f64().into()))
                .collect();
            let answer = serde_json::json!({
                "out": report.out,
                "lock_file": lock_path,
                "info": report.info,
                "lock": report.lock,
                "stage_seconds": stages,
            });
            ctx.show(&answer, || format!("{}\n", lock_path.display()))?;
        }
        ImageCmd::Verify { out, json } => {
            let verified = build::verify(&out);
            if json {
                let (ok, outputs, problem) = match &verified {
                    Ok(lock) => (true, lock.outputs.len(), None),
                    Err(e) => (false, 0, Some(e.to_string())),
                };
                let answer = serde_json::json!({
                    "out": out, "ok": ok, "outputs": outputs, "problem": problem,
                });
                println!("{}", serde_json::to_string_pretty(&answer)?);
            }
            return Ok(match verified {
                Ok(lock) => {
                    if !json {
                        println!(
                            "{}: ok ({} outputs match {})",
                            out.display(),
                            lock.outputs.len(),
                            clawkeep_image::lock::LOCK
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("clawkeep: {e}");
                    ExitCode::from(super::exit::FINDINGS)
                }
            });
        }
        ImageCmd::Inspect { out, json: _ } => {
            let image = build::inspect(&out)?;
            ctx.show(&image, || node_image::describe(&image))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
