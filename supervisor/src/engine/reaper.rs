//! The one place that calls `waitpid`: on every SIGCHLD it reaps every exited child (our own
//! processes and, as PID 1 or child subreaper, every orphan) and hands each supervised
//! process's status to whoever watches it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

/// Statuses of children nobody watched yet, kept briefly in case a watcher arrives late.
const UNCLAIMED_KEEP: usize = 256;

#[derive(Default)]
struct Inner {
    watching: HashMap<Pid, oneshot::Sender<WaitStatus>>,
    unclaimed: VecDeque<(Pid, WaitStatus)>,
    orphans_reaped: u64,
}

/// Handle on the reaper task; clones share it.
#[derive(Clone, Default)]
pub struct Reaper {
    inner: Arc<Mutex<Inner>>,
}

impl Reaper {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards plain maps; a panic elsewhere cannot leave them inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start reaping on SIGCHLD (call from inside the tokio runtime).
    pub fn start(&self) -> std::io::Result<()> {
        let mut sigchld = signal(SignalKind::child())?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.reap_all();
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// Get the exit status of `pid` once it ends. Register right after creating the child
    /// (it is paused until then, so it cannot have ended unnoticed).
    pub fn watch(&self, pid: Pid) -> oneshot::Receiver<WaitStatus> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        if let Some(i) = inner.unclaimed.iter().position(|(p, _)| *p == pid) {
            if let Some((_, st)) = inner.unclaimed.remove(i) {
                let _ = tx.send(st);
            }
        } else {
            inner.watching.insert(pid, tx);
        }
        rx
    }

    /// How many children were reaped that nobody watched (orphans re-parented to us).
    pub fn orphans_reaped(&self) -> u64 {
        self.lock().orphans_reaped
    }

    /// Reap until no exited child is left.
    pub fn reap_all(&self) {
        loop {
            let st = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => st,
            };
            let Some(pid) = st.pid() else { continue };
            if !matches!(st, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                continue;
            }
            let mut inner = self.lock();
            match inner.watching.remove(&pid) {
                Some(tx) => {
                    let _ = tx.send(st);
                }
                None => {
                    inner.orphans_reaped += 1;
                    if inner.unclaimed.len() == UNCLAIMED_KEEP {
                        inner.unclaimed.pop_front();
                    }
                    inner.unclaimed.push_back((pid, st));
                }
            }
        }
    }
}
