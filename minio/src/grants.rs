//! Grants the store itself enforces: one key per agent, allowed on its own bucket (read-write)
//! and on its shared collections (read-only or read-write). Garage through admin API v2
//! (keys and bucket grants), MinIO through its admin API v3 (users and canned policies, in
//! [`crate::grants_minio`]); a store without an admin API syncs with the root key and grants
//! are not enforced.

use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use crate::error::StoreError;
use crate::remote::Credential;

/// What a key may do on a bucket.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read and list only.
    Ro,
    /// Read, write and delete.
    Rw,
}

/// One bucket a key may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The bucket.
    pub bucket: String,
    /// How.
    pub access: Access,
}

/// The store's admin API.
#[derive(Debug, Clone)]
pub enum Admin {
    /// Garage admin API v2.
    Garage(GarageAdmin),
    /// MinIO admin API v3 (users and canned policies).
    Minio(crate::grants_minio::MinioAdmin),
    /// No admin API: buckets are made with the root key and every agent uses it.
    None,
}

impl Admin {
    /// Whether the store enforces per-agent grants.
    pub fn enforced(&self) -> bool {
        !matches!(self, Admin::None)
    }
}

/// Garage's admin API v2 over HTTP with a bearer token.
#[derive(Debug, Clone)]
pub struct GarageAdmin {
    url: String,
    token: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BucketInfo {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyInfo {
    access_key_id: String,
    #[serde(default)]
    secret_access_key: Option<String>,
    #[serde(default)]
    buckets: Vec<KeyBucket>,
}

#[derive(Deserialize)]
struct KeyBucket {
    id: String,
}

impl GarageAdmin {
    /// A client for the admin API at `url` (e.g. `http://127.0.0.1:3903`).
    pub fn new(url: &str, token: &str) -> Self {
        GarageAdmin {
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::builder()
                // No idle connections: the store's admin server waits for them when it stops.
                .pool_max_idle_per_host(0)
                .build()
                .unwrap_or_default(),
        }
    }

    async fn call(
        &self,
        op: &'static str,
        method: reqwest::Method,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let mut req = self
            .http
            .request(method, format!("{}/v2/{op}", self.url))
            .bearer_auth(&self.token)
            .query(query);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| StoreError::Admin {
            op,
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(StoreError::Admin {
                op,
                url: self.url.clone(),
                message: format!("{status}: {}", text.trim()),
            });
        }
        if text.trim().is_empty() {
            return Ok(Some(serde_json::Value::Null));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Admin {
                op,
                url: self.url.clone(),
                message: format!("unexpected answer: {e}"),
            })
    }

    fn parse<T: for<'de> Deserialize<'de>>(
        &self,
        op: &'static str,
        v: serde_json::Value,
    ) -> Result<T, StoreError> {
        serde_json::from_value(v).map_err(|e| StoreError::Admin {
            op,
            url: self.url.clone(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Whether the node answers its health check.
    pub async fn healthy(&self) -> bool {
        matches!(self.http.get(format!("{}/health", self.url)).send().await, Ok(r) if r.status().is_success())
    }

    /// Make `root` a key of the store (idempotent) that may create buckets.
    pub async fn import_root(&self, root: &Credential) -> Result<(), StoreError> {
        if self
            .call(
                "GetKeyInfo",
                reqwest::Method::GET,
                &[("id", &root.access_key)],
                None,
            )
            .await?
            .is_none()
        {
            self.call("ImportKey", reqwest::Method::POST, &[], Some(json!({"accessKeyId": root.access_key, "secretAccessKey": root.secret_key, "name": "clawkeep-root"}))).await?;
        }
        self.call(
            "UpdateKey",
            reqwest::Method::POST,
            &[("id", &root.access_key)],
            Some(json!({"allow": {"createBucket": true}})),
        )
        .await?;
        Ok(())
    }

    async fn bucket_id(&self, bucket: &str) -> Result<Option<String>, StoreError> {
        match self
            .call(
                "GetBucketInfo",
                reqwest::Method::GET,
                &[("globalAlias", bucket)],
                None,
            )
            .await?
        {
            Some(v) => Ok(Some(self.parse::<BucketInfo>("GetBucketInfo", v)?.id)),
            None => Ok(None),
        }
    }

    /// Create `bucket` unless it exists and give `root` full rights on it.
    pub async fn ensure_bucket(
        &self,
        bucket: &str,
        root: &Credential,
    ) -> Result<String, StoreError> {
        let id = match self.bucket_id(bucket).await? {
            Some(id) => id,
            None => {
                let v = self
                    .call(
                        "CreateBucket",
                        reqwest::Method::POST,
                        &[],
                        Some(json!({"globalAlias": bucket})),
                    )
                    .await?
                    .unwrap_or_default();
                self.parse::<BucketInfo>("CreateBucket", v)?.id
            }
        };
        self.perm("AllowBucketKey", &id, &root.access_key, true, true, true)
            .await?;
        Ok(id)
    }

    async fn perm(
        &self,
        op: &'static str,
        bucket_id: &str,
        key: &str,
        read: bool,
        write: bool,
        owner: bool,
    ) -> Result<(), StoreError> {
        self.call(op, reqwest::Method::POST, &[], Some(json!({"bucketId": bucket_id, "accessKeyId": key, "permissions": {"read": read, "write": write, "owner": owner}}))).await?;
        Ok(())
    }

    /// The key for `name`, reusing the one saved in `key_file` (0600) if the store still
    /// knows it, and set its grants to exactly `grants` (anything else is revoked).
    pub async fn ensure_key(
        &self,
        name: &str,
        key_file: &Path,
        grants: &[Grant],
    ) -> Result<Credential, StoreError> {
        let saved = Credential::from_file(key_file).ok();
        let known = match &saved {
            Some(c) => {
                self.call(
                    "GetKeyInfo",
                    reqwest::Method::GET,
                    &[("id", &c.access_key)],
                    None,
                )
                .await?
            }
            None => None,
        };
        let (cred, info) = match (saved, known) {
            (Some(c), Some(v)) => (c, self.parse::<KeyInfo>("GetKeyInfo", v)?),
            _ => {
                let v = self
                    .call(
                        "CreateKey",
                        reqwest::Method::POST,
                        &[],
                        Some(json!({"name": format!("clawkeep-{name}")})),
                    )
                    .await?
                    .unwrap_or_default();
                let k: KeyInfo = self.parse("CreateKey", v)?;
                let secret = k
                    .secret_access_key
                    .clone()
                    .ok_or_else(|| StoreError::Admin {
                        op: "CreateKey",
                        url: self.url.clone(),
                        message: "no secret in the answer".into(),
                    })?;
                let c = Credential {
                    access_key: k.access_key_id.clone(),
                    secret_key: secret,
                };
                crate::garage::write_private(
                    key_file,
                    &serde_json::to_vec(&c).unwrap_or_default(),
                )?;
                (c, k)
            }
        };
        let mut wanted = Vec::new();
        for g in grants {
            let id = self
                .bucket_id(&g.bucket)
                .await?
                .ok_or_else(|| StoreError::Admin {
                    op: "GetBucketInfo",
                    url: self.url.clone(),
                    message: format!(
                        "bucket {} does not exist (it is created before grants)",
                        g.bucket
                    ),
                })?;
            let rw = g.access == Access::Rw;
            self.perm("AllowBucketKey", &id, &cred.access_key, true, rw, false)
                .await?;
            if !rw {
                self.perm("DenyBucketKey", &id, &cred.access_key, false, true, true)
                    .await?;
            }
            wanted.push(id);
        }
        for b in info.buckets.iter().filter(|b| !wanted.contains(&b.id)) {
            self.perm("DenyBucketKey", &b.id, &cred.access_key, true, true, true)
                .await?;
        }
        let _ = info.access_key_id;
        Ok(cred)
    }
}
