//! The store's part of `clawkeep audit`: the CK-STORE-* checks.

use std::path::Path;

use super::Brains;

impl Brains {
    /// The store's part of `clawkeep audit` (CK-STORE-*).
    pub async fn audit(&self) -> Vec<crate::findings::Finding> {
        use crate::findings::{finding, mode_finding};
        let mut out = Vec::new();
        let store = self.root_store();
        if !store.healthy().await {
            out.push(finding("CK-STORE-004", "high", &self.settings.endpoint, "the store does not answer: brains are not being pushed", "see `clawkeep ps` and `clawkeep logs store`; changes wait locally and go up when it returns"));
            return out;
        }
        if !self.grants_enforced() {
            out.push(finding(
                "CK-STORE-001",
                "high",
                &self.settings.endpoint,
                "this store has no admin API clawkeep can use: every agent syncs with the root key, so a read-only grant is enforced only by the mount, not by the store",
                "use a managed store, or set [store.admin] kind = \"garage\" or \"minio\"",
            ));
        }
        let keys = self.state_dir.join("brains").join("keys");
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&keys)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        if let Some(m) = &self.settings.managed {
            for f in ["secrets.json", "garage.toml", "root-user", "root-password"] {
                files.push(m.data_dir.join(f));
            }
        }
        for f in files {
            out.extend(mode_finding("CK-STORE-002", &f, 0o077, "chmod 600 it"));
        }
        let boundary = self.boundary(&[]);
        let buckets = self.buckets();
        for b in buckets {
            match store.bucket(&b).list("").await {
                Ok(objects) => {
                    let bad: Vec<String> = objects
                        .into_iter()
                        .map(|o| o.key)
                        .filter(|k| {
                            !k.starts_with(clawkeep_store::keys::META_PREFIX)
                                && boundary.excludes(Path::new(k), false)
                        })
                        .collect();
                    if !bad.is_empty() {
                        let shown: Vec<&str> = bad.iter().take(5).map(String::as_str).collect();
                        out.push(finding(
                            "CK-STORE-003",
                            "high",
                            format!("s3://{b}"),
                            format!("{} object(s) that never belong in the store, e.g. {}", bad.len(), shown.join(", ")),
                            "delete them from the bucket (and rotate any secret among them); clawkeep itself never uploads these",
                        ));
                    }
                }
                Err(e) if e.s3_code() == Some("NoSuchBucket") => {}
                Err(e) => out.push(finding(
                    "CK-STORE-004",
                    "medium",
                    format!("s3://{b}"),
                    format!("cannot list it: {e}"),
                    "check the store's health and the root key",
                )),
            }
        }
        out
    }
}
