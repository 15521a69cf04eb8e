//! What a check finds: the finding type the audit, the doctor and every subsystem's checks
//! report, and the helpers that make one. Below every check, so any of them can use it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable check ID, e.g. `CK-STORE-001`.
    pub id: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
    /// What it concerns (an agent, a bucket, a path).
    pub subject: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// A finding.
pub fn finding(
    id: &str,
    severity: &str,
    subject: impl Into<String>,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        id: id.into(),
        severity: severity.into(),
        subject: subject.into(),
        message: message.into(),
        fix: fix.into(),
    }
}

/// A finding if `path` exists and grants group or others any of `mask`.
pub fn mode_finding(id: &str, path: &Path, mask: u32, fix: &str) -> Option<Finding> {
    let mode = std::fs::symlink_metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & mask != 0).then(|| {
        finding(
            id,
            "high",
            path.display().to_string(),
            format!("mode {mode:o} lets other users in"),
            fix,
        )
    })
}
