//! Keeping one directory pushed while its agent runs: a pass shortly after each burst of
//! changes, a full reconcile on a timer, passes on demand, retries while the store is away,
//! and a last pass when asked to stop.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::sync::{SyncReport, Syncer};
use crate::watch::Watch;

/// What the follower is asked to do.
#[derive(Debug)]
pub enum Command {
    /// A pass now (`full` also lists the bucket's plain objects); the report comes back.
    Pass {
        /// List plain objects too.
        full: bool,
        /// Where the result goes.
        reply: oneshot::Sender<Result<SyncReport, String>>,
    },
    /// A last pass, then stop.
    Stop(oneshot::Sender<Result<SyncReport, String>>),
}

/// The follower's state, for `clawkeep sync status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowStatus {
    /// When the last pass ended.
    pub last_pass: Option<SystemTime>,
    /// When the last pass that left nothing behind ended.
    pub last_push: Option<SystemTime>,
    /// First change not yet in the store, if any (the lag starts there).
    pub dirty_since: Option<SystemTime>,
    /// The last failure, cleared by a good pass.
    pub last_error: Option<String>,
    /// The last pass's report.
    pub last_report: Option<SyncReport>,
    /// Passes made.
    pub passes: u64,
}

/// Timing of a follower.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Quiet time after a change before the pass.
    pub debounce: Duration,
    /// Full reconcile interval.
    pub reconcile: Duration,
}

/// Run until a `Stop` command (or every sender is dropped, which also makes a last pass).
pub async fn follow(
    syncer: Syncer,
    timing: Timing,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<FollowStatus>,
) {
    let mut watcher = match Watch::new(syncer.root()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "no change events; relying on the reconcile timer");
            None
        }
    };
    let mut next_reconcile = Instant::now() + timing.reconcile;
    let mut due: Option<Instant> = None;
    let mut first_change: Option<Instant> = None;
    let mut backoff = Duration::from_millis(500);
    loop {
        let due_at = due.unwrap_or(next_reconcile).min(next_reconcile);
        tokio::select! {
            ev = async { match watcher.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                if ev.is_none() {
                    watcher = None;
                    continue;
                }
                let now = Instant::now();
                let first = *first_change.get_or_insert(now);
                status.send_modify(|s| { s.dirty_since.get_or_insert_with(SystemTime::now); });
                // Quiet for `debounce`, but never more than twice that after the first change.
                let d = (now + timing.debounce).min(first + timing.debounce * 2);
                due = Some(due.map_or(d, |x| x.max(d).min(first + timing.debounce * 2)));
            }
            _ = tokio::time::sleep_until(due_at) => {
                let full = due.is_none();
                let ok = pass(&syncer, full, &status).await.is_ok();
                first_change = None;
                next_reconcile = Instant::now() + timing.reconcile;
                if ok {
                    due = None;
                    backoff = Duration::from_millis(500);
                } else {
                    // The store is away or refused: try again soon, more slowly each time.
                    due = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Pass { full, reply }) => {
                    let r = pass(&syncer, full, &status).await;
                    if r.is_ok() { due = None; first_change = None; }
                    let _ = reply.send(r);
                }
                Some(Command::Stop(reply)) => {
                    let _ = reply.send(pass(&syncer, false, &status).await);
                    return;
                }
                None => {
                    let _ = pass(&syncer, false, &status).await;
                    return;
                }
            },
        }
    }
}

async fn pass(
    syncer: &Syncer,
    full: bool,
    status: &watch::Sender<FollowStatus>,
) -> Result<SyncReport, String> {
    let started = SystemTime::now();
    let r = syncer.sync(full).await;
    let now = SystemTime::now();
    status.send_modify(|s| {
        s.passes += 1;
        s.last_pass = Some(now);
        match &r {
            Ok(rep) => {
                s.last_error = None;
                s.last_report = Some(rep.clone());
                if rep.complete() {
                    s.last_push = Some(now);
                    // Changes made during the pass are still pending.
                    if s.dirty_since.is_some_and(|d| d <= started) {
                        s.dirty_since = None;
                    }
                } else {
                    s.last_error = rep.failed.first().cloned();
                }
            }
            Err(e) => s.last_error = Some(e.to_string()),
        }
    });
    match r {
        Ok(rep) => {
            if rep.pushed || rep.downloaded > 0 {
                tracing::info!(
                    bucket = syncer.remote().name(),
                    uploaded = rep.uploaded,
                    downloaded = rep.downloaded,
                    deleted = rep.deleted_remote,
                    conflicts = rep.conflicts.len(),
                    "synced"
                );
            }
            for c in &rep.conflicts {
                tracing::warn!(bucket = syncer.remote().name(), conflict = %c, "changed on both sides; both kept");
            }
            if rep.complete() {
                Ok(rep)
            } else {
                Err(rep.failed.join("; "))
            }
        }
        Err(e) => {
            tracing::warn!(bucket = syncer.remote().name(), error = %e, "sync failed; retrying");
            Err(e.to_string())
        }
    }
}
