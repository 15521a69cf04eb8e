//! `clawkeep render k8s`: the fleet as Kubernetes manifests; what was written on stdout.

use std::process::ExitCode;

use anyhow::Result;

use super::args::RenderCmd;

pub(crate) fn run(command: RenderCmd) -> Result<ExitCode> {
    match command {
        RenderCmd::K8s {
            fleet,
            out,
            image,
            runtime_image,
            store,
            user_namespaces,
            runtime_class,
            gateway_ip,
        } => {
            let f = match supervisor::fleet::load_for_cluster(&fleet) {
                Ok(f) => f,
                Err(d) => {
                    eprint!("{d}");
                    return Ok(ExitCode::from(2));
                }
            };
            let flags = supervisor::k8s::Options {
                image: image.unwrap_or_default(),
                runtime_image,
                store,
                user_namespaces,
                runtime_class,
                gateway_ip,
            };
            let rendered = match supervisor::k8s::Options::of(&f.cluster, flags)
                .and_then(|opts| Ok((supervisor::k8s::render(&f, &opts)?, opts)))
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: {e}", fleet.display());
                    return Ok(ExitCode::from(2));
                }
            };
            let (rendered, opts) = rendered;
            supervisor::k8s::write(&out, &rendered)?;
            for note in supervisor::k8s::notes(&f, &opts) {
                eprintln!("{}: note: {note}", fleet.display());
            }
            println!(
                "{}: {} objects for {} agents in {} (kubectl apply -k {})",
                fleet.display(),
                rendered.len(),
                f.agents.len(),
                out.display(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
