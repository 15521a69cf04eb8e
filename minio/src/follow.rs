//! Keeping one directory pushed while its agent runs: a pass shortly after each burst of
//! changes, a full reconcile on a timer, passes on demand, retries while the store is away,
//! and a last pass when asked to stop.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::report::{Deletions, Held, TooBig};
use crate::sync::{PassOptions, SyncReport, Syncer};
use crate::watch::{Watch, MAX_WATCHED_DIRS};

/// What the follower is asked to do.
#[derive(Debug)]
pub enum Command {
    /// A pass now, as `opts` says; the report comes back.
    Pass {
        /// Full listing, confirmed deletions.
        opts: PassOptions,
        /// Where the result goes.
        reply: oneshot::Sender<Result<SyncReport, String>>,
    },
    /// A last pass, then stop (giving the lease back, if any).
    Stop(oneshot::Sender<Result<SyncReport, String>>),
}

/// Something a person should hear about, once: the follower reports each when it happens
/// (a hold or a refusal only when it starts or changes, not at every retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A pass merged without a trusted base (why); it deleted nothing.
    Rebased(String),
    /// A pass deleted files in the store.
    Deleted(Deletions),
    /// Deletions are held back until confirmed.
    Held(Held),
    /// Both versions of a file were kept, as `path -> copy`.
    Conflicts(Vec<String>),
    /// The store refused the pass or could not be reached (the error); retried.
    Failed(String),
    /// Change events stopped (why); the reconcile timer alone picks changes up.
    Unwatched(String),
    /// Files a pass left out for the first time for being larger than `max_file_size`; told
    /// once, not at every pass that leaves them out again.
    TooBig {
        /// The limit, in bytes.
        limit: u64,
        /// The first of them.
        files: Vec<TooBig>,
        /// How many there are.
        count: usize,
    },
}

impl Note {
    /// The note for the files `rep`'s pass left out for the first time for their size (over
    /// `limit` bytes), if any.
    pub fn too_big(rep: &SyncReport, limit: u64) -> Option<Note> {
        (rep.too_big_new_count > 0).then(|| Note::TooBig {
            limit,
            files: rep.too_big_new.clone(),
            count: rep.too_big_new_count,
        })
    }
}

/// Where notes go (the agent's log, for a brain).
pub type Notes = std::sync::Arc<dyn Fn(Note) + Send + Sync>;

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
    /// The last pass that deleted files in the store, if any.
    pub last_deletions: Option<Deletions>,
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
    notes: Option<Notes>,
) {
    let tell = Teller::new(notes);
    let mut watcher = start_watch(&syncer).await;
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
                let opts = PassOptions {
                    full,
                    ..PassOptions::default()
                };
                let ok = pass(&syncer, opts, &status, &tell).await.is_ok();
                if full && watcher.is_some() && too_many_dirs(&syncer).await {
                    // Directories made since the watch began: stop watching before the
                    // node's inotify watches run out; the reconcile timer carries on.
                    watcher = None;
                    tracing::warn!(bucket = syncer.remote().name(), "too many directories to watch; relying on the reconcile timer");
                    tell.send(Note::Unwatched(format!(
                        "{} has more than {MAX_WATCHED_DIRS} directories: changes are no longer watched and go up at the next reconcile (every {})",
                        syncer.root().display(),
                        humantime::format_duration(timing.reconcile)
                    )));
                }
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
                Some(Command::Pass { opts, reply }) => {
                    let r = pass(&syncer, opts, &status, &tell).await;
                    if r.is_ok() { due = None; first_change = None; }
                    let _ = reply.send(r);
                }
                Some(Command::Stop(reply)) => {
                    let r = pass(&syncer, PassOptions::default(), &status, &tell).await;
                    release(&syncer, r.is_ok()).await;
                    let _ = reply.send(r);
                    return;
                }
                None => {
                    let r = pass(&syncer, PassOptions::default(), &status, &tell).await;
                    release(&syncer, r.is_ok()).await;
                    return;
                }
            },
        }
    }
}

/// The change events of `syncer`'s directory, made off the async workers (it walks the
/// tree); `None` when the directory cannot be watched (the reconcile timer then covers it).
async fn start_watch(syncer: &Syncer) -> Option<Watch> {
    let root = syncer.root().to_path_buf();
    let made = tokio::task::spawn_blocking(move || Watch::new(&root, MAX_WATCHED_DIRS)).await;
    let why = match made {
        Ok(Ok(w)) => return Some(w),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(bucket = syncer.remote().name(), error = %why, "no change events; relying on the reconcile timer");
    None
}

/// Whether `syncer`'s directory has grown past what may be watched (counted off the async
/// workers).
async fn too_many_dirs(syncer: &Syncer) -> bool {
    let root = syncer.root().to_path_buf();
    let n = tokio::task::spawn_blocking(move || {
        crate::watch::count_dirs(&root, MAX_WATCHED_DIRS).unwrap_or(0)
    })
    .await
    .unwrap_or(0);
    n > MAX_WATCHED_DIRS
}

/// After the last pass: give the lease back, so another supervisor may take the agent at
/// once. A last pass that failed keeps it (what is here has not reached the store).
async fn release(syncer: &Syncer, pushed: bool) {
    if let (Some(lease), true) = (syncer.lease_keeper(), pushed) {
        if let Err(e) = lease.release(syncer.remote()).await {
            tracing::warn!(bucket = syncer.remote().name(), error = %e, "could not give the lease back; it runs out on its own");
        }
    }
}

/// Hands notes on, each hold or failure once until it changes.
struct Teller {
    notes: Option<Notes>,
    held: std::sync::Mutex<Option<Held>>,
    failed: std::sync::Mutex<Option<String>>,
}

impl Teller {
    fn new(notes: Option<Notes>) -> Self {
        Teller {
            notes,
            held: Default::default(),
            failed: Default::default(),
        }
    }

    fn send(&self, n: Note) {
        if let Some(f) = &self.notes {
            f(n);
        }
    }

    fn report(&self, rep: &SyncReport, deletions: Option<&Deletions>, max_file_size: u64) {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(why) = &rep.rebased {
            self.send(Note::Rebased(why.clone()));
        }
        if let Some(n) = Note::too_big(rep, max_file_size) {
            self.send(n);
        }
        if let Some(d) = deletions.filter(|_| !rep.deleted.is_empty()) {
            self.send(Note::Deleted(d.clone()));
        }
        if !rep.conflicts.is_empty() {
            self.send(Note::Conflicts(rep.conflicts.clone()));
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if rep.held.as_ref().map(|h| (h.count, &h.paths))
            != held.as_ref().map(|h| (h.count, &h.paths))
        {
            if let Some(h) = &rep.held {
                self.send(Note::Held(h.clone()));
            }
            *held = rep.held.clone();
        }
    }

    fn failed(&self, e: &str) {
        let mut last = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() != Some(e) {
            self.send(Note::Failed(e.to_string()));
            *last = Some(e.to_string());
        }
    }
}

async fn pass(
    syncer: &Syncer,
    opts: PassOptions,
    status: &watch::Sender<FollowStatus>,
    tell: &Teller,
) -> Result<SyncReport, String> {
    let started = SystemTime::now();
    let r = syncer.pass(opts).await;
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
            let deletions = (!rep.deleted.is_empty())
                .then(|| syncer.state().ok().and_then(|s| s.last_deletions))
                .flatten();
            if let Some(d) = &deletions {
                status.send_modify(|s| s.last_deletions = Some(d.clone()));
            }
            let bucket = syncer.remote().name();
            if rep.pushed || rep.downloaded > 0 {
                tracing::info!(
                    bucket,
                    uploaded = rep.uploaded,
                    downloaded = rep.downloaded,
                    deleted = rep.deleted_remote,
                    conflicts = rep.conflicts.len(),
                    "synced"
                );
            }
            if !rep.deleted.is_empty() {
                tracing::warn!(bucket, files = ?rep.deleted, restore_at = ?rep.restore_at, "deleted in the store (history keeps them)");
            }
            if let Some(why) = &rep.rebased {
                tracing::warn!(
                    bucket,
                    "merged with the store without deleting anything: {why}"
                );
            }
            if let Some(h) = &rep.held {
                tracing::warn!(bucket, held = h.count, "deletions held back: {}", h.reason);
            }
            for c in &rep.conflicts {
                tracing::warn!(bucket, conflict = %c, "changed on both sides; both kept");
            }
            let max_file_size = syncer.limits().max_file_size;
            for t in &rep.too_big_new {
                tracing::warn!(bucket, path = %t.path, size = t.size, max_file_size, in_store = t.in_store, "larger than max_file_size; not synced");
            }
            tell.report(&rep, deletions.as_ref(), max_file_size);
            if rep.complete() {
                Ok(rep)
            } else {
                Err(rep.failed.join("; "))
            }
        }
        Err(e) => {
            tracing::warn!(bucket = syncer.remote().name(), error = %e, "sync failed; retrying");
            tell.failed(&e.to_string());
            Err(e.to_string())
        }
    }
}
