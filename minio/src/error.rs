//! Errors of the knowledge store; each names the bucket, key or path it concerns and a hint.

use std::path::PathBuf;

/// What went wrong talking to the store or touching the local copy.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A local file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The S3 server refused or failed a request.
    #[error("store {op} s3://{bucket}/{key}: {message}{}", hint_for(.code))]
    S3 {
        /// The S3 operation.
        op: &'static str,
        /// Bucket name.
        bucket: String,
        /// Object key (may be empty for bucket-level calls).
        key: String,
        /// S3 error code (`AccessDenied`, `NoSuchBucket`, ...) or "" when the request never
        /// got an answer.
        code: String,
        /// The server's message or the transport error.
        message: String,
    },
    /// A key or manifest entry in the bucket is not a safe relative path.
    #[error(
        "refused key {key:?} in s3://{bucket}: {why} (nothing was written outside the workspace)"
    )]
    UnsafeKey {
        /// Bucket name.
        bucket: String,
        /// The key as stored.
        key: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// A snapshot or state file could not be read.
    #[error("{what} {place} is not valid: {message} ({hint})")]
    Corrupt {
        /// What kind of file.
        what: &'static str,
        /// Its path or key.
        place: String,
        /// Parser message.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// The store's admin API refused a request.
    #[error("store admin {op}: {message} (check the admin token and that the store's admin API listens at {url})")]
    Admin {
        /// The admin operation.
        op: &'static str,
        /// Base URL of the admin API.
        url: String,
        /// Status and body, or the transport error.
        message: String,
    },
    /// A pass refused to do something unsafe and did nothing of it.
    #[error("{0}")]
    Refused(String),
    /// Another supervisor holds the brain's lease: this one does not sync it.
    #[error("{0}")]
    Leased(Box<crate::lease::Refusal>),
    /// A content hash did not match after download.
    #[error("s3://{bucket}/{key}: content hash {got} does not match the snapshot's {want} (the object was changed behind clawkeep's back; pull again or restore)")]
    HashMismatch {
        /// Bucket name.
        bucket: String,
        /// Key read.
        key: String,
        /// Hash expected.
        want: String,
        /// Hash read.
        got: String,
    },
    /// An object held more than the sync's `max_file_size` when read (whatever size its
    /// snapshot gave): not downloaded, nothing of it kept.
    #[error("s3://{bucket}/{key} holds more than max_file_size ({max} bytes); it was not downloaded (raise max_file_size in the fleet file's [store] if files this big are meant to sync)")]
    TooBig {
        /// Bucket name.
        bucket: String,
        /// Key read.
        key: String,
        /// The limit, in bytes.
        max: u64,
    },
}

fn hint_for(code: &str) -> &'static str {
    match code {
        "AccessDenied" => {
            " (the credential has no grant for this; read-only collections cannot be written)"
        }
        "NoSuchBucket" => " (the bucket does not exist or this credential has no grant on it)",
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
            " (the credential is unknown to the store or wrong; check the store's credentials file)"
        }
        "" => " (is the store running? `clawkeep sync status` shows its health)",
        _ => "",
    }
}

impl StoreError {
    /// Wrap an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The S3 error code, if this is an S3 error the server answered.
    pub fn s3_code(&self) -> Option<&str> {
        match self {
            StoreError::S3 { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }
}
