//! One supervisor per brain: a lease object in the agent's bucket names the supervisor that
//! syncs it. Two supervisors running the same agent against one store (a fleet file copied to
//! a second node, a disk image flashed twice) would otherwise each push their own brain over
//! the other's. The holder renews the lease as it syncs and removes it at shutdown; another
//! supervisor refuses to sync while it is fresh, saying who holds it and how to take it over.
//! S3 has no compare-and-swap every server offers, so two starts in the same instant can both
//! take it; the next renewal sees the other's and one of them stops, and meanwhile the merge
//! itself never deletes what the other wrote (see `sync`).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::remote::Remote;

/// The lease's key in the bucket (under `.clawkeep/`, never synced as a file).
pub const KEY: &str = ".clawkeep/lease.json";

/// Who syncs a brain: one supervisor, on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Random, kept in the supervisor's state dir.
    pub id: String,
    /// The node's host name, for people.
    pub host: String,
    /// The supervisor's state dir, for people.
    pub state_dir: String,
}

/// `.clawkeep/lease.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it.
    pub holder: Holder,
    /// When it was last renewed (RFC 3339, the holder's clock).
    pub renewed: String,
    /// How long it holds after that, in seconds.
    pub ttl_seconds: u64,
}

impl Lease {
    /// How long ago it was renewed by `now` (zero when the holder's clock is ahead).
    pub fn age(&self, now: SystemTime) -> Duration {
        humantime::parse_rfc3339(&self.renewed)
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// Whether it still holds at `now`. A lease whose time cannot be read holds (the safe
    /// side: taking it over is one command).
    pub fn live(&self, now: SystemTime) -> bool {
        self.age(now) < Duration::from_secs(self.ttl_seconds)
    }
}

/// Why a pass was refused: another supervisor holds the brain's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Bucket name.
    pub bucket: String,
    /// The agent whose brain it is.
    pub agent: String,
    /// Who holds it.
    pub holder: Holder,
    /// How long ago the holder renewed it.
    pub age: Duration,
    /// How long a lease holds without renewal.
    pub ttl: Duration,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (agent, secs) = (&self.agent, |d: Duration| Duration::from_secs(d.as_secs()));
        write!(
            f,
            "s3://{} is synced by the clawkeep on {} (state dir {}, lease renewed {} ago): two \
             supervisors running agent {agent} would push over each other's brain, so this one \
             does not sync it (hint: stop {agent} there; if that node is gone for good, run \
             `clawkeep sync takeover {agent}` here, or wait until its lease runs out {} after \
             its last renewal)",
            self.bucket,
            self.holder.host,
            self.holder.state_dir,
            humantime::format_duration(secs(self.age)),
            humantime::format_duration(secs(self.ttl)),
        )
    }
}

/// Takes, renews and gives back one bucket's lease for one holder.
#[derive(Debug)]
pub struct LeaseKeeper {
    holder: Holder,
    agent: String,
    ttl: Duration,
    renewed: Mutex<Option<Instant>>,
    refused: Mutex<bool>,
}

impl LeaseKeeper {
    /// A keeper for `holder`, syncing `agent`'s brain; a lease not renewed for `ttl` may be
    /// taken by another supervisor. It is renewed every fifth of that.
    pub fn new(holder: Holder, agent: &str, ttl: Duration) -> Self {
        LeaseKeeper {
            holder,
            agent: agent.to_string(),
            ttl,
            renewed: Mutex::new(None),
            refused: Mutex::new(false),
        }
    }

    /// Whether the last attempt to take or renew the lease found another holder's (as
    /// opposed to succeeding, or not reaching the store).
    pub fn refused(&self) -> bool {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_refused(&self, yes: bool) {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = yes;
    }

    /// Who this keeper holds for.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    fn due(&self) -> bool {
        // A poisoned lock only means a panic elsewhere; the value is still a plain Instant.
        let last = *self.renewed.lock().unwrap_or_else(|p| p.into_inner());
        last.is_none_or(|t| t.elapsed() >= self.ttl / 5)
    }

    fn set_renewed(&self, at: Option<Instant>) {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// The lease in `remote`, if there is one.
    pub async fn read(remote: &Remote) -> Result<Option<Lease>, StoreError> {
        match remote.get_bytes_at_most(KEY, 64 * 1024).await {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.s3_code() == Some("NoSuchKey") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write(&self, remote: &Remote) -> Result<(), StoreError> {
        let lease = Lease {
            holder: self.holder.clone(),
            renewed: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            ttl_seconds: self.ttl.as_secs().max(1),
        };
        let bytes = serde_json::to_vec_pretty(&lease)
            .map_err(|e| StoreError::Refused(format!("cannot encode the lease: {e}")))?;
        remote.put(KEY, Bytes::from(bytes)).await?;
        self.set_renewed(Some(Instant::now()));
        self.set_refused(false);
        Ok(())
    }

    /// Before a pass: take or renew the lease when due. Refused while another holder's lease
    /// is fresh.
    pub async fn hold(&self, remote: &Remote) -> Result<(), StoreError> {
        if !self.due() {
            return Ok(());
        }
        let now = SystemTime::now();
        match Self::read(remote).await? {
            Some(l) if l.holder.id != self.holder.id && l.live(now) => {
                self.set_renewed(None);
                self.set_refused(true);
                Err(StoreError::Leased(Box::new(Refusal {
                    bucket: remote.name().to_string(),
                    agent: self.agent.clone(),
                    age: l.age(now),
                    ttl: Duration::from_secs(l.ttl_seconds),
                    holder: l.holder,
                })))
            }
            _ => self.write(remote).await,
        }
    }

    /// Take the lease whoever holds it (`clawkeep sync takeover`); returns the one replaced.
    pub async fn take(&self, remote: &Remote) -> Result<Option<Lease>, StoreError> {
        let before = Self::read(remote).await?;
        self.write(remote).await?;
        Ok(before.filter(|l| l.holder.id != self.holder.id))
    }

    /// At shutdown: remove the lease if it is still this holder's, so another supervisor may
    /// take the agent at once.
    pub async fn release(&self, remote: &Remote) -> Result<(), StoreError> {
        if let Some(l) = Self::read(remote).await? {
            if l.holder.id == self.holder.id {
                remote.delete(KEY).await?;
            }
        }
        self.set_renewed(None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(renewed: &str, ttl: u64) -> Lease {
        Lease {
            holder: Holder {
                id: "a".into(),
                host: "lab-1".into(),
                state_dir: "/var/lib/clawkeep".into(),
            },
            renewed: renewed.into(),
            ttl_seconds: ttl,
        }
    }

    #[test]
    fn a_lease_holds_for_its_ttl_and_a_holder_clock_ahead_counts_as_fresh() {
        let t = humantime::parse_rfc3339("2026-12-04T10:00:00Z").unwrap();
        let l = lease("2026-12-04T10:00:00Z", 300);
        assert!(l.live(t + Duration::from_secs(299)));
        assert!(!l.live(t + Duration::from_secs(300)));
        assert!(
            l.live(t - Duration::from_secs(86400)),
            "renewed in our future"
        );
        assert!(
            lease("not a time", 300).live(t),
            "unreadable: the safe side"
        );
    }
}
