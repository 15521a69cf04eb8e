//! The file operation that failed, shared by the image crate's error enums: what was being
//! done, on which path, and the OS error.

use std::path::PathBuf;

/// A failed file operation, e.g. "create /out/node.raw: Permission denied".
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct IoError {
    /// What was being done.
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// A `map_err` adapter: the OS error of `op` on `path`, as any error that holds an
/// [`IoError`].
pub(crate) fn on<E: From<IoError>>(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> E {
    let path = path.into();
    move |source| E::from(IoError { op, path, source })
}
