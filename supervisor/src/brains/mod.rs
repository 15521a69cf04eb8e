//! The agents' brains in the knowledge store: provisioning (root key, buckets, one key per
//! agent with exactly its grants), a pull before each start, a follower per brain and per
//! shared collection that pushes within seconds of a change, a last push at stop and at
//! shutdown, and the rows `clawkeep sync status` shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clawkeep_sandbox::special_files::KNOWLEDGE_ROOT;
use clawkeep_store::boundary::Boundary;
use clawkeep_store::config::{StoreKind, StoreSettings};
use clawkeep_store::follow::{self, FollowStatus, Notes, Timing};
use clawkeep_store::grants::{Access, Admin, GarageAdmin, Grant};
use clawkeep_store::lease::{Holder, LeaseKeeper};
use clawkeep_store::remote::{Credential, Store};
use clawkeep_store::report::{Deletions, Held};
use clawkeep_store::{PassOptions, StoreError, SyncLimits, SyncReport, Syncer};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch, Mutex};

use crate::fleet::{Agent, Fleet};

mod audit;
mod notes;
mod ops;
pub use notes::{note_text, status_notes};
pub use ops::split_store_url;

/// Where an agent's brain lives on the host: its home.
pub fn brain_dir(state_dir: &Path, agent: &str) -> PathBuf {
    state_dir.join("agents").join(agent).join("home")
}

/// Where a shared collection lives on the host (bind-mounted into the agents granted it).
pub fn collection_dir(state_dir: &Path, collection: &str) -> PathBuf {
    state_dir.join("knowledge").join(collection)
}

/// Make `knowledge` in a home (opened as `within`) a link to [`KNOWLEDGE_ROOT`], where the
/// sandbox mounts the collections. What an older clawkeep left there (a directory of empty
/// mount points) is removed; anything else is moved aside, never deleted, and its new name
/// returned.
pub fn link_knowledge(
    within: &clawkeep_beneath::Beneath,
    owner: (u32, u32),
) -> std::io::Result<Option<String>> {
    use clawkeep_beneath::Kind;
    let rel = Path::new("knowledge");
    let entry = within
        .list(Path::new(""))?
        .into_iter()
        .find(|e| e.name == "knowledge");
    let mut aside = None;
    match entry.map(|e| e.kind) {
        None => {}
        Some(Kind::Symlink) => {
            if within.read_link(rel)?.as_deref() == Some(Path::new(KNOWLEDGE_ROOT)) {
                return Ok(None);
            }
            within.unlink(rel)?;
        }
        Some(Kind::Dir) => {
            let inside = within.list(rel)?;
            let mut empty = true;
            for e in &inside {
                empty &= e.kind == Kind::Dir && within.list(&rel.join(&e.name))?.is_empty();
            }
            if empty {
                for e in &inside {
                    within.remove_dir(&rel.join(&e.name))?;
                }
                within.remove_dir(rel)?;
            } else {
                aside = Some(move_aside(within, rel)?);
            }
        }
        Some(_) => aside = Some(move_aside(within, rel)?),
    }
    within.symlink(rel, Path::new(KNOWLEDGE_ROOT), Some(owner))?;
    Ok(aside)
}

/// Rename `rel` to the first free `rel.moved-N`; the new name.
fn move_aside(within: &clawkeep_beneath::Beneath, rel: &Path) -> std::io::Result<String> {
    for n in 1..1000 {
        let name = format!("{}.moved-{n}", rel.display());
        match within.rename_within(rel, Path::new(&name)) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free name to move it aside to"))
}

/// Make collection directory `dir` root's and group `gid`'s alone, with everything in it the
/// group's (see [`clawkeep_beneath::Beneath::share_with_group`]).
async fn share_collection(dir: &Path, gid: u32) -> Result<clawkeep_beneath::Shared, String> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        // The root by path: its parent is root's, so no agent can swap it.
        std::os::unix::fs::lchown(&dir, Some(0), Some(gid))
            .map_err(|e| format!("give {} to root: {e}", dir.display()))?;
        clawkeep_beneath::Beneath::open(&dir)
            .and_then(|b| b.share_with_group(gid))
            .map_err(|e| format!("give {} to its group: {e}", dir.display()))
    })
    .await
    .map_err(|e| format!("share task failed: {e}"))?
}

/// Why the knowledge store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BrainsError {
    /// A store operation failed.
    #[error("knowledge store: {0}")]
    Store(#[from] StoreError),
}

/// One row of `clawkeep sync status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRow {
    /// `agent` or `shared`.
    pub kind: String,
    /// Agent or collection name.
    pub name: String,
    /// Its bucket.
    pub bucket: String,
    /// The local directory.
    pub dir: String,
    /// Read-only grant: changes only come down.
    pub read_only: bool,
    /// When the last complete pass ended (RFC 3339).
    pub last_push: Option<String>,
    /// Files changed locally and not yet in the store.
    pub pending: usize,
    /// Seconds since the oldest change not yet in the store.
    pub lag_seconds: Option<f64>,
    /// The last failure, if the last pass failed.
    pub last_error: Option<String>,
    /// Conflicts the last pass resolved by keeping both copies.
    pub conflicts: Vec<String>,
    /// Deletions in the store held back until confirmed.
    #[serde(default)]
    pub held: Option<Held>,
    /// The last pass that deleted files in the store.
    #[serde(default)]
    pub last_deletions: Option<Deletions>,
    /// What an operator should know, each line saying what to do (held deletions, recent
    /// deletions and how to undo them, a merge that trusted no base).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The reply of `GET /v1/sync`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The store's endpoint.
    pub endpoint: String,
    /// Whether the store answers.
    pub healthy: bool,
    /// Whether the store itself enforces per-agent grants.
    pub grants_enforced: bool,
    /// One row per brain and collection followed.
    pub rows: Vec<SyncRow>,
}

/// How long the last pushes at shutdown may take in all.
pub const LAST_PUSH_DEADLINE: Duration = Duration::from_secs(30);

/// Last pushes at shutdown made at once.
pub const LAST_PUSHES_AT_ONCE: usize = 16;

struct Follower {
    kind: &'static str,
    name: String,
    syncer: Syncer,
    tx: mpsc::Sender<follow::Command>,
    status: watch::Receiver<FollowStatus>,
    task: tokio::task::JoinHandle<()>,
}

/// The knowledge store as the supervisor runs it.
pub struct Brains {
    settings: StoreSettings,
    state_dir: PathBuf,
    root: Credential,
    admin: Admin,
    agents: Vec<(Agent, u32)>,
    /// Each shared collection's host group (see [`crate::fleet::COLLECTION_GIDS`]).
    collection_gids: BTreeMap<String, u32>,
    /// This supervisor, as the brains' leases name it.
    holder: Holder,
    /// Paths in a home that only go up.
    push_only: Vec<&'static str>,
    provisioned: Mutex<bool>,
    followers: Mutex<BTreeMap<String, Follower>>,
    /// Held while a collection is first pulled, so two agents starting together do not.
    collections: Mutex<()>,
}

impl Brains {
    /// Read (or, for a managed Garage, generate) the store's credentials. Nothing is contacted
    /// yet: the store may be a service that starts after this. `push_only` are the paths in
    /// every agent's home the supervisor writes itself at each start (they go up, the store's
    /// version never comes down).
    pub fn new(
        fleet: &Fleet,
        state_dir: &Path,
        push_only: &[&'static str],
    ) -> Result<Option<Arc<Self>>, BrainsError> {
        let Some(settings) = fleet.store.clone() else {
            return Ok(None);
        };
        let (root, admin) = match (&settings.managed, settings.kind) {
            (Some(_), StoreKind::Garage) => {
                let g = crate::fleet::garage_of(&settings);
                let secrets = g.prepare()?;
                (
                    secrets.root.clone(),
                    Admin::Garage(GarageAdmin::new(&g.admin_url(), &secrets.admin_token)),
                )
            }
            (Some(_), _) => {
                let m = crate::fleet::minio_of(&settings);
                let root = m.prepare()?;
                // MinIO's admin API is signed with the root credential itself.
                let admin = clawkeep_store::grants_minio::MinioAdmin::new(
                    &m.endpoint(),
                    &settings.region,
                    root.clone(),
                );
                (root, Admin::Minio(admin))
            }
            (None, kind) => {
                let file = settings.credentials_file.clone().unwrap_or_default();
                let root = Credential::from_file(&file)?;
                let admin = match kind {
                    StoreKind::Garage => {
                        let token_file = settings.admin_token_file.clone().unwrap_or_default();
                        let token = std::fs::read_to_string(&token_file)
                            .map_err(|e| StoreError::io("read admin token", &token_file, e))?;
                        Admin::Garage(GarageAdmin::new(
                            settings.admin_url.as_deref().unwrap_or_default(),
                            token.trim(),
                        ))
                    }
                    // MinIO's admin API is signed with the root credential itself.
                    StoreKind::Minio => {
                        Admin::Minio(clawkeep_store::grants_minio::MinioAdmin::new(
                            settings.admin_url.as_deref().unwrap_or(&settings.endpoint),
                            &settings.region,
                            root.clone(),
                        ))
                    }
                    StoreKind::None => Admin::None,
                };
                (root, admin)
            }
        };
        // Agents' store keys and sync states: root's only.
        let own = state_dir.join("brains");
        std::fs::create_dir_all(&own).map_err(|e| StoreError::io("create", &own, e))?;
        std::fs::set_permissions(&own, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| StoreError::io("chmod 700", &own, e))?;
        let agents = fleet
            .agents
            .iter()
            .map(|a| (a.clone(), fleet.host_id(a)))
            .collect();
        let holder = Holder {
            id: holder_id(&own)?,
            host: fleet.node.name.clone(),
            state_dir: state_dir.display().to_string(),
        };
        Ok(Some(Arc::new(Brains {
            settings,
            state_dir: state_dir.to_path_buf(),
            root,
            admin,
            agents,
            collection_gids: fleet
                .collections()
                .into_iter()
                .filter_map(|c| Some((c.to_string(), fleet.collection_gid(c)?)))
                .collect(),
            holder,
            push_only: push_only.to_vec(),
            provisioned: Mutex::new(false),
            followers: Mutex::new(BTreeMap::new()),
            collections: Mutex::new(()),
        })))
    }

    fn store(&self, cred: &Credential) -> Store {
        Store::connect(&self.settings.endpoint, &self.settings.region, cred)
    }

    fn key_file(&self, agent: &str) -> PathBuf {
        self.state_dir
            .join("brains")
            .join("keys")
            .join(format!("{agent}.json"))
    }

    fn sync_state(&self, kind: &str, name: &str) -> PathBuf {
        self.state_dir
            .join("brains")
            .join("sync")
            .join(format!("{kind}-{name}.json"))
    }

    /// Whether the store enforces grants.
    pub fn grants_enforced(&self) -> bool {
        self.admin.enforced()
    }

    /// The store's settings.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// A connection with the root credential (clone, restore, migrate).
    pub fn root_store(&self) -> Store {
        self.store(&self.root)
    }

    /// Buckets for every brain and collection, and every agent's key with exactly its grants.
    /// Idempotent; done once per supervisor run, retried until it succeeds.
    async fn provision(&self) -> Result<(), StoreError> {
        let mut done = self.provisioned.lock().await;
        if *done {
            return Ok(());
        }
        let buckets = self.buckets();
        match &self.admin {
            Admin::Garage(g) => {
                g.import_root(&self.root).await?;
                for b in &buckets {
                    g.ensure_bucket(b, &self.root).await?;
                }
                for (a, _) in &self.agents {
                    let grants = self.grants(a);
                    let kf = self.key_file(&a.name);
                    g.ensure_key(&a.name, &kf, &grants).await?;
                }
            }
            Admin::Minio(m) => {
                for b in &buckets {
                    m.ensure_bucket(b, &self.root).await?;
                }
                for (a, _) in &self.agents {
                    let grants = self.grants(a);
                    m.ensure_key(&a.name, &self.key_file(&a.name), &grants)
                        .await?;
                }
            }
            Admin::None => {
                let s = self.root_store();
                for b in &buckets {
                    s.ensure_bucket(b).await?;
                }
            }
        }
        *done = true;
        Ok(())
    }

    /// Every bucket of the fleet: each agent's brain and each shared collection, once.
    pub(crate) fn buckets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (a, _) in &self.agents {
            out.push(self.settings.agent_bucket(&a.name));
            out.extend(
                a.knowledge
                    .iter()
                    .map(|(c, _)| self.settings.shared_bucket(c)),
            );
        }
        out.sort();
        out.dedup();
        out
    }

    fn grants(&self, a: &Agent) -> Vec<Grant> {
        let mut g = vec![Grant {
            bucket: self.settings.agent_bucket(&a.name),
            access: Access::Rw,
        }];
        g.extend(a.knowledge.iter().map(|(c, access)| Grant {
            bucket: self.settings.shared_bucket(c),
            access: *access,
        }));
        g
    }

    /// The credential an agent's syncs use: its own key where the store enforces grants.
    fn agent_credential(&self, agent: &str) -> Result<Credential, StoreError> {
        match self.admin {
            Admin::None => Ok(self.root.clone()),
            _ => Credential::from_file(&self.key_file(agent)),
        }
    }

    pub(crate) fn boundary(&self, mounts: &[&str]) -> Boundary {
        // The exclude globs were checked by `clawkeep check`; a failure here falls back to
        // the fixed exclusions, which are always valid.
        Boundary::new(&self.settings.exclude, mounts).unwrap_or_else(|_| {
            Boundary::new(&[], mounts).expect("fixed exclusions are valid globs")
        })
    }

    fn limits(&self) -> SyncLimits {
        SyncLimits {
            max_deletes: self.settings.max_deletes,
            concurrency: self.settings.concurrency,
            hold_deletes_over: self.settings.hold_deletes_over,
            max_file_size: self.settings.max_file_size,
        }
    }

    /// The lease keeper of an agent's brain: a lease not renewed for four reconcile
    /// intervals (at least five minutes) may be taken by another supervisor.
    fn lease_keeper(&self, agent: &str) -> Arc<LeaseKeeper> {
        let ttl = (self.settings.reconcile * 4).max(Duration::from_secs(300));
        Arc::new(LeaseKeeper::new(self.holder.clone(), agent, ttl))
    }

    /// The syncer of an agent's brain.
    fn agent_syncer(&self, agent: &str, host_id: u32) -> Result<Syncer, StoreError> {
        let cred = self.agent_credential(agent)?;
        Ok(Syncer::new(
            self.store(&cred).bucket(&self.settings.agent_bucket(agent)),
            brain_dir(&self.state_dir, agent),
            self.sync_state("agent", agent),
            self.boundary(&["knowledge"]),
            self.limits(),
            agent,
        )
        .owner(Some((host_id, host_id)))
        .lease(Some(self.lease_keeper(agent)))
        .push_only(&self.push_only))
    }

    fn timing(&self) -> Timing {
        Timing {
            debounce: self.settings.debounce,
            reconcile: self.settings.reconcile,
        }
    }

    /// A follower for `syncer`; `synced` says the pull just made left nothing behind; `notes`
    /// hears what an operator should know.
    fn spawn(
        &self,
        kind: &'static str,
        name: &str,
        syncer: Syncer,
        synced: bool,
        notes: Option<Notes>,
    ) -> Follower {
        let (tx, rx) = mpsc::channel(8);
        let now = synced.then(SystemTime::now);
        let initial = FollowStatus {
            last_pass: now,
            last_push: now,
            last_deletions: syncer.state().ok().and_then(|s| s.last_deletions),
            ..Default::default()
        };
        let (stx, srx) = watch::channel(initial);
        let task = tokio::spawn(follow::follow(
            syncer.clone(),
            self.timing(),
            rx,
            stx,
            notes,
        ));
        Follower {
            kind,
            name: name.to_string(),
            syncer,
            tx,
            status: srx,
            task,
        }
    }

    async fn ask(
        tx: &mpsc::Sender<follow::Command>,
        opts: PassOptions,
    ) -> Result<SyncReport, String> {
        let (reply, rx) = oneshot::channel();
        tx.send(follow::Command::Pass { opts, reply })
            .await
            .map_err(|_| "the sync task has ended".to_string())?;
        rx.await
            .map_err(|_| "the sync task has ended".to_string())?
    }

    /// Before an agent starts: provision, pull its shared collections and its brain (a new
    /// brain is staged and renamed into place), and make its `knowledge/` mount points. What
    /// the agent's brain sync later needs an operator to know goes to `notes`. The agent's
    /// own files (OpenClaw's workspace seeds) are written after this, over the pulled brain.
    pub async fn before_start(
        &self,
        agent: &Agent,
        host_id: u32,
        notes: Option<Notes>,
    ) -> Result<(), String> {
        self.provision()
            .await
            .map_err(|e| format!("cannot prepare the knowledge store: {e}"))?;
        let home = brain_dir(&self.state_dir, &agent.name);
        for (c, _) in &agent.knowledge {
            self.ensure_collection(c).await?;
        }
        let key = format!("agent:{}", agent.name);
        let mut followers = self.followers.lock().await;
        match followers.get(&key) {
            Some(f) => {
                let (tx, syncer) = (f.tx.clone(), f.syncer.clone());
                drop(followers);
                let pulled = Self::ask(
                    &tx,
                    PassOptions {
                        full: true,
                        ..PassOptions::default()
                    },
                )
                .await;
                if let Err(e) = pulled {
                    Self::start_without_pull(&syncer, agent, &e)?;
                }
            }
            None => {
                let syncer = self
                    .agent_syncer(&agent.name, host_id)
                    .map_err(|e| e.to_string())?;
                let synced = match syncer.pull_into_place().await {
                    Ok(r) => {
                        if !r.refused.is_empty() {
                            tracing::warn!(agent = %agent.name, refused = ?r.refused, "keys refused on pull");
                        }
                        if let (Some(n), Some(why)) = (&notes, &r.rebased) {
                            n(follow::Note::Rebased(why.clone()));
                        }
                        let limit = self.settings.max_file_size;
                        if let (Some(n), Some(big)) = (&notes, follow::Note::too_big(&r, limit)) {
                            n(big);
                        }
                        r.complete()
                    }
                    Err(e) => {
                        Self::start_without_pull(&syncer, agent, &e.to_string())?;
                        false
                    }
                };
                followers.insert(key, self.spawn("agent", &agent.name, syncer, synced, notes));
            }
        }
        // `~/knowledge` leads to the collections, mounted out of the home; made through the
        // home's open directory: the agent owns its home and may have left anything there.
        if !agent.knowledge.is_empty() {
            let within = clawkeep_beneath::Beneath::open(&home)
                .map_err(|e| format!("open {}: {e}", home.display()))?;
            match link_knowledge(&within, (host_id, host_id)) {
                Ok(Some(aside)) => tracing::warn!(
                    agent = %agent.name,
                    "~/knowledge was in the way of the link to the shared collections: moved to ~/{aside}"
                ),
                Ok(None) => {}
                Err(e) => {
                    return Err(format!(
                        "link {} to {KNOWLEDGE_ROOT}: {e}",
                        home.join("knowledge").display()
                    ))
                }
            }
        }
        Ok(())
    }

    /// The pull before start failed (`e`): start with the brain on disk only when it is the
    /// one last agreed with the store (the follower keeps trying); never when another
    /// supervisor holds the brain's lease, and never with a new or restored home, which the
    /// agent's own seeds would then fill before the store's brain could come down.
    fn start_without_pull(syncer: &Syncer, agent: &Agent, e: &str) -> Result<(), String> {
        let leased = syncer.lease_keeper().is_some_and(|l| l.refused());
        if !leased && syncer.trusts_directory() {
            tracing::warn!(agent = %agent.name, "pull before start failed, starting with the local brain: {e}");
            return Ok(());
        }
        Err(format!(
            "cannot pull the brain of {} from s3://{}: {e}",
            agent.name,
            syncer.remote().name()
        ))
    }

    /// A collection's follower: synced with the key of the first agent granted it read-write,
    /// else read-only with the first reader's key. On disk it is root's and its group's (the
    /// agents granted it have the group; no agent owns it, and no one else may enter it), and
    /// special files found in it are removed.
    async fn ensure_collection(&self, c: &str) -> Result<(), String> {
        let key = format!("shared:{c}");
        let _one_at_a_time = self.collections.lock().await;
        if self.followers.lock().await.contains_key(&key) {
            return Ok(());
        }
        let holders: Vec<&(Agent, u32)> = self
            .agents
            .iter()
            .filter(|(a, _)| a.knowledge.iter().any(|(n, _)| n == c))
            .collect();
        let writer = holders
            .iter()
            .find(|(a, _)| a.knowledge.iter().any(|(n, x)| n == c && *x == Access::Rw));
        let (who, read_only) = match (writer, holders.first()) {
            (Some((a, _)), _) => (a.name.clone(), false),
            (None, Some((a, _))) => (a.name.clone(), true),
            (None, None) => return Ok(()),
        };
        let gid = *self
            .collection_gids
            .get(c)
            .ok_or_else(|| format!("shared collection {c} has no group"))?;
        let dir = collection_dir(&self.state_dir, c);
        if dir.is_dir() {
            let shared = share_collection(&dir, gid).await?;
            if !shared.removed.is_empty() {
                tracing::warn!(
                    collection = c,
                    removed = ?shared.removed,
                    "removed special files (FIFOs, sockets, devices) from the shared collection: agents may not share them"
                );
            }
        }
        // The agents' inits reach the collection by path, as unprivileged host users.
        let parent = self.state_dir.join("knowledge");
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("create {}: {e}", parent.display()))?;
        let _ =
            std::fs::set_permissions(&parent, std::os::unix::fs::PermissionsExt::from_mode(0o711));
        let cred = self.agent_credential(&who).map_err(|e| e.to_string())?;
        let syncer = Syncer::new(
            self.store(&cred).bucket(&self.settings.shared_bucket(c)),
            dir.clone(),
            self.sync_state("shared", c),
            self.boundary(&[]),
            self.limits(),
            &who,
        )
        .owner(Some((0, gid)))
        .group_shared(true)
        .read_only(read_only);
        syncer
            .pull_into_place()
            .await
            .map_err(|e| format!("cannot pull shared collection {c}: {e}"))?;
        share_collection(&dir, gid).await?;
        let mut followers = self.followers.lock().await;
        followers
            .entry(key)
            .or_insert_with(|| self.spawn("shared", c, syncer, true, None));
        Ok(())
    }

    /// After an agent stopped: push its brain a last time.
    pub async fn after_stop(&self, agent: &str) {
        let tx = self
            .followers
            .lock()
            .await
            .get(&format!("agent:{agent}"))
            .map(|f| f.tx.clone());
        if let Some(tx) = tx {
            match tokio::time::timeout(
                Duration::from_secs(120),
                Self::ask(&tx, PassOptions::default()),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(agent, "last push after stop incomplete: {e}"),
                Err(_) => tracing::warn!(agent, "last push after stop timed out"),
            }
        }
    }

    /// A pass on demand (`clawkeep sync push|pull`): `name` is an agent or `shared:<collection>`.
    pub async fn pass(&self, name: &str, opts: PassOptions) -> Result<SyncReport, String> {
        let key = if name.contains(':') {
            name.to_string()
        } else {
            format!("agent:{name}")
        };
        let tx = self.followers.lock().await.get(&key).map(|f| f.tx.clone());
        match tx {
            Some(tx) => Self::ask(&tx, opts).await,
            None => Err(format!(
                "{name} is not being synced (is it an agent of this fleet, and has it started?)"
            )),
        }
    }

    /// Shutdown: a last pass of every follower ([`LAST_PUSHES_AT_ONCE`] at a time), then
    /// they end. Bounded by [`LAST_PUSH_DEADLINE`] in all, whatever the store does: a pass
    /// still running then is stopped, and what it had not pushed goes up at the next start.
    pub async fn shutdown(&self) {
        let followers: Vec<Follower> = std::mem::take(&mut *self.followers.lock().await)
            .into_values()
            .collect();
        let slots = Arc::new(tokio::sync::Semaphore::new(LAST_PUSHES_AT_ONCE));
        let mut tasks = Vec::new();
        let mut stops = tokio::task::JoinSet::new();
        for f in followers {
            tasks.push((f.name.clone(), f.task.abort_handle()));
            let slots = slots.clone();
            stops.spawn(async move {
                let _slot = slots.acquire().await;
                let (reply, rx) = oneshot::channel();
                let outcome = match f.tx.send(follow::Command::Stop(reply)).await {
                    Ok(()) => rx.await.ok(),
                    Err(_) => None,
                };
                let _ = f.task.await;
                (f.name, outcome)
            });
        }
        let all_done = async {
            while let Some(done) = stops.join_next().await {
                match done {
                    Ok((name, Some(Ok(_)))) => {
                        tracing::info!(name = %name, "last push at shutdown done")
                    }
                    Ok((name, Some(Err(e)))) => {
                        tracing::warn!(name = %name, "last push at shutdown incomplete: {e}")
                    }
                    Ok((name, None)) => {
                        tracing::warn!(name = %name, "last push at shutdown did not finish")
                    }
                    Err(_) => {}
                }
            }
        };
        if tokio::time::timeout(LAST_PUSH_DEADLINE, all_done)
            .await
            .is_err()
        {
            for (name, task) in &tasks {
                if !task.is_finished() {
                    tracing::warn!(name = %name, "last push at shutdown stopped after {LAST_PUSH_DEADLINE:?}; what it had not pushed goes up at the next start");
                    task.abort();
                }
            }
        }
    }

    /// Every brain and collection, for `clawkeep sync status`.
    pub async fn status(&self) -> SyncStatus {
        let healthy = self.root_store().healthy().await;
        let list: Vec<(String, &'static str, Syncer, FollowStatus)> = self
            .followers
            .lock()
            .await
            .values()
            .map(|f| {
                (
                    f.name.clone(),
                    f.kind,
                    f.syncer.clone(),
                    f.status.borrow().clone(),
                )
            })
            .collect();
        let mut rows = Vec::new();
        let now = SystemTime::now();
        for (name, kind, syncer, st) in list {
            let pending = syncer.pending().await.map(|p| p.len()).unwrap_or(0);
            let read_only = kind == "shared" && syncer.is_read_only();
            let held = st.last_report.as_ref().and_then(|r| r.held.clone());
            let rebased = st.last_report.as_ref().and_then(|r| r.rebased.clone());
            let notes = notes::status_notes(
                kind,
                &name,
                held.as_ref(),
                st.last_deletions.as_ref(),
                rebased.as_deref(),
                st.last_report
                    .as_ref()
                    .map(|r| (self.settings.max_file_size, r)),
            );
            rows.push(SyncRow {
                kind: kind.into(),
                name,
                bucket: syncer.remote().name().into(),
                dir: syncer.root().display().to_string(),
                read_only,
                last_push: st
                    .last_push
                    .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
                pending: if read_only { 0 } else { pending },
                lag_seconds: st
                    .dirty_since
                    .and_then(|d| now.duration_since(d).ok())
                    .map(|d| d.as_secs_f64()),
                last_error: st.last_error.clone(),
                conflicts: st.last_report.map(|r| r.conflicts).unwrap_or_default(),
                held,
                last_deletions: st.last_deletions.clone(),
                notes,
            });
        }
        SyncStatus {
            endpoint: self.settings.endpoint.clone(),
            healthy,
            grants_enforced: self.grants_enforced(),
            rows,
        }
    }
}

/// This supervisor's lease holder id: made once, kept in `brains/holder-id` (root's only), so
/// a supervisor that restarts on the same state dir still holds its agents' leases.
fn holder_id(brains_dir: &Path) -> Result<String, StoreError> {
    let path = brains_dir.join("holder-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("read", &path, e)),
    }
    let id = format!("{:032x}", rand::random::<u128>());
    clawkeep_store::manifest::write_atomic(&path, format!("{id}\n").as_bytes())?;
    Ok(id)
}
