//! One short run of a program in a sandbox built like an agent's (not a supervised process):
//! start it, collect what it prints, kill it at a deadline. `clawkeep audit` runs OpenClaw's
//! own security audit this way, so a configuration the agent may have written is read by a
//! program that has the agent's privileges, not root's, and no network.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::reaper::Reaper;
use clawkeep_sandbox::bundle::{self, SandboxPlan};
use clawkeep_sandbox::cgroup::ProcCgroup;
use clawkeep_sandbox::launch::{self, Host};
use clawkeep_sandbox::SandboxError;

/// The most output kept of each stream.
const MAX_OUTPUT: u64 = 4 << 20;

/// What a finished run printed.
#[derive(Debug, Default)]
pub struct Output {
    /// Exit code of the sandbox's init (the program's, or 128+N for a signal).
    pub code: Option<i32>,
    /// Its stdout (at most 4 MiB).
    pub stdout: Vec<u8>,
    /// Its stderr (at most 4 MiB).
    pub stderr: Vec<u8>,
}

/// Why a one-shot run gave no output.
#[derive(Debug, thiserror::Error)]
pub enum RunOnceError {
    /// The sandbox could not be set up or started.
    #[error("cannot start the sandbox {bundle}: {source}")]
    Start {
        /// Its bundle directory.
        bundle: PathBuf,
        /// Why.
        #[source]
        source: SandboxError,
    },
    /// It ran past its time and was killed.
    #[error("{what} did not finish within {}s and was killed (hint: the node may be overloaded)", limit.as_secs())]
    Timeout {
        /// The program.
        what: String,
        /// The time it had.
        limit: Duration,
    },
    /// A blocking task of the supervisor failed.
    #[error("supervisor task failed: {0} (hint: a bug; see the supervisor's log)")]
    Task(String),
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::Init(format!("pipe: {e}")))
}

/// Read a pipe to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn drain(fd: OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
        let _ = rx.take(MAX_OUTPUT).read_to_end(&mut out).await;
    }
    out
}

fn remove_cgroup(cg: Option<ProcCgroup>) {
    if let Some(cg) = cg {
        let _ = cg.kill_all(Duration::from_secs(2));
        let _ = cg.destroy();
    }
}

/// Run `plan` once with its bundle written to `bundle_dir`; `secrets` is the init's secrets
/// memfd. Returns its output, or kills everything in its cgroup after `limit`.
pub async fn run(
    bundle_dir: &Path,
    plan: &SandboxPlan,
    secrets: Option<OwnedFd>,
    host: &Host,
    reaper: &Reaper,
    limit: Duration,
) -> Result<Output, RunOnceError> {
    let (dir, plan2, host2) = (bundle_dir.to_path_buf(), plan.clone(), host.clone());
    let start_err = |source| RunOnceError::Start {
        bundle: bundle_dir.to_path_buf(),
        source,
    };
    let prepared = tokio::task::spawn_blocking(move || {
        let spec = bundle::spec(&plan2)?;
        bundle::prepare_rootfs(&spec)?;
        bundle::write(&dir, &spec)?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let starting = launch::sandbox(&dir, &spec, out_w, err_w, secrets, &host2)?;
        Ok::<_, SandboxError>((starting, out_r, err_r))
    })
    .await
    .map_err(|e| RunOnceError::Task(e.to_string()))?
    .map_err(start_err)?;
    let (starting, out_r, err_r) = prepared;
    let exited = reaper.watch(starting.pid());
    let started = tokio::task::spawn_blocking(move || starting.start())
        .await
        .map_err(|e| RunOnceError::Task(e.to_string()))?
        .map_err(start_err)?;
    // The init reports on its status pipe; read it so it never blocks on a full pipe.
    let status = started.status.map(|fd| tokio::spawn(drain(fd)));
    let cgroup = started.cgroup;
    let run = async {
        let (stdout, stderr, st) = tokio::join!(drain(out_r), drain(err_r), exited);
        let code = match st {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => Some(c),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => Some(128 + s as i32),
            _ => None,
        };
        Output {
            code,
            stdout,
            stderr,
        }
    };
    let result = tokio::time::timeout(limit, run).await;
    let _ = tokio::task::spawn_blocking(move || remove_cgroup(cgroup)).await;
    if let Some(s) = status {
        s.abort();
    }
    result.map_err(|_| RunOnceError::Timeout {
        what: plan.args.join(" "),
        limit,
    })
}
