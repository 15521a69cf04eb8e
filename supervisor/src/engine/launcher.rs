//! The seam between the engine and real processes: how a run starts, ends, and is reached.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::process::Process;
use super::Shared;
use clawkeep_sandbox::cgroup::ProcCgroup;
use clawkeep_sandbox::status::Report;

/// A future a launcher hands the engine (boxed: launchers are trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts runs of supervised processes: [`super::sandbox_launcher::SandboxLauncher`] in
/// production, a scripted fake in the engine's unit tests.
pub trait Launcher: Send + Sync {
    /// Prepare and start one run of `me`: once this returns the run is going, and the
    /// engine records it as running. An error is a failed start, said for the operator.
    fn launch<'a>(
        &'a self,
        shared: &'a Arc<Shared>,
        me: &'a Arc<Process>,
    ) -> BoxFuture<'a, Result<Launched, String>>;

    /// Send `req` (its URI a path) to 127.0.0.1:`port` inside `me`'s running sandbox: the
    /// status and at most `max_body` bytes of the body (agents' health checks and the
    /// upgrade gate).
    fn request<'a>(
        &'a self,
        me: &'a Process,
        port: u16,
        req: hyper::Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> BoxFuture<'a, Result<(hyper::StatusCode, Bytes), String>>;

    /// Remove what the runs left behind, once every process has stopped at shutdown.
    fn clean_up<'a>(&'a self, shared: &'a Shared) -> BoxFuture<'a, ()>;

    /// Kill what a previous supervisor left running of `me` (it crashed or was killed),
    /// before anything else happens for its next run: a brain is never pulled under an
    /// orphan that still writes it, and an agent whose start is then refused does not
    /// keep running unsupervised. How many processes it killed, or why it could not.
    fn kill_leftovers<'a>(
        &'a self,
        _shared: &'a Arc<Shared>,
        _me: &'a Process,
    ) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async { Ok(0) })
    }
}

/// A run that has started.
pub struct Launched {
    /// Its pid on the host (for an agent: its sandbox's init).
    pub pid: Pid,
    /// How it ended, once it has.
    pub exited: oneshot::Receiver<WaitStatus>,
    /// Its cgroup, for `clawkeep ps` usage.
    pub cgroup: Option<Arc<ProcCgroup>>,
    /// Its network namespace (agents), for the port forward.
    pub netns: Option<Arc<OwnedFd>>,
    /// What the engine does to it.
    pub control: Box<dyn RunControl>,
}

/// What the engine does to a run it launched.
pub trait RunControl: Send {
    /// Ask it to end (SIGTERM).
    fn terminate(&mut self);
    /// End it and everything it started, now (after the grace period).
    fn kill(&mut self) -> BoxFuture<'_, ()>;
    /// After it ended: what its sandbox reported, whether the kernel killed it for memory,
    /// and its cgroup and sockets cleaned up (problems noted in `me`'s log).
    fn finish<'a>(&'a mut self, me: &'a Process) -> BoxFuture<'a, Finished>;
}

/// What is known once a run has ended, besides its wait status.
#[derive(Debug, Default)]
pub struct Finished {
    /// The sandbox init's status lines.
    pub reports: Vec<Report>,
    /// Whether its cgroup saw an OOM kill.
    pub oom: bool,
}
