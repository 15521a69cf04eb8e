//! One bucket of the store, through aws-sdk-s3: listing, blobs, plain copies, snapshots,
//! multipart upload and verified download. Errors carry the bucket, key and S3 error code.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, VersioningConfiguration,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::StoreError;
use crate::manifest::Snapshot;

/// Files at least this big go up in parts.
pub const MULTIPART_THRESHOLD: u64 = 64 << 20;
/// Size of each part of a multipart upload.
pub const PART_SIZE: u64 = 16 << 20;

/// An S3 access key pair. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

impl Credential {
    /// Read `access_key:secret_key` (or the JSON form) from a file.
    pub fn from_file(path: &Path) -> Result<Self, StoreError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StoreError::io("read credential", path, e))?;
        if let Ok(c) = serde_json::from_str::<Credential>(&text) {
            return Ok(c);
        }
        match text.trim().split_once(':') {
            Some((a, s)) if !a.is_empty() && !s.is_empty() => Ok(Credential {
                access_key: a.into(),
                secret_key: s.into(),
            }),
            _ => Err(StoreError::Corrupt {
                what: "credential file",
                place: path.display().to_string(),
                message: "expected access_key:secret_key".into(),
                hint: "write the key pair on one line, separated by ':'",
            }),
        }
    }
}

/// A listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// When it was last written.
    pub modified: Option<std::time::SystemTime>,
}

/// A connection to an S3 endpoint with one credential.
#[derive(Clone, Debug)]
pub struct Store {
    client: aws_sdk_s3::Client,
    endpoint: String,
}

/// The system's root certificates only for an https endpoint: a node image has none, and
/// asking for them where there are none makes the client panic; a store on the node's
/// loopback speaks plain http.
fn tls_context(endpoint: &str) -> aws_smithy_http_client::tls::TlsContext {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    let https = endpoint
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_native_roots(https))
        .build()
        // Building only fails on a bad PEM certificate, and none is added here.
        .unwrap_or_default()
}

impl Store {
    /// A client for `endpoint` (path-style, as Garage and MinIO on one node need).
    pub fn connect(endpoint: &str, region: &str, cred: &Credential) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            // Idle connections go soon: a store stopping drains open connections first.
            .pool_idle_timeout(Duration::from_secs(2))
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .tls_context(tls_context(endpoint))
            .build_https();
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(120))
            .build();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(
                &cred.access_key,
                &cred.secret_key,
                None,
                None,
                "clawkeep",
            ))
            .force_path_style(true)
            .http_client(http)
            .timeout_config(timeouts)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Store {
            client: aws_sdk_s3::Client::from_conf(conf),
            endpoint: endpoint.to_string(),
        }
    }

    /// One bucket through this connection.
    pub fn bucket(&self, bucket: &str) -> Remote {
        Remote {
            store: self.clone(),
            bucket: bucket.to_string(),
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Create `bucket` unless it exists, and turn versioning on where the server has it.
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) => {}
            Err(e) => return Err(s3err("CreateBucket", bucket, "", e)),
        }
        let v = VersioningConfiguration::builder()
            .status(BucketVersioningStatus::Enabled)
            .build();
        match self
            .client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(v)
            .send()
            .await
        {
            Ok(_) => {}
            // Garage has no bucket versioning: clawkeep's own snapshots are the history.
            Err(e)
                if matches!(e.code(), Some("NotImplemented" | "MethodNotAllowed"))
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 501) => {}
            Err(e) => {
                tracing::warn!(bucket, error = %s3err("PutBucketVersioning", bucket, "", e), "bucket versioning not enabled")
            }
        }
        Ok(())
    }

    /// Whether the endpoint answers at all (any S3 answer counts, even an error).
    pub async fn healthy(&self) -> bool {
        match self.client.list_buckets().send().await {
            Ok(_) => true,
            Err(SdkError::ServiceError(_)) => true,
            Err(_) => false,
        }
    }
}

/// One bucket.
#[derive(Clone, Debug)]
pub struct Remote {
    store: Store,
    bucket: String,
}

fn s3err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    op: &'static str,
    bucket: &str,
    key: &str,
    e: SdkError<E, R>,
) -> StoreError {
    let code = e.code().unwrap_or("").to_string();
    let message = match e.message() {
        Some(m) => m.to_string(),
        None if !code.is_empty() => code.clone(),
        None => aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
    };
    StoreError::S3 {
        op,
        bucket: bucket.into(),
        key: key.into(),
        code,
        message,
    }
}

impl Remote {
    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// The connection it uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn c(&self) -> &aws_sdk_s3::Client {
        &self.store.client
    }

    /// Every object under `prefix`; an error ends the listing (callers must not act on a
    /// partial one).
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .c()
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                // Keys come back URL-encoded, so a key with NUL or other characters XML
                // cannot carry does not break the listing (it is refused later, by name).
                .encoding_type(aws_sdk_s3::types::EncodingType::Url)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3err("ListObjectsV2", &self.bucket, prefix, e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    let k = decode_listed_key(k);
                    out.push(Listed {
                        key: k.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        modified: o
                            .last_modified()
                            .and_then(|t| std::time::SystemTime::try_from(*t).ok()),
                    });
                }
            }
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(t)) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self
            .c()
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(s3err("HeadObject", &self.bucket, key, e)),
        }
    }

    /// Store `bytes` under `key`.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.c()
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3err("PutObject", &self.bucket, key, e))?;
        Ok(())
    }

    /// Upload a local file under `key` as it is (in parts when big). Returns its size.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| StoreError::io("stat", path, e))?
            .len();
        if size < MULTIPART_THRESHOLD {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| StoreError::io("read", path, e))?;
            self.put(key, Bytes::from(bytes)).await?;
            return Ok(size);
        }
        self.multipart(
            tokio::fs::File::from_std(open_nofollow(path)?),
            path,
            key,
            None,
            None,
        )
        .await?;
        Ok(size)
    }

    /// Upload the file at `path` (not followed if it is a symlink) as the blob `sha256`.
    pub async fn put_blob_from(&self, path: &Path, sha256: &str) -> Result<u64, StoreError> {
        let file = open_nofollow(path)?;
        self.put_blob(file, sha256, None, path).await
    }

    /// Upload an open file as the blob with hash `sha256` (`label` names it in errors): small
    /// files are read once and the bytes hashed and sent; big ones go in parts, hashed again
    /// as they are sent. If the content changed since it was hashed, nothing is stored and
    /// the change waits for the next pass; with `expected` (the size it was hashed at), a
    /// file of another size now counts as changed before a byte of it is read.
    pub async fn put_blob(
        &self,
        file: std::fs::File,
        sha256: &str,
        expected: Option<u64>,
        label: &Path,
    ) -> Result<u64, StoreError> {
        let key = crate::keys::blob_key(sha256);
        let mut file = tokio::fs::File::from_std(file);
        let size = file
            .metadata()
            .await
            .map_err(|e| StoreError::io("stat", label, e))?
            .len();
        if expected.is_some_and(|e| e != size) {
            return Err(changed(label));
        }
        if size < MULTIPART_THRESHOLD {
            let bytes = read_at_most(&mut file, size)
                .await
                .map_err(|e| StoreError::io("read", label, e))?;
            match bytes {
                Some(b) if crate::scan::hash_bytes(&b) == sha256 => {
                    self.put(&key, Bytes::from(b)).await?;
                    return Ok(size);
                }
                _ => return Err(changed(label)),
            }
        }
        self.multipart(file, label, &key, Some(sha256), Some(size))
            .await?;
        Ok(size)
    }

    /// A multipart upload of `file` (named `path` in errors) to `key`, aborted on any
    /// failure; with `sha256`, the bytes sent must hash to it; with `size`, a file that grows
    /// past it is not read further (the upload fails as changed).
    async fn multipart(
        &self,
        file: tokio::fs::File,
        path: &Path,
        key: &str,
        sha256: Option<&str>,
        size: Option<u64>,
    ) -> Result<(), StoreError> {
        let up = self
            .c()
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3err("CreateMultipartUpload", &self.bucket, key, e))?;
        let id = up.upload_id().unwrap_or_default().to_string();
        let result = self.upload_parts(file, path, key, &id, sha256, size).await;
        match result {
            Ok(parts) => {
                let done = CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build();
                self.c()
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .multipart_upload(done)
                    .send()
                    .await
                    .map_err(|e| s3err("CompleteMultipartUpload", &self.bucket, key, e))?;
                Ok(())
            }
            Err(e) => {
                let _ = self
                    .c()
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        file: tokio::fs::File,
        path: &Path,
        key: &str,
        id: &str,
        sha256: Option<&str>,
        size: Option<u64>,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        use tokio::io::AsyncReadExt;
        let mut f = file;
        let mut hasher = Sha256::new();
        let mut parts = Vec::new();
        let mut sent = 0u64;
        for n in 1.. {
            let mut buf = Vec::with_capacity(PART_SIZE as usize);
            (&mut f)
                .take(PART_SIZE)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| StoreError::io("read", path, e))?;
            sent += buf.len() as u64;
            if size.is_some_and(|s| sent > s) {
                // Growing while it goes up (an agent appending as fast as it is read): stop.
                return Err(changed(path));
            }
            if buf.is_empty() && n > 1 {
                break;
            }
            hasher.update(&buf);
            let last = (buf.len() as u64) < PART_SIZE;
            let out = self
                .c()
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(id)
                .part_number(n)
                .body(ByteStream::from(buf))
                .send()
                .await
                .map_err(|e| s3err("UploadPart", &self.bucket, key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
            if last {
                break;
            }
        }
        if sha256.is_some_and(|want| hex::encode(hasher.finalize()) != want) {
            return Err(changed(path));
        }
        Ok(parts)
    }

    /// Server-side copy of `src_bucket/src_key` to `key` in this bucket; no data through the node.
    pub async fn copy_from(
        &self,
        src_bucket: &str,
        src_key: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let source = format!(
            "{src_bucket}/{}",
            percent_encoding::utf8_percent_encode(src_key, KEY_ENCODE)
        );
        self.c()
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(source)
            .send()
            .await
            .map_err(|e| s3err("CopyObject", &self.bucket, key, e))?;
        Ok(())
    }

    /// Delete `key` (deleting a missing key is not an error in S3).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.c()
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3err("DeleteObject", &self.bucket, key, e))?;
        Ok(())
    }

    /// The whole object in memory (snapshots only: they are small).
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, StoreError> {
        let out = self
            .c()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3err("GetObject", &self.bucket, key, e))?;
        let data = out.body.collect().await.map_err(|e| StoreError::S3 {
            op: "GetObject",
            bucket: self.bucket.clone(),
            key: key.into(),
            code: String::new(),
            message: e.to_string(),
        })?;
        Ok(data.into_bytes())
    }

    /// Read `key` whole if it holds at most `max` bytes; refused (nothing more read) if it
    /// holds more: for clawkeep's own small objects, which anyone with the bucket's key could
    /// replace with something huge.
    pub async fn get_bytes_at_most(&self, key: &str, max: u64) -> Result<Bytes, StoreError> {
        let out = self
            .c()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3err("GetObject", &self.bucket, key, e))?;
        let too_big = || {
            StoreError::Refused(format!(
                "s3://{}/{key} is larger than the {max} bytes clawkeep ever writes there; it was not read (delete or restore it)",
                self.bucket
            ))
        };
        if out.content_length().is_some_and(|n| n as u64 > max) {
            return Err(too_big());
        }
        let read = read_at_most(out.body.into_async_read(), max)
            .await
            .map_err(|e| StoreError::S3 {
                op: "GetObject",
                bucket: self.bucket.clone(),
                key: key.into(),
                code: String::new(),
                message: e.to_string(),
            })?;
        read.map(Bytes::from).ok_or_else(too_big)
    }

    /// Stream `key` into a new file at `dest`, checking its sha256 when `want` is given.
    /// Returns the sha256 read. With `max`, an object of more bytes is refused: not read on
    /// when it says its length, else read no further than `max + 1` and the file removed.
    pub async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        want: Option<&str>,
        max: Option<u64>,
    ) -> Result<String, StoreError> {
        let mut out = self
            .c()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3err("GetObject", &self.bucket, key, e))?;
        let too_big = |max: u64| StoreError::TooBig {
            bucket: self.bucket.clone(),
            key: key.into(),
            max,
        };
        let limit = max.unwrap_or(u64::MAX);
        if out.content_length().is_some_and(|n| n as u64 > limit) {
            return Err(too_big(limit));
        }
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(dest)
            .await
            .map_err(|e| StoreError::io("create", dest, e))?;
        let mut h = Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = out.body.try_next().await.map_err(|e| StoreError::S3 {
            op: "GetObject",
            bucket: self.bucket.clone(),
            key: key.into(),
            code: String::new(),
            message: e.to_string(),
        })? {
            written = written.saturating_add(chunk.len() as u64);
            if written > limit {
                drop(f);
                let _ = tokio::fs::remove_file(dest).await;
                return Err(too_big(limit));
            }
            h.update(&chunk);
            f.write_all(&chunk)
                .await
                .map_err(|e| StoreError::io("write", dest, e))?;
        }
        f.sync_all()
            .await
            .map_err(|e| StoreError::io("fsync", dest, e))?;
        let got = hex::encode(h.finalize());
        if let Some(want) = want {
            if got != want {
                let _ = tokio::fs::remove_file(dest).await;
                return Err(StoreError::HashMismatch {
                    bucket: self.bucket.clone(),
                    key: key.into(),
                    want: want.into(),
                    got,
                });
            }
        }
        Ok(got)
    }

    /// Ids of every snapshot, oldest first; objects whose names are not clawkeep snapshot ids
    /// are not history and are left out. A failed listing is an error, never "none".
    pub async fn snapshot_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self
            .list(crate::keys::SNAPSHOT_PREFIX)
            .await?
            .into_iter()
            .filter_map(|o| {
                o.key
                    .strip_prefix(crate::keys::SNAPSHOT_PREFIX)?
                    .strip_suffix(".json")
                    .filter(|id| crate::manifest::is_snapshot_id(id))
                    .map(str::to_string)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Read one snapshot.
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot, StoreError> {
        let key = format!("{}{id}.json", crate::keys::SNAPSHOT_PREFIX);
        let bytes = self.get_bytes_at_most(&key, MAX_SNAPSHOT_BYTES).await?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: "snapshot",
            place: format!("s3://{}/{key}", self.bucket),
            message: e.to_string(),
            hint: "delete that object; older snapshots and the plain files are intact",
        })
    }

    /// Write a snapshot.
    pub async fn put_snapshot(&self, s: &Snapshot) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(s)
            .map_err(|e| StoreError::Refused(format!("cannot encode snapshot: {e}")))?;
        self.put(&s.key(), Bytes::from(bytes)).await
    }
}

/// The largest snapshot manifest read (about a million files' worth).
pub const MAX_SNAPSHOT_BYTES: u64 = 256 << 20;

/// All of `r` if it holds at most `size` bytes; `None` (after reading `size + 1`) if it holds
/// more: a file that grows while it is read never makes the buffer outgrow its scanned size.
pub async fn read_at_most<R: tokio::io::AsyncRead + Unpin>(
    r: R,
    size: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::with_capacity(size.min(MULTIPART_THRESHOLD) as usize);
    r.take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .await?;
    Ok((bytes.len() as u64 <= size).then_some(bytes))
}

/// Open a file for reading without following a symlink at its last component.
fn open_nofollow(path: &Path) -> Result<std::fs::File, StoreError> {
    use rustix::fs::{Mode, OFlags, CWD};
    rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map(std::fs::File::from)
    .map_err(|e| StoreError::io("open", path, e.into()))
}

/// A key from a listing made with `encoding-type=url`. AWS and MinIO encode form-style (a
/// space as '+', a '+' as %2B); Garage percent-encodes (a space as %20, '+' as %2B). Turning
/// '+' into a space first decodes both.
pub fn decode_listed_key(k: &str) -> String {
    let k = k.replace('+', " ");
    percent_encoding::percent_decode_str(&k)
        .decode_utf8_lossy()
        .into_owned()
}

fn changed(path: &Path) -> StoreError {
    StoreError::Refused(format!(
        "{} changed while it was being uploaded; it goes up on the next pass",
        path.display()
    ))
}

/// Characters escaped in a CopyObject source: everything but unreserved characters and '/'.
const KEY_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_longer_than_its_size_is_not_read_past_it() {
        // An endless source stands for a file the agent keeps appending to. It never makes
        // the reader wait, so the check runs on a thread of its own with a deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _ = tx.send(
                rt.block_on(read_at_most(tokio::io::repeat(b'x'), 10))
                    .unwrap(),
            );
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("read past the size");
        assert_eq!(got, None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let exact = rt.block_on(read_at_most(&b"0123456789"[..], 10)).unwrap();
        assert_eq!(exact.as_deref(), Some(&b"0123456789"[..]));
    }

    #[test]
    fn listed_keys_decode_from_garage_and_from_minio_alike() {
        // Garage: %20 for a space; MinIO and AWS: '+'; both: %2B for a '+'.
        assert_eq!(decode_listed_key("notes/a%20b%2Bc.md"), "notes/a b+c.md");
        assert_eq!(decode_listed_key("notes/a+b%2Bc.md"), "notes/a b+c.md");
        assert_eq!(decode_listed_key("a%00b"), "a\0b");
        assert_eq!(decode_listed_key("%C3%A9t%C3%A9"), "été");
    }
}
