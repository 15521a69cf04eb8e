//! The seccomp policy: default-deny, modelled on the runc/Docker default profile. What an
//! agent may ask the kernel for is listed ([`ALLOWED`], plus `clone` without namespace flags,
//! `socket` of the families programs use and `personality` queries); anything else fails
//! with ENOSYS, so programs fall back as on an older kernel, and the calls that matter
//! ([`DENIED`], namespace flags) fail with EPERM. Written into config.json as OCI seccomp
//! (so runc enforces the same) and compiled from there to one BPF program with libseccomp,
//! as runc does. Only the native architecture is allowed: an x32 or i386 call gets ENOSYS.

use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nix::sys::memfd::MFdFlags;
use sha2::{Digest, Sha256};

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

/// A compiled filter: classic-BPF instructions as the kernel takes them.
pub type Program = Vec<libc::sock_filter>;

/// The file beside config.json that keeps a bundle's compiled filter ([`cached`]): the
/// SHA-256 of the seccomp section it was compiled from, then the instructions.
pub const COMPILED_FILE: &str = "seccomp.bpf";

/// Compile an OCI seccomp section into one BPF program with libseccomp, laid out as a
/// binary search over syscall numbers (what runc and crun load too): the kernel runs a new
/// filter once for every syscall number when it is installed, to find the calls it can
/// always allow, so a linear list of a few hundred calls would cost that much on every
/// sandbox start. Compiling takes about a millisecond; [`cached`] does it once.
///
/// Only the native architecture is allowed; calls through another ABI on the same CPU (x32
/// numbers, i386's `int 0x80`) fail with ENOSYS. Only what clawkeep writes is supported:
/// default action allow or errno, allow and errno actions, equal and masked-equal argument
/// conditions. Anything else is refused rather than half-applied.
pub fn compile(spec: &LinuxSeccomp) -> Result<Program, SandboxError> {
    let default = match spec.default_action() {
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno(spec.default_errno_ret())?)
        }
        other => {
            return Err(SandboxError::Seccomp(format!(
                "default action {other:?} is not supported by clawkeep's launcher (use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW)"
            )))
        }
    };
    let lib = |what: &str, e: libseccomp::error::SeccompError| {
        SandboxError::Seccomp(format!("libseccomp: {what}: {e}"))
    };
    // A new context holds the native architecture only.
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| lib("new filter", e))?;
    ctx.set_act_badarch(ScmpAction::Errno(DEFAULT_ERRNO))
        .map_err(|e| lib("bad-architecture action", e))?;
    ctx.set_ctl_optimize(2)
        .map_err(|e| lib("binary-tree layout", e))?;
    for sc in spec.syscalls().iter().flatten() {
        let action = match sc.action() {
            LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
            LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno(sc.errno_ret())?),
            other => {
                return Err(SandboxError::Seccomp(format!(
                "action {other:?} for {:?} is not supported (use SCMP_ACT_ALLOW or SCMP_ACT_ERRNO)",
                sc.names()
            )))
            }
        };
        let conditions = conditions(sc)?;
        // What the default does already needs no rule (libseccomp refuses one).
        if action == default {
            continue;
        }
        for name in sc.names() {
            // A syscall this architecture does not have cannot be called either. The
            // number comes from the syscalls crate, which knows calls newer than the
            // libseccomp Debian ships (cachestat, mseal, ...).
            let Some(nr) = syscall_number(name).and_then(|n| i32::try_from(n).ok()) else {
                continue;
            };
            let call = ScmpSyscall::from(nr);
            if conditions.is_empty() {
                ctx.add_rule(action, call)
            } else {
                ctx.add_rule_conditional(action, call, &conditions)
            }
            .map_err(|e| lib(&format!("rule for {name}"), e))?;
        }
    }
    let out = nix::sys::memfd::memfd_create(c"clawkeep-seccomp", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| SandboxError::Seccomp(format!("memfd_create: {e}")))?;
    ctx.export_bpf(&out).map_err(|e| lib("export", e))?;
    let mut file = std::fs::File::from(out);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| SandboxError::Seccomp(format!("reading the exported filter: {e}")))?;
    parse(&bytes).ok_or_else(|| {
        SandboxError::Seccomp(format!(
            "libseccomp exported {} bytes, not a filter",
            bytes.len()
        ))
    })
}

/// An entry's argument conditions, in libseccomp's terms (all must hold).
fn conditions(sc: &LinuxSyscall) -> Result<Vec<ScmpArgCompare>, SandboxError> {
    let mut out = Vec::new();
    for a in sc.args().iter().flatten() {
        let (op, value) = match a.op() {
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            ),
            LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
            other => {
                return Err(SandboxError::Seccomp(format!(
                    "argument operator {other:?} is not supported (use SCMP_CMP_EQ or SCMP_CMP_MASKED_EQ)"
                )))
            }
        };
        let index = u32::try_from(a.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| {
                SandboxError::Seccomp(format!(
                    "argument index {} (a syscall has 6: 0 to 5)",
                    a.index()
                ))
            })?;
        out.push(ScmpArgCompare::new(index, op, value));
    }
    Ok(out)
}

fn errno(ret: Option<u32>) -> Result<i32, SandboxError> {
    let e = ret.unwrap_or(libc::EPERM as u32);
    i32::try_from(e)
        .ok()
        .filter(|e| (1..4096).contains(e))
        .ok_or_else(|| SandboxError::Seccomp(format!("errnoRet {e} is not an errno (1 to 4095)")))
}

/// Instructions from their bytes (8 each, in the machine's byte order); `None` when the
/// length is not a whole, non-empty program the kernel would take (at most 4096).
fn parse(bytes: &[u8]) -> Option<Program> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > 4096 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// The instructions' bytes: what [`keep`] writes and the launcher sends the init (fd 6).
pub fn to_bytes(program: &[libc::sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.extend_from_slice(&[i.jt, i.jf]);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// The SHA-256 of a seccomp section as JSON: what a compiled filter is kept under.
fn digest(spec: &LinuxSeccomp) -> Result<[u8; 32], SandboxError> {
    let json = serde_json::to_vec(spec).map_err(spec_err)?;
    Ok(Sha256::digest(&json).into())
}

/// The last filter compiled in this process, by the digest of its section: every agent of
/// a fleet has the same one, so the supervisor compiles it once.
static LAST: Mutex<Option<([u8; 32], Arc<Program>)>> = Mutex::new(None);

/// The compiled filter for `spec` in `bundle`: the one compiled last in this process, or
/// the one [`keep`] left in the bundle, when either was compiled from this very section;
/// otherwise compiled now. A kept file that does not match is ignored, never trusted.
pub fn cached(bundle: &Path, spec: &LinuxSeccomp) -> Result<Arc<Program>, SandboxError> {
    let d = digest(spec)?;
    // A poisoned lock only means another thread panicked mid-update: the value is whole.
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((key, program)) = last.as_ref() {
        if *key == d {
            return Ok(Arc::clone(program));
        }
    }
    let kept = std::fs::read(bundle.join(COMPILED_FILE))
        .ok()
        .filter(|b| b.len() > 32 && b[..32] == d)
        .and_then(|b| parse(&b[32..]));
    let program = Arc::new(match kept {
        Some(p) => p,
        None => compile(spec)?,
    });
    *last = Some((d, Arc::clone(&program)));
    Ok(program)
}

/// Compile `spec` (or take it from this process's last) and keep it in `bundle`, so that a
/// later `clawkeep run` of the bundle need not compile it again.
pub fn keep(bundle: &Path, spec: &LinuxSeccomp) -> Result<(), SandboxError> {
    let program = cached(bundle, spec)?;
    let mut out = digest(spec)?.to_vec();
    out.extend_from_slice(&to_bytes(&program));
    let path = bundle.join(COMPILED_FILE);
    let tmp = bundle.join(format!("{COMPILED_FILE}.tmp"));
    std::fs::write(&tmp, out)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| SandboxError::Io {
            path,
            what: "write the compiled seccomp filter".into(),
            source: e,
        })
}

/// The program the launcher sent; an empty read means no filter.
pub fn from_bytes(b: &[u8]) -> Result<Option<Program>, SandboxError> {
    if b.is_empty() {
        return Ok(None);
    }
    parse(b).map(Some).ok_or_else(|| {
        SandboxError::Seccomp(format!("the launcher sent {} bytes, not a filter", b.len()))
    })
}

/// Install a compiled filter on the calling thread (needs no_new_privs or CAP_SYS_ADMIN).
pub fn apply(program: &[libc::sock_filter]) -> Result<(), SandboxError> {
    if program.is_empty() {
        return Ok(());
    }
    crate::sys::install_seccomp(program)
        .map_err(|e| SandboxError::Seccomp(format!("installing the filter: {e}")))
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

    /// The longest path through the program, in instructions: what the kernel walks for the
    /// worst syscall number (BPF jumps only forward, so this is a longest path in a DAG).
    fn longest_path(prog: &[libc::sock_filter]) -> usize {
        let mut longest = vec![0usize; prog.len() + 1];
        for pc in (0..prog.len()).rev() {
            let i = &prog[pc];
            let next = |off: usize| longest.get(pc + 1 + off).copied().unwrap_or(0);
            longest[pc] = 1 + match (i.code & 0x07, i.code & 0xf0) {
                (0x06, _) => 0,
                (0x05, 0x00) => next(i.k as usize),
                (0x05, _) => next(usize::from(i.jt)).max(next(usize::from(i.jf))),
                _ => next(0),
            };
        }
        longest[0]
    }

    #[test]
    fn the_policy_compiles_to_one_binary_search_not_a_list_of_every_call() {
        let program = compile(&policy().unwrap()).unwrap();
        // A linear chain over ~300 allowed calls is over a thousand instructions deep (what
        // seccompiler emitted: 0.8 ms for the kernel to install); a search tree is dozens.
        let depth = longest_path(&program);
        assert!(
            depth < 80,
            "{depth} instructions on the longest path of {}",
            program.len()
        );
    }

    #[test]
    fn a_kept_filter_is_used_only_for_the_section_it_was_compiled_from() {
        let dir = tempfile::tempdir().unwrap();
        let spec = policy().unwrap();
        keep(dir.path(), &spec).unwrap();
        let file = dir.path().join(COMPILED_FILE);
        let kept = std::fs::read(&file).unwrap();
        assert_eq!(&kept[32..], to_bytes(&compile(&spec).unwrap()).as_slice());
        // A file left by another section (or tampered with) is compiled over, not trusted:
        // here one that allows everything, kept under this section's digest's neighbour.
        let mut other = spec.clone();
        other.set_default_errno_ret(Some(libc::EACCES as u32));
        *LAST.lock().unwrap() = None;
        let program = cached(dir.path(), &other).unwrap();
        assert_eq!(*program, compile(&other).unwrap());
        assert_ne!(to_bytes(&program), kept[32..].to_vec());
        // And one whose digest matches is read, not compiled: swap in a marker program.
        *LAST.lock().unwrap() = None;
        let marker = vec![libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        }];
        let mut forged = kept[..32].to_vec();
        forged.extend_from_slice(&to_bytes(&marker));
        std::fs::write(&file, forged).unwrap();
        assert_eq!(*cached(dir.path(), &spec).unwrap(), marker);
        *LAST.lock().unwrap() = None;
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

    /// What the kernel's classic-BPF interpreter does with the instructions libseccomp
    /// emits (load word, and, jumps, return), for one call.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
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
    const X32_BIT: i64 = 0x4000_0000;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_filter_allows_the_listed_and_refuses_the_rest_x32_included() {
        use libc::*;
        let program = compile(&policy().unwrap()).unwrap();
        let native = 62 | 0x8000_0000 | 0x4000_0000; // AUDIT_ARCH_X86_64
        let call = |nr: i64, args: [u64; 6]| run(&program, native, nr, args);
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
        // Calls newer than the libseccomp that compiled the filter are allowed by number.
        assert_eq!(call(451, no), ALLOW, "cachestat");
        assert_eq!(call(462, no), ALLOW, "mseal");
        // Another architecture (i386 through int 0x80) is not implemented either.
        let i386 = 3 | 0x4000_0000;
        assert_eq!(run(&program, i386, SYS_getpid, no), enosys);
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
