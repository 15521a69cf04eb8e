//! `clawkeep up`: the supervisor itself. Takes the state dir, runs the engine and the control
//! API, and on SIGTERM/SIGINT/SIGPWR or `clawkeep down` shuts everything down in order.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use tokio::signal::unix::{signal, SignalKind};

use crate::api::server::{self, ApiState};
use crate::engine::reaper::Reaper;
use crate::engine::start::Paths;
use crate::engine::Engine;
use crate::fleet::Fleet;
use crate::pid1;
use clawkeep_sandbox::launch::Host;

/// Why the supervisor could not run.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// Another supervisor holds the state dir.
    #[error("another clawkeep supervisor{pid} is using state dir {dir} (hint: stop it with `clawkeep down --state-dir {dir}`, or give this one its own --state-dir)")]
    Locked {
        /// The state dir.
        dir: PathBuf,
        /// " (pid N)" when known.
        pid: String,
    },
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What clawkeep was doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An agent's `nofile` is above what this process may give it.
    #[error("an agent asks for nofile = {want}, above this process's open-file hard limit {hard}, and raising it failed: {error} (hint: lower nofile to at most {hard} in the fleet file, or run clawkeep with CAP_SYS_RESOURCE and fs.nr_open >= {want})")]
    Nofile {
        /// The largest `nofile` of the fleet's agents.
        want: u64,
        /// The hard limit in force.
        hard: u64,
        /// Why raising it failed (in the message; not a source, so it is said once).
        error: nix::Error,
    },
    /// `[node] control_group` names no group of this host.
    #[error("[node] control_group {0:?} is not a group on this host (hint: create it with `groupadd {0}` and add the operators to it, or leave control_group out: then only root may use the control socket)")]
    NoGroup(String),
    /// The engine failed to start.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> UpError + 'a {
    move |source| UpError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Run the supervisor for `fleet` with `state_dir` until it is told to stop.
pub fn run(fleet: Fleet, state_dir: PathBuf) -> Result<(), UpError> {
    let is_pid1 = std::process::id() == 1;
    if is_pid1 {
        for line in pid1::mount_missing(&pid1::Mounts::default()) {
            tracing::info!("pid 1: {line}");
        }
        if let Err(e) = clawkeep_sandbox::sys::loopback_up() {
            tracing::warn!("pid 1: cannot bring lo up: {e}");
        }
    } else if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(
            "cannot become child subreaper ({e}); orphans of supervised processes will go to init"
        );
    }

    std::fs::create_dir_all(&state_dir).map_err(io("create state dir", &state_dir))?;
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o711))
        .map_err(io("chmod state dir", &state_dir))?;
    let lock_path = state_dir.join("supervisor.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    let lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, _)) => {
            let pid = std::fs::read_to_string(&lock_path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            return Err(UpError::Locked {
                dir: state_dir,
                pid,
            });
        }
    };
    std::fs::write(&lock_path, format!("{}\n", std::process::id()))
        .map_err(io("write", &lock_path))?;

    raise_nofile(&fleet)?;
    clawkeep_sandbox::sys::return_large_frees();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clawkeep")
        .build()
        .map_err(io("start runtime for", &state_dir))?;
    let result = runtime.block_on(supervise(fleet, state_dir.clone()));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let _ = std::fs::remove_file(&lock_path);
    drop(lock);
    result?;
    if is_pid1 {
        tracing::info!("pid 1: powering off");
        pid1::power_off();
    }
    Ok(())
}

/// Logs one `clawkeep ready` line (on a node's console, as PID 1) once every agent and
/// service is running and, where it has a health check, healthy.
async fn announce_ready(shared: std::sync::Arc<crate::engine::Shared>, node: String) {
    use crate::api::types::{Health, State};
    use crate::engine::process::Def;
    let started = std::time::Instant::now();
    loop {
        let (mut agents, mut services, mut up) = (0, 0, true);
        for p in &shared.processes {
            match p.def {
                Def::Agent(_) => agents += 1,
                Def::Service(_) => services += 1,
            }
            let s = p.status();
            up &= s.state == State::Running && !matches!(s.health, Some(h) if h != Health::Healthy);
        }
        if up {
            let plural =
                |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            let running = format!(
                "{} and {} running on {node}",
                plural(agents, "agent"),
                plural(services, "service"),
            );
            tracing::info!(
                "clawkeep ready: {running} ({:.1} s after start)",
                started.elapsed().as_secs_f64()
            );
            crate::systemd::ready(&running);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Agents set RLIMIT_NOFILE inside their user namespace, where the hard limit can only be
/// lowered: lift this process's hard limit (inherited by every sandbox) to the largest
/// `nofile` of the fleet first. Node asks for many descriptors; 65536 is common. Then the
/// supervisor's own soft limit goes up to the hard one: it holds every agent's sockets,
/// forwarded connections and store transfers, and an agent alone may open more than the
/// 1024 a soft limit usually starts at (systemd, or the kernel for PID 1).
fn raise_nofile(fleet: &Fleet) -> Result<(), UpError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let want = fleet
        .agents
        .iter()
        .map(|a| a.resources.nofile)
        .max()
        .unwrap_or(0);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|error| UpError::Nofile {
        want,
        hard: 0,
        error,
    })?;
    let hard = if want > hard {
        setrlimit(Resource::RLIMIT_NOFILE, soft, want).map_err(|error| UpError::Nofile {
            want,
            hard,
            error,
        })?;
        tracing::info!("raised the open-file hard limit from {hard} to {want} for the agents");
        want
    } else {
        hard
    };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!("raised the supervisor's open-file limit from {soft} to {hard}"),
            Err(e) => tracing::warn!(
                "cannot raise the supervisor's open-file limit from {soft} to {hard}: {e}; many agent connections may exhaust it"
            ),
        }
    }
    Ok(())
}

async fn supervise(fleet: Fleet, state_dir: PathBuf) -> Result<(), UpError> {
    let reaper = Reaper::default();
    reaper
        .start()
        .map_err(io("watch SIGCHLD for", &state_dir))?;
    let paths = Paths {
        state_dir: state_dir.clone(),
    };
    let socket = paths.socket();
    let _ = std::fs::remove_file(&socket);
    let group = match &fleet.node.control_group {
        Some(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Some(g.gid.as_raw()),
            _ => return Err(UpError::NoGroup(name.clone())),
        },
        None => None,
    };
    let listener = server::listen(&socket, group).map_err(io("listen on", &socket))?;

    let node = fleet.node.name.clone();
    let (agents, services) = (fleet.agents.len(), fleet.services.len());
    let engine = Engine::start(fleet, paths, Host::default(), reaper).await?;
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let api = tokio::spawn(server::serve(
        listener,
        ApiState {
            shared: engine.shared.clone(),
            shutdown: shutdown_tx,
        },
        group,
    ));
    tracing::info!(
        "clawkeep supervising {agents} agents and {services} services on {node}; control socket {}",
        socket.display()
    );

    let mut term = signal(SignalKind::terminate()).map_err(io("watch SIGTERM for", &state_dir))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("watch SIGINT for", &state_dir))?;
    let mut pwr =
        signal(SignalKind::from_raw(libc::SIGPWR)).map_err(io("watch SIGPWR for", &state_dir))?;
    let ready = tokio::spawn(announce_ready(engine.shared.clone(), node));
    let watchdog =
        crate::systemd::watchdog().map(|p| tokio::spawn(crate::systemd::keep_watchdog(p)));
    let power_button = async {
        if std::process::id() == 1 {
            crate::power_button::pressed("/dev/input".into()).await
        } else {
            std::future::pending().await
        }
    };
    let why = tokio::select! {
        _ = term.recv() => "SIGTERM".to_string(),
        _ = int.recv() => "SIGINT".to_string(),
        _ = pwr.recv() => "SIGPWR".to_string(),
        _ = shutdown_rx.wait_for(|s| *s) => "clawkeep down".to_string(),
        name = power_button => format!("power button {name}"),
    };
    ready.abort();
    crate::systemd::stopping();
    tracing::info!("{why}: stopping agents, then services");
    engine.shutdown().await;
    if let Some(w) = watchdog {
        w.abort();
    }
    api.abort();
    let _ = std::fs::remove_file(&socket);
    tracing::info!("all stopped");
    Ok(())
}
