//! The `disk` limits against the host: can the state dir's filesystem enforce them?

use std::path::Path;

use clawkeep_sandbox::quota::{self, QuotaError};

use super::file::{FleetFile, SizeFile};
use super::resolve::Resolver;
use super::settings::{sub, written_size, SettingsLayer};
use super::spans::{key_path, Seg};
use super::{units, Agent};

/// Why agents' `disk` limits cannot be enforced under `state_dir` (looked at where it is, or
/// at its nearest existing parent when it is not made yet); `None` when they can.
pub fn quota_problem(state_dir: &Path) -> Option<QuotaError> {
    let dir = state_dir.ancestors().find(|d| d.is_dir())?;
    quota::support(dir).err().map(|e| e.at(state_dir))
}

/// Whether a written size is one the settings layer took (so it was not reported already).
fn taken(size: Option<&SizeFile>) -> bool {
    match size {
        Some(SizeFile::Bytes(n)) => *n >= super::settings::MIN_DISK,
        Some(SizeFile::Text(t)) => {
            units::parse_size(t).is_ok_and(|n| n >= super::settings::MIN_DISK)
        }
        None => false,
    }
}

impl Resolver<'_> {
    /// With any agent limited by `disk`: report, at each `disk` written, that the state dir
    /// cannot enforce it. Not for a node image (being built here or checked inside its root):
    /// its root filesystem has project quotas, and its node checks them again at start.
    pub(crate) fn disk_quotas(
        &mut self,
        file: &FleetFile,
        defaults: &SettingsLayer,
        state_dir: &Path,
        agents: &[Agent],
    ) {
        if !self.runs_here() || !agents.iter().any(|a| a.resources.disk.is_some()) {
            return;
        }
        let Some(problem) = quota_problem(state_dir) else {
            return;
        };
        let mut places: Vec<(Vec<Seg>, &SizeFile)> = Vec::new();
        if let (Some(_), Some(size)) = (defaults.disk, file.defaults.disk.as_ref()) {
            places.push((key_path!["defaults", "disk"].to_vec(), size));
        }
        for (i, a) in file.agent.iter().enumerate() {
            if let Some(size) = a.settings.disk.as_ref().filter(|s| taken(Some(s))) {
                places.push((sub(&key_path!["agent", i], &["disk"]), size));
            }
        }
        for (at, size) in places {
            let what = self.what(&at);
            self.at_value(
                &at,
                format!(
                    "{what} {} cannot be enforced on this host: the state dir {}",
                    written_size(size),
                    problem.problem()
                ),
                format!(
                    "{}; without it clawkeep does not start the agent",
                    problem.hint()
                ),
            );
        }
    }
}
