//! A fake of MinIO's admin API for contract tests; not MinIO.
//!
//! MinIO cannot be installed on the machines the tests run on, so `FakeMinioAdmin` stands in
//! for the part of a MinIO server that clawkeep's grants use, and checks what real MinIO checks
//! there, as far as a fake can:
//! - every request carries a SigV4 `Authorization` header naming the root access key, the
//!   configured region and service `s3`, with `x-amz-date` (at most 15 minutes off) and
//!   `x-amz-content-sha256` (matching the body), and its signature is recomputed with the root
//!   secret key (MinIO answers `AccessDenied`, `InvalidAccessKeyId`,
//!   `AuthorizationHeaderMalformed`, `AuthorizationParametersError`, `RequestTimeTooSkewed`,
//!   `XAmzContentSHA256Mismatch`, `SignatureDoesNotMatch`). MinIO's admin handlers accept any
//!   region; the fake insists on the configured one;
//! - paths, methods and query parameters are exactly those of MinIO's admin API v3 routes
//!   (`add-user`, `user-info`, `add-canned-policy`, `set-user-or-group-policy`); anything else
//!   is answered 501 `XMinioFakeNotModelled`;
//! - `add-user` bodies must decrypt with the root secret key (clawkeep's own implementation of
//!   madmin's format) to `{"secretKey","status"}` with MinIO's key rules;
//! - policies must parse as IAM policy documents MinIO accepts (version, effects, known `s3:`
//!   actions, `arn:aws:s3:::` resources, no unknown fields); conditions, `NotAction`,
//!   `NotResource` and non-S3 actions are refused as not modelled;
//! - `set-user-or-group-policy` needs an existing user and existing policies and replaces the
//!   user's mapping (an empty name removes it); groups are not modelled.
//!
//! It also answers the two S3 calls `ensure_bucket` makes (CreateBucket, PutBucketVersioning)
//! with the same signature checks. It records users, policies, mappings, buckets and every
//! request so tests can assert on them.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clawkeep_store::remote::Credential;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ADMIN: &str = "/minio/admin/v3/";

/// A user the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// The secret key it was given.
    pub secret_key: String,
    /// `enabled` or `disabled`.
    pub status: String,
}

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Status answered.
    pub status: u16,
    /// Error code answered ("" on success).
    pub code: String,
    /// Why it was refused ("" on success).
    pub why: String,
}

/// What the fake holds.
#[derive(Debug, Clone, Default)]
pub struct FakeState {
    /// Users by access key.
    pub users: BTreeMap<String, FakeUser>,
    /// Canned policies by name, as parsed JSON.
    pub policies: BTreeMap<String, Value>,
    /// Policy mapping of each user (comma-separated policy names).
    pub mappings: BTreeMap<String, String>,
    /// Buckets made through S3 CreateBucket.
    pub buckets: BTreeSet<String>,
    /// Every request, in order.
    pub requests: Vec<Seen>,
}

impl FakeState {
    /// How many requests went to admin operation `op` (e.g. `add-user`) and succeeded.
    pub fn ok_calls(&self, op: &str) -> usize {
        let path = format!("{ADMIN}{op}");
        self.requests
            .iter()
            .filter(|r| r.path == path && r.status == 200)
            .count()
    }
}

struct Inner {
    root: Credential,
    region: String,
    state: Mutex<FakeState>,
}

/// A fake of MinIO's admin API for contract tests; not MinIO. Stops when dropped.
pub struct FakeMinioAdmin {
    url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMinioAdmin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMinioAdmin {
    /// Serve on a free loopback port; `root` is MinIO's root credential, `region` its region.
    pub async fn start(root: Credential, region: &str) -> FakeMinioAdmin {
        let inner = Arc::new(Inner {
            root,
            region: region.to_string(),
            state: Mutex::new(FakeState::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeMinioAdmin { url, inner, task }
    }

    /// The server's URL (what MinIO's S3 URL would be).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A copy of what it holds now.
    pub fn state(&self) -> FakeState {
        self.inner.state.lock().unwrap().clone()
    }

    /// Change what the fake holds (e.g. remove a user behind clawkeep's back).
    pub fn edit(&self, f: impl FnOnce(&mut FakeState)) {
        f(&mut self.inner.state.lock().unwrap())
    }
}

/// A refusal: status, MinIO's error code and message.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let admin = path.starts_with(ADMIN);
    let result = inner
        .authenticate(&parts, &body)
        .and_then(|()| inner.serve(&parts, &path, &body));
    let seen = |status: StatusCode, code: &str, why: &str| Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        status: status.as_u16(),
        code: code.to_string(),
        why: why.to_string(),
    };
    match result {
        Ok((status, ctype, out)) => {
            inner
                .state
                .lock()
                .unwrap()
                .requests
                .push(seen(status, "", ""));
            (status, [("content-type", ctype)], out).into_response()
        }
        Err(r) => {
            inner
                .state
                .lock()
                .unwrap()
                .requests
                .push(seen(r.status, r.code, &r.message));
            if admin {
                let body = json!({"Code": r.code, "Message": r.message, "Resource": path, "RequestId": "FAKE", "HostId": "fake-minio-admin"});
                (
                    r.status,
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response()
            } else {
                let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{path}</Resource><RequestId>FAKE</RequestId></Error>", r.code, r.message);
                (r.status, [("content-type", "application/xml")], body).into_response()
            }
        }
    }
}

type Served = (StatusCode, &'static str, Body);

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Seconds since the epoch of an `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from 1970-01-01 in the proleptic Gregorian calendar.
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

impl Inner {
    /// MinIO's SigV4 checks for a header-signed request with a signed payload hash.
    fn authenticate(&self, parts: &Parts, body: &Bytes) -> Result<(), Refusal> {
        let h = &parts.headers;
        let denied = |why: &str| refuse(StatusCode::FORBIDDEN, "AccessDenied", why);
        let sha = header(h, "x-amz-content-sha256").ok_or_else(|| {
            denied("no x-amz-content-sha256 header (MinIO requires it on admin calls)")
        })?;
        let auth = header(h, "authorization").ok_or_else(|| denied("no Authorization header"))?;
        let fields = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| denied("Authorization is not AWS4-HMAC-SHA256"))?;
        let mut credential = None;
        let mut signed = None;
        for f in fields.split(',').map(str::trim) {
            if let Some(v) = f.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = f.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            }
        }
        let malformed =
            |why: &str| refuse(StatusCode::BAD_REQUEST, "AuthorizationHeaderMalformed", why);
        let credential = credential.ok_or_else(|| malformed("no Credential"))?;
        let signed = signed.ok_or_else(|| malformed("no SignedHeaders"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        if scope.len() != 5 || scope[4] != "aws4_request" {
            return Err(malformed(
                "Credential is not AK/date/region/service/aws4_request",
            ));
        }
        if scope[0] != self.root.access_key {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The Access Key Id you provided does not exist in our records.",
            ));
        }
        if scope[2] != self.region {
            return Err(malformed(&format!(
                "The authorization header is malformed; the region is wrong; expecting '{}'.",
                self.region
            )));
        }
        if scope[3] != "s3" {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "AuthorizationParametersError",
                "Error parsing the Credential parameter; incorrect service. This endpoint belongs to \"s3\".",
            ));
        }
        let date = header(h, "x-amz-date").ok_or_else(|| denied("no x-amz-date header"))?;
        let time =
            parse_amz_date(date).ok_or_else(|| malformed("x-amz-date is not YYYYMMDDTHHMMSSZ"))?;
        if !date.starts_with(scope[1]) {
            return Err(malformed("the Credential's date is not x-amz-date's"));
        }
        let skew = match SystemTime::now().duration_since(time) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        if skew > Duration::from_secs(15 * 60) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.",
            ));
        }
        if sha != "UNSIGNED-PAYLOAD" && sha != hex::encode(Sha256::digest(body)) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        let names: Vec<&str> = signed.split(';').collect();
        for must in ["host", "x-amz-date", "x-amz-content-sha256"] {
            if !names.contains(&must) {
                return Err(denied(&format!("{must} is not among the signed headers")));
            }
        }
        // Recompute the signature over the headers the client says it signed.
        let host = header(h, "host").ok_or_else(|| denied("no Host header"))?;
        let mut extra = Vec::new();
        for n in names
            .iter()
            .filter(|n| !["host", "x-amz-date", "x-amz-content-sha256"].contains(n))
        {
            let v = header(h, n).ok_or_else(|| denied(&format!("signed header {n} is missing")))?;
            extra.push((*n, v));
        }
        let uri = format!(
            "http://{host}{}",
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        );
        let identity = aws_sdk_s3::config::Credentials::new(
            &self.root.access_key,
            &self.root.secret_key,
            None,
            None,
            "fake-minio-admin",
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
            .time(time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new(
            parts.method.as_str(),
            uri,
            extra.into_iter(),
            SignableBody::Precomputed(sha.to_string()),
        )
        .map_err(|e| malformed(&e.to_string()))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| malformed(&e.to_string()))?
            .into_parts();
        let want = instructions
            .headers()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        if want != auth {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }
        Ok(())
    }

    fn serve(&self, parts: &Parts, path: &str, body: &Bytes) -> Result<Served, Refusal> {
        let url = reqwest::Url::parse(&format!(
            "http://fake{}",
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        ))
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "InvalidRequest", e.to_string()))?;
        let mut query = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            if query.insert(k.to_string(), v.to_string()).is_some() {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    format!("query parameter {k} given twice"),
                ));
            }
        }
        let keys: Vec<&str> = query.keys().map(String::as_str).collect();
        let method = parts.method.as_str();
        let not_modelled = |what: String| {
            refuse(
                StatusCode::NOT_IMPLEMENTED,
                "XMinioFakeNotModelled",
                format!("FakeMinioAdmin does not model {what} (it is not MinIO)"),
            )
        };
        let Some(op) = path.strip_prefix(ADMIN) else {
            return self.serve_s3(method, path, &keys);
        };
        // MinIO's routes: method, path and the query parameters its client sends.
        let want: &[&str] = match (method, op) {
            ("PUT", "add-user") | ("GET", "user-info") => &["accessKey"],
            ("PUT", "add-canned-policy") => &["name"],
            ("PUT", "set-user-or-group-policy") => &["isGroup", "policyName", "userOrGroup"],
            _ => return Err(not_modelled(format!("{method} {path}"))),
        };
        if keys != want {
            return Err(not_modelled(format!(
                "{method} {path} with query parameters {keys:?} (MinIO's route takes {want:?})"
            )));
        }
        let q = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
        let length = header(&parts.headers, "content-length");
        let mut st = self.state.lock().unwrap();
        match op {
            "add-user" => {
                let ak = q("accessKey");
                if length.is_none() {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "XMinioAdminConfigTooLarge",
                        "no Content-Length",
                    ));
                }
                if ak == self.root.access_key {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "XMinioInvalidIAMCredentials",
                        "Credential is not allowed to be same as admin access key",
                    ));
                }
                if ak.trim() != ak {
                    return Err(refuse(StatusCode::BAD_REQUEST, "XMinioInvalidResource", "Policy, user or group names are not allowed to begin or end with space characters"));
                }
                let plain =
                    clawkeep_store::madmin_crypto::decrypt_data(&self.root.secret_key, body)
                        .map_err(|e| {
                            refuse(
                                StatusCode::BAD_REQUEST,
                                "XMinioAdminConfigBadJSON",
                                format!("JSON configuration provided is of incorrect format ({e})"),
                            )
                        })?;
                let req: Value = serde_json::from_slice(&plain).map_err(|e| {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        "XMinioAdminConfigBadJSON",
                        e.to_string(),
                    )
                })?;
                let secret = req.get("secretKey").and_then(Value::as_str).unwrap_or("");
                let status = req.get("status").and_then(Value::as_str).unwrap_or("");
                if ak.len() < 3 || ak.contains(['=', ',']) {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "XMinioAdminInvalidAccessKey",
                        "The access key is invalid.",
                    ));
                }
                if secret.len() < 8 {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "XMinioAdminInvalidSecretKey",
                        "The secret key is invalid.",
                    ));
                }
                if status != "enabled" && status != "disabled" {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "XMinioAdminInvalidArgument",
                        format!("status {status:?} is neither enabled nor disabled"),
                    ));
                }
                st.users.insert(
                    ak.to_string(),
                    FakeUser {
                        secret_key: secret.to_string(),
                        status: status.to_string(),
                    },
                );
                Ok((StatusCode::OK, "application/json", Body::empty()))
            }
            "user-info" => {
                let ak = q("accessKey");
                let Some(u) = st.users.get(ak) else {
                    return Err(refuse(
                        StatusCode::NOT_FOUND,
                        "XMinioAdminNoSuchUser",
                        "The specified user does not exist.",
                    ));
                };
                let mut info = json!({"status": u.status});
                if let Some(p) = st.mappings.get(ak) {
                    info["policyName"] = json!(p);
                }
                Ok((
                    StatusCode::OK,
                    "application/json",
                    Body::from(info.to_string()),
                ))
            }
            "add-canned-policy" => {
                let name = q("name");
                if name.trim() != name {
                    return Err(refuse(StatusCode::BAD_REQUEST, "XMinioInvalidResource", "Policy, user or group names are not allowed to begin or end with space characters"));
                }
                if name.contains(',') {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "PolicyInvalidName",
                        "Policy name may not contain comma",
                    ));
                }
                if length.is_none_or(|l| l == "0") {
                    return Err(refuse(
                        StatusCode::LENGTH_REQUIRED,
                        "MissingContentLength",
                        "You must provide the Content-Length HTTP header.",
                    ));
                }
                let policy = validate_policy(body).map_err(|e| match e {
                    PolicyError::Version => refuse(
                        StatusCode::BAD_REQUEST,
                        "MalformedPolicy",
                        "The policy must contain a valid version string",
                    ),
                    PolicyError::Invalid(why) => {
                        refuse(StatusCode::BAD_REQUEST, "XMinioMalformedIAMPolicy", why)
                    }
                    PolicyError::NotModelled(what) => not_modelled(what),
                })?;
                st.policies.insert(name.to_string(), policy);
                Ok((StatusCode::OK, "application/json", Body::empty()))
            }
            "set-user-or-group-policy" => {
                let (policy, user) = (q("policyName"), q("userOrGroup"));
                match q("isGroup") {
                    "false" => {}
                    "true" => return Err(not_modelled("groups".into())),
                    other => {
                        return Err(not_modelled(format!(
                            "isGroup={other} (MinIO's route only matches true|false)"
                        )))
                    }
                }
                if user == self.root.access_key {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "XMinioIAMActionNotAllowed",
                        "specified IAM action is not allowed",
                    ));
                }
                if !st.users.contains_key(user) {
                    return Err(refuse(
                        StatusCode::NOT_FOUND,
                        "XMinioAdminNoSuchUser",
                        "The specified user does not exist.",
                    ));
                }
                if policy.is_empty() {
                    st.mappings.remove(user);
                } else {
                    for p in policy.split(',').map(str::trim) {
                        if !st.policies.contains_key(p) {
                            return Err(refuse(
                                StatusCode::NOT_FOUND,
                                "XMinioAdminNoSuchPolicy",
                                "The canned policy does not exist.",
                            ));
                        }
                    }
                    st.mappings.insert(user.to_string(), policy.to_string());
                }
                Ok((StatusCode::OK, "application/json", Body::empty()))
            }
            _ => Err(not_modelled(format!("{method} {path}"))),
        }
    }

    /// The S3 calls `MinioAdmin::ensure_bucket` makes: CreateBucket and PutBucketVersioning.
    fn serve_s3(&self, method: &str, path: &str, keys: &[&str]) -> Result<Served, Refusal> {
        let bucket = path.trim_start_matches('/').trim_end_matches('/');
        if bucket.is_empty() || bucket.contains('/') || method != "PUT" {
            return Err(refuse(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                format!("FakeMinioAdmin does not model S3 {method} {path} (it is not MinIO)"),
            ));
        }
        let mut st = self.state.lock().unwrap();
        match keys {
            [] => {
                if !st.buckets.insert(bucket.to_string()) {
                    return Err(refuse(StatusCode::CONFLICT, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it."));
                }
                Ok((StatusCode::OK, "application/xml", Body::empty()))
            }
            ["versioning"] if st.buckets.contains(bucket) => {
                Ok((StatusCode::OK, "application/xml", Body::empty()))
            }
            ["versioning"] => Err(refuse(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist",
            )),
            _ => Err(refuse(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                format!("FakeMinioAdmin does not model S3 PUT {path}?{keys:?}"),
            )),
        }
    }
}

enum PolicyError {
    Version,
    Invalid(String),
    NotModelled(String),
}

/// The S3 actions MinIO's policy package supports (minio/pkg `policy/action.go`).
const S3_ACTIONS: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:ForceDeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucketCors",
    "s3:DeleteObject",
    "s3:GetBucketLocation",
    "s3:GetBucketNotification",
    "s3:GetBucketPolicy",
    "s3:GetBucketCors",
    "s3:GetObject",
    "s3:GetObjectAttributes",
    "s3:HeadBucket",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:GetBucketPolicyStatus",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListenNotification",
    "s3:ListenBucketNotification",
    "s3:ListMultipartUploadParts",
    "s3:PutLifecycleConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:PutBucketNotification",
    "s3:PutBucketPolicy",
    "s3:PutBucketCors",
    "s3:PutBucketQOS",
    "s3:GetBucketQOS",
    "s3:PutObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectVersionTagging",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectVersionTagging",
    "s3:PutObjectVersionTagging",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:GetObjectRetention",
    "s3:GetObjectLegalHold",
    "s3:PutObjectLegalHold",
    "s3:GetBucketObjectLockConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:GetBucketTagging",
    "s3:PutBucketTagging",
    "s3:GetObjectTagging",
    "s3:PutObjectTagging",
    "s3:DeleteObjectTagging",
    "s3:PutEncryptionConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:PutBucketVersioning",
    "s3:GetBucketVersioning",
    "s3:GetReplicationConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
    "s3:ReplicateTags",
    "s3:GetObjectVersionForReplication",
    "s3:RestoreObject",
    "s3:ResetBucketReplicationState",
    "s3:PutObjectFanOut",
    "s3:*",
];

/// `*` and `?` wildcard match, as MinIO matches action patterns.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// A string or a non-empty array of strings, as IAM allows for Action and Resource.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let list: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| PolicyError::Invalid(format!("{what} holds a non-string {x}")))
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(PolicyError::Invalid(format!(
                "{what} is {other}, not a string or list"
            )))
        }
    };
    if list.is_empty() {
        return Err(PolicyError::Invalid(format!("{what} must not be empty")));
    }
    Ok(list)
}

/// Parse a policy document as MinIO's `policy.ParseConfig` + `AddCannedPolicy` would.
fn validate_policy(body: &[u8]) -> Result<Value, PolicyError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| PolicyError::Invalid(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| PolicyError::Invalid("the policy is not a JSON object".into()))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["ID", "Version", "Statement"].contains(&k.as_str()))
    {
        return Err(PolicyError::Invalid(format!("json: unknown field {k:?}")));
    }
    match obj.get("Version").and_then(Value::as_str) {
        Some("2012-10-17") => {}
        Some("") | None => return Err(PolicyError::Version),
        Some(other) => return Err(PolicyError::Invalid(format!("invalid version '{other}'"))),
    }
    let statements = obj
        .get("Statement")
        .and_then(Value::as_array)
        .ok_or_else(|| PolicyError::Invalid("Statement is not a list".into()))?;
    for s in statements {
        let s = s
            .as_object()
            .ok_or_else(|| PolicyError::Invalid("a statement is not an object".into()))?;
        for k in s.keys() {
            match k.as_str() {
                "Sid" | "Effect" | "Action" | "Resource" => {}
                "NotAction" | "NotResource" | "Condition" => {
                    return Err(PolicyError::NotModelled(format!("policies with {k}")))
                }
                other => {
                    return Err(PolicyError::Invalid(format!(
                        "json: unknown field {other:?}"
                    )))
                }
            }
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            other => return Err(PolicyError::Invalid(format!("invalid Effect {other:?}"))),
        }
        let actions = strings(
            s.get("Action")
                .ok_or_else(|| PolicyError::Invalid("Action must not be empty".into()))?,
            "Action",
        )?;
        for a in &actions {
            if !a.starts_with("s3:") {
                return Err(PolicyError::NotModelled(format!("non-S3 action {a}")));
            }
            if !S3_ACTIONS
                .iter()
                .any(|k| wildcard(a.as_bytes(), k.as_bytes()))
            {
                return Err(PolicyError::Invalid(format!("invalid action '{a}'")));
            }
        }
        let resources = strings(
            s.get("Resource")
                .ok_or_else(|| PolicyError::Invalid("Resource must not be empty".into()))?,
            "Resource",
        )?;
        for r in &resources {
            match r.strip_prefix("arn:aws:s3:::") {
                Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
                _ => return Err(PolicyError::Invalid(format!("invalid resource '{r}'"))),
            }
        }
    }
    Ok(v)
}
