//! `clawkeep pod init` and `clawkeep pod sync`: an agent's brain in its pod, as on a node. The
//! init container pulls the brain from the agent's bucket into the home volume before the
//! agent starts (a new home is staged and renamed into place); the sync sidecar then pushes
//! each change within seconds and, when Kubernetes stops it (after the agent container has
//! stopped: a native sidecar is stopped last), makes the last push and gives the brain's
//! lease back. Both hold the agent's own store key, which is mounted into them only; the
//! settings (endpoint, bucket, exclusions, timing) come from the agent's brain ConfigMap.

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
}

impl BrainSettings {
    /// The settings for `agent` from the fleet's store settings, with the store reached at
    /// `endpoint`.
    pub fn new(
        agent: &str,
        endpoint: &str,
        store: &clawkeep_store::config::StoreSettings,
        push_only: &[&str],
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

/// The brain's syncer: the home `volume/home` and the bucket, with the agent's key in
/// `key_file`; the lease is held as this pod (`pod`, its stable StatefulSet name).
pub fn syncer(
    s: &BrainSettings,
    key_file: &Path,
    volume: &Path,
    pod: &str,
) -> Result<Syncer, BrainError> {
    let cred = Credential::from_file(key_file).map_err(|e| BrainError::Key {
        path: key_file.to_path_buf(),
        message: e.to_string(),
    })?;
    let remote = Store::connect(&s.endpoint, &s.region, &cred).bucket(&s.bucket);
    // Checked by `settings`; the fixed exclusions alone are always valid.
    let boundary = Boundary::new(&s.exclude, &[])
        .or_else(|_| Boundary::new(&[], &[]))
        .map_err(|e| BrainError::Invalid {
            path: volume.to_path_buf(),
            message: e.to_string(),
        })?;
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
    Ok(Syncer::new(
        remote,
        volume.join(HOME_DIR),
        volume.join(STATE_FILE),
        boundary,
        limits,
        &s.agent,
    )
    .lease(Some(Arc::new(LeaseKeeper::new(holder, &s.agent, ttl))))
    .push_only(&push_only)
    // It runs as the agent's uid, as the agent does: no `trusted.` attributes.
    .unprivileged(true))
}

/// The init step: pull the brain into place. When the store cannot be reached, the agent
/// may start with the brain on the volume only if it is the one last agreed with the store
/// and no one else holds its lease (as on a node); otherwise the init fails and Kubernetes
/// retries it.
pub async fn pull(
    syncer: &Syncer,
    agent: &str,
    say: &(dyn Fn(String) + Sync),
) -> Result<SyncReport, BrainError> {
    match syncer.pull_into_place().await {
        Ok(r) => {
            if let Some(why) = &r.rebased {
                say(crate::brains::note_text(
                    "",
                    &follow::Note::Rebased(why.clone()),
                ));
            }
            Ok(r)
        }
        Err(e) => {
            let leased = syncer.lease_keeper().is_some_and(|l| l.refused());
            if !leased && syncer.trusts_directory() {
                say(format!(
                    "pull failed, starting with the brain on the volume (the one last agreed with the store): {e}"
                ));
                return Ok(SyncReport::default());
            }
            Err(BrainError::Pull {
                agent: agent.to_string(),
                bucket: syncer.remote().name().to_string(),
                message: e.to_string(),
            })
        }
    }
}

/// The sidecar: push each change within the settings' debounce until `stop` resolves, then
/// make the last push and give the lease back.
pub async fn keep(
    syncer: Syncer,
    s: &BrainSettings,
    stop: impl std::future::Future<Output = ()>,
    say: Arc<dyn Fn(String) + Send + Sync>,
) -> Result<SyncReport, BrainError> {
    let timing = Timing {
        debounce: duration(&s.debounce),
        reconcile: duration(&s.reconcile),
    };
    let (tx, rx) = mpsc::channel(4);
    let (status, _status_rx) = watch::channel(FollowStatus::default());
    let agent = s.agent.clone();
    let told = say.clone();
    let notes: Notes = Arc::new(move |n| told(crate::brains::note_text(&agent, &n)));
    let task = tokio::spawn(follow::follow(syncer, timing, rx, status, Some(notes)));
    stop.await;
    let last = |message: String| BrainError::LastPush {
        agent: s.agent.clone(),
        bucket: s.bucket.clone(),
        message,
    };
    let (reply, answer) = oneshot::channel();
    tx.send(follow::Command::Stop(reply))
        .await
        .map_err(|_| last("the sync task had ended".into()))?;
    let report = answer
        .await
        .map_err(|_| last("the sync task had ended".into()))?
        .map_err(last)?;
    let _ = task.await;
    if !report.complete() {
        return Err(last(format!(
            "{} files failed, {} deletions deferred",
            report.failed.len(),
            report.deferred_deletes
        )));
    }
    Ok(report)
}
