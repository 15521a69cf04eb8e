//! The supervisor's only `unsafe` code: process creation with namespaces, a few ioctls,
//! quotactl_fd(2) (project quotas) and installing a compiled seccomp filter.
//!
//! Everything else uses safe wrappers (nix, caps, libseccomp). Keeping the raw syscalls here
//! makes the audit surface one file.
#![allow(unsafe_code)] // The one file that may (the workspace denies it everywhere else).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// A process to start: everything is prepared by the parent, because the child of a raw
/// `clone` in a multi-threaded program may only make async-signal-safe calls until `execve`.
pub struct SpawnPlan {
    /// Namespaces to create (empty for a plain child).
    pub namespaces: CloneFlags,
    /// Absolute path of the program.
    pub program: CString,
    /// argv, including argv[0].
    pub argv: Vec<CString>,
    /// The complete environment.
    pub envp: Vec<CString>,
    /// Working directory, if any.
    pub cwd: Option<CString>,
    /// fd that becomes the child's stdin.
    pub stdin: OwnedFd,
    /// fd that becomes the child's stdout.
    pub stdout: OwnedFd,
    /// fd that becomes the child's stderr.
    pub stderr: OwnedFd,
    /// fds that become the child's fds 3, 4, ... in order (at most [`MAX_EXTRA_FDS`]).
    pub extra_fds: Vec<OwnedFd>,
    /// Start a new session (so signals can go to the whole process group).
    pub setsid: bool,
    /// In a new user namespace: become uid/gid 0 there before exec, so the exec keeps the
    /// namespace's capabilities.
    pub become_userns_root: bool,
    /// How the child enters its cgroup (see `sandbox::cgroup::Join`), if it has one.
    pub cgroup: Option<CgroupJoin>,
}

/// Fds for entering a cgroup at creation: v1 `tasks` files the child writes "0" to itself,
/// or a v2 cgroup directory for clone3's CLONE_INTO_CGROUP.
pub enum CgroupJoin {
    /// cgroup v1 `tasks` files, opened for writing.
    Tasks(Vec<OwnedFd>),
    /// cgroup v2 directory.
    Dir(OwnedFd),
}

/// Most cgroup v1 hierarchies a child can join.
const MAX_TASK_FDS: usize = 16;

/// How many extra fds a child can inherit.
pub const MAX_EXTRA_FDS: usize = 4;

/// A child created by [`spawn_paused`] that has not yet exec'd: it waits for [`Paused::resume`]
/// so the parent can write its id maps and put it into its cgroup first.
pub struct Paused {
    /// Host pid of the child.
    pub pid: Pid,
    go: OwnedFd,
    exec_err: OwnedFd,
}

/// Why a paused child could not exec.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// clone(2) failed.
    #[error("clone failed: {0} (hint: creating namespaces needs root and a kernel with user namespaces enabled)")]
    Clone(Errno),
    /// pipe(2) failed.
    #[error("pipe failed: {0}")]
    Pipe(Errno),
    /// The child could not get going: the stage names the step.
    #[error("child failed at {stage}: {errno}")]
    Child {
        /// The step that failed in the child.
        stage: &'static str,
        /// Its error.
        errno: Errno,
    },
}

const STAGES: [&str; 9] = [
    "wait for parent",
    "setgroups",
    "setresgid",
    "setresuid",
    "setsid",
    "dup2",
    "chdir",
    "execve",
    "join cgroup",
];

/// Start a child in new namespaces, paused before exec.
///
/// The child blocks until [`Paused::resume`], then execs `plan.program`. Errors in the child
/// are reported back through a close-on-exec pipe, as std's `Command` does.
pub fn spawn_paused(plan: &SpawnPlan) -> Result<Paused, SpawnError> {
    let (go_r, go_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;

    // dup2 onto 0..=3 in the child must not clobber a source fd: move low sources out of the
    // way first (possible when the supervisor itself runs with a closed stdio fd).
    if plan.extra_fds.len() > MAX_EXTRA_FDS {
        return Err(SpawnError::Pipe(Errno::EMFILE));
    }
    let raised: Vec<OwnedFd> = [&plan.stdin, &plan.stdout, &plan.stderr]
        .into_iter()
        .chain(plan.extra_fds.iter())
        .map(raise_fd)
        .collect::<Result<_, _>>()
        .map_err(SpawnError::Pipe)?;
    let mut fds = [-1; 3 + MAX_EXTRA_FDS];
    for (slot, fd) in fds.iter_mut().zip(raised.iter()) {
        *slot = fd.as_raw_fd();
    }

    // Raw pointer arrays, built before the clone (no allocation is allowed after it).
    let argv: Vec<*const libc::c_char> = plan
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = plan
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let child = ChildArgs {
        go: go_r.as_raw_fd(),
        err: err_w.as_raw_fd(),
        program: plan.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: plan.cwd.as_ref().map(|c| c.as_ptr()),
        fds,
        tasks: [-1; MAX_TASK_FDS],
        setsid: plan.setsid,
        become_root: plan.become_userns_root,
    };

    let mut tasks = [-1; MAX_TASK_FDS];
    let mut into_cgroup = None;
    match &plan.cgroup {
        Some(CgroupJoin::Tasks(fds)) => {
            if fds.len() > MAX_TASK_FDS {
                return Err(SpawnError::Pipe(Errno::EMFILE));
            }
            for (slot, fd) in tasks.iter_mut().zip(fds) {
                *slot = fd.as_raw_fd();
            }
        }
        Some(CgroupJoin::Dir(fd)) => into_cgroup = Some(fd.as_raw_fd()),
        None => {}
    }
    let child = ChildArgs { tasks, ..child };

    let ret = match into_cgroup {
        None => {
            let flags = plan.namespaces.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
            // SAFETY: a fork-like clone (no new stack, no CLONE_VM): the child gets a
            // copy-on-write copy of this address space with only the calling thread. It runs
            // `child_after_clone`, which only makes raw syscalls on data prepared above and
            // never returns.
            unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) }
        }
        Some(dir) => {
            let args = CloneArgs {
                flags: plan.namespaces.bits() as u64 | CLONE_INTO_CGROUP,
                exit_signal: libc::SIGCHLD as u64,
                cgroup: dir as u64,
                ..CloneArgs::default()
            };
            // SAFETY: as above, fork-like (stack 0): clone3 with a valid, fully initialised
            // clone_args of the size we pass.
            unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    &args as *const CloneArgs,
                    std::mem::size_of::<CloneArgs>(),
                )
            }
        }
    };
    if ret < 0 {
        return Err(SpawnError::Clone(Errno::last()));
    }
    if ret == 0 {
        // SAFETY: we are the freshly cloned child; see `child_after_clone`.
        unsafe { child_after_clone(&child) }
    }
    drop(go_r);
    drop(err_w);
    drop(raised);
    Ok(Paused {
        pid: Pid::from_raw(ret as i32),
        go: go_w,
        exec_err: err_r,
    })
}

impl Paused {
    /// Let the child exec, and wait until it has (or has failed to).
    pub fn resume(self) -> Result<Pid, SpawnError> {
        nix::unistd::write(&self.go, b"g").map_err(|errno| SpawnError::Child {
            stage: STAGES[0],
            errno,
        })?;
        drop(self.go);
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < buf.len() {
            match nix::unistd::read(&self.exec_err, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(SpawnError::Child {
                        stage: "read exec status",
                        errno,
                    })
                }
            }
        }
        if got == 0 {
            return Ok(self.pid);
        }
        let stage = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        // The child has _exit'ed; the reaper collects it.
        Err(SpawnError::Child {
            stage: STAGES.get(stage).copied().unwrap_or("unknown"),
            errno: Errno::from_raw(errno),
        })
    }

    /// Abandon the child: it exits without exec'ing when the go pipe closes.
    pub fn abort(self) -> Pid {
        self.pid
    }
}

struct ChildArgs {
    go: RawFd,
    err: RawFd,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: Option<*const libc::c_char>,
    fds: [RawFd; 3 + MAX_EXTRA_FDS],
    tasks: [RawFd; MAX_TASK_FDS],
    setsid: bool,
    become_root: bool,
}

/// Runs in the cloned child until exec. Only raw syscalls: no allocation, no locks, no panics.
///
/// # Safety
/// Must be called only in the child of the raw clone in [`spawn_paused`], with pointers that
/// stay valid in the child's copy of memory.
unsafe fn child_after_clone(a: &ChildArgs) -> ! {
    unsafe fn fail(err: RawFd, stage: u32) -> ! {
        let errno = *libc::__errno_location();
        let mut rec = [0u8; 8];
        let s = stage.to_ne_bytes();
        let e = errno.to_ne_bytes();
        let mut i = 0;
        while i < 4 {
            rec[i] = s[i];
            rec[i + 4] = e[i];
            i += 1;
        }
        libc::write(err, rec.as_ptr().cast(), rec.len());
        libc::_exit(127)
    }
    // Join the cgroups first, while still the host's root (the tasks files were opened by
    // the parent anyway). "0" means the calling thread, which is the whole process here.
    let mut i = 0;
    while i < MAX_TASK_FDS {
        if a.tasks[i] >= 0 && libc::write(a.tasks[i], b"0".as_ptr().cast(), 1) != 1 {
            fail(a.err, 8);
        }
        i += 1;
    }
    // Wait for the parent to write id maps.
    let mut b = 0u8;
    loop {
        let n = libc::read(a.go, (&mut b as *mut u8).cast(), 1);
        if n == 1 {
            break;
        }
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        // The parent gave up (pipe closed): leave quietly.
        libc::_exit(126);
    }
    if a.become_root {
        // Raw syscalls: glibc's setuid family signals every thread it knows of, and this
        // child has only one of the parent's threads.
        if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0 {
            fail(a.err, 1);
        }
        if libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) != 0 {
            fail(a.err, 2);
        }
        if libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) != 0 {
            fail(a.err, 3);
        }
    }
    if a.setsid && libc::setsid() < 0 {
        fail(a.err, 4);
    }
    let mut target = 0;
    while target < (3 + MAX_EXTRA_FDS) as i32 {
        let fd = a.fds[target as usize];
        if fd >= 0 && libc::dup2(fd, target) < 0 {
            fail(a.err, 5);
        }
        target += 1;
    }
    // Signal dispositions that were ignored survive exec; Rust ignores SIGPIPE.
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    if let Some(cwd) = a.cwd {
        if libc::chdir(cwd) != 0 {
            fail(a.err, 6);
        }
    }
    libc::execve(a.program, a.argv, a.envp);
    fail(a.err, 7)
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Bring the loopback interface of the current network namespace up (SIOCSIFFLAGS).
///
/// A new network namespace starts with `lo` down; PID 1 on a fresh node has the same problem.
pub fn loopback_up() -> Result<(), Errno> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is a plain C struct; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags of a valid ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the union member ifru_flags was just written by the kernel.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS reads the ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Allocations this large are their own mappings, returned to the kernel when freed.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Make large allocations give their memory back when freed. glibc raises its mmap
/// threshold after each large free (up to 32 MiB), so after an agent's 8 MiB request body
/// the next ones come from a thread's heap arena and stay in the supervisor's RSS; a fixed
/// threshold turns that adjustment off. Call before the runtime starts its threads.
pub fn return_large_frees() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes the allocator's tuning; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

/// Turn a Rust string into a C string, naming it in the error when it holds a NUL byte.
pub fn cstring(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} {s:?} contains a NUL byte"))
}

/// A close-on-exec duplicate of `fd` numbered 10 or above.
fn raise_fd(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)).map(|raw| {
        // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) }
    })
}

/// fork(2) for a process known to be single-threaded (the sandbox init).
pub fn fork_single_threaded() -> Result<nix::unistd::ForkResult, Errno> {
    // SAFETY: only called by the sandbox init, which never starts a thread, so the child
    // inherits a consistent heap and may do anything.
    unsafe { nix::unistd::fork() }
}

/// Mark every fd above stderr close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC), so
/// nothing the caller left open reaches a program exec'd from here (`clawkeep exec`'s
/// command gets only its stdin, stdout and stderr).
pub fn cloexec_above_stdio() -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing: it only sets a flag on
    // fds, so no fd this process owns becomes invalid under it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(r).map(drop)
}

/// Install a compiled seccomp filter on the calling thread: seccomp(2) with
/// SECCOMP_SET_MODE_FILTER (the caller has set no_new_privs or holds CAP_SYS_ADMIN).
pub fn install_seccomp(program: &[libc::sock_filter]) -> Result<(), Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the instructions; the cast to *mut is its ABI's.
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `len` initialised instructions that outlive the call; the
    // kernel copies them and does not keep the pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    Errno::result(r).map(drop)
}

/// The Landlock ABI version this kernel offers: landlock_create_ruleset(2) with
/// LANDLOCK_CREATE_RULESET_VERSION, which creates nothing. ENOSYS: no Landlock in the
/// kernel; EOPNOTSUPP: built in but not enabled (not in `lsm=`).
pub fn landlock_abi() -> Result<i32, Errno> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with this flag and a NULL attribute of size 0 the kernel reads no memory and
    // only returns a number.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    Errno::result(r).map(|v| v as i32)
}

/// Take ownership of an fd the launcher passed down (3 to 6 for the sandbox init), if it is
/// open. It is made close-on-exec so the agent never inherits it.
pub fn take_fd(fd: RawFd) -> Option<OwnedFd> {
    let flags = nix::fcntl::fcntl(
        // SAFETY: borrowing the fd only for the duration of this F_SETFD call; fcntl fails
        // with EBADF if it is not open.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    if flags.is_err() {
        return None;
    }
    // SAFETY: the fd is open (F_SETFD succeeded) and by the launcher's contract nothing else
    // in this process owns it.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// `struct fsxattr` of FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR (linux/fs.h): the extended
/// attributes of an inode, its project id among them.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsXattr {
    /// FS_XFLAG_* flags.
    pub xflags: u32,
    /// Extent size hint.
    pub extsize: u32,
    /// Extents in use (read only).
    pub nextents: u32,
    /// Project id.
    pub projid: u32,
    /// Copy-on-write extent size hint.
    pub cowextsize: u32,
    pad: [u8; 8],
}

/// Files made in a directory with this flag get the directory's project id (and, for
/// directories, the flag).
pub const FS_XFLAG_PROJINHERIT: u32 = 0x0000_0200;

const FS_IOC_FSGETXATTR: libc::c_ulong =
    nix::request_code_read!(b'X', 31, std::mem::size_of::<FsXattr>()) as libc::c_ulong;
const FS_IOC_FSSETXATTR: libc::c_ulong =
    nix::request_code_write!(b'X', 32, std::mem::size_of::<FsXattr>()) as libc::c_ulong;

/// The extended attributes (project id, flags) of the file open at `fd`.
pub fn fs_get_xattr(fd: std::os::fd::BorrowedFd<'_>) -> Result<FsXattr, Errno> {
    let mut x = FsXattr::default();
    // SAFETY: FS_IOC_FSGETXATTR writes one struct fsxattr, which `x` is (repr(C), same size
    // as the request code says), through a pointer valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FSGETXATTR, &mut x as *mut FsXattr) };
    Errno::result(r).map(|_| x)
}

/// Set the extended attributes (project id, flags) of the file open at `fd`.
pub fn fs_set_xattr(fd: std::os::fd::BorrowedFd<'_>, x: &FsXattr) -> Result<(), Errno> {
    // SAFETY: FS_IOC_FSSETXATTR reads one struct fsxattr from a pointer valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FSSETXATTR, x as *const FsXattr) };
    Errno::result(r).map(drop)
}

/// Quota type of projects (linux/quota.h).
pub const PRJQUOTA: u32 = 2;
/// Q_XGETQSTATV: the quota state of a filesystem, versioned (linux/dqblk_xfs.h).
const Q_XGETQSTATV: u32 = (b'X' as u32) << 8 | 8;
/// The quota format of ext4's hidden quota inodes, which Q_QUOTAON names (linux/quota.h).
const QFMT_VFS_V1: u32 = 4;
/// Version of [`QuotaState`] asked for.
const FS_QSTATV_VERSION1: i8 = 1;
/// Project quota usage is accounted ([`QuotaState::flags`]).
pub const FS_QUOTA_PDQ_ACCT: u16 = 1 << 4;
/// Project quota limits are enforced ([`QuotaState::flags`]).
pub const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;

/// `struct fs_qfilestatv` (linux/dqblk_xfs.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct QuotaFileState {
    ino: u64,
    nblks: u64,
    nextents: u32,
    pad: u32,
}

/// `struct fs_quota_statv` (linux/dqblk_xfs.h): what Q_XGETQSTATV reports.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct QuotaState {
    version: i8,
    pad1: u8,
    /// FS_QUOTA_* flags: which quota types are accounted and enforced.
    pub flags: u16,
    incoredqs: u32,
    uquota: QuotaFileState,
    gquota: QuotaFileState,
    pquota: QuotaFileState,
    btimelimit: i32,
    itimelimit: i32,
    rtbtimelimit: i32,
    bwarnlimit: u16,
    iwarnlimit: u16,
    rtbwarnlimit: u16,
    pad3: u16,
    pad4: u32,
    pad2: [u64; 7],
}

/// quotactl_fd(2) with `cmd` (a Q_* command) on the quota type `kind` of the filesystem of
/// `fd`.
///
/// # Safety
/// `addr` must be null or point to memory of the type `cmd` reads or writes, valid for the
/// call.
unsafe fn quotactl_fd(
    fd: RawFd,
    cmd: u32,
    kind: u32,
    id: u32,
    addr: *mut libc::c_void,
) -> Result<(), Errno> {
    // QCMD(cmd, type) of linux/quota.h.
    let cmd = (cmd << 8) | (kind & 0xff);
    let r = libc::syscall(
        libc::SYS_quotactl_fd,
        fd as libc::c_uint,
        cmd as libc::c_uint,
        id,
        addr,
    );
    Errno::result(r).map(drop)
}

/// Whether this kernel has quotactl_fd(2) (Linux 5.14; CONFIG_QUOTACTL).
pub fn has_quotactl_fd() -> bool {
    // SAFETY: fd -1 is never open, so the kernel returns EBADF (or ENOSYS without the call)
    // before it would look at the null address.
    let r = unsafe { quotactl_fd(-1, Q_XGETQSTATV, PRJQUOTA, 0, std::ptr::null_mut()) };
    r != Err(Errno::ENOSYS)
}

/// The quota state of the filesystem of `fd` (Q_XGETQSTATV): whether project quotas are
/// accounted and enforced there.
pub fn quota_state(fd: std::os::fd::BorrowedFd<'_>) -> Result<QuotaState, Errno> {
    let mut st = QuotaState {
        version: FS_QSTATV_VERSION1,
        ..QuotaState::default()
    };
    // SAFETY: Q_XGETQSTATV fills one struct fs_quota_statv, which `st` is (repr(C)), with
    // its version set as the kernel requires.
    unsafe {
        quotactl_fd(
            fd.as_raw_fd(),
            Q_XGETQSTATV,
            PRJQUOTA,
            0,
            (&mut st as *mut QuotaState).cast(),
        )
    }?;
    Ok(st)
}

/// Turn enforcement of project quota limits on for the filesystem of `fd` (Q_QUOTAON), where
/// they are accounted already (ext4 with the quota feature, xfs).
pub fn quota_enforce(fd: std::os::fd::BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: Q_QUOTAON on a filesystem that keeps its quota in hidden files reads nothing
    // from the address; the others refuse quotactl_fd's Q_QUOTAON without a path.
    unsafe {
        quotactl_fd(
            fd.as_raw_fd(),
            libc::Q_QUOTAON as u32,
            PRJQUOTA,
            QFMT_VFS_V1,
            std::ptr::null_mut(),
        )
    }
}

/// The usage and limits of project `id` on the filesystem of `fd` (Q_GETQUOTA).
pub fn quota_get(fd: std::os::fd::BorrowedFd<'_>, id: u32) -> Result<libc::dqblk, Errno> {
    // SAFETY: dqblk is a plain C struct; all-zero is a valid value.
    let mut q: libc::dqblk = unsafe { std::mem::zeroed() };
    // SAFETY: Q_GETQUOTA writes one struct if_dqblk, which libc::dqblk is.
    unsafe {
        quotactl_fd(
            fd.as_raw_fd(),
            libc::Q_GETQUOTA as u32,
            PRJQUOTA,
            id,
            (&mut q as *mut libc::dqblk).cast(),
        )
    }?;
    Ok(q)
}

/// Set the limits of project `id` on the filesystem of `fd` (Q_SETQUOTA; `q.dqb_valid` says
/// which fields count).
pub fn quota_set(fd: std::os::fd::BorrowedFd<'_>, id: u32, q: &libc::dqblk) -> Result<(), Errno> {
    let mut q = *q;
    // SAFETY: Q_SETQUOTA reads one struct if_dqblk, which libc::dqblk is.
    unsafe {
        quotactl_fd(
            fd.as_raw_fd(),
            libc::Q_SETQUOTA as u32,
            PRJQUOTA,
            id,
            (&mut q as *mut libc::dqblk).cast(),
        )
    }
}
