//! No FIFOs, sockets or device nodes in shared collections: a Landlock ruleset, applied by
//! the sandbox's init, that lets the agent make them only under its other mounts.
//!
//! A FIFO or a named socket in a directory two agents share is a channel between them that
//! no one meters (a read-only mount does not stop it: the kernel lets anyone open a FIFO or
//! connect to a socket on one). Landlock grants rights per directory tree, so the collections
//! are mounted outside the home, at [`KNOWLEDGE_ROOT`]; the right to make special files is
//! granted beneath every other mount point of the spec, and the collections get none.

use std::path::Path;

use landlock::{
    AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus,
};
use oci_spec::runtime::Spec;

use super::SandboxError;

/// Where shared collections are mounted inside the sandbox (`~/knowledge` links here).
pub const KNOWLEDGE_ROOT: &str = "/knowledge";

/// What the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforced {
    /// The sandbox mounts no collection: nothing to refuse.
    NothingShared,
    /// Special files are refused in the collections.
    Refused,
    /// The kernel has no Landlock (or it is off): special files can be made in the
    /// collections; the supervisor removes them when it next sets a collection up.
    Unsupported,
}

/// The Landlock ABI [`refuse_in_collections`] needs: 2, which has the Refer right.
pub const NEEDED_ABI: i32 = 2;

/// This kernel's Landlock ABI version, or `None` when it has no Landlock or it is off.
pub fn kernel_abi() -> Option<i32> {
    crate::sys::landlock_abi().ok()
}

fn err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Init(format!("landlock: {e}"))
}

/// The mount points (inside) under which special files may be made: every mount of the
/// spec but `/` and the collections.
pub fn allowed_under(spec: &Spec) -> Vec<&Path> {
    let shared = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination().starts_with(KNOWLEDGE_ROOT));
    if !shared {
        return Vec::new();
    }
    spec.mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().as_path())
        .filter(|d| !d.starts_with(KNOWLEDGE_ROOT) && *d != Path::new("/"))
        .collect()
}

/// Restrict this process (after pivot_root, before the agent is forked) so that FIFOs,
/// sockets and device nodes can be made only beneath [`allowed_under`].
pub fn refuse_in_collections(spec: &Spec) -> Result<Enforced, SandboxError> {
    let allowed = allowed_under(spec);
    if allowed.is_empty() {
        return Ok(Enforced::NothingShared);
    }
    let make = AccessFs::MakeFifo | AccessFs::MakeSock | AccessFs::MakeChar | AccessFs::MakeBlock;
    // Any Landlock domain forbids moving or linking a file to another directory unless a
    // rule grants Refer (ABI 2); on ABI 1 it cannot be granted at all, and programs that
    // publish files by rename or hard link (OpenClaw's workspace does) would break. So Refer
    // is handled and granted everywhere, and a kernel without it gets no ruleset
    // (SoftRequirement: then nothing is restricted).
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::SoftRequirement)
        .handle_access(make | AccessFs::Refer)
        .map_err(err)?
        .create()
        .map_err(err)?
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(err)?,
            AccessFs::Refer,
        ))
        .map_err(err)?;
    for dir in allowed {
        // A mount the spec names always exists by now; one that does not is skipped.
        let Ok(fd) = PathFd::new(dir) else { continue };
        ruleset = ruleset.add_rule(PathBeneath::new(fd, make)).map_err(err)?;
    }
    let status = ruleset.restrict_self().map_err(err)?;
    Ok(match status.ruleset {
        RulesetStatus::NotEnforced => Enforced::Unsupported,
        _ => Enforced::Refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{MountBuilder, SpecBuilder};

    fn spec(dests: &[&str]) -> Spec {
        let mounts = dests
            .iter()
            .map(|d| MountBuilder::default().destination(*d).build().unwrap())
            .collect::<Vec<_>>();
        SpecBuilder::default().mounts(mounts).build().unwrap()
    }

    #[test]
    fn this_kernel_reports_a_landlock_abi_the_way_the_ruleset_sees_it() {
        // Whatever this kernel has, the query and an actual ruleset agree on it.
        let abi = kernel_abi();
        let created = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::Refer)
            .and_then(|r| r.create());
        assert_eq!(
            abi.is_some_and(|v| v >= NEEDED_ABI),
            created.is_ok(),
            "{abi:?}"
        );
    }

    #[test]
    fn special_files_are_allowed_under_every_mount_but_the_collections() {
        let s = spec(&[
            "/proc",
            "/tmp",
            "/home/agent",
            "/knowledge/docs",
            "/knowledge/wiki",
        ]);
        assert_eq!(
            allowed_under(&s),
            [
                Path::new("/proc"),
                Path::new("/tmp"),
                Path::new("/home/agent")
            ]
        );
        // Without a collection, no ruleset at all (and no cost at start).
        assert!(allowed_under(&spec(&["/proc", "/tmp", "/home/agent"])).is_empty());
    }
}
