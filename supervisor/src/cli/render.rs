//! `clawkeep render k8s`: the fleet as Kubernetes manifests; what was written on stdout.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::args::{RenderCmd, RenderFormat, RenderTarget};

pub(crate) fn run(command: RenderCmd) -> Result<ExitCode> {
    match command {
        RenderCmd::K8s {
            fleet,
            out,
            format,
            target,
            kube_version: _,
            image,
            runtime_image,
            store,
            user_namespaces,
            runtime_class,
            monitoring,
            seccomp_profile,
            gateway_ip,
        } => {
            let f = match supervisor::fleet::load_for_cluster(&fleet) {
                Ok(f) => f,
                Err(d) => {
                    eprint!("{d}");
                    return Ok(ExitCode::from(super::exit::INVALID));
                }
            };
            let flags = supervisor::k8s::Options {
                image: image.unwrap_or_default(),
                runtime_image,
                store,
                user_namespaces,
                runtime_class,
                monitoring,
                seccomp_profile,
                gateway_ip,
                // The fleet's: it decides which egress entries load at all.
                network: Default::default(),
                target: match target {
                    RenderTarget::Statefulset => supervisor::k8s::Target::StatefulSet,
                    RenderTarget::AgentSandbox => supervisor::k8s::Target::AgentSandbox,
                },
            };
            let text = std::fs::read_to_string(&fleet)
                .with_context(|| format!("read {}", fleet.display()))?;
            let rendered = match supervisor::k8s::Options::of(&f.cluster, flags).and_then(|opts| {
                let files = match format {
                    RenderFormat::Manifests => supervisor::k8s::render(&f, &opts)?,
                    RenderFormat::Helm => supervisor::k8s::helm::chart(&f, &text, &opts)?,
                };
                Ok((files, opts))
            }) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: {e}", fleet.display());
                    return Ok(ExitCode::from(super::exit::INVALID));
                }
            };
            let (rendered, opts) = rendered;
            match format {
                RenderFormat::Manifests => supervisor::k8s::write(&out, &rendered)?,
                RenderFormat::Helm => supervisor::k8s::write_files(&out, &rendered)?,
            }
            let nodes = supervisor::k8s::node_files(&opts)
                .map_err(|e| anyhow::anyhow!("{}: {e}", fleet.display()))?;
            supervisor::k8s::write_files(&out, &nodes)?;
            for note in supervisor::k8s::notes(&f, &opts) {
                eprintln!("{}: note: {note}", fleet.display());
            }
            let (what, apply) = match format {
                RenderFormat::Manifests => (
                    format!("{} objects", rendered.len()),
                    format!("kubectl apply -k {}", out.display()),
                ),
                RenderFormat::Helm => (
                    format!(
                        "a chart of {} objects",
                        rendered
                            .iter()
                            .filter(|r| r.path.starts_with("templates"))
                            .count()
                            - 1
                    ),
                    format!(
                        "helm install {} {}",
                        supervisor::k8s::helm::CHART,
                        out.display()
                    ),
                ),
            };
            println!(
                "{}: {what} for {} agents in {} ({apply})",
                fleet.display(),
                f.agents.len(),
                out.display(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
