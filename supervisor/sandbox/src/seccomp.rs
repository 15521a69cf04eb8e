//! The seccomp policy: what an agent may not ask the kernel for, written into config.json as
//! OCI seccomp (so runc enforces the same), and compiled from there to BPF with seccompiler.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::SandboxError;

/// Syscalls that fail with EPERM inside every sandbox: mounting, namespaces, tracing other
/// processes, loading code into the kernel, rebooting, keyrings, clocks, accounting.
pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "adjtimex",
    "bpf",
    "chroot",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "init_module",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "quotactl",
    "reboot",
    "request_key",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "userfaultfd",
    "vhangup",
];

/// Namespace flags that `clone` may not carry (one rule each: any of them denies the call).
const CLONE_NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

fn errno_rule(names: &[&str], errno: i32) -> Result<LinuxSyscall, SandboxError> {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno as u32)
        .build()
        .map_err(|e| SandboxError::Spec(e.to_string()))
}

/// The OCI seccomp section clawkeep writes into every agent's config.json.
pub fn policy() -> Result<LinuxSeccomp, SandboxError> {
    let mut syscalls = vec![errno_rule(DENIED, libc::EPERM)?];
    for flag in CLONE_NS_FLAGS {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(flag)
            .value_two(flag)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .map_err(|e| SandboxError::Spec(e.to_string()))?;
        let mut rule = errno_rule(&["clone"], libc::EPERM)?;
        rule.set_args(Some(vec![arg]));
        syscalls.push(rule);
    }
    // clone3 passes its flags in memory, out of seccomp's reach: make libc fall back to clone,
    // whose flags the rules above can see (what Docker's default profile does).
    syscalls.push(errno_rule(&["clone3"], libc::ENOSYS)?);
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![native_arch()])
        .syscalls(syscalls)
        .build()
        .map_err(|e| SandboxError::Spec(e.to_string()))
}

fn native_arch() -> Arch {
    #[cfg(target_arch = "aarch64")]
    return Arch::ScmpArchAarch64;
    #[cfg(not(target_arch = "aarch64"))]
    Arch::ScmpArchX86_64
}

fn target_arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| SandboxError::Seccomp(e.to_string()))
}

/// Compile an OCI seccomp section into BPF programs, one per distinct action (seccompiler
/// filters have one match action each; the kernel runs them all).
///
/// Only what clawkeep writes is supported: default action allow, errno actions, and
/// masked-equal argument conditions. Anything else is refused rather than half-applied.
pub fn compile(spec: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SandboxError> {
    if spec.default_action() != LinuxSeccompAction::ScmpActAllow {
        return Err(SandboxError::Seccomp(format!(
            "default action {:?} is not supported by clawkeep's launcher (use SCMP_ACT_ALLOW)",
            spec.default_action()
        )));
    }
    let arch = target_arch()?;
    let mut by_errno: BTreeMap<u32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    // An entry without conditions matches every call; conditional entries for the same
    // syscall must not narrow it again.
    let mut unconditional: std::collections::BTreeSet<(u32, i64)> = Default::default();
    for sc in spec.syscalls().iter().flatten() {
        let errno = match sc.action() {
            LinuxSeccompAction::ScmpActErrno => sc.errno_ret().unwrap_or(libc::EPERM as u32),
            other => {
                return Err(SandboxError::Seccomp(format!(
                    "action {other:?} for {:?} is not supported (use SCMP_ACT_ERRNO)",
                    sc.names()
                )))
            }
        };
        let mut conditions = Vec::new();
        for a in sc.args().iter().flatten() {
            let op = match a.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => SeccompCmpOp::MaskedEq(a.value()),
                LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
                other => {
                    return Err(SandboxError::Seccomp(format!(
                        "argument operator {other:?} is not supported"
                    )))
                }
            };
            let value = match a.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
                _ => a.value(),
            };
            let index = u8::try_from(a.index())
                .map_err(|_| SandboxError::Seccomp(format!("argument index {}", a.index())))?;
            conditions.push(
                SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                    .map_err(|e| SandboxError::Seccomp(e.to_string()))?,
            );
        }
        for name in sc.names() {
            let Some(nr) = syscall_number(name) else {
                // A syscall this architecture does not have cannot be called either.
                continue;
            };
            let rules = by_errno.entry(errno).or_default().entry(nr).or_default();
            if conditions.is_empty() {
                unconditional.insert((errno, nr));
                rules.clear();
            } else if !unconditional.contains(&(errno, nr)) {
                rules.push(
                    SeccompRule::new(conditions.clone())
                        .map_err(|e| SandboxError::Seccomp(e.to_string()))?,
                );
            }
        }
    }
    by_errno
        .into_iter()
        .map(|(errno, rules)| {
            let filter = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno),
                arch,
            )
            .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
            BpfProgram::try_from(filter).map_err(|e| SandboxError::Seccomp(e.to_string()))
        })
        .collect()
}

/// Install compiled filters on the calling thread (needs no_new_privs or CAP_SYS_ADMIN).
pub fn apply(programs: &[BpfProgram]) -> Result<(), SandboxError> {
    for p in programs {
        seccompiler::apply_filter(p).map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    }
    Ok(())
}

macro_rules! syscall_table {
    ($name:expr; $($n:ident),* $(,)?; $(#[$m:meta] $($a:ident),*;)*) => {
        match $name {
            $(stringify!($n) => Some(libc::$n as i64),)*
            $($(#[$m] stringify!($a) => Some(libc::$a as i64),)*)*
            _ => None,
        }
    };
}

/// The number of a syscall on this architecture, by its name (without the SYS_ prefix).
pub fn syscall_number(name: &str) -> Option<i64> {
    let sys = format!("SYS_{name}");
    syscall_table!(sys.as_str();
        SYS_acct, SYS_add_key, SYS_adjtimex, SYS_bpf, SYS_chroot, SYS_clock_adjtime,
        SYS_clock_settime, SYS_clone, SYS_clone3, SYS_delete_module, SYS_finit_module,
        SYS_fsconfig, SYS_fsmount, SYS_fsopen, SYS_fspick, SYS_init_module, SYS_kcmp,
        SYS_kexec_file_load, SYS_kexec_load, SYS_keyctl, SYS_lookup_dcookie, SYS_mount,
        SYS_mount_setattr, SYS_move_mount, SYS_name_to_handle_at, SYS_open_by_handle_at,
        SYS_open_tree, SYS_perf_event_open, SYS_pidfd_getfd, SYS_pivot_root,
        SYS_process_vm_readv, SYS_process_vm_writev, SYS_ptrace, SYS_quotactl, SYS_reboot,
        SYS_request_key, SYS_setdomainname, SYS_sethostname, SYS_setns, SYS_settimeofday,
        SYS_swapoff, SYS_swapon, SYS_syslog, SYS_umount2, SYS_unshare, SYS_userfaultfd,
        SYS_vhangup;
        #[cfg(target_arch = "x86_64")] SYS_iopl, SYS_ioperm, SYS_uselib, SYS__sysctl;
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denied_syscall_is_known_on_this_arch() {
        for name in DENIED {
            assert!(syscall_number(name).is_some(), "{name}");
        }
        assert_eq!(syscall_number("mount"), Some(libc::SYS_mount));
        assert_eq!(syscall_number("no_such_call"), None);
    }

    #[test]
    fn policy_compiles_to_one_program_per_errno() {
        let programs = compile(&policy().unwrap()).unwrap();
        assert_eq!(programs.len(), 2, "EPERM and ENOSYS");
        assert!(programs.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn unsupported_actions_are_refused() {
        let mut p = policy().unwrap();
        p.set_default_action(LinuxSeccompAction::ScmpActKill);
        assert!(compile(&p)
            .unwrap_err()
            .to_string()
            .contains("SCMP_ACT_ALLOW"));
    }
}
