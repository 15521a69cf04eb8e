//! Errors of writing and validating an OCI image layout; each names the file or blob it
//! concerns and what to do about it.

use std::path::PathBuf;

use crate::runtime::RuntimeError;

/// What went wrong writing or validating an OCI image layout.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::io_error::IoError),
    /// The installed runtime could not be read (its `bundle.json`, its OpenClaw package).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Something in the runtime tree that an image layer cannot carry faithfully.
    #[error("{path}: {message} ({hint})")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// An OCI type could not be built or (de)serialised.
    #[error(
        "{what}: {message} (a bug in clawkeep's OCI writer, or a layout written by another tool)"
    )]
    Spec {
        /// Which document.
        what: String,
        /// The cause.
        message: String,
    },
    /// The output directory already holds something.
    #[error("{path} already exists and is not empty (give a new directory for the OCI layout, or remove this one)")]
    OutNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The layout does not satisfy the image spec or its own descriptors.
    #[error(
        "OCI image layout {layout} is not valid:\n{}\n(hint: write the layout again; a blob whose digest or size is not the one its descriptor names was changed or truncated after it was written)",
        .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Invalid {
        /// The layout directory.
        layout: PathBuf,
        /// One line per problem, each naming the file or blob.
        problems: Vec<String>,
    },
}

impl OciError {
    /// An [`OciError::Io`] for `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        crate::io_error::on(op, path)
    }

    /// An [`OciError::Spec`] about `what`.
    pub(crate) fn spec(what: &str) -> impl FnOnce(oci_spec::OciSpecError) -> Self + '_ {
        move |e| Self::Spec {
            what: what.to_string(),
            message: e.to_string(),
        }
    }
}
