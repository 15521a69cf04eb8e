//! The seccomp policy: default-deny, modelled on the runc/Docker default profile. What an
//! agent may ask the kernel for is listed ([`ALLOWED`], plus `clone` without namespace flags,
//! `socket` of the families programs use and `personality` queries); anything else fails
//! with ENOSYS, so programs fall back as on an older kernel, and the calls that matter
//! ([`DENIED`], namespace flags) fail with EPERM. Written into config.json as OCI seccomp
//! (so runc enforces the same) and compiled from there to BPF with seccompiler. Only the
//! native architecture is allowed: an x32 or i386 call never matches a listed number.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::SandboxError;

/// What a call not named anywhere gets: "not implemented", which programs take as "use the
/// older way" (io_uring, for instance, falls back to threads).
pub const DEFAULT_ERRNO: i32 = libc::ENOSYS;

/// Syscalls every agent may make, whatever their arguments: files, memory, time, signals,
/// sockets and its own processes. Names this architecture does not have are skipped.
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "clock_getres", "clock_gettime",
    "clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit",
    "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr",
    "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync",
    "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake",
    "futimesat", "get_robust_list", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp",
    "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
    "getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid",
    "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
    "ioctl", "ioprio_get", "ioprio_set", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lgetxattr", "link",
    "linkat", "listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr",
    "lstat", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
    "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause",
    "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
    "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "set_robust_list", "set_tid_address", "setfsgid", "setfsuid", "setgid", "setgroups",
    "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid", "setreuid",
    "setrlimit", "setsid", "setsockopt", "setuid", "setxattr", "shmat", "shmctl", "shmdt",
    "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socketpair", "splice",
    "stat", "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime",
    "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "utime",
    "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
];

/// Socket families an agent may open: local, IPv4, IPv6, and netlink's routing protocol
/// (how a program lists its interfaces). AF_PACKET, AF_VSOCK (the host, under QEMU) and the
/// rest are not listed.
const SOCKET_FAMILIES: [u64; 3] = [
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
];

/// `personality` values allowed: Linux, with or without UNAME26 and READ_IMPLIES_EXEC off,
/// and the query (0xffffffff). Turning address randomisation off is not among them.
const PERSONALITIES: [u64; 4] = [0, 0x0008, 0x20000, 0xffff_ffff];

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
        .map_err(spec_err)
}

fn allow_rule(names: &[&str], args: Vec<LinuxSeccompArg>) -> Result<LinuxSyscall, SandboxError> {
    let mut rule = LinuxSyscallBuilder::default()
        .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActAllow)
        .build()
        .map_err(spec_err)?;
    if !args.is_empty() {
        rule.set_args(Some(args));
    }
    Ok(rule)
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
) -> Result<LinuxSeccompArg, SandboxError> {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .value_two(value_two)
        .op(op)
        .build()
        .map_err(spec_err)
}

fn spec_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Spec(e.to_string())
}

/// The OCI seccomp section clawkeep writes into every agent's config.json.
pub fn policy() -> Result<LinuxSeccomp, SandboxError> {
    use LinuxSeccompOperator::{ScmpCmpEq as Eq, ScmpCmpMaskedEq as MaskedEq};
    let mut syscalls = vec![allow_rule(ALLOWED, Vec::new())?];
    let all_ns = CLONE_NS_FLAGS.iter().fold(0, |a, f| a | f);
    syscalls.push(allow_rule(&["clone"], vec![arg(0, MaskedEq, all_ns, 0)?])?);
    for family in SOCKET_FAMILIES {
        syscalls.push(allow_rule(&["socket"], vec![arg(0, Eq, family, 0)?])?);
    }
    syscalls.push(allow_rule(
        &["socket"],
        vec![
            arg(0, Eq, libc::AF_NETLINK as u64, 0)?,
            arg(2, Eq, libc::NETLINK_ROUTE as u64, 0)?,
        ],
    )?);
    for p in PERSONALITIES {
        syscalls.push(allow_rule(&["personality"], vec![arg(0, Eq, p, 0)?])?);
    }
    syscalls.push(errno_rule(DENIED, libc::EPERM)?);
    for flag in CLONE_NS_FLAGS {
        let mut rule = errno_rule(&["clone"], libc::EPERM)?;
        rule.set_args(Some(vec![arg(0, MaskedEq, flag, flag)?]));
        syscalls.push(rule);
    }
    // clone3 passes its flags in memory, out of seccomp's reach: make libc fall back to clone,
    // whose flags the rules above can see (what Docker's default profile does).
    syscalls.push(errno_rule(&["clone3"], libc::ENOSYS)?);
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(DEFAULT_ERRNO as u32)
        .architectures(vec![native_arch()])
        .syscalls(syscalls)
        .build()
        .map_err(spec_err)
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

/// Compile an OCI seccomp section into BPF programs: for a default-deny section, first the
/// allow-list (what is not listed gets the default errno), then one program per errno of the
/// named denials (seccompiler filters have one match action each; the kernel runs them all).
/// Among filters that answer with an errno, the kernel keeps the most recently installed
/// one's, so a named denial says EPERM where the allow-list alone would say ENOSYS.
///
/// Only what clawkeep writes is supported: default action allow or errno, allow and errno
/// actions, equal and masked-equal argument conditions. Anything else is refused rather
/// than half-applied.
pub fn compile(spec: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SandboxError> {
    let default_errno = match spec.default_action() {
        LinuxSeccompAction::ScmpActAllow => None,
        LinuxSeccompAction::ScmpActErrno => {
            Some(spec.default_errno_ret().unwrap_or(libc::EPERM as u32))
        }
        other => {
            return Err(SandboxError::Seccomp(format!(
                "default action {other:?} is not supported by clawkeep's launcher (use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW)"
            )))
        }
    };
    let arch = target_arch()?;
    let mut allowed = Rules::default();
    let mut by_errno: BTreeMap<u32, Rules> = BTreeMap::new();
    for sc in spec.syscalls().iter().flatten() {
        let conditions = conditions(sc)?;
        let rules = match sc.action() {
            // Under a default of allow, an allow entry changes nothing.
            LinuxSeccompAction::ScmpActAllow if default_errno.is_none() => continue,
            LinuxSeccompAction::ScmpActAllow => &mut allowed,
            LinuxSeccompAction::ScmpActErrno => by_errno
                .entry(sc.errno_ret().unwrap_or(libc::EPERM as u32))
                .or_default(),
            other => {
                return Err(SandboxError::Seccomp(format!(
                "action {other:?} for {:?} is not supported (use SCMP_ACT_ALLOW or SCMP_ACT_ERRNO)",
                sc.names()
            )))
            }
        };
        for name in sc.names() {
            // A syscall this architecture does not have cannot be called either.
            if let Some(nr) = syscall_number(name) {
                rules.add(nr, &conditions)?;
            }
        }
    }
    let program = |rules: Rules, mismatch, matched| {
        let filter = SeccompFilter::new(rules.by_nr, mismatch, matched, arch)
            .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
        BpfProgram::try_from(filter).map_err(|e| SandboxError::Seccomp(e.to_string()))
    };
    let mut programs = Vec::new();
    if let Some(errno) = default_errno {
        programs.push(program(
            allowed,
            SeccompAction::Errno(errno),
            SeccompAction::Allow,
        )?);
    }
    for (errno, rules) in by_errno {
        programs.push(program(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno),
        )?);
    }
    Ok(programs)
}

/// The rules of one filter by syscall number: an entry without conditions matches every
/// call, and conditional entries for the same syscall must not narrow it again.
#[derive(Default)]
struct Rules {
    by_nr: BTreeMap<i64, Vec<SeccompRule>>,
    unconditional: BTreeSet<i64>,
}

impl Rules {
    fn add(&mut self, nr: i64, conditions: &[SeccompCondition]) -> Result<(), SandboxError> {
        let rules = self.by_nr.entry(nr).or_default();
        if conditions.is_empty() {
            self.unconditional.insert(nr);
            rules.clear();
        } else if !self.unconditional.contains(&nr) {
            rules.push(
                SeccompRule::new(conditions.to_vec())
                    .map_err(|e| SandboxError::Seccomp(e.to_string()))?,
            );
        }
        Ok(())
    }
}

/// An entry's argument conditions, in seccompiler's terms.
fn conditions(sc: &LinuxSyscall) -> Result<Vec<SeccompCondition>, SandboxError> {
    let mut out = Vec::new();
    for a in sc.args().iter().flatten() {
        let (op, value) = match a.op() {
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().unwrap_or(0),
            ),
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
            other => {
                return Err(SandboxError::Seccomp(format!(
                    "argument operator {other:?} is not supported"
                )))
            }
        };
        let index = u8::try_from(a.index())
            .map_err(|_| SandboxError::Seccomp(format!("argument index {}", a.index())))?;
        out.push(
            SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                .map_err(|e| SandboxError::Seccomp(e.to_string()))?,
        );
    }
    Ok(out)
}

/// Install compiled filters on the calling thread (needs no_new_privs or CAP_SYS_ADMIN).
pub fn apply(programs: &[BpfProgram]) -> Result<(), SandboxError> {
    for p in programs {
        seccompiler::apply_filter(p).map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    }
    Ok(())
}

/// The number of a syscall on this architecture, by its name (without the SYS_ prefix).
pub fn syscall_number(name: &str) -> Option<i64> {
    syscalls::Sysno::from_str(name)
        .ok()
        .map(|s| i64::from(s.id()))
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
    fn policy_compiles_to_the_allow_list_then_one_program_per_errno() {
        let programs = compile(&policy().unwrap()).unwrap();
        assert_eq!(programs.len(), 3, "allow-list, EPERM and ENOSYS");
        assert!(programs.iter().all(|p| !p.is_empty()));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_allowed_name_is_a_syscall_of_x86_64() {
        let unknown: Vec<&&str> = ALLOWED
            .iter()
            .filter(|n| syscall_number(n).is_none())
            .collect();
        assert!(unknown.is_empty(), "not x86_64 syscalls: {unknown:?}");
    }

    /// What the kernel's classic-BPF interpreter does with the instructions seccompiler
    /// emits (load word, and, jumps, return), for one call.
    fn run(prog: &[seccompiler::sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                0 => nr as u32,
                4 => arch,
                16..=63 => {
                    let a = args[(off as usize - 16) / 8];
                    if off.is_multiple_of(8) {
                        a as u32
                    } else {
                        (a >> 32) as u32
                    }
                }
                _ => panic!("load of offset {off}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &prog[pc];
            pc += 1;
            match (i.code & 0x07, i.code & 0xf0) {
                (0x00, _) => acc = word(i.k),
                (0x04, 0x50) => acc &= i.k,
                (0x05, 0x00) => pc += i.k as usize,
                (0x05, op) => {
                    let taken = match op {
                        0x10 => acc == i.k,
                        0x20 => acc > i.k,
                        0x30 => acc >= i.k,
                        0x40 => acc & i.k != 0,
                        _ => panic!("jump {op:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                (0x06, _) => return i.k,
                (class, op) => panic!("instruction {class:#x}/{op:#x}"),
            }
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const X32_BIT: i64 = 0x4000_0000;

    /// Every installed filter runs; the most severe action wins, and among equal ones the
    /// most recently installed (as `seccomp_run_filters` does).
    fn verdict(programs: &[BpfProgram], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut ret = ALLOW;
        for p in programs.iter().rev() {
            let r = run(p, arch, nr, args);
            if ((r & 0xffff_0000) as i32) < ((ret & 0xffff_0000) as i32) {
                ret = r;
            }
        }
        ret
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_filter_allows_the_listed_and_refuses_the_rest_x32_included() {
        use libc::*;
        let programs = compile(&policy().unwrap()).unwrap();
        let native = 62 | 0x8000_0000 | 0x4000_0000; // AUDIT_ARCH_X86_64
        let call = |nr: i64, args: [u64; 6]| verdict(&programs, native, nr, args);
        let no = [0u64; 6];
        let enosys = ERRNO | ENOSYS as u32;
        let eperm = ERRNO | EPERM as u32;
        assert_eq!(call(SYS_getpid, no), ALLOW);
        assert_eq!(call(SYS_openat, no), ALLOW);
        // The x32 ABI: the same numbers with bit 30 set, under the x86_64 audit arch.
        assert_eq!(call(SYS_getpid | X32_BIT, no), enosys, "x32 getpid");
        assert_eq!(call(SYS_mount | X32_BIT, no), enosys, "x32 mount");
        assert_eq!(call(SYS_execve | X32_BIT, no), enosys, "x32 execve");
        // The default: not listed, "not implemented".
        assert_eq!(call(1000, no), enosys, "an unknown number");
        for nr in [
            SYS_io_uring_setup,
            SYS_io_uring_enter,
            SYS_fanotify_init,
            SYS_iopl,
        ] {
            assert_eq!(call(nr, no), enosys, "{nr}");
        }
        // Named denials say EPERM, over the allow-list's ENOSYS.
        for nr in [
            SYS_mount,
            SYS_bpf,
            SYS_userfaultfd,
            SYS_perf_event_open,
            SYS_keyctl,
            SYS_add_key,
            SYS_request_key,
            SYS_kexec_load,
            SYS_init_module,
            SYS_finit_module,
            SYS_open_by_handle_at,
            SYS_setns,
            SYS_unshare,
            SYS_ptrace,
            SYS_pivot_root,
        ] {
            assert_eq!(call(nr, no), eperm, "{nr}");
        }
        // clone: a thread or a process, never a namespace; clone3 falls back to it.
        let clone = |flags: i32| call(SYS_clone, [flags as u64, 0, 0, 0, 0, 0]);
        assert_eq!(clone(SIGCHLD), ALLOW);
        assert_eq!(clone(CLONE_VM | CLONE_THREAD | CLONE_SIGHAND), ALLOW);
        for ns in [CLONE_NEWNET, CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID] {
            assert_eq!(clone(ns | SIGCHLD), eperm, "{ns:#x}");
        }
        assert_eq!(call(SYS_clone3, no), enosys);
        // socket: local, IPv4, IPv6 and netlink routing only.
        let socket = |domain: u64, proto: u64| call(SYS_socket, [domain, 1, proto, 0, 0, 0]);
        for family in [AF_UNIX, AF_INET, AF_INET6] {
            assert_eq!(socket(family as u64, 0), ALLOW, "{family}");
        }
        assert_eq!(socket(AF_NETLINK as u64, NETLINK_ROUTE as u64), ALLOW);
        assert_eq!(socket(AF_NETLINK as u64, NETLINK_AUDIT as u64), enosys);
        assert_eq!(socket(AF_VSOCK as u64, 0), enosys);
        assert_eq!(socket(AF_PACKET as u64, 0), enosys);
        assert_eq!(socket(1 << 32 | AF_INET as u64, 0), enosys, "high bits set");
        // personality: queries and plain Linux, not turning randomisation off.
        let personality = |p: u64| call(SYS_personality, [p, 0, 0, 0, 0, 0]);
        assert_eq!(personality(0xffff_ffff), ALLOW);
        assert_eq!(personality(0), ALLOW);
        assert_eq!(personality(ADDR_NO_RANDOMIZE as u64), enosys);
        // Another architecture (i386 through int 0x80) is killed outright.
        let i386 = 3 | 0x4000_0000;
        assert_eq!(verdict(&programs, i386, SYS_getpid, no), KILL_PROCESS);
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
