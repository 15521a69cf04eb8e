//! Grants on MinIO through its admin API (users and canned policies): one MinIO user per agent
//! whose one attached policy, `clawkeep-<name>`, allows exactly the agent's buckets.
//!
//! The endpoints are those of community MinIO's admin API v3 (`/minio/admin/v3/...`, the
//! version madmin-go v3 speaks; madmin-go v4 targets AIStor's v4 API), as routed by MinIO's
//! `cmd/admin-router.go`:
//! - `GET  user-info?accessKey=<ak>`: whether the agent's user still exists (404
//!   `XMinioAdminNoSuchUser` if not);
//! - `PUT  add-user?accessKey=<ak>`: create or update the user; the body
//!   `{"secretKey":..,"status":"enabled"}` is encrypted with the root secret key
//!   ([`crate::madmin_crypto`]);
//! - `PUT  add-canned-policy?name=<policy>`: the policy document as a plain JSON body;
//! - `PUT  set-user-or-group-policy?policyName=<p>&userOrGroup=<ak>&isGroup=false`: set the
//!   user's policy mapping to exactly `<p>` (an empty name removes it). MinIO marks it deprecated
//!   in favour of `POST idp/builtin/policy/attach|detach`, but it is still routed, and it is the
//!   only call that *replaces* a mapping in one step; attach/detach only add or remove and
//!   fail when nothing changes, so replacing with them takes a read and two writes.
//!
//! Every request is signed with AWS SigV4 (service `s3`, the store's region) by the root
//! credential through `aws-sigv4`, with the `x-amz-content-sha256` header MinIO requires on
//! admin calls. Buckets are made through S3 CreateBucket with the root credential, which owns
//! every bucket on MinIO. Admin calls go over plain HTTP (the reqwest client is built without
//! TLS, as for Garage's admin API).

use std::path::Path;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::StoreError;
use crate::grants::{Access, Grant};
use crate::remote::{Credential, Store};

/// Where MinIO's admin API v3 lives under the server's URL.
pub const ADMIN_PREFIX: &str = "/minio/admin/v3";

/// What a read-only grant allows on a bucket.
pub const READ_ACTIONS: [&str; 3] = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"];

/// What a read-write grant allows on top of [`READ_ACTIONS`].
pub const WRITE_ACTIONS: [&str; 5] = [
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketMultipartUploads",
];

/// Characters left as they are in query values (RFC 3986 unreserved, as SigV4 encodes).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// MinIO's admin API over HTTP, signed with MinIO's root credential.
#[derive(Debug, Clone)]
pub struct MinioAdmin {
    url: String,
    region: String,
    root: Credential,
    http: reqwest::Client,
}

/// A user as `user-info` describes it (the fields clawkeep reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: String,
    /// The attached policies, comma-separated.
    #[serde(default)]
    pub policy_name: Option<String>,
}

/// MinIO's JSON error body.
#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// An answer that is not a success: HTTP status, MinIO's error code ("" if the body was not
/// MinIO's JSON error) and its message or the body.
struct Failure {
    status: reqwest::StatusCode,
    code: String,
    message: String,
}

/// The MinIO user (access key) of agent or collection `name`.
pub fn user_name(name: &str) -> String {
    format!("clawkeep-{name}")
}

/// The canned policy attached to `name`'s user.
pub fn policy_name(name: &str) -> String {
    format!("clawkeep-{name}")
}

/// The IAM policy document allowing exactly `grants`: per bucket (a bucket granted twice gets
/// the wider access), [`READ_ACTIONS`] and for `Rw` also [`WRITE_ACTIONS`], on
/// `arn:aws:s3:::<bucket>` and `arn:aws:s3:::<bucket>/*`. Statements are sorted by bucket.
pub fn policy_document(grants: &[Grant]) -> Value {
    let mut by_bucket = std::collections::BTreeMap::<&str, Access>::new();
    for g in grants {
        let a = by_bucket.entry(&g.bucket).or_insert(g.access);
        if g.access == Access::Rw {
            *a = Access::Rw;
        }
    }
    let statements: Vec<Value> = by_bucket
        .into_iter()
        .map(|(bucket, access)| {
            let mut actions: Vec<&str> = READ_ACTIONS.to_vec();
            if access == Access::Rw {
                actions.extend(WRITE_ACTIONS);
            }
            json!({
                "Effect": "Allow",
                "Action": actions,
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            })
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The text of the first `<field>` element of an S3 XML error body.
fn xml_field(body: &str, field: &str) -> Option<String> {
    let start = body.find(&format!("<{field}>"))? + field.len() + 2;
    let len = body[start..].find(&format!("</{field}>"))?;
    Some(body[start..start + len].to_string())
}

/// What the code of a MinIO error means for whoever set clawkeep up.
fn hint(status: reqwest::StatusCode, code: &str) -> &'static str {
    match code {
        "SignatureDoesNotMatch" => "MinIO knows the access key but the secret key is wrong: the admin token_file must hold MinIO's root access_key:secret_key",
        "InvalidAccessKeyId" => "MinIO does not know this access key: the admin token_file must hold MinIO's root credential (MINIO_ROOT_USER:MINIO_ROOT_PASSWORD)",
        "AccessDenied" | "XMinioIAMActionNotAllowed" => "this credential may not manage users and policies: use MinIO's root credential",
        "AuthorizationHeaderMalformed" => "MinIO expects another region: set [store] region to MinIO's region",
        "AuthorizationParametersError" => "MinIO refused the signature's scope (service must be \"s3\")",
        "RequestTimeTooSkewed" => "this machine's clock and MinIO's differ by more than 15 minutes",
        "XMinioAdminConfigBadJSON" => "MinIO could not decrypt the body with the signing credential's secret key: the admin token_file's secret key must belong to its access key",
        "XMinioMalformedIAMPolicy" | "MalformedPolicy" => "MinIO refused the policy clawkeep wrote; this is a bug in clawkeep",
        "XMinioInvalidIAMCredentials" => "a user cannot have the root access key as its name",
        "XMinioAdminNoSuchPolicy" => "the policy vanished between writing and attaching it; run the command again",
        "NoSuchBucket" | "XMinioInvalidAPIVersion" => "this S3 server has no MinIO admin API v3 at this URL (for Garage set admin kind = \"garage\")",
        "" if status == reqwest::StatusCode::NOT_FOUND => "this server has no MinIO admin API v3 at this URL (for Garage set admin kind = \"garage\")",
        _ => "",
    }
}

impl MinioAdmin {
    /// A client for the MinIO server at `url` (its S3 URL, e.g. `http://127.0.0.1:9000`; the
    /// admin API is under [`ADMIN_PREFIX`] there), signing as `root` in `region`.
    pub fn new(url: &str, region: &str, root: Credential) -> Self {
        MinioAdmin {
            url: url.trim_end_matches('/').to_string(),
            region: region.to_string(),
            root,
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The admin API's base URL, as errors name it.
    pub fn admin_url(&self) -> String {
        format!("{}{ADMIN_PREFIX}", self.url)
    }

    fn err(&self, op: &'static str, message: String) -> StoreError {
        StoreError::Admin {
            op,
            url: self.admin_url(),
            message,
        }
    }

    fn failed(&self, op: &'static str, f: Failure) -> StoreError {
        let hint = hint(f.status, &f.code);
        let code = if f.code.is_empty() {
            String::new()
        } else {
            format!(" {}", f.code)
        };
        let hint = if hint.is_empty() {
            String::new()
        } else {
            format!(" ({hint})")
        };
        self.err(
            op,
            format!("{}{code}: {}{hint}", f.status, f.message.trim()),
        )
    }

    /// SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`) for a request.
    fn signature(
        &self,
        op: &'static str,
        method: &str,
        url: &str,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let identity = aws_sdk_s3::config::Credentials::new(
            &self.root.access_key,
            &self.root.secret_key,
            None,
            None,
            "clawkeep-minio-admin",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| self.err(op, format!("cannot sign the request: {e}")))?
            .into();
        let request =
            SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body))
                .map_err(|e| self.err(op, format!("cannot sign {url}: {e}")))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| self.err(op, format!("cannot sign {url}: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// One signed admin call; `Ok(Err(_))` is MinIO's refusal, `Err(_)` a transport failure.
    async fn call(
        &self,
        op: &'static str,
        method: reqwest::Method,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Result<String, Failure>, StoreError> {
        let mut url = format!("{}/{op}", self.admin_url());
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.extend(utf8_percent_encode(v, QUERY_VALUE));
        }
        let headers = self.signature(op, method.as_str(), &url, &body)?;
        let mut req = self.http.request(method, &url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.body(body).send().await.map_err(|e| {
            self.err(
                op,
                format!("{e} (is MinIO running and reachable at {}?)", self.url),
            )
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| self.err(op, format!("{status}, then reading the answer: {e}")))?;
        if status.is_success() {
            return Ok(Ok(text));
        }
        Ok(Err(match serde_json::from_str::<ApiError>(&text) {
            Ok(e) if !e.code.is_empty() => Failure {
                status,
                code: e.code,
                message: e.message,
            },
            // Not MinIO's admin API: perhaps another S3 server's XML error.
            _ => match xml_field(&text, "Code") {
                Some(code) => Failure {
                    status,
                    message: xml_field(&text, "Message").unwrap_or_default(),
                    code,
                },
                None => Failure {
                    status,
                    code: String::new(),
                    message: text.chars().take(300).collect(),
                },
            },
        }))
    }

    /// Whether MinIO answers its liveness probe (`/minio/health/live`).
    pub async fn healthy(&self) -> bool {
        matches!(self.http.get(format!("{}/minio/health/live", self.url)).send().await, Ok(r) if r.status().is_success())
    }

    /// The user `access_key`, or `None` if MinIO does not know it (`GET user-info`).
    pub async fn user_info(&self, access_key: &str) -> Result<Option<UserInfo>, StoreError> {
        const OP: &str = "user-info";
        match self
            .call(
                OP,
                reqwest::Method::GET,
                &[("accessKey", access_key)],
                Vec::new(),
            )
            .await?
        {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| self.err(OP, format!("unexpected answer: {e}"))),
            Err(f) if f.code == "XMinioAdminNoSuchUser" => Ok(None),
            Err(f) => Err(self.failed(OP, f)),
        }
    }

    /// Create user `cred.access_key` with `cred.secret_key`, enabled, or update it to that
    /// (`PUT add-user`, body encrypted with the root secret key).
    pub async fn add_user(&self, cred: &Credential) -> Result<(), StoreError> {
        const OP: &str = "add-user";
        let body = serde_json::to_vec(&json!({"secretKey": cred.secret_key, "status": "enabled"}))
            .map_err(|e| self.err(OP, e.to_string()))?;
        let sealed = crate::madmin_crypto::encrypt_data(&self.root.secret_key, &body)
            .map_err(|e| self.err(OP, format!("cannot encrypt the request: {e}")))?;
        self.call(
            OP,
            reqwest::Method::PUT,
            &[("accessKey", &cred.access_key)],
            sealed,
        )
        .await?
        .map(|_| ())
        .map_err(|f| self.failed(OP, f))
    }

    /// Write canned policy `name` (`PUT add-canned-policy`), replacing one of that name.
    pub async fn add_canned_policy(&self, name: &str, policy: &Value) -> Result<(), StoreError> {
        const OP: &str = "add-canned-policy";
        let body = serde_json::to_vec(policy).map_err(|e| self.err(OP, e.to_string()))?;
        self.call(OP, reqwest::Method::PUT, &[("name", name)], body)
            .await?
            .map(|_| ())
            .map_err(|f| self.failed(OP, f))
    }

    /// Set the policies of user `access_key` to exactly `policy` (comma-separated names; ""
    /// detaches all) through `PUT set-user-or-group-policy`.
    pub async fn set_user_policy(&self, access_key: &str, policy: &str) -> Result<(), StoreError> {
        const OP: &str = "set-user-or-group-policy";
        self.call(
            OP,
            reqwest::Method::PUT,
            &[
                ("policyName", policy),
                ("userOrGroup", access_key),
                ("isGroup", "false"),
            ],
            Vec::new(),
        )
        .await?
        .map(|_| ())
        .map_err(|f| self.failed(OP, f))
    }

    /// Create `bucket` unless it exists (S3 CreateBucket with `root`, MinIO's root user, which
    /// owns every bucket) and turn versioning on. Returns the bucket's name, which is its id on
    /// MinIO.
    pub async fn ensure_bucket(
        &self,
        bucket: &str,
        root: &Credential,
    ) -> Result<String, StoreError> {
        Store::connect(&self.url, &self.region, root)
            .ensure_bucket(bucket)
            .await?;
        Ok(bucket.to_string())
    }

    /// The credential of `name`'s MinIO user ([`user_name`]), reusing the one saved in
    /// `key_file` while MinIO still has that user enabled (else it is added again with the
    /// saved secret), or creating a user with a new 40-character secret saved there (0600);
    /// then write policy [`policy_name`] as [`policy_document`] of `grants` and make it the
    /// user's only policy, so grants left out are revoked. With no grants the user keeps no
    /// policy at all.
    pub async fn ensure_key(
        &self,
        name: &str,
        key_file: &Path,
        grants: &[Grant],
    ) -> Result<Credential, StoreError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(StoreError::Refused(format!(
                "{name:?} cannot name a MinIO user: use letters, digits, '-', '_' or '.'"
            )));
        }
        let cred = match Credential::from_file(key_file).ok() {
            Some(saved) => {
                let enabled = self
                    .user_info(&saved.access_key)
                    .await?
                    .is_some_and(|u| u.status == "enabled");
                if !enabled {
                    self.add_user(&saved).await?;
                }
                saved
            }
            None => {
                let secret: String = rand::rng()
                    .sample_iter(rand::distr::Alphanumeric)
                    .take(40)
                    .map(char::from)
                    .collect();
                let c = Credential {
                    access_key: user_name(name),
                    secret_key: secret,
                };
                self.add_user(&c).await?;
                let bytes = serde_json::to_vec(&c)
                    .map_err(|e| self.err("add-user", format!("cannot save the key: {e}")))?;
                crate::garage::write_private(key_file, &bytes)?;
                c
            }
        };
        if grants.is_empty() {
            self.set_user_policy(&cred.access_key, "").await?;
        } else {
            let policy = policy_name(name);
            self.add_canned_policy(&policy, &policy_document(grants))
                .await?;
            self.set_user_policy(&cred.access_key, &policy).await?;
        }
        Ok(cred)
    }
}
