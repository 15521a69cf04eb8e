//! The tiny init that is PID 1 inside every sandbox.
//!
//! The launcher execs it (`clawkeep __sandbox-init BUNDLE`) in the new namespaces as the
//! namespace's root. It builds the filesystem view from config.json, drops every privilege,
//! starts the agent's process, forwards signals to it, reaps every zombie, and reports over fd
//! 3 (`started PID`, `exit code N`, `exit signal N`, `error MESSAGE`). It is single-threaded,
//! so fork is safe here.

use std::collections::HashSet;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::{LinuxCapabilities, LinuxNamespaceType, PosixRlimitType, Spec};

use super::{mounts, seccomp, SandboxError};

/// Exit code of init when the sandbox could not be set up.
pub const SETUP_FAILED: i32 = 125;

/// Run init for the bundle in `bundle`; returns the exit code for `main` to exit with.
///
/// `fds.status` is the report channel (fd 3) and `fds.config` config.json opened by the
/// launcher (fd 4); without it, init reads `bundle/config.json` itself. `fds.secrets` (fd 5)
/// carries the agent's secrets, if any ([`crate::secrets`]), and `fds.filter` (fd 6) the
/// compiled seccomp filter ([`seccomp::to_bytes`]); without it, init compiles the spec's.
pub fn run(bundle: &Path, fds: LauncherFds) -> i32 {
    let LauncherFds {
        status,
        config,
        secrets,
        filter,
    } = fds;
    let mut status = status.map(std::fs::File::from);
    let mut report = |line: &str| {
        if let Some(f) = status.as_mut() {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    };
    let loaded = match config {
        Some(fd) => serde_json::from_reader(std::io::BufReader::new(std::fs::File::from(fd)))
            .map_err(|e| e.to_string()),
        None => Spec::load(bundle.join("config.json")).map_err(|e| e.to_string()),
    };
    let spec: Spec = match loaded {
        Ok(s) => s,
        Err(e) => {
            report(&format!(
                "error reading {}/config.json: {e}",
                bundle.display()
            ));
            return SETUP_FAILED;
        }
    };
    let payload = match secrets.map(crate::secrets::read).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => {
            report(&format!("error {e}"));
            return SETUP_FAILED;
        }
    };
    let filter = match received_filter(&spec, filter) {
        Ok(f) => f,
        Err(e) => {
            report(&format!("error {e}"));
            return SETUP_FAILED;
        }
    };
    let prepared = match setup(&spec, payload, filter) {
        Ok(p) => p,
        Err(e) => {
            report(&format!("error {e}"));
            return SETUP_FAILED;
        }
    };
    match supervise(&spec, prepared, &mut report) {
        Ok(code) => code,
        Err(e) => {
            report(&format!("error {e}"));
            SETUP_FAILED
        }
    }
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t && n.path().is_none()))
}

pub(crate) fn sys_err(what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Init(format!("{what}: {e}"))
}

/// What `setup` computed for the supervision phase.
struct Prepared {
    /// The compiled seccomp filter, if the spec has one.
    filter: Option<seccomp::Program>,
    /// Secrets delivered as environment variables (`NAME=value`), for the agent only.
    secret_env: Vec<String>,
}

/// Namespaces, filesystem, hostname, loopback and rlimits: everything done with privileges.
fn setup(
    spec: &Spec,
    secrets: crate::secrets::Payload,
    filter: Option<seccomp::Program>,
) -> Result<Prepared, SandboxError> {
    if has_ns(spec, LinuxNamespaceType::Cgroup) {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| sys_err("unshare cgroup namespace", e))?;
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SandboxError::Spec("config.json has no root".into()))?;
    let rootfs: PathBuf = root.path().clone();
    // The supplementary groups first: a shared collection is reached through its group
    // (its directory lets no one else in), and the bind mounts below resolve it by path.
    if let Some(gids) = spec
        .process()
        .as_ref()
        .and_then(|p| p.user().additional_gids().clone())
        .filter(|g| !g.is_empty())
    {
        let gids: Vec<nix::unistd::Gid> =
            gids.into_iter().map(nix::unistd::Gid::from_raw).collect();
        nix::unistd::setgroups(&gids).map_err(|e| sys_err("setgroups", e))?;
    }
    // Nothing we mount may propagate back to the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| sys_err("make / private", e))?;
    nix::mount::mount(
        Some(&rootfs),
        &rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| sys_err(&format!("bind rootfs {}", rootfs.display()), e))?;
    let mut dev_mounted = false;
    for m in spec.mounts().iter().flatten() {
        mounts::mount_one(&rootfs, m)?;
        dev_mounted |= m.destination() == Path::new("/dev");
    }
    if dev_mounted {
        let devices = spec.linux().as_ref().and_then(|l| l.devices().clone());
        mounts::populate_dev(
            &rootfs,
            Path::new("/dev"),
            devices.as_deref().unwrap_or(&[]),
        )?;
    }
    place_secret_files(spec, &rootfs, &secrets.files)?;
    mounts::pivot(&rootfs)?;
    if let Some(linux) = spec.linux() {
        mounts::mask(linux.masked_paths().as_deref().unwrap_or(&[]))?;
        mounts::readonly(linux.readonly_paths().as_deref().unwrap_or(&[]))?;
    }
    if root.readonly() == Some(true) {
        // nosuid/nodev too: a set-uid file or a device node in the rootfs means nothing.
        mounts::remount_readonly(Path::new("/"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
    }
    if has_ns(spec, LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h).map_err(|e| sys_err("sethostname", e))?;
        }
    }
    if has_ns(spec, LinuxNamespaceType::Network) {
        crate::sys::loopback_up().map_err(|e| sys_err("bring lo up", e))?;
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| SandboxError::Spec("config.json has no process".into()))?;
    for r in process.rlimits().iter().flatten() {
        let res = rlimit_resource(r.typ())?;
        nix::sys::resource::setrlimit(res, r.soft(), r.hard())
            .map_err(|e| sys_err(&format!("setrlimit {:?}", r.typ()), e))?;
    }
    let secret_env = secrets
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.expose()))
        .collect();
    Ok(Prepared { filter, secret_env })
}

/// Put the secrets delivered as files on the spec's tmpfs at /run/secrets, then make it
/// read-only. Refuses when the spec has no such tmpfs: the files would land in the rootfs.
fn place_secret_files(
    spec: &Spec,
    rootfs: &Path,
    files: &[(String, crate::secrets::Value)],
) -> Result<(), SandboxError> {
    let dir = Path::new(crate::secrets::SECRETS_DIR);
    let has_tmpfs = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == dir && m.typ().as_deref() == Some("tmpfs"));
    if !has_tmpfs {
        if files.is_empty() {
            return Ok(());
        }
        return Err(SandboxError::Spec(format!(
            "secrets as files need a tmpfs mount at {} in config.json",
            dir.display()
        )));
    }
    let target = mounts::resolve_in(rootfs, dir)?;
    crate::secrets::write_files(&target, files).map_err(SandboxError::Init)?;
    nix::mount::mount(
        None::<&str>,
        &target,
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| sys_err(&format!("remount {} read-only", dir.display()), e))
}

pub(crate) fn rlimit_resource(
    t: PosixRlimitType,
) -> Result<nix::sys::resource::Resource, SandboxError> {
    use nix::sys::resource::Resource as R;
    Ok(match t {
        PosixRlimitType::RlimitCpu => R::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => R::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => R::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => R::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => R::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => R::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => R::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => R::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => R::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => R::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => R::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => R::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => R::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => R::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => R::RLIMIT_RTTIME,
    })
}

fn cap_set(
    list: Option<&HashSet<oci_spec::runtime::Capability>>,
) -> Result<caps::CapsHashSet, SandboxError> {
    list.into_iter()
        .flatten()
        .map(|c| {
            let name = serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            name.parse::<caps::Capability>()
                .map_err(|e| SandboxError::Spec(format!("capability {name:?}: {e}")))
        })
        .collect()
}

/// Reduce this process's capabilities to `wanted` (every set, the bounding set included: a
/// uid-0 process regains its bounding set on exec).
fn drop_capabilities(wanted: Option<&LinuxCapabilities>) -> Result<(), SandboxError> {
    use caps::CapSet;
    let get = |f: fn(&LinuxCapabilities) -> &Option<HashSet<oci_spec::runtime::Capability>>| {
        cap_set(wanted.and_then(|w| f(w).as_ref()))
    };
    let bounding = get(LinuxCapabilities::bounding)?;
    for cap in caps::all() {
        if !bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| sys_err("drop bounding capability", e))?;
        }
    }
    caps::set(None, CapSet::Ambient, &get(LinuxCapabilities::ambient)?)
        .map_err(|e| sys_err("set ambient capabilities", e))?;
    caps::set(
        None,
        CapSet::Inheritable,
        &get(LinuxCapabilities::inheritable)?,
    )
    .map_err(|e| sys_err("set inheritable capabilities", e))?;
    caps::set(None, CapSet::Effective, &get(LinuxCapabilities::effective)?)
        .map_err(|e| sys_err("set effective capabilities", e))?;
    caps::set(None, CapSet::Permitted, &get(LinuxCapabilities::permitted)?)
        .map_err(|e| sys_err("set permitted capabilities", e))
}

/// Find `prog` in the PATH of `env` when it has no slash, as execvp would.
fn resolve_program(prog: &str, env: &[String]) -> PathBuf {
    if prog.contains('/') {
        return PathBuf::from(prog);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/bin:/bin");
    path.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(prog))
}

/// Why [`exec_process`] did not exec: the error, and the errno of execve when that was the
/// step that failed (ENOENT and EACCES mean "no such program" and "cannot run it").
pub(crate) struct ExecFailed {
    pub error: SandboxError,
    pub exec_errno: Option<nix::errno::Errno>,
}

/// How [`exec_process`] runs the program: the spec's own arguments or others (`clawkeep
/// exec`), and whether it becomes a session leader with a controlling terminal.
pub(crate) struct ExecAs<'a> {
    /// argv; `None`: the spec's process.args.
    pub args: Option<&'a [String]>,
    /// Added to the spec's environment (secrets delivered as variables).
    pub extra_env: &'a [String],
    /// A terminal to make the controlling one and stdin, stdout and stderr.
    pub tty: Option<OwnedFd>,
}

/// In the forked child: become the spec's user, drop privileges, exec. Returns only on error.
pub(crate) fn exec_process(
    spec: &Spec,
    filter: &[libc::sock_filter],
    how: ExecAs<'_>,
) -> ExecFailed {
    let plain = |error| ExecFailed {
        error,
        exec_errno: None,
    };
    let Some(process) = spec.process() else {
        return plain(SandboxError::Spec("config.json has no process".into()));
    };
    let mut exec_errno = None;
    let run = || -> Result<std::convert::Infallible, SandboxError> {
        nix::unistd::setsid().map_err(|e| sys_err("setsid", e))?;
        if let Some(tty) = how.tty.as_ref() {
            rustix::process::ioctl_tiocsctty(tty)
                .map_err(|e| sys_err("make the terminal the controlling one", e))?;
            nix::unistd::dup2_stdin(tty)
                .and_then(|()| nix::unistd::dup2_stdout(tty))
                .and_then(|()| nix::unistd::dup2_stderr(tty))
                .map_err(|e| sys_err("make the terminal stdin, stdout and stderr", e))?;
        }
        drop(how.tty);
        let user = process.user();
        let gids: Vec<nix::unistd::Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids).map_err(|e| sys_err("setgroups", e))?;
        if let Some(mask) = user.umask() {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        }
        let gid = nix::unistd::Gid::from_raw(user.gid());
        let uid = nix::unistd::Uid::from_raw(user.uid());
        nix::unistd::setresgid(gid, gid, gid).map_err(|e| sys_err("setresgid", e))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(|e| sys_err("setresuid", e))?;
        drop_capabilities(process.capabilities().as_ref())?;
        if process.no_new_privileges() == Some(true) {
            nix::sys::prctl::set_no_new_privs().map_err(|e| sys_err("no_new_privs", e))?;
        }
        nix::unistd::chdir(process.cwd())
            .map_err(|e| sys_err(&format!("chdir {}", process.cwd().display()), e))?;
        let mut env: Vec<String> = process.env().clone().unwrap_or_default();
        env.extend(how.extra_env.iter().cloned());
        let spec_args = process.args().as_deref().unwrap_or_default();
        let args: &[String] = how.args.unwrap_or(spec_args);
        let first = args
            .first()
            .ok_or_else(|| SandboxError::Spec("process.args is empty".into()))?;
        let prog = resolve_program(first, &env);
        let c = |s: &str| {
            CString::new(s).map_err(|_| SandboxError::Spec(format!("{s:?} contains NUL")))
        };
        let cprog = CString::new(prog.as_os_str().as_encoded_bytes())
            .map_err(|_| SandboxError::Spec("program path contains NUL".into()))?;
        let cargs = args.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
        let cenv = env.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
        SigSet::empty()
            .thread_set_mask()
            .map_err(|e| sys_err("restore signal mask", e))?;
        // Last: from here on the filter also applies to us.
        seccomp::apply(filter)?;
        let e = match nix::unistd::execve(&cprog, &cargs, &cenv) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        exec_errno = Some(e);
        Err(sys_err(&format!("exec {}", prog.display()), e))
    };
    match run() {
        Ok(never) => match never {},
        Err(error) => ExecFailed { error, exec_errno },
    }
}

/// Fork the agent's process, then reap and forward signals until it exits.
fn supervise(
    spec: &Spec,
    prepared: Prepared,
    report: &mut dyn FnMut(&str),
) -> Result<i32, SandboxError> {
    // Not dumpable: the agent runs as the same uid, and could otherwise read or write the
    // init's memory through /proc/1/mem, or take its fds. The agent's exec makes the agent
    // itself dumpable again (the kernel resets the flag), which it may be.
    nix::sys::prctl::set_dumpable(false).map_err(|e| sys_err("prctl(PR_SET_DUMPABLE)", e))?;
    // Before the seccomp filter, which does not allow Landlock's calls.
    if crate::special_files::refuse_in_collections(spec)?
        == crate::special_files::Enforced::Unsupported
    {
        eprintln!(
            "clawkeep: this kernel has no Landlock, so FIFOs and sockets can be made in shared collections (the supervisor removes them when it next sets the collection up)"
        );
    }
    let all = SigSet::all();
    all.thread_block()
        .map_err(|e| sys_err("block signals", e))?;
    // With no_new_privs asked for, the filter goes on once, here, for init and agent alike:
    // installing it costs the kernel a walk of the filter for every syscall number (its
    // cache of calls always allowed), about 0.8 ms for the allow-list, so not twice. What
    // the child still does before exec (setsid, set*id, capset, chdir, execve) is allowed.
    let filter_once = spec
        .process()
        .as_ref()
        .is_some_and(|p| p.no_new_privileges() == Some(true));
    let whole = prepared.filter.as_deref().unwrap_or_default();
    let filter: &[libc::sock_filter] = if filter_once {
        nix::sys::prctl::set_no_new_privs().map_err(|e| sys_err("no_new_privs", e))?;
        seccomp::apply(whole)?;
        &[]
    } else {
        whole
    };
    let (exec_r, exec_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| sys_err("pipe", e))?;
    // Init is single-threaded (it never starts a runtime), so forking it is sound.
    let child = match fork()? {
        ForkResult::Child => {
            drop(exec_r);
            let failed = exec_process(
                spec,
                filter,
                ExecAs {
                    args: None,
                    extra_env: &prepared.secret_env,
                    tty: None,
                },
            );
            let mut w = std::fs::File::from(exec_w);
            let _ = w.write_all(failed.error.to_string().as_bytes());
            std::process::exit(127);
        }
        ForkResult::Parent { child } => child,
    };
    drop(exec_w);
    let mut msg = String::new();
    let _ = std::fs::File::from(exec_r).read_to_string(&mut msg);
    if msg.is_empty() {
        report(&format!("started {child}"));
    } else {
        report(&format!("error {msg}"));
    }

    // Init keeps only what it needs to signal the agent (CAP_KILL when the agent runs as
    // another user) and takes the same filter.
    let process = spec.process().as_ref();
    let same_user = process.is_none_or(|p| p.user().uid() == 0);
    let keep = if same_user {
        Vec::new()
    } else {
        vec![caps::Capability::CAP_KILL]
    };
    drop_own_privileges(&keep, filter)?;

    loop {
        let sig = all.wait().map_err(|e| sys_err("sigwait", e))?;
        match sig {
            Signal::SIGCHLD => {
                if let Some(code) = reap(child, report) {
                    return Ok(code);
                }
            }
            Signal::SIGPIPE | Signal::SIGTTIN | Signal::SIGTTOU => {}
            other => {
                // The agent runs in its own session; signal its whole process group.
                if kill(Pid::from_raw(-child.as_raw()), other).is_err() {
                    let _ = kill(child, other);
                }
            }
        }
    }
}

pub(crate) fn drop_own_privileges(
    keep: &[caps::Capability],
    filter: &[libc::sock_filter],
) -> Result<(), SandboxError> {
    use caps::CapSet;
    let keep: caps::CapsHashSet = keep.iter().copied().collect();
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| sys_err("drop bounding capability", e))?;
        }
    }
    caps::clear(None, CapSet::Inheritable).map_err(|e| sys_err("clear capabilities", e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| sys_err("set capabilities", e))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| sys_err("set capabilities", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| sys_err("no_new_privs", e))?;
    seccomp::apply(filter)
}

/// Reap every exited child; when the agent's process is among them, report and return the
/// exit code init should exit with.
fn reap(main: Pid, report: &mut dyn FnMut(&str)) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => {
                report(&format!("exit code {code}"));
                result = Some(code);
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                report(&format!("exit signal {}", sig as i32));
                result = Some(128 + sig as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}

pub(crate) fn fork() -> Result<ForkResult, SandboxError> {
    crate::sys::fork_single_threaded().map_err(|e| sys_err("fork", e))
}

/// The fds the launcher passed to init: status channel, config.json, secrets, filter.
pub fn launcher_fds() -> LauncherFds {
    LauncherFds {
        status: crate::sys::take_fd(3),
        config: crate::sys::take_fd(4),
        secrets: crate::sys::take_fd(5),
        filter: crate::sys::take_fd(6),
    }
}

/// The fds the launcher hands the init (see [`run`]).
pub struct LauncherFds {
    pub status: Option<OwnedFd>,
    pub config: Option<OwnedFd>,
    pub secrets: Option<OwnedFd>,
    pub filter: Option<OwnedFd>,
}

/// The spec's seccomp filter as the launcher compiled it (fd 6), or compiled here when the
/// launcher sent none. A spec without a seccomp section gets no filter.
fn received_filter(
    spec: &Spec,
    fd: Option<OwnedFd>,
) -> Result<Option<seccomp::Program>, SandboxError> {
    let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    if let Some(fd) = fd {
        std::fs::File::from(fd)
            .read_to_end(&mut bytes)
            .map_err(|e| sys_err("read the seccomp filter (fd 6)", e))?;
    }
    match seccomp::from_bytes(&bytes)? {
        Some(p) => Ok(Some(p)),
        None => seccomp::compile(section).map(Some),
    }
}
