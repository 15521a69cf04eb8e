//! The sync pass: a three-way merge between the last agreed snapshot (the base), the local
//! directory and the bucket's newest snapshot. Local changes go up (blob, plain copy, new
//! snapshot), remote changes come down (staged, verified, renamed into place), edits on both
//! sides keep both files. The base is trusted only when the directory carries the state's
//! mark and the store's newest snapshot follows it; otherwise the pass merges without
//! deleting anything. It never deletes on a failed or empty listing, caps deletions, and
//! holds back deletions of a large share of the brain until someone confirms them.
//!
//! A file larger than [`SyncLimits::max_file_size`] is left out: a local one is neither read
//! nor uploaded (judged by its apparent size, so a sparse terabyte costs nothing), a store
//! version over it never comes down. Either way the path stays as it is on both sides, and
//! the sync state keeps the base it had before it was left out, so a file left out never
//! looks deleted to a later pass; once it fits again it syncs as any changed file does (with
//! both versions kept if both sides changed meanwhile).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::stream::{self, StreamExt};

use crate::boundary::Boundary;
use crate::error::StoreError;
use crate::keys::{blob_key, META_PREFIX};
use crate::lease::LeaseKeeper;
use crate::manifest::{id_time, FileMap, FileRef, LocalState, Snapshot};
use crate::mark::{self, Mark};
use crate::progress::{PassProgress, Stage};
use crate::remote::Remote;
use crate::report::LISTED;
pub use crate::report::{Deletions, Held, SyncReport, TooBig};
use crate::scan::{self, Scan};
use crate::trust;
use clawkeep_beneath::Beneath;

/// Bounds on one pass.
#[derive(Debug, Clone, Copy)]
pub struct SyncLimits {
    /// Most remote deletions in one pass; the rest wait for the next.
    pub max_deletes: usize,
    /// Transfers in flight at once.
    pub concurrency: usize,
    /// A pass that would delete more than this share (percent) of the files or bytes the
    /// store holds, and at least [`trust::HOLD_MIN_FILES`] files, holds them back until it
    /// is run with [`PassOptions::allow_deletes`]; 100 holds only an emptied directory's.
    pub hold_deletes_over: u8,
    /// Files larger than this many bytes are left out (not read, not uploaded, not
    /// downloaded, not deleted) and reported in [`SyncReport::too_big`].
    pub max_file_size: u64,
}

/// The default [`SyncLimits::max_file_size`]: 1 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            max_deletes: 100,
            concurrency: 8,
            hold_deletes_over: 50,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// How one pass runs.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    /// Also list the bucket's plain objects, so files put there by people or tools come down
    /// and planted unsafe keys are reported.
    pub full: bool,
    /// Make the deletions a hold would keep back (someone confirmed them).
    pub allow_deletes: bool,
    /// Counters to keep up to date while the pass runs, for whoever shows its progress.
    pub progress: Option<std::sync::Arc<crate::progress::PassProgress>>,
}

/// Keeps one local directory and one bucket in step.
#[derive(Debug, Clone)]
pub struct Syncer {
    remote: Remote,
    root: PathBuf,
    state_path: PathBuf,
    boundary: Arc<Boundary>,
    limits: SyncLimits,
    origin: String,
    read_only: bool,
    owner: Option<(u32, u32)>,
    group_shared: bool,
    lease: Option<Arc<LeaseKeeper>>,
    push_only: Arc<BTreeSet<String>>,
    mark_xattr: &'static str,
}

/// One planned change.
#[derive(Debug)]
enum Act {
    /// Local content goes up under `path`.
    Upload(String, FileRef),
    /// Blob already in the bucket; make the plain copy `path` of it.
    Plain(String, FileRef),
    /// Remove the plain object `path`.
    DeleteRemote(String),
    /// Store content comes down to `path`.
    Download(String, FileRef),
    /// Remove the local file `path`.
    DeleteLocal(String),
}

impl Syncer {
    /// A syncer for `root` (the directory) and `remote` (its bucket); the local state lives at
    /// `state_path`, outside `root`. `origin` names the writer in snapshots.
    pub fn new(
        remote: Remote,
        root: PathBuf,
        state_path: PathBuf,
        boundary: Boundary,
        limits: SyncLimits,
        origin: &str,
    ) -> Self {
        Syncer {
            remote,
            root,
            state_path,
            boundary: Arc::new(boundary),
            limits,
            origin: origin.to_string(),
            read_only: false,
            owner: None,
            group_shared: false,
            lease: None,
            push_only: Arc::default(),
            mark_xattr: mark::XATTR,
        }
    }

    /// Keep the directory's mark where an unprivileged syncer may (`user.`, not
    /// `trusted.`): for a syncer that runs as the directory's owner, not as root (see
    /// [`crate::mark`]).
    pub fn unprivileged(mut self, yes: bool) -> Self {
        self.mark_xattr = if yes { mark::XATTR_USER } else { mark::XATTR };
        self
    }

    /// Paths that only ever go up: what is here wins and is pushed, the store's version never
    /// comes down (the supervisor writes them itself at every start, e.g. the agent's
    /// enforced openclaw.json, which a writer to the bucket must not change under a running
    /// agent).
    pub fn push_only(mut self, paths: &[&str]) -> Self {
        self.push_only = Arc::new(paths.iter().map(|p| p.to_string()).collect());
        self
    }

    /// Sync only while holding the bucket's lease (an agent's brain: one supervisor at a time).
    pub fn lease(mut self, keeper: Option<Arc<LeaseKeeper>>) -> Self {
        self.lease = keeper;
        self
    }

    /// The lease keeper, if this syncer holds one.
    pub fn lease_keeper(&self) -> Option<&Arc<LeaseKeeper>> {
        self.lease.as_ref()
    }

    /// Whether the sync state describes this very directory (the same mark on both), so a
    /// pass may delete what was deleted here. A missing directory is not trusted.
    pub fn trusts_directory(&self) -> bool {
        let Ok(state) = self.state() else {
            return false;
        };
        let Ok(within) = Beneath::open(&self.root) else {
            return false;
        };
        state.mark.is_some()
            && mark::read(&within, &self.root, self.mark_xattr)
                .ok()
                .flatten()
                == state.mark
    }

    /// Only bring the store's changes down (a read-only grant): local changes never go up.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Give what a pull writes (files and the directories it makes) to this uid and gid: the
    /// agent's root as the host sees it, so the agent can change its own brain.
    pub fn owner(mut self, owner: Option<(u32, u32)>) -> Self {
        self.owner = owner;
        self
    }

    /// Make what a pull writes the group's as much as its owner's, and no one else's (a
    /// shared collection: its directory is set-group-id, see [`clawkeep_beneath::SETGID`]).
    pub fn group_shared(mut self, yes: bool) -> Self {
        self.group_shared = yes;
        self
    }

    /// Give `path` (root's own staging, never a path the agent controls) to the owner.
    fn own(&self, path: &Path) -> Result<(), StoreError> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .map_err(|e| StoreError::io("change owner of", path, e))?;
        }
        if self.group_shared {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let md = path
                .symlink_metadata()
                .map_err(|e| StoreError::io("stat", path, e))?;
            let mode = clawkeep_beneath::shared_mode(md.mode() & 0o7777, md.is_dir());
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| StoreError::io("chmod", path, e))?;
        }
        Ok(())
    }

    /// Whether changes only come down.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The bounds of its passes.
    pub fn limits(&self) -> SyncLimits {
        self.limits
    }

    /// The bucket.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The local directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local state as the last pass left it.
    pub fn state(&self) -> Result<LocalState, StoreError> {
        LocalState::load(&self.state_path, self.remote.name())
    }

    /// Paths changed locally since the last pass (added, modified or deleted), by a quick scan.
    pub async fn pending(&self) -> Result<Vec<String>, StoreError> {
        let state = self.state()?;
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        let scan = self.scan(&state).await?;
        let local = scan.map();
        // Files left out for their size are neither pending nor deleted.
        let base = with_left_out(state.base.clone(), &state.left_out);
        let mut out: Vec<String> = local
            .iter()
            .filter(|(k, v)| base.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        out.extend(
            base.keys()
                .filter(|k| !local.contains_key(*k) && !scan.too_big.contains_key(*k))
                .cloned(),
        );
        Ok(out)
    }

    async fn scan(&self, state: &LocalState) -> Result<Scan, StoreError> {
        let (root, boundary, seen) = (self.root.clone(), self.boundary.clone(), state.seen.clone());
        let max = self.limits.max_file_size;
        tokio::task::spawn_blocking(move || scan::scan(&root, &boundary, &seen, max))
            .await
            .map_err(|e| StoreError::Refused(format!("scan task failed: {e}")))?
    }

    /// Make the directory hold exactly `snap`'s files (written from its blobs, staged and
    /// renamed; files it did not have removed). With `dry_run`, only say what would change.
    /// The next pass pushes the result as a new snapshot; history keeps what was replaced.
    pub async fn restore(
        &self,
        snap: &Snapshot,
        dry_run: bool,
    ) -> Result<crate::history::RestorePlan, StoreError> {
        let state = self.state()?;
        std::fs::create_dir_all(&self.root).map_err(|e| StoreError::io("create", &self.root, e))?;
        let scan = self.scan(&state).await?;
        let plan = crate::history::plan_restore(&scan.map(), snap);
        if dry_run {
            return Ok(plan);
        }
        let staging = self.staging()?;
        let within = self.beneath()?;
        for p in &plan.write {
            let f = &snap.files[p];
            if let Some(copy) = self
                .fetch(&blob_key(&f.sha256), Some(f), p, &staging, &within, &scan)
                .await?
            {
                tracing::warn!(path = %p, copy = %copy, "changed during the restore; both kept");
            }
        }
        for p in &plan.delete {
            within
                .unlink(Path::new(p))
                .map_err(|e| StoreError::io("remove", self.root.join(p), e))?;
        }
        Ok(plan)
    }

    /// Pull before start: a directory that does not exist yet is filled in a staging
    /// directory beside it and renamed into place, so an agent never sees half a brain.
    pub async fn pull_into_place(&self) -> Result<SyncReport, StoreError> {
        if self.root.exists() {
            return self.sync(true).await;
        }
        let name = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let staging = self.root.with_file_name(format!(".{name}.pulling"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .map_err(|e| StoreError::io("remove stale staging", &staging, e))?;
        }
        std::fs::create_dir_all(&staging)
            .map_err(|e| StoreError::io("create staging", &staging, e))?;
        let staged = Syncer {
            root: staging.clone(),
            ..self.clone()
        };
        let report = staged.sync(true).await?;
        self.own(&staging)?;
        std::fs::rename(&staging, &self.root)
            .map_err(|e| StoreError::io("rename staging into place", &self.root, e))?;
        Ok(report)
    }

    /// One pass both ways. `full` also lists the bucket's plain objects, so files put there
    /// by people or tools come down and planted unsafe keys are reported.
    pub async fn sync(&self, full: bool) -> Result<SyncReport, StoreError> {
        self.pass(PassOptions {
            full,
            ..PassOptions::default()
        })
        .await
    }

    /// One pass both ways, as `opts` says.
    pub async fn pass(&self, opts: PassOptions) -> Result<SyncReport, StoreError> {
        if let Some(lease) = &self.lease {
            lease.hold(&self.remote).await?;
        }
        let mut report = SyncReport::default();
        let mut state = self.state()?;
        std::fs::create_dir_all(&self.root).map_err(|e| StoreError::io("create", &self.root, e))?;
        let within = self.beneath()?;
        let here = mark::read(&within, &self.root, self.mark_xattr)?;
        let distrust = trust::untrusted_reason(&self.root, &state, here.as_ref());
        let mut scan = self.scan(&state).await?;
        report.skipped = scan.skipped.clone();

        // The store's side. A failed listing ends the pass here: nothing is deleted.
        let ids = self.remote.snapshot_ids().await?;
        let remote_id = ids.last().cloned();
        let newest = match &remote_id {
            Some(id) if state.base_id.as_ref() != Some(id) => Some(self.remote.snapshot(id).await?),
            _ => None,
        };
        let (mut remote_map, remote_time) = match (&remote_id, &newest) {
            (Some(id), Some(snap)) => (snap.files.clone(), id.clone()),
            (Some(id), None) => (state.base.clone(), id.clone()),
            (None, _) => (FileMap::new(), String::new()),
        };
        // The base: the last agreed state, only when it is this directory's and the store's
        // newest snapshot follows it. Otherwise (and when the bucket has no history: new,
        // wiped or migrated) merge against nothing: every file on either side is kept.
        // Paths the last pass left out for their size keep the base they had before.
        let trusted = match (&remote_id, &distrust, &newest, &state.base_id) {
            (None, _, _, _) => false,
            (Some(_), Some(why), _, _) => {
                report.rebased = Some(why.clone());
                false
            }
            (Some(_), None, None, _) => true,
            (Some(id), None, Some(snap), Some(base_id)) => {
                let follows = trust::follows(&self.remote, snap, base_id).await?;
                if !follows {
                    report.rebased = Some(format!(
                        "the store's newest snapshot {id} does not follow {base_id}, the last one {} agreed (another writer, or the store was restored or replaced)",
                        self.root.display()
                    ));
                }
                follows
            }
            (Some(_), None, Some(_), None) => false,
        };
        let mut base = if trusted {
            with_left_out(state.base.clone(), &state.left_out)
        } else {
            FileMap::new()
        };
        remote_map.retain(|k, _| match self.refuse_reason(k) {
            Some(why) => {
                report.refused.push(format!("{k:?}: {why}"));
                false
            }
            None => true,
        });

        // Older copies put back over newer files: set aside, so the store's version returns.
        if !self.read_only {
            let remote_ns = id_time(&remote_time).map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i128)
                    .unwrap_or(0)
            });
            for p in
                trust::older_local_copies(&base, &scan.files, &remote_map, &state.seen, remote_ns)
                    .into_iter()
                    .filter(|p| !self.push_only.contains(p))
            {
                if let Some(copy) = self.set_aside(&within, &mut scan, &remote_map, &p) {
                    report.conflicts.push(format!("{p} -> {copy}"));
                    base.remove(&p);
                }
            }
        }
        let local = scan.map();

        let max_size = self.limits.max_file_size;
        let mut left_out: Vec<TooBig> = Vec::new();
        let mut foreign: Vec<(String, u64)> = Vec::new();
        if opts.full {
            for o in self.remote.list("").await? {
                if o.key.starts_with(META_PREFIX)
                    || remote_map.contains_key(&o.key)
                    || base.contains_key(&o.key)
                {
                    continue;
                }
                match self.refuse_reason(&o.key) {
                    Some(why) => report.refused.push(format!("{:?}: {why}", o.key)),
                    None if local.contains_key(&o.key)
                        || self.push_only.contains(&o.key)
                        || scan.too_big.contains_key(&o.key) => {}
                    None if o.size > max_size => left_out.push(TooBig {
                        path: o.key,
                        size: o.size,
                        in_store: true,
                    }),
                    None => foreign.push((o.key, o.size)),
                }
            }
        }

        let acts = self.plan(
            Sides {
                base: &base,
                local: &local,
                too_big: &scan.too_big,
                remote: &remote_map,
            },
            &remote_time,
            &opts,
            &mut report,
            &mut left_out,
        );
        left_out.sort_by(|a, b| a.path.cmp(&b.path));
        report.too_big_count = left_out.len();
        report.too_big = left_out.iter().take(LISTED).cloned().collect();
        let first_time: Vec<&TooBig> = left_out
            .iter()
            .filter(|t| !state.left_out.contains_key(&t.path))
            .collect();
        report.too_big_new_count = first_time.len();
        report.too_big_new = first_time.into_iter().take(LISTED).cloned().collect();
        let progress = opts.progress.clone().unwrap_or_default();
        let result = self
            .apply(acts, &scan, &remote_map, &foreign, &mut report, &progress)
            .await?;
        progress.stage(Stage::Finishing);

        let snapshot_id = if result != remote_map {
            let snap = Snapshot::new(
                &self.origin,
                result.clone(),
                ids.last().map(String::as_str),
                remote_id.clone(),
            );
            self.remote.put_snapshot(&snap).await?;
            report.pushed = true;
            Some(snap.id)
        } else {
            remote_id.clone()
        };
        report.snapshot = snapshot_id.clone();
        report.restore_at = remote_id
            .as_deref()
            .and_then(id_time)
            .map(|t| humantime::format_rfc3339_micros(t).to_string());
        let now = SystemTime::now();
        state.seen = scan.seen(now);
        if !report.deleted.is_empty() {
            state.last_deletions = Some(Deletions {
                at: humantime::format_rfc3339_seconds(now).to_string(),
                count: report.deleted_remote,
                paths: report.deleted.clone(),
                restore_at: report.restore_at.clone(),
            });
        }
        // What both sides agree on now, and the mark that binds it to this directory: a new
        // identity after a merge without a trusted base, the next generation after a change.
        let mut new_mark = None;
        if report.failed.is_empty() {
            let changed = state.base_id != snapshot_id || state.base != result;
            let m = match (&state.mark, &distrust) {
                (Some(m), None) if changed => m.next(),
                (Some(m), None) => m.clone(),
                _ => Mark::new(),
            };
            state.base_id = snapshot_id;
            state.base = result;
            // What the merge is to take as the base of each path left out, instead of the
            // store's version: the one it had now, agreed before the path was left out.
            state.left_out = left_out
                .iter()
                .map(|t| (t.path.clone(), base.get(&t.path).cloned()))
                .collect();
            state.mark = Some(m.clone());
            new_mark = Some(m);
        }
        state.last_sync = Some(humantime::format_rfc3339_seconds(now).to_string());
        state.last_report = Some(report.clone());
        // The state first: a crash between the two leaves the marks different, and the next
        // pass then deletes nothing (the safe side).
        state.save(&self.state_path)?;
        if let Some(m) = new_mark.filter(|m| here.as_ref() != Some(m)) {
            mark::write(&within, &self.root, self.mark_xattr, &m)?;
        }
        Ok(report)
    }

    /// Rename the local file `p` to a conflict copy named for its mtime, so the store's version
    /// can come back in its place; returns the copy's name, or `None` (nothing moved) when the
    /// name is taken or the file changed.
    fn set_aside(
        &self,
        within: &Beneath,
        scan: &mut Scan,
        remote: &FileMap,
        p: &str,
    ) -> Option<String> {
        let found = scan.files.get(p)?.clone();
        let t = SystemTime::UNIX_EPOCH
            + std::time::Duration::from_nanos(found.mtime_ns.clamp(0, u64::MAX as i128) as u64);
        let tag: String = humantime::format_rfc3339_seconds(t)
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let copy = conflict_name(p, &tag);
        if scan.files.contains_key(&copy) || remote.contains_key(&copy) {
            return None;
        }
        if within.stat(Path::new(p)) != Some((found.size, found.mtime_ns)) {
            return None;
        }
        within.rename_within(Path::new(p), Path::new(&copy)).ok()?;
        scan.files.remove(p);
        scan.files.insert(copy.clone(), found);
        Some(copy)
    }

    fn refuse_reason(&self, key: &str) -> Option<&'static str> {
        if let Some(why) = crate::keys::unsafe_reason(key) {
            return Some(why);
        }
        if self.boundary.excludes(Path::new(key), false) {
            return Some(
                "excluded by the sync boundary (secrets, sessions, sidecars never come down)",
            );
        }
        None
    }

    /// The changes that bring both sides together. Paths over the size limit are left out
    /// (into `left_out`): a local file too big to go up, or a path whose plan would bring a
    /// store version too big down; nothing is planned for them, deletions included.
    fn plan(
        &self,
        sides: Sides<'_>,
        remote_id: &str,
        opts: &PassOptions,
        report: &mut SyncReport,
        left_out: &mut Vec<TooBig>,
    ) -> Vec<Act> {
        let Sides {
            base,
            local,
            too_big,
            remote,
        } = sides;
        let paths: BTreeSet<&String> = base
            .keys()
            .chain(local.keys())
            .chain(remote.keys())
            .chain(too_big.keys())
            .collect();
        let mut acts = Vec::new();
        let mut deletes = Vec::new();
        for p in paths {
            let (b, l, r) = (base.get(p), local.get(p), remote.get(p));
            if let Some(&size) = too_big.get(p) {
                left_out.push(TooBig {
                    path: p.clone(),
                    size,
                    in_store: false,
                });
                continue;
            }
            if l == r {
                continue;
            }
            let (acts_before, conflicts_before) = (acts.len(), report.conflicts.len());
            self.plan_path(p, (b, l, r), remote_id, report, &mut acts, &mut deletes);
            let brings_down = acts[acts_before..]
                .iter()
                .any(|a| matches!(a, Act::Download(..)));
            if let Some(r) = r.filter(|r| brings_down && r.size > self.limits.max_file_size) {
                acts.truncate(acts_before);
                report.conflicts.truncate(conflicts_before);
                left_out.push(TooBig {
                    path: p.clone(),
                    size: r.size,
                    in_store: true,
                });
            }
        }
        if !opts.allow_deletes {
            let over = self.limits.hold_deletes_over;
            if let Some(held) = trust::hold(&deletes, local.is_empty(), remote, over, &self.root) {
                report.held = Some(held);
                deletes.clear();
            }
        }
        if deletes.len() > self.limits.max_deletes {
            report.deferred_deletes += deletes.len() - self.limits.max_deletes;
            deletes.truncate(self.limits.max_deletes);
        }
        acts.extend(deletes.into_iter().map(Act::DeleteRemote));
        acts
    }

    /// The changes for one path that differs between here (`l`) and the store (`r`), given
    /// its base `b`: acts go to `acts`, remote deletions to `deletes` (capped and held later).
    fn plan_path(
        &self,
        p: &String,
        (b, l, r): (Option<&FileRef>, Option<&FileRef>, Option<&FileRef>),
        remote_id: &str,
        report: &mut SyncReport,
        acts: &mut Vec<Act>,
        deletes: &mut Vec<String>,
    ) {
        if self.push_only.contains(p.as_str()) {
            // Ours wins; the store's never comes down, and is not deleted either.
            if let (Some(l), false) = (l, self.read_only) {
                acts.push(Act::Upload(p.clone(), l.clone()));
            }
            return;
        }
        if self.read_only {
            match r {
                Some(r) => acts.push(Act::Download(p.clone(), r.clone())),
                None if b.is_some() && l == b => acts.push(Act::DeleteLocal(p.clone())),
                None => {}
            }
            return;
        }
        match (l == b, r == b) {
            (true, false) => match r {
                Some(r) => acts.push(Act::Download(p.clone(), r.clone())),
                None => acts.push(Act::DeleteLocal(p.clone())),
            },
            (false, true) => match l {
                Some(l) => acts.push(Act::Upload(p.clone(), l.clone())),
                None => deletes.push(p.clone()),
            },
            _ => match (l, r) {
                // Changed on both sides: both versions are kept.
                (Some(l), Some(r)) => {
                    let copy = conflict_name(p, remote_id);
                    report.conflicts.push(format!("{p} -> {copy}"));
                    acts.push(Act::Upload(p.clone(), l.clone()));
                    acts.push(Act::Plain(copy.clone(), r.clone()));
                    acts.push(Act::Download(copy, r.clone()));
                }
                // Deleted here, edited there: the edit wins.
                (None, Some(r)) => acts.push(Act::Download(p.clone(), r.clone())),
                // Edited here, deleted there: the edit wins.
                (Some(l), None) => acts.push(Act::Upload(p.clone(), l.clone())),
                (None, None) => {}
            },
        }
    }

    /// Carry out the plan; returns the file map the store now holds.
    async fn apply(
        &self,
        acts: Vec<Act>,
        scan: &Scan,
        remote_map: &FileMap,
        foreign: &[(String, u64)],
        report: &mut SyncReport,
        progress: &PassProgress,
    ) -> Result<FileMap, StoreError> {
        let mut result = remote_map.clone();
        let n = self.limits.concurrency.max(1);
        let mut uploads: Vec<(String, FileRef)> = Vec::new();
        let mut plains: Vec<(String, FileRef)> = Vec::new();
        let mut downloads: Vec<(String, FileRef)> = Vec::new();
        let mut rdeletes: Vec<String> = Vec::new();
        let mut ldeletes: Vec<String> = Vec::new();
        for a in acts {
            match a {
                Act::Upload(p, f) => uploads.push((p, f)),
                Act::Plain(p, f) => plains.push((p, f)),
                Act::Download(p, f) => downloads.push((p, f)),
                Act::DeleteRemote(p) => rdeletes.push(p),
                Act::DeleteLocal(p) => ldeletes.push(p),
            }
        }

        let within = self.beneath()?;
        // 1. Blobs the bucket lacks, each content once.
        let mut known: BTreeSet<String> = remote_map.values().map(|f| f.sha256.clone()).collect();
        let wanted: BTreeMap<String, (String, u64)> = uploads
            .iter()
            .filter(|(_, f)| !known.contains(&f.sha256))
            .map(|(p, f)| (f.sha256.clone(), (p.clone(), f.size)))
            .collect();
        let listed = wanted.len() > 16;
        if listed {
            for o in self.remote.list(crate::keys::BLOB_PREFIX).await? {
                if let Some(h) = o.key.strip_prefix(crate::keys::BLOB_PREFIX) {
                    known.insert(h.to_string());
                }
            }
        }
        let todo: Vec<(String, (String, u64))> = wanted
            .into_iter()
            .filter(|(h, _)| !known.contains(h))
            .collect();
        // What the pass will do, counted once: the blobs, every plain copy (the uploads'
        // and the conflicts'), the deletions here and there, the downloads.
        let copies = plains.len() + uploads.len();
        let files = todo.len() + copies + rdeletes.len() + ldeletes.len() + downloads.len();
        let files = files + foreign.len();
        let bytes = todo.iter().map(|(_, (_, size))| *size).sum::<u64>()
            + downloads.iter().map(|(_, f)| f.size).sum::<u64>()
            + foreign.iter().map(|(_, size)| *size).sum::<u64>();
        progress.plan(files as u64, bytes);
        progress.stage(Stage::Uploading);
        let results: Vec<(String, String, Result<u64, StoreError>)> = stream::iter(todo)
            .map(|(h, (p, size))| {
                let within = &within;
                async move {
                    let r = if !listed && wanted_small_exists(&self.remote, &h).await {
                        Ok(0)
                    } else {
                        // Opened beneath the root: a symlink swapped in is refused, not read;
                        // a file no longer the size it was hashed at is not read either.
                        let label = self.root.join(&p);
                        match within.open_file(Path::new(&p)) {
                            Ok(file) => self.remote.put_blob(file, &h, Some(size), &label).await,
                            Err(e) => Err(StoreError::io("open", self.root.join(&p), e)),
                        }
                    };
                    progress.done(size);
                    (h, p, r)
                }
            })
            .buffer_unordered(n)
            .collect()
            .await;
        let mut failed_hashes = BTreeSet::new();
        for (h, p, r) in results {
            match r {
                Ok(bytes) => {
                    report.uploaded += 1;
                    report.uploaded_bytes += bytes;
                }
                // Changed or deleted while it went up: not an error, the next pass takes it.
                Err(StoreError::Refused(why)) => {
                    report.retry.push(format!("{p}: {why}"));
                    failed_hashes.insert(h);
                }
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    report
                        .retry
                        .push(format!("{p}: deleted while being uploaded"));
                    failed_hashes.insert(h);
                }
                // Swapped for a symlink (ELOOP), or a directory on the way (ENOTDIR), since
                // the scan: never followed, never uploaded.
                Err(StoreError::Io { source, .. })
                    if matches!(source.raw_os_error(), Some(40 | 20))
                        || source.kind() == std::io::ErrorKind::InvalidInput =>
                {
                    report.skipped.push(format!(
                        "{p}: became a symlink or not a regular file; not uploaded"
                    ));
                    failed_hashes.insert(h);
                }
                Err(e) => return Err(e),
            }
        }

        // 2. Plain copies, readable by people and tools, made server-side from the blobs.
        plains.extend(
            uploads
                .into_iter()
                .filter(|(_, f)| !failed_hashes.contains(&f.sha256)),
        );
        progress.stage(Stage::Copying);
        let bucket = self.remote.name().to_string();
        let results: Vec<(String, FileRef, Result<(), StoreError>)> = stream::iter(plains)
            .map(|(p, f)| {
                let bucket = bucket.clone();
                async move {
                    let r = self
                        .remote
                        .copy_from(&bucket, &blob_key(&f.sha256), &p)
                        .await;
                    progress.done(0);
                    (p, f, r)
                }
            })
            .buffer_unordered(n)
            .collect()
            .await;
        for (p, f, r) in results {
            r?;
            result.insert(p, f);
        }

        // 3. Deletions of plain objects (history keeps their content).
        progress.stage(Stage::Deleting);
        let results: Vec<(String, Result<(), StoreError>)> = stream::iter(rdeletes)
            .map(|p| async move {
                let r = self.remote.delete(&p).await;
                progress.done(0);
                (p, r)
            })
            .buffer_unordered(n)
            .collect()
            .await;
        for (p, r) in results {
            r?;
            report.deleted_remote += 1;
            result.remove(&p);
            report.deleted.push(p);
        }
        report.deleted.sort();
        report.deleted.truncate(LISTED);

        // 4. The store's changes come down: staged, verified, renamed into place.
        progress.stage(Stage::Downloading);
        let staging = self.staging()?;
        let mut gets: Vec<(String, Option<FileRef>, String, u64)> = downloads
            .into_iter()
            .map(|(p, f)| (blob_key(&f.sha256), Some(f.clone()), p, f.size))
            .collect();
        gets.extend(
            foreign
                .iter()
                .map(|(k, size)| (k.clone(), None, k.clone(), *size)),
        );
        let results: Vec<(String, Result<Option<String>, StoreError>)> = stream::iter(gets)
            .map(|(key, f, p, size)| {
                let (staging, within) = (&staging, &within);
                async move {
                    let r = self
                        .fetch(&key, f.as_ref(), &p, staging, within, scan)
                        .await;
                    progress.done(size);
                    (p, r)
                }
            })
            .buffer_unordered(n)
            .collect()
            .await;
        for (p, r) in results {
            match r {
                Ok(Some(copy)) => {
                    report.downloaded += 1;
                    report.conflicts.push(format!("{p} -> {copy}"));
                }
                Ok(None) => report.downloaded += 1,
                Err(
                    e @ (StoreError::S3 { .. }
                    | StoreError::Io { .. }
                    | StoreError::HashMismatch { .. }
                    | StoreError::TooBig { .. }
                    | StoreError::Refused(_)),
                ) => report.failed.push(format!("{p}: {e}")),
                Err(e) => return Err(e),
            }
        }

        // 5. Files the store deleted go here too, unless they changed since the scan.
        for p in ldeletes {
            progress.done(0);
            let now = within.stat(Path::new(&p));
            match scan.files.get(&p) {
                Some(f) if now == Some((f.size, f.mtime_ns)) => {
                    within
                        .unlink(Path::new(&p))
                        .map_err(|e| StoreError::io("remove", self.root.join(&p), e))?;
                    report.deleted_local += 1;
                }
                _ => report.failed.push(format!(
                    "{p}: changed here while the store deleted it; kept, goes up on the next pass"
                )),
            }
        }
        Ok(result)
    }

    /// Download one object to `p`. If the local file changed since the scan, the download is
    /// kept beside it as a conflict copy instead; returns that copy's name then.
    async fn fetch(
        &self,
        key: &str,
        f: Option<&FileRef>,
        p: &str,
        staging: &Staging,
        within: &Beneath,
        scan: &Scan,
    ) -> Result<Option<String>, StoreError> {
        crate::keys::local_path(&self.root, p).map_err(|why| StoreError::UnsafeKey {
            bucket: self.remote.name().into(),
            key: p.into(),
            why,
        })?;
        let name = format!("{:016x}", rand::random::<u64>());
        let tmp = staging.path.join(&name);
        let want = f.map(|f| f.sha256.as_str());
        // Never more than the limit comes down, whatever size the snapshot says.
        let max = Some(self.limits.max_file_size);
        let got = match self.remote.get_to_file(key, &tmp, want, max).await {
            Err(e) if e.s3_code() == Some("NoSuchKey") && f.is_some() => {
                // The blob is gone (pruned by hand?): the plain copy, checked against the hash.
                self.remote.get_to_file(p, &tmp, want, max).await
            }
            r => r,
        };
        got?;
        let then = scan.files.get(p).map(|f| (f.size, f.mtime_ns));
        let now = within.stat(Path::new(p));
        let mut target = p.to_string();
        let mut copy = None;
        if now.is_some() && now != then {
            target = conflict_name(p, "local");
            copy = Some(target.clone());
        }
        // The staging dir is root's alone, so its path is safe to use; the target is reached
        // only through the root's open directory, never through a symlink.
        self.own(&tmp)?;
        let placed = within.rename_in(&staging.fd, &name, Path::new(&target), self.owner);
        if placed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        placed.map_err(|e| {
            StoreError::io(
                "put in place (not through a symlink)",
                self.root.join(&target),
                e,
            )
        })?;
        Ok(copy)
    }

    fn beneath(&self) -> Result<Beneath, StoreError> {
        Beneath::open(&self.root)
            .map_err(|e| StoreError::io("open synced directory (not a symlink)", &self.root, e))
    }

    /// Downloads land first in `.<name>.sync` beside the directory: on the same filesystem
    /// (so a rename puts them in place) but out of the agent's reach.
    fn staging(&self) -> Result<Staging, StoreError> {
        let name = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let path = self.root.with_file_name(format!(".{name}.sync"));
        std::fs::create_dir_all(&path).map_err(|e| StoreError::io("create staging", &path, e))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| StoreError::io("chmod staging", &path, e))?;
        let fd =
            std::fs::File::open(&path).map_err(|e| StoreError::io("open staging", &path, e))?;
        Ok(Staging { path, fd })
    }
}

/// The three sides a pass merges, and the local files too big to be one of them.
#[derive(Clone, Copy)]
struct Sides<'a> {
    base: &'a FileMap,
    local: &'a FileMap,
    too_big: &'a BTreeMap<String, u64>,
    remote: &'a FileMap,
}

/// `base` with each path a pass left out for its size given back the base it had before
/// (`None`: it had none).
fn with_left_out(mut base: FileMap, left_out: &BTreeMap<String, Option<FileRef>>) -> FileMap {
    for (p, b) in left_out {
        match b {
            Some(f) => base.insert(p.clone(), f.clone()),
            None => base.remove(p),
        };
    }
    base
}

/// The root-only directory downloads are staged in.
struct Staging {
    path: PathBuf,
    fd: std::fs::File,
}

async fn wanted_small_exists(remote: &Remote, sha: &str) -> bool {
    // Before uploading content the plan thinks is new, a HEAD settles it when no listing was
    // made; a failing HEAD just means "upload".
    remote.exists(&blob_key(sha)).await.unwrap_or(false)
}

/// `notes/a.md` → `notes/a.conflict-<tag>.md`: beside the original, same extension.
pub fn conflict_name(path: &str, tag: &str) -> String {
    let tag: String = tag
        .split('-')
        .next()
        .unwrap_or(tag)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let (dir, file) = path
        .rsplit_once('/')
        .map(|(d, f)| (format!("{d}/"), f))
        .unwrap_or((String::new(), path));
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}{stem}.conflict-{tag}.{ext}"),
        _ => format!("{dir}{file}.conflict-{tag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_copies_sit_beside_the_original() {
        assert_eq!(
            conflict_name("notes/a.md", "20261129T103032.1Z-ab12"),
            "notes/a.conflict-20261129T103032.md"
        );
        assert_eq!(conflict_name("README", "local"), "README.conflict-local");
        assert_eq!(conflict_name(".hidden", "x"), ".hidden.conflict-x");
    }
}
