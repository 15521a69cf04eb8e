//! `clawkeep pod ...`: the in-pod pieces; a line on stderr once each listens.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::args::{PodBrainArgs, PodCmd};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// This pod's name (a StatefulSet's is stable across restarts): the brain's lease holder.
fn pod_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "pod".into())
}

/// The brain's settings and syncers, or the exit code after saying why not.
type Brain = (
    supervisor::pod::brain::BrainSettings,
    Vec<(String, clawkeep_store::Syncer)>,
);

fn brain(who: &str, args: &PodBrainArgs) -> std::result::Result<Brain, ExitCode> {
    use supervisor::pod::brain;
    let made = brain::settings(&args.settings).and_then(|s| {
        brain::syncers(
            &s,
            &args.key,
            &args.volume,
            args.knowledge.as_deref(),
            &pod_name(),
        )
        .map(|y| (s, y))
    });
    made.map_err(|e| {
        eprintln!("clawkeep pod {who}: {e}");
        ExitCode::from(super::exit::INVALID)
    })
}

pub(crate) fn run(command: PodCmd) -> Result<ExitCode> {
    match command {
        PodCmd::Init { brain: args } => {
            let (s, syncers) = match brain("init", &args) {
                Ok(b) => b,
                Err(code) => return Ok(code),
            };
            let say = |line: String| eprintln!("clawkeep pod init: {line}");
            let pulled =
                runtime()?.block_on(supervisor::pod::brain::pull(&syncers, &s.agent, &say));
            match pulled {
                Ok(r) => {
                    eprintln!(
                        "clawkeep pod init: the brain of {} is in place from s3://{} ({} files down)",
                        s.agent, s.bucket, r.downloaded
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("clawkeep pod init: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        PodCmd::Sync { brain: args } => {
            let (s, syncers) = match brain("sync", &args) {
                Ok(b) => b,
                Err(code) => return Ok(code),
            };
            let rt = runtime()?;
            let kept = rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate()).context("catch SIGTERM")?;
                let mut int = signal(SignalKind::interrupt()).context("catch SIGINT")?;
                eprintln!(
                    "clawkeep pod sync: keeping {} in s3://{}",
                    args.volume.join(supervisor::pod::brain::HOME_DIR).display(),
                    s.bucket
                );
                let stop = async move {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    eprintln!("clawkeep pod sync: stopping: the last push");
                };
                let say: std::sync::Arc<dyn Fn(String) + Send + Sync> =
                    std::sync::Arc::new(|line| eprintln!("clawkeep pod sync: {line}"));
                anyhow::Ok(supervisor::pod::brain::keep(syncers, &s, stop, say).await)
            })?;
            match kept {
                Ok(r) => {
                    eprintln!(
                        "clawkeep pod sync: last push done ({} files up)",
                        r.uploaded
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("clawkeep pod sync: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        PodCmd::Ready { url, timeout } => {
            match runtime()?.block_on(supervisor::pod::ready::check(&url, timeout)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(why) => {
                    eprintln!("clawkeep pod ready: not ready: {why}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        PodCmd::Run {
            config,
            token,
            env_secrets,
            knowledge,
            command,
        } => {
            use std::os::unix::process::CommandExt;
            let Some(home) = std::env::var_os("HOME") else {
                eprintln!(
                    "clawkeep pod run: HOME is not set (the manifests set it to the home volume)"
                );
                return Ok(ExitCode::from(super::exit::INVALID));
            };
            let mut cmd = std::process::Command::new(&command[0]);
            cmd.args(&command[1..]);
            match supervisor::pod::run::secret_env(token.as_deref(), env_secrets.as_deref()) {
                Ok(vars) => {
                    cmd.envs(vars);
                }
                Err(e) => {
                    eprintln!("clawkeep pod run: {e}");
                    return Ok(ExitCode::from(super::exit::INVALID));
                }
            }
            if knowledge {
                match supervisor::pod::run::link_knowledge(std::path::Path::new(&home)) {
                    Ok(Some(aside)) => eprintln!("clawkeep pod run: ~/knowledge was in the way of the link to the shared collections: moved to ~/{aside}"),
                    Ok(None) => {}
                    Err(e) => {
                        eprintln!("clawkeep pod run: {e}");
                        return Ok(ExitCode::from(super::exit::INVALID));
                    }
                }
            }
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
                    return Ok(ExitCode::from(super::exit::INVALID));
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
            let rt = runtime()?;
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
                    Ok(ExitCode::from(super::exit::INVALID))
                }
            }
        }
    }
}
