//! The `[store]` section of the fleet file (owned by this crate, embedded by the supervisor)
//! and the rules it must follow, reported by key path so the supervisor can point at the line.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which S3 server runs the store; it decides how grants are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// MinIO: grants through its admin API (users and policies).
    Minio,
    /// Garage: grants through its admin API v2 (keys and bucket grants).
    Garage,
    /// Any other S3 server: sync works, grants are not enforced (`clawkeep audit` says so).
    None,
}

/// A size as the fleet file gives it: a number of bytes, or text with a unit such as
/// `"1GiB"`, which the supervisor reads (with the units of every size in the fleet file) and
/// gives to [`StoreConfig::resolve`] as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    /// Bytes.
    Bytes(u64),
    /// A number with a unit, any case: B, KiB, MiB, GiB, TiB (or K, M, G, T), powers of 1024;
    /// KB, MB, GB, TB, powers of 1000.
    Text(String),
}

/// A store clawkeep runs itself as a supervised service.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagedStore {
    /// `garage` (light, the appliance's choice) or `minio`.
    pub kind: Option<StoreKind>,
    /// The server's binary.
    #[schemars(example = &"/usr/local/bin/garage")]
    pub binary: Option<String>,
    /// Where it keeps data, metadata and its generated credentials (0600).
    #[schemars(example = &"/var/lib/clawkeep/store")]
    pub data_dir: Option<String>,
    /// S3 port on 127.0.0.1 (default 3900).
    pub port: Option<u16>,
    /// Garage: admin API port; MinIO: console port; on 127.0.0.1 (default: S3 port + 3).
    pub admin_port: Option<u16>,
}

/// The admin API of an external store, for provisioning buckets and per-agent credentials.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `garage`, `minio` or `none`.
    pub kind: Option<StoreKind>,
    /// Base URL of the admin API (Garage: its `[admin] api_bind_addr`; MinIO: the S3 URL).
    pub url: Option<String>,
    /// File holding the admin token (Garage) or `access_key:secret_key` (MinIO), mode 0600.
    pub token_file: Option<String>,
}

/// `[store]`: where agents' brains and shared collections live.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// S3 endpoint of an external store (omit with `managed`).
    #[schemars(example = &"http://127.0.0.1:9000")]
    pub endpoint: Option<String>,
    /// Region the store expects (default "us-east-1"; Garage's is set in its config).
    pub region: Option<String>,
    /// File with the store's root credential as `access_key:secret_key` (external stores).
    pub credentials: Option<String>,
    /// The admin API of an external store.
    pub admin: Option<AdminConfig>,
    /// Run the store here.
    pub managed: Option<ManagedStore>,
    /// Bucket names start with this: `<prefix>-agent-<name>`, `<prefix>-shared-<collection>`.
    #[schemars(example = &"ck")]
    pub bucket_prefix: Option<String>,
    /// Extra glob patterns (relative to the synced directory) that never go to the store.
    pub exclude: Option<Vec<String>>,
    /// Quiet time after a change before a push (default "1s"; at most "2s").
    pub debounce: Option<String>,
    /// Full reconcile interval, catching what change events missed (default "60s").
    pub reconcile: Option<String>,
    /// Most remote deletions one pass makes; the rest wait for the next pass (default 100).
    pub max_deletes: Option<u32>,
    /// A pass that would delete more than this share (percent) of the files or of the bytes
    /// a brain holds in the store, and at least 3 files, holds the deletions back until
    /// `clawkeep sync push NAME --allow-deletes` (default 50; 100 holds only the deletions of
    /// a directory that was emptied).
    pub hold_deletes_over: Option<u8>,
    /// How long snapshots are kept for `restore --at` (default "30d"; the latest is kept always).
    pub retention: Option<String>,
    /// Transfers in flight at once per pass (default 8).
    pub concurrency: Option<u32>,
    /// Files larger than this are not synced, either way (default "1GiB"): a local one is
    /// neither read nor uploaded (judged by its apparent size, so a sparse file counts in
    /// full), a store version over it never comes down, and neither side's copy is deleted
    /// for it. Each is named once in the agent's log and in `clawkeep sync status`.
    #[schemars(example = &"1GiB")]
    pub max_file_size: Option<Size>,
}

/// A rule broken in `[store]`, with the key path (relative to `[store]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Keys from `[store]` down, e.g. `["managed", "binary"]`.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// `[store]` with defaults applied and values parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    /// S3 endpoint URL.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// Bucket name prefix.
    pub bucket_prefix: String,
    /// How grants are enforced.
    pub kind: StoreKind,
    /// Admin API URL, if any.
    pub admin_url: Option<String>,
    /// Admin token file (external stores).
    pub admin_token_file: Option<PathBuf>,
    /// Root credential file (external stores).
    pub credentials_file: Option<PathBuf>,
    /// The managed store, if clawkeep runs it.
    pub managed: Option<ManagedSettings>,
    /// Extra excludes.
    pub exclude: Vec<String>,
    /// Debounce after a change.
    pub debounce: Duration,
    /// Full reconcile interval.
    pub reconcile: Duration,
    /// Deletion cap per pass.
    pub max_deletes: usize,
    /// Share (percent) of a brain a pass may delete before it waits for a yes.
    pub hold_deletes_over: u8,
    /// Snapshot retention.
    pub retention: Duration,
    /// Concurrent transfers.
    pub concurrency: usize,
    /// Largest file synced, in bytes.
    pub max_file_size: u64,
}

/// A managed store's resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedSettings {
    /// Garage or MinIO.
    pub kind: StoreKind,
    /// Server binary.
    pub binary: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// S3 port on 127.0.0.1.
    pub port: u16,
    /// Admin port on 127.0.0.1.
    pub admin_port: u16,
}

const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

impl StoreConfig {
    /// Every rule this section breaks, all at once.
    pub fn problems(&self) -> Vec<Problem> {
        match self.resolve() {
            Ok(_) => Vec::new(),
            Err(p) => p,
        }
    }

    /// Defaults applied and values parsed, or every problem found.
    pub fn resolve(&self) -> Result<StoreSettings, Vec<Problem>> {
        let mut out = Vec::new();
        let mut bad = |path: &[&str], message: String, hint: &str| {
            out.push(Problem {
                path: path.iter().map(|s| s.to_string()).collect(),
                message,
                hint: hint.to_string(),
            })
        };
        let managed = match &self.managed {
            None => None,
            Some(m) => {
                let kind = m.kind.unwrap_or(StoreKind::Minio);
                if kind == StoreKind::None {
                    bad(
                        &["managed", "kind"],
                        "a managed store must be a server clawkeep can run".into(),
                        "use \"garage\" or \"minio\"",
                    );
                }
                if m.binary.is_none() {
                    bad(
                        &["managed", "binary"],
                        "the managed store needs its server binary".into(),
                        "set binary = \"/usr/local/bin/garage\"",
                    );
                }
                if m.data_dir.is_none() {
                    bad(
                        &["managed", "data_dir"],
                        "the managed store needs a data directory".into(),
                        "set data_dir = \"/var/lib/clawkeep/store\"",
                    );
                }
                for (k, v) in [("binary", &m.binary), ("data_dir", &m.data_dir)] {
                    if let Some(v) = v {
                        if !v.starts_with('/') {
                            bad(
                                &["managed", k],
                                format!("{v:?} is not an absolute path"),
                                "write the full path, starting with /",
                            );
                        }
                    }
                }
                let port = m.port.unwrap_or(3900);
                let admin_port = m.admin_port.unwrap_or(port.saturating_add(3));
                if port == 0 || admin_port == 0 || port == admin_port {
                    bad(
                        &["managed", "admin_port"],
                        format!(
                            "ports {port} and {admin_port} must be two different non-zero ports"
                        ),
                        "pick free ports on 127.0.0.1",
                    );
                }
                Some(ManagedSettings {
                    kind,
                    binary: m.binary.clone().unwrap_or_default().into(),
                    data_dir: m.data_dir.clone().unwrap_or_default().into(),
                    port,
                    admin_port,
                })
            }
        };
        let endpoint = match (&self.endpoint, &managed) {
            (Some(_), Some(_)) => {
                bad(
                    &["endpoint"],
                    "endpoint and managed are both set".into(),
                    "a managed store's endpoint is 127.0.0.1:<port>; drop one of them",
                );
                String::new()
            }
            (Some(e), None) => {
                if !(e.starts_with("http://") || e.starts_with("https://"))
                    || e.split("://").nth(1).is_none_or(|r| r.is_empty())
                {
                    bad(
                        &["endpoint"],
                        format!("{e:?} is not an http(s) URL"),
                        "write it as http://HOST:PORT",
                    );
                }
                e.trim_end_matches('/').to_string()
            }
            (None, Some(m)) => format!("http://127.0.0.1:{}", m.port),
            (None, None) => {
                bad(&[], "no store: neither endpoint nor managed is set".into(), "add managed = { kind = \"garage\", binary = ..., data_dir = ... } or endpoint = \"http://...\"");
                String::new()
            }
        };
        if managed.is_none() && self.credentials.is_none() {
            bad(&["credentials"], "an external store needs its root credential".into(), "set credentials = \"/etc/clawkeep/store.key\" (a 0600 file holding access_key:secret_key)");
        }
        let (kind, admin_url, admin_token_file) = match (&managed, &self.admin) {
            // MinIO serves its admin API on the S3 port; Garage on its own.
            (Some(m), _) if m.kind == StoreKind::Minio => (m.kind, Some(endpoint.clone()), None),
            (Some(m), _) => (
                m.kind,
                Some(format!("http://127.0.0.1:{}", m.admin_port)),
                None,
            ),
            (None, Some(a)) => {
                let kind = a.kind.unwrap_or(StoreKind::None);
                // Garage's admin API has its own address and token; MinIO's shares the S3
                // endpoint and is signed with the root credential.
                if kind == StoreKind::Garage && (a.url.is_none() || a.token_file.is_none()) {
                    bad(&["admin"], "Garage's admin API needs url and token_file".into(), "set both (its [admin] api_bind_addr and admin_token), or kind = \"none\" to sync without enforced grants");
                }
                (kind, a.url.clone(), a.token_file.clone().map(PathBuf::from))
            }
            (None, None) => (StoreKind::None, None, None),
        };
        let prefix = self.bucket_prefix.clone().unwrap_or_else(|| "ck".into());
        if prefix.is_empty()
            || prefix.len() > 20
            || !prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || prefix.starts_with('-')
        {
            bad(
                &["bucket_prefix"],
                format!("{prefix:?} cannot start an S3 bucket name"),
                "use 1-20 lowercase letters, digits or '-'",
            );
        }
        for (i, g) in self.exclude.iter().flatten().enumerate() {
            if let Err(e) = globset::Glob::new(g) {
                bad(
                    &["exclude", &i.to_string()],
                    format!("{g:?} is not a glob: {e}"),
                    "use patterns like \"*.tmp\" or \"drafts/**\"",
                );
            }
        }
        let mut dur = |k: &str, v: &Option<String>, default: Duration| match v {
            None => default,
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) => d,
                Err(e) => {
                    bad(
                        &[k],
                        format!("{s:?} is not a duration: {e}"),
                        "write it like \"1s\", \"5m\" or \"30d\"",
                    );
                    default
                }
            },
        };
        let debounce = dur("debounce", &self.debounce, Duration::from_secs(1));
        let reconcile = dur("reconcile", &self.reconcile, Duration::from_secs(60));
        let retention = dur(
            "retention",
            &self.retention,
            Duration::from_secs(30 * 86400),
        );
        if debounce > MAX_DEBOUNCE {
            bad(
                &["debounce"],
                format!("{} is longer than 2s", humantime::format_duration(debounce)),
                "changes must reach the store within seconds; use at most \"2s\"",
            );
        }
        if reconcile < Duration::from_secs(1) {
            bad(
                &["reconcile"],
                "the reconcile interval must be at least 1s".into(),
                "use e.g. \"60s\"",
            );
        }
        let hold_deletes_over = self.hold_deletes_over.unwrap_or(50);
        if hold_deletes_over == 0 || hold_deletes_over > 100 {
            bad(
                &["hold_deletes_over"],
                format!("{hold_deletes_over} is not a share between 1 and 100 percent"),
                "use e.g. 50: a pass that would delete more than half of a brain then waits for a yes",
            );
        }
        let max_file_size = match &self.max_file_size {
            None => crate::sync::DEFAULT_MAX_FILE_SIZE,
            Some(Size::Bytes(n)) if *n > 0 => *n,
            Some(Size::Bytes(_)) => {
                bad(
                    &["max_file_size"],
                    "0 bytes would keep every file out of the store".into(),
                    "use e.g. \"1GiB\"; files larger than it are not synced",
                );
                crate::sync::DEFAULT_MAX_FILE_SIZE
            }
            Some(Size::Text(t)) => {
                bad(
                    &["max_file_size"],
                    format!("{t:?} is not a number of bytes"),
                    "give bytes here; units such as \"1GiB\" are read by the supervisor",
                );
                crate::sync::DEFAULT_MAX_FILE_SIZE
            }
        };
        let concurrency = self.concurrency.unwrap_or(8);
        if concurrency == 0 || concurrency > 64 {
            bad(
                &["concurrency"],
                format!("{concurrency} transfers at once is out of range"),
                "use 1 to 64",
            );
        }
        if out.is_empty() {
            Ok(StoreSettings {
                endpoint,
                region: self.region.clone().unwrap_or_else(|| "us-east-1".into()),
                bucket_prefix: prefix,
                kind,
                admin_url,
                admin_token_file,
                credentials_file: self.credentials.clone().map(PathBuf::from),
                managed,
                exclude: self.exclude.clone().unwrap_or_default(),
                debounce,
                reconcile,
                max_deletes: self.max_deletes.unwrap_or(100) as usize,
                hold_deletes_over,
                retention,
                concurrency: concurrency as usize,
                max_file_size,
            })
        } else {
            Err(out)
        }
    }
}

impl StoreSettings {
    /// The bucket holding an agent's brain.
    pub fn agent_bucket(&self, agent: &str) -> String {
        format!(
            "{}-agent-{}",
            self.bucket_prefix,
            agent.to_ascii_lowercase()
        )
    }

    /// The bucket holding a shared collection.
    pub fn shared_bucket(&self, collection: &str) -> String {
        format!(
            "{}-shared-{}",
            self.bucket_prefix,
            collection.to_ascii_lowercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> StoreConfig {
        toml_like(t)
    }

    fn toml_like(t: &str) -> StoreConfig {
        serde_json::from_str(t).expect("test json")
    }

    #[test]
    fn managed_garage_gets_loopback_endpoints() {
        let s =
            parse(r#"{"managed":{"kind":"garage","binary":"/bin/garage","data_dir":"/var/s"}}"#)
                .resolve()
                .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:3900");
        assert_eq!(s.admin_url.as_deref(), Some("http://127.0.0.1:3903"));
        assert_eq!(s.kind, StoreKind::Garage);
        assert_eq!(s.agent_bucket("Research"), "ck-agent-research");
        assert_eq!(s.max_file_size, 1 << 30);
    }

    #[test]
    fn a_max_file_size_of_zero_bytes_is_refused() {
        let p = parse(r#"{"endpoint":"http://h:9000","credentials":"/k","max_file_size":0}"#)
            .problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path, ["max_file_size"]);
        assert!(p[0].message.contains("every file"), "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let p = parse(r#"{"managed":{"kind":"garage","binary":"garage"},"debounce":"10s","bucket_prefix":"CK","exclude":["a[b"]}"#).problems();
        let paths: Vec<String> = p.iter().map(|p| p.path.join(".")).collect();
        assert_eq!(
            paths,
            [
                "managed.data_dir",
                "managed.binary",
                "bucket_prefix",
                "exclude.0",
                "debounce"
            ],
            "{p:#?}"
        );
    }

    #[test]
    fn an_external_store_needs_credentials() {
        let p = parse(r#"{"endpoint":"http://10.0.0.5:9000"}"#).problems();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, ["credentials"]);
        assert!(parse(r#"{}"#).problems()[0].message.contains("no store"));
    }
}
