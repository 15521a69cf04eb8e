//! What the operator asks of the store beyond syncing: clone, restore, migrate, and the
//! hourly pruning of old history.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clawkeep_store::grants::Admin;
use clawkeep_store::remote::{Credential, Store};
use clawkeep_store::{PassOptions, StoreError};

use super::Brains;

impl Brains {
    async fn ensure_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        match &self.admin {
            Admin::Garage(g) => g.ensure_bucket(bucket, &self.root).await.map(drop),
            Admin::Minio(m) => m.ensure_bucket(bucket, &self.root).await.map(drop),
            Admin::None => self.root_store().ensure_bucket(bucket).await,
        }
    }

    /// `clawkeep clone FROM TO`: push FROM, then copy its newest brain server-side into the
    /// new bucket of TO, which then starts with all of FROM's knowledge.
    pub async fn clone_brain(&self, from: &str, to: &str) -> Result<String, String> {
        if self
            .followers
            .lock()
            .await
            .contains_key(&format!("agent:{to}"))
        {
            return Err(format!("{to} is running with its own brain; clone only makes new ones (stop it and pick a new name)"));
        }
        self.provision().await.map_err(|e| e.to_string())?;
        if self
            .followers
            .lock()
            .await
            .contains_key(&format!("agent:{from}"))
        {
            self.pass(from, PassOptions::default())
                .await
                .map_err(|e| format!("cannot push {from} first: {e}"))?;
        }
        let (src, dst) = (
            self.settings.agent_bucket(from),
            self.settings.agent_bucket(to),
        );
        self.ensure_bucket(&dst).await.map_err(|e| e.to_string())?;
        let s = self.root_store();
        let snap = clawkeep_store::history::clone_bucket(
            &s.bucket(&src),
            &s.bucket(&dst),
            &format!("clone of {from}"),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(format!("{} files from s3://{src} now in s3://{dst} (snapshot {}); add an agent named {to} to the fleet to run it", snap.files.len(), snap.id))
    }

    /// `clawkeep restore AGENT --at T`: the brain as it was at the newest push at or before
    /// `at`. The caller stops the agent first; the current brain is pushed before anything is
    /// replaced, so the restore itself can be undone from history.
    pub async fn restore(
        &self,
        agent: &str,
        at: SystemTime,
        dry_run: bool,
    ) -> Result<clawkeep_store::history::RestorePlan, String> {
        let (tx, syncer) = {
            let f = self.followers.lock().await;
            let f = f.get(&format!("agent:{agent}")).ok_or_else(|| format!("{agent} is not being synced (is it an agent of this fleet, and has it started?)"))?;
            (f.tx.clone(), f.syncer.clone())
        };
        if !dry_run {
            Self::ask(&tx, PassOptions::default())
                .await
                .map_err(|e| format!("cannot save the current brain first: {e}"))?;
        }
        let snap = clawkeep_store::history::snapshot_at(syncer.remote(), at)
            .await
            .map_err(|e| e.to_string())?;
        let plan = syncer
            .restore(&snap, dry_run)
            .await
            .map_err(|e| e.to_string())?;
        if !dry_run {
            // The operator asked for exactly this brain: what it no longer has goes.
            let opts = PassOptions {
                full: false,
                allow_deletes: true,
                progress: None,
            };
            Self::ask(&tx, opts).await.map_err(|e| {
                format!("restored locally, but the push failed (it is retried): {e}")
            })?;
        }
        Ok(plan)
    }

    /// `clawkeep sync history NAME`: the newest `last` pushes of an agent's brain or of
    /// `shared:COLLECTION`, read with the root key (the agent need not be running).
    pub async fn history(
        &self,
        name: &str,
        last: usize,
    ) -> Result<Vec<clawkeep_store::history::Entry>, String> {
        let bucket = match name.strip_prefix("shared:") {
            Some(c)
                if self
                    .agents
                    .iter()
                    .any(|(a, _)| a.knowledge.iter().any(|(n, _)| n == c)) =>
            {
                self.settings.shared_bucket(c)
            }
            None if self.agents.iter().any(|(a, _)| a.name == name) => {
                self.settings.agent_bucket(name)
            }
            _ => {
                return Err(format!(
                    "{name} is neither an agent of this fleet nor shared:COLLECTION of one"
                ))
            }
        };
        clawkeep_store::history::recent(&self.root_store().bucket(&bucket), last)
            .await
            .map_err(|e| e.to_string())
    }

    /// `clawkeep sync takeover AGENT`: take the lease of the agent's brain from whichever
    /// supervisor holds it (its node is gone, or it should run here from now on). Returns
    /// what to tell the operator.
    pub async fn takeover(&self, agent: &str) -> Result<String, String> {
        let host_id = self
            .agents
            .iter()
            .find(|(a, _)| a.name == agent)
            .map(|(_, id)| *id)
            .ok_or_else(|| format!("{agent} is not an agent of this fleet"))?;
        self.provision().await.map_err(|e| e.to_string())?;
        let running = self
            .followers
            .lock()
            .await
            .get(&format!("agent:{agent}"))
            .map(|f| f.syncer.clone());
        let syncer = match running {
            Some(s) => s,
            None => self
                .agent_syncer(agent, host_id)
                .map_err(|e| e.to_string())?,
        };
        let keeper = syncer
            .lease_keeper()
            .ok_or_else(|| format!("{agent}'s brain is synced without a lease"))?;
        let before = keeper
            .take(syncer.remote())
            .await
            .map_err(|e| e.to_string())?;
        Ok(match before {
            Some(l) => format!(
                "{agent}'s brain (s3://{}) is now synced from here; it was held by the clawkeep on {} (state dir {}), which stops syncing it at its next renewal",
                syncer.remote().name(),
                l.holder.host,
                l.holder.state_dir
            ),
            None => format!(
                "{agent}'s brain (s3://{}) is synced from here (nobody else held it)",
                syncer.remote().name()
            ),
        })
    }
}

impl Brains {
    /// `clawkeep store migrate --to URL`: push every brain and collection, then copy every
    /// bucket (contents, history, plain files) to the store at `to` (its path, if any, is
    /// the new bucket prefix). The fleet keeps using this store until its file says otherwise.
    /// `progress` follows it: planning while the brains are pushed, then copying.
    pub async fn migrate(
        &self,
        to: &str,
        credentials: &Path,
        region: &str,
        progress: &clawkeep_store::PassProgress,
    ) -> Result<Vec<clawkeep_store::migrate::Copied>, String> {
        let (endpoint, prefix) = split_store_url(to)?;
        let prefix = prefix.unwrap_or_else(|| self.settings.bucket_prefix.clone());
        let cred = Credential::from_file(credentials).map_err(|e| e.to_string())?;
        let target = Store::connect(&endpoint, region, &cred);
        if !target.healthy().await {
            return Err(format!(
                "the store at {endpoint} does not answer (check the URL; nothing was copied)"
            ));
        }
        let names: Vec<String> = self.followers.lock().await.keys().cloned().collect();
        for n in &names {
            self.pass(n, PassOptions::default())
                .await
                .map_err(|e| format!("cannot push {n} before the move: {e}"))?;
        }
        let mut buckets: Vec<(String, String)> = Vec::new();
        for (a, _) in &self.agents {
            buckets.push((
                self.settings.agent_bucket(&a.name),
                format!("{prefix}-agent-{}", a.name),
            ));
            for (c, _) in &a.knowledge {
                buckets.push((
                    self.settings.shared_bucket(c),
                    format!("{prefix}-shared-{c}"),
                ));
            }
        }
        buckets.sort();
        buckets.dedup();
        let source = self.root_store();
        let tmp = self.state_dir.join("brains").join("migrate.tmp");
        let mut out = Vec::new();
        progress.stage(clawkeep_store::progress::Stage::Copying);
        for (from, to) in buckets {
            target.ensure_bucket(&to).await.map_err(|e| e.to_string())?;
            let c = clawkeep_store::migrate::copy_bucket(
                &source.bucket(&from),
                &target.bucket(&to),
                &tmp,
                progress,
            )
            .await
            .map_err(|e| format!("{from} -> {to}: {e} (run the migration again to resume)"))?;
            tracing::info!(from = %c.from, to = %c.to, objects = c.objects, bytes = c.bytes, "bucket copied");
            out.push(c);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(out)
    }
}

/// `http://10.0.0.5:9000/knowledge` → (`http://10.0.0.5:9000`, Some(`knowledge`)).
pub fn split_store_url(url: &str) -> Result<(String, Option<String>), String> {
    let Some((scheme, rest)) = url
        .split_once("://")
        .filter(|(s, _)| *s == "http" || *s == "https")
    else {
        return Err(format!(
            "{url:?} is not an http(s) URL; write it like http://10.0.0.5:9000/knowledge"
        ));
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let prefix = path.trim_matches('/');
    if !prefix.is_empty()
        && (prefix.len() > 20
            || !prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(format!("{prefix:?} cannot start a bucket name; the path of the URL is the new bucket prefix (1-20 lowercase letters, digits, '-')"));
    }
    Ok((
        format!("{scheme}://{host}"),
        (!prefix.is_empty()).then(|| prefix.to_string()),
    ))
}

impl Brains {
    /// Every hour, drop history older than `[store] retention` (the newest snapshot of every
    /// bucket always stays), with the root key.
    pub fn start_pruning(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if !*me.provisioned.lock().await {
                    continue;
                }
                let buckets = me.buckets();
                let store = me.root_store();
                for b in buckets {
                    // A push writes its blobs before its snapshot: an hour's grace keeps them.
                    match clawkeep_store::history::prune(
                        &store.bucket(&b),
                        me.settings.retention,
                        Duration::from_secs(3600),
                        SystemTime::now(),
                    )
                    .await
                    {
                        Ok(p) if p.snapshots + p.blobs > 0 => {
                            tracing::info!(bucket = %b, snapshots = p.snapshots, blobs = p.blobs, "old history pruned")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(bucket = %b, "pruning failed: {e}"),
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_url_gives_endpoint_and_prefix() {
        assert_eq!(
            split_store_url("http://10.0.0.5:9000/knowledge").unwrap(),
            ("http://10.0.0.5:9000".into(), Some("knowledge".into()))
        );
        assert_eq!(
            split_store_url("https://s3.lab:443").unwrap(),
            ("https://s3.lab:443".into(), None)
        );
        assert!(split_store_url("10.0.0.5:9000")
            .unwrap_err()
            .contains("http://"));
        assert!(split_store_url("http://h/Bad_Prefix").is_err());
    }
}
