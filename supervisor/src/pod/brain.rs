//! `clawkeep pod init` and `clawkeep pod sync`: an agent's brain and its shared collections
//! in its pod, as on a node. The init container pulls the brain from the agent's bucket into
//! the home volume before the agent starts (a new home is staged and renamed into place),
//! and each collection it is granted into a volume of its own (mounted into the agent at
//! /knowledge/NAME, read-only for a read-only grant); the sync sidecar then pushes each
//! change within seconds (a read-only collection only comes down) and, when Kubernetes
//! stops it (after the agent container has stopped: a native sidecar is stopped last),
//! makes the last push and gives the brain's lease back. Both hold the agent's own store
//! key, which is mounted into them only and which the store grants exactly these buckets;
//! the settings (endpoint, buckets, exclusions, timing) come from the agent's brain
//! ConfigMap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clawkeep_store::boundary::Boundary;
use clawkeep_store::follow::{self, FollowStatus, Notes, Timing};
use clawkeep_store::lease::{Holder, LeaseKeeper};
use clawkeep_store::remote::{Credential, Store};
use clawkeep_store::{SyncLimits, SyncReport, Syncer};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

/// The file of the brain ConfigMap holding [`BrainSettings`].
pub const SETTINGS_FILE: &str = "brain.json";
/// The agent's home under the brain volume's mount.
pub const HOME_DIR: &str = "home";
/// A shared collection's files in its volume (the agent mounts this sub-path).
pub const COLLECTION_DIR: &str = "files";
/// The sync state under the brain volume's mount, beside the home (never in it).
const STATE_FILE: &str = "sync-state.json";

/// What the pod's brain pieces need to know of the fleet's `[store]`, rendered by
/// `clawkeep render k8s` into the agent's brain ConfigMap (no secret in it: the key is a
/// Secret mounted beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrainSettings {
    /// The agent (the writer snapshots name).
    pub agent: String,
    /// The store's S3 endpoint, by address (pods have no DNS).
    pub endpoint: String,
    /// The S3 region.
    pub region: String,
    /// The agent's bucket.
    pub bucket: String,
    /// Globs left out of the brain (besides the fixed exclusions).
    pub exclude: Vec<String>,
    /// Paths that only ever go up (written from the fleet at every start).
    pub push_only: Vec<String>,
    /// Quiet time after a change before the push, e.g. "2s".
    pub debounce: String,
    /// Full reconcile interval, e.g. "1m".
    pub reconcile: String,
    /// Most deletions in the store in one pass.
    pub max_deletes: usize,
    /// Deletions of more than this share (percent) of the brain wait for confirmation.
    pub hold_deletes_over: u8,
    /// Transfers at once.
    pub concurrency: usize,
    /// Files larger than this many bytes are left out.
    pub max_file_size: u64,
    /// The shared collections it is granted.
    #[serde(default)]
    pub collections: Vec<CollectionSettings>,
}

/// A shared collection an agent is granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSettings {
    /// Its name (`/knowledge/NAME` in the agent's container).
    pub name: String,
    /// Its bucket.
    pub bucket: String,
    /// Granted read-only: changes only come down.
    pub read_only: bool,
}

impl BrainSettings {
    /// The settings for `agent` from the fleet's store settings, with the store reached at
    /// `endpoint`.
    pub fn new(
        agent: &str,
        endpoint: &str,
        store: &clawkeep_store::config::StoreSettings,
        push_only: &[&str],
        knowledge: &[(String, clawkeep_store::grants::Access)],
    ) -> Self {
        BrainSettings {
            agent: agent.to_string(),
            endpoint: endpoint.to_string(),
            region: store.region.clone(),
            bucket: store.agent_bucket(agent),
            exclude: store.exclude.clone(),
            push_only: push_only.iter().map(|p| p.to_string()).collect(),
            debounce: humantime::format_duration(store.debounce).to_string(),
            reconcile: humantime::format_duration(store.reconcile).to_string(),
            max_deletes: store.max_deletes,
            hold_deletes_over: store.hold_deletes_over,
            concurrency: store.concurrency,
            max_file_size: store.max_file_size,
            collections: knowledge
                .iter()
                .map(|(name, access)| CollectionSettings {
                    name: name.clone(),
                    bucket: store.shared_bucket(name),
                    read_only: *access == clawkeep_store::grants::Access::Ro,
                })
                .collect(),
        }
    }
}

/// Why the brain could not be pulled or kept.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("{path}: {source} (mount the agent's brain ConfigMap there)")]
    Settings {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: {message} (it comes from the agent's brain ConfigMap: render the manifests again)"
    )]
    Invalid { path: PathBuf, message: String },
    #[error("the store key {path}: {message} (mount the agent's store Secret there)")]
    Key { path: PathBuf, message: String },
    #[error("{path}: {source} (the home volume must be writable by the pod's user)")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the agent is granted shared collections ({names}): give --knowledge DIR, where their volumes are mounted")]
    NoKnowledgeDir { names: String },
    #[error("cannot pull the brain of {agent} from s3://{bucket}: {message}")]
    Pull {
        agent: String,
        bucket: String,
        message: String,
    },
    #[error("the last push of {agent}'s brain to s3://{bucket} did not finish: {message} (what was not pushed goes up at the next start)")]
    LastPush {
        agent: String,
        bucket: String,
        message: String,
    },
}

/// Read the settings file in the mounted ConfigMap `dir`.
pub fn settings(dir: &Path) -> Result<BrainSettings, BrainError> {
    let path = dir.join(SETTINGS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| BrainError::Settings {
        path: path.clone(),
        source,
    })?;
    let s: BrainSettings = serde_json::from_str(&text).map_err(|e| BrainError::Invalid {
        path: path.clone(),
        message: e.to_string(),
    })?;
    for (what, v) in [("debounce", &s.debounce), ("reconcile", &s.reconcile)] {
        humantime::parse_duration(v).map_err(|e| BrainError::Invalid {
            path: path.clone(),
            message: format!("{what} {v:?}: {e}"),
        })?;
    }
    Boundary::new(&s.exclude, &[]).map_err(|e| BrainError::Invalid {
        path: path.clone(),
        message: format!("exclude: {e}"),
    })?;
    Ok(s)
}

fn duration(s: &str) -> Duration {
    // Checked by `settings`.
    humantime::parse_duration(s).unwrap_or(Duration::from_secs(60))
}

/// The brain's syncer (the home `volume/home` and the agent's bucket) and one per shared
/// collection (`knowledge/NAME`, its state in `volume/collections/`), with the agent's key
/// in `key_file`; the brain's lease is held as this pod (`pod`, its stable StatefulSet name).
pub fn syncers(
    s: &BrainSettings,
    key_file: &Path,
    volume: &Path,
    knowledge: Option<&Path>,
    pod: &str,
) -> Result<Vec<(String, Syncer)>, BrainError> {
    let cred = Credential::from_file(key_file).map_err(|e| BrainError::Key {
        path: key_file.to_path_buf(),
        message: e.to_string(),
    })?;
    let store = Store::connect(&s.endpoint, &s.region, &cred);
    // Checked by `settings`; the fixed exclusions alone are always valid.
    let boundary = |mounts: &[&str]| {
        Boundary::new(&s.exclude, mounts)
            .or_else(|_| Boundary::new(&[], mounts))
            .map_err(|e| BrainError::Invalid {
                path: volume.to_path_buf(),
                message: e.to_string(),
            })
    };
    let limits = SyncLimits {
        max_deletes: s.max_deletes,
        concurrency: s.concurrency.max(1),
        hold_deletes_over: s.hold_deletes_over,
        max_file_size: s.max_file_size,
    };
    let holder = Holder {
        id: format!("pod:{pod}"),
        host: pod.to_string(),
        state_dir: volume.display().to_string(),
    };
    // As on a node: a lease not renewed for four reconcile intervals (at least five
    // minutes) may be taken by another holder.
    let ttl = (duration(&s.reconcile) * 4).max(Duration::from_secs(300));
    let push_only: Vec<&str> = s.push_only.iter().map(String::as_str).collect();
    let brain = Syncer::new(
        store.bucket(&s.bucket),
        volume.join(HOME_DIR),
        volume.join(STATE_FILE),
        // `~/knowledge` leads to the collections, which sync on their own.
        boundary(&["knowledge"])?,
        limits,
        &s.agent,
    )
    .lease(Some(Arc::new(LeaseKeeper::new(holder, &s.agent, ttl))))
    .push_only(&push_only)
    // It runs as the agent's uid, as the agent does: no `trusted.` attributes.
    .unprivileged(true);
    let mut out = vec![(format!("the brain of {}", s.agent), brain)];
    if s.collections.is_empty() {
        return Ok(out);
    }
    let Some(knowledge) = knowledge else {
        let names: Vec<&str> = s.collections.iter().map(|c| c.name.as_str()).collect();
        return Err(BrainError::NoKnowledgeDir {
            names: names.join(", "),
        });
    };
    let states = volume.join(COLLECTION_STATES);
    std::fs::create_dir_all(&states).map_err(|source| BrainError::State {
        path: states.clone(),
        source,
    })?;
    for c in &s.collections {
        let syncer = Syncer::new(
            store.bucket(&c.bucket),
            // Inside the collection's own volume, so that the pull's staging beside it is
            // too (the directory the volumes are mounted in is the runtime's, not ours).
            knowledge.join(&c.name).join(COLLECTION_DIR),
            states.join(format!("{}.json", c.name)),
            boundary(&[])?,
            limits,
            &s.agent,
        )
        .read_only(c.read_only)
        .unprivileged(true);
        out.push((format!("shared collection {}", c.name), syncer));
    }
    Ok(out)
}

/// Where the collections' sync states are, under the brain volume.
const COLLECTION_STATES: &str = "collections";

/// The init step: pull the brain into place, then each collection. When the store cannot
/// be reached, the agent may start with the brain on the volume only if it is the one last
/// agreed with the store and no one else holds its lease (as on a node); otherwise, or when
/// a collection cannot come down, the init fails and Kubernetes retries it.
pub async fn pull(
    syncers: &[(String, Syncer)],
    agent: &str,
    say: &(dyn Fn(String) + Sync),
) -> Result<SyncReport, BrainError> {
    let mut first = None;
    for (i, (what, syncer)) in syncers.iter().enumerate() {
        match syncer.pull_into_place().await {
            Ok(r) => {
                if let Some(why) = &r.rebased {
                    say(format!(
                        "{what}: {}",
                        crate::brains::note_text("", &follow::Note::Rebased(why.clone()))
                    ));
                }
                first.get_or_insert(r);
            }
            Err(e) => {
                let leased = syncer.lease_keeper().is_some_and(|l| l.refused());
                if i == 0 && !leased && syncer.trusts_directory() {
                    say(format!(
                        "pull failed, starting with the brain on the volume (the one last agreed with the store): {e}"
                    ));
                    first.get_or_insert(SyncReport::default());
                    continue;
                }
                return Err(BrainError::Pull {
                    agent: format!("{agent} ({what})"),
                    bucket: syncer.remote().name().to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(first.unwrap_or_default())
}

/// The sidecar: push each change of the brain and of each read-write collection within the
/// settings' debounce until `stop` resolves, then make the last pushes and give the brain's
/// lease back. The report is the brain's.
pub async fn keep(
    syncers: Vec<(String, Syncer)>,
    s: &BrainSettings,
    stop: impl std::future::Future<Output = ()>,
    say: Arc<dyn Fn(String) + Send + Sync>,
) -> Result<SyncReport, BrainError> {
    let timing = Timing {
        debounce: duration(&s.debounce),
        reconcile: duration(&s.reconcile),
    };
    let mut followers = Vec::new();
    for (what, syncer) in syncers {
        let (tx, rx) = mpsc::channel(4);
        let (status, _status_rx) = watch::channel(FollowStatus::default());
        let agent = s.agent.clone();
        let told = say.clone();
        let about = what.clone();
        let notes: Notes =
            Arc::new(move |n| told(format!("{about}: {}", crate::brains::note_text(&agent, &n))));
        let bucket = syncer.remote().name().to_string();
        let task = tokio::spawn(follow::follow(syncer, timing, rx, status, Some(notes)));
        followers.push((what, bucket, tx, task));
    }
    stop.await;
    let mut brain = None;
    let mut failed = None;
    for (what, bucket, tx, task) in followers {
        let last = |message: String| BrainError::LastPush {
            agent: format!("{} ({what})", s.agent),
            bucket: bucket.clone(),
            message,
        };
        let (reply, answer) = oneshot::channel();
        let done = async {
            tx.send(follow::Command::Stop(reply))
                .await
                .map_err(|_| last("the sync task had ended".into()))?;
            let report = answer
                .await
                .map_err(|_| last("the sync task had ended".into()))?
                .map_err(last)?;
            if !report.complete() {
                return Err(last(format!(
                    "{} files failed, {} deletions deferred",
                    report.failed.len(),
                    report.deferred_deletes
                )));
            }
            Ok(report)
        }
        .await;
        let _ = task.await;
        match done {
            Ok(r) => {
                brain.get_or_insert(r);
            }
            Err(e) => {
                say(e.to_string());
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(brain.unwrap_or_default()),
    }
}
