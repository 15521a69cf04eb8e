//! `clawkeep exec`: run one command inside a running sandbox, as `docker exec` does.
//!
//! The helper (`clawkeep __sandbox-exec`, single-threaded, run as root on the host) makes
//! three processes:
//! - **relay** (this process, on the host): it keeps the caller's fds, forwards signals, and
//!   copies bytes between the caller and the command: through a pseudo-terminal with `-t`,
//!   through pipes without. No fd of the caller's ever reaches the sandbox (a terminal would
//!   let a process there inject keystrokes into the caller's shell). It never enters the
//!   sandbox.
//! - **enter**: joins the sandbox's cgroup, then its namespaces (user first, then mount, pid,
//!   network, IPC, UTS and cgroup, opened from the sandbox init's /proc entry once its start
//!   time matched, so a reused pid is refused), takes its rlimits and Landlock rules, forks
//!   the command (a fork is what puts it in the pid namespace), drops every capability and
//!   takes the seccomp filter itself, and waits.
//! - **command**: becomes the agent's user with the agent's groups, umask, working directory
//!   and environment (as config.json gives them: secrets delivered as variables are left
//!   out), with no capabilities, no_new_privs and the agent's seccomp filter, in its own
//!   session; with a terminal, the pseudo-terminal is its controlling one.
//!
//! The exit code is the command's; 125 when the sandbox could not be entered, 126 when the
//! program cannot be run, 127 when there is no such program (as `docker exec`).

use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::init::{self, sys_err, ExecAs};
use crate::SandboxError;

/// Exit code when the sandbox could not be entered.
pub const ENTER_FAILED: i32 = 125;
/// Exit code when the program exists but cannot be run.
pub const CANNOT_RUN: i32 = 126;
/// Exit code when there is no such program in the sandbox.
pub const NOT_FOUND: i32 = 127;

/// The hidden subcommand of `clawkeep` that runs the helper.
pub const EXEC_SUBCOMMAND: &str = "__sandbox-exec";

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct Request {
    /// The sandbox's bundle (its config.json says the user, environment, filter, cgroup).
    pub bundle: PathBuf,
    /// Host pid of the sandbox's init.
    pub pid: i32,
    /// Its start time (/proc/PID/stat field 22), as [`start_time`] read it: a pid reused by
    /// another process since is refused.
    pub start_time: u64,
    /// The command and its arguments (PATH is the agent's).
    pub args: Vec<String>,
    /// Give the command a pseudo-terminal (and put the caller's terminal in raw mode).
    pub tty: bool,
    /// Pass the caller's stdin; otherwise the command reads /dev/null.
    pub stdin: bool,
}

/// The start time of process `pid` in clock ticks since boot (/proc/PID/stat field 22).
pub fn start_time(pid: i32) -> Result<u64, SandboxError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let text = std::fs::read_to_string(&path).map_err(|e| SandboxError::Io {
        path: path.clone(),
        what: "read".into(),
        source: e,
    })?;
    parse_start_time(&text)
        .ok_or_else(|| SandboxError::Init(format!("{}: no start time in {text:?}", path.display())))
}

/// Field 22 of a /proc/PID/stat line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first, so field 22 is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Run the request; returns the exit code for the helper to exit with. Errors are printed
/// to stderr, prefixed `clawkeep exec:`.
pub fn run(req: &Request) -> i32 {
    match relay(req) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clawkeep exec: {e}");
            ENTER_FAILED
        }
    }
}

/// The namespaces of a sandbox in the order they are joined (user first: it owns the
/// others, and joining it gives the capabilities the other joins need), with their names
/// under /proc/PID/ns.
const NAMESPACES: [(LinuxNamespaceType, &str, CloneFlags); 7] = [
    (LinuxNamespaceType::User, "user", CloneFlags::CLONE_NEWUSER),
    (LinuxNamespaceType::Mount, "mnt", CloneFlags::CLONE_NEWNS),
    (LinuxNamespaceType::Pid, "pid", CloneFlags::CLONE_NEWPID),
    (LinuxNamespaceType::Network, "net", CloneFlags::CLONE_NEWNET),
    (LinuxNamespaceType::Ipc, "ipc", CloneFlags::CLONE_NEWIPC),
    (LinuxNamespaceType::Uts, "uts", CloneFlags::CLONE_NEWUTS),
    (
        LinuxNamespaceType::Cgroup,
        "cgroup",
        CloneFlags::CLONE_NEWCGROUP,
    ),
];

/// What the enter process needs, all opened on the host before it forks.
struct Target {
    spec: Spec,
    namespaces: Vec<(OwnedFd, CloneFlags)>,
    cgroup: crate::cgroup::ProcCgroup,
    filter: Option<std::sync::Arc<crate::seccomp::Program>>,
}

fn open_target(req: &Request) -> Result<Target, SandboxError> {
    let config = req.bundle.join("config.json");
    let spec = Spec::load(&config)
        .map_err(|e| SandboxError::Spec(format!("{}: {e}", config.display())))?;
    let proc_dir = format!("/proc/{}", req.pid);
    let gone = || {
        SandboxError::Init(format!(
            "the sandbox's init (pid {}) is gone: the agent stopped or restarted (hint: run the command again)",
            req.pid
        ))
    };
    let dir = nix::fcntl::open(
        proc_dir.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| gone())?;
    // Read through the directory fd: if the pid was reused after it was opened, these
    // reads fail instead of reaching the new process.
    let stat = nix::fcntl::openat(
        &dir,
        "stat",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| gone())?;
    let mut text = String::new();
    std::fs::File::from(stat)
        .read_to_string(&mut text)
        .map_err(|_| gone())?;
    if parse_start_time(&text) != Some(req.start_time) {
        return Err(gone());
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| SandboxError::Spec("config.json has no linux section".into()))?;
    let wanted: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    let mut namespaces = Vec::new();
    for (typ, name, flag) in NAMESPACES {
        if !wanted.contains(&typ) {
            continue;
        }
        let fd = nix::fcntl::openat(
            &dir,
            format!("ns/{name}").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys_err(&format!("open {proc_dir}/ns/{name}"), e))?;
        namespaces.push((fd, flag));
    }
    let cgroup_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().trim_start_matches('/').to_string())
        .ok_or_else(|| SandboxError::Spec("config.json has no linux.cgroupsPath".into()))?;
    let cgroup = crate::cgroup::ProcCgroup::new(&cgroup_path)?;
    let filter = match linux.seccomp() {
        Some(section) => Some(crate::seccomp::cached(&req.bundle, section)?),
        None => None,
    };
    Ok(Target {
        spec,
        namespaces,
        cgroup,
        filter,
    })
}

/// The caller's terminal in raw mode until dropped.
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

/// The signals the relay takes: those it forwards to the command, and SIGCHLD, SIGWINCH
/// and SIGPIPE, which it handles itself.
fn relayed_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
        // Blocked (never forwarded): a write to a closed pipe or terminal is EPIPE, not death.
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    set
}

fn relay(req: &Request) -> Result<i32, SandboxError> {
    if req.args.is_empty() {
        return Err(SandboxError::Spec(
            "no command given (hint: clawkeep exec AGENT -- sh)".into(),
        ));
    }
    // Whatever the caller left open (its terminal, its pipes) stays out of the sandbox.
    crate::sys::cloexec_above_stdio().map_err(|e| sys_err("close_range", e))?;
    let target = open_target(req)?;
    let pty = if req.tty {
        let size = rustix::termios::tcgetwinsize(std::io::stdin()).ok();
        let winsize = size.map(|w| nix::pty::Winsize {
            ws_row: w.ws_row,
            ws_col: w.ws_col,
            ws_xpixel: w.ws_xpixel,
            ws_ypixel: w.ws_ypixel,
        });
        let p = nix::pty::openpty(winsize.as_ref(), None).map_err(|e| sys_err("openpty", e))?;
        // The command gets the terminal as fds 0 to 2 (dup'd, without the flag); the enter
        // process and the relay close their copies.
        for fd in [&p.master, &p.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(|e| sys_err("set close-on-exec on the terminal", e))?;
        }
        Some(p)
    } else {
        None
    };
    let signals = relayed_signals();
    signals
        .thread_block()
        .map_err(|e| sys_err("block signals", e))?;
    let (report_r, report_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| sys_err("pipe", e))?;
    let (master, slave) = match pty {
        Some(p) => (Some(p.master), Some(p.slave)),
        None => (None, None),
    };
    // Without a terminal the command's stdin, stdout and stderr are pipes this process
    // copies, never the caller's own fds: a terminal among them would let a process in the
    // sandbox push keystrokes into the caller's shell (TIOCSTI) or change its settings.
    let (theirs, ours) = if req.tty {
        (None, None)
    } else {
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| sys_err("pipe", e));
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (in_r, in_w) = if req.stdin {
            let (r, w) = pipe()?;
            nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| sys_err("make the input pipe non-blocking", e))?;
            (r, Some(w))
        } else {
            let null = nix::fcntl::open(
                "/dev/null",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| sys_err("open /dev/null", e))?;
            (null, None)
        };
        (
            Some([in_r, out_w, err_w]),
            Some(Relayed {
                stdout: out_r,
                stderr: err_r,
                stdin: in_w,
            }),
        )
    };
    // The helper is single-threaded (no runtime is started on this path), so forking is sound.
    let enter = match init::fork()? {
        ForkResult::Child => {
            drop(report_r);
            drop(master);
            drop(ours);
            let code = enter(req, target, slave, theirs, report_w);
            std::process::exit(code);
        }
        ForkResult::Parent { child } => child,
    };
    drop(report_w);
    drop(slave);
    drop(theirs);
    drop(target);
    let mut first = String::new();
    let _ = std::io::BufReader::new(std::fs::File::from(report_r)).read_line(&mut first);
    let command = match first.trim_end().split_once(' ') {
        Some(("pid", n)) => n.parse::<i32>().ok().map(Pid::from_raw),
        Some(("error", msg)) => {
            let _ = waitpid(enter, None);
            return Err(SandboxError::Init(msg.to_string()));
        }
        _ => None,
    };
    match (master, ours) {
        (Some(master), _) => relay_terminal(&master, req.stdin, command, enter, &signals),
        (None, Some(ours)) => relay_pipes(ours, command, enter, &signals),
        (None, None) => Err(SandboxError::Init("no terminal and no pipes".into())),
    }
}

/// The relay's ends of the command's pipes (no terminal).
struct Relayed {
    stdout: OwnedFd,
    stderr: OwnedFd,
    /// Where the caller's input goes (non-blocking); None without -i.
    stdin: Option<OwnedFd>,
}

/// Without a terminal: copy the command's stdout and stderr to ours and (with -i) our
/// stdin to it, forward signals to its process group, until both outputs are closed; the
/// enter process's exit code (the command's) is the answer.
fn relay_pipes(
    ours: Relayed,
    command: Option<Pid>,
    enter: Pid,
    signals: &SigSet,
) -> Result<i32, SandboxError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let sigfd =
        SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC).map_err(|e| sys_err("signalfd", e))?;
    let Relayed {
        stdout,
        stderr,
        mut stdin,
    } = ours;
    let (mut out_open, mut err_open) = (true, true);
    let caller_in = std::io::stdin();
    let mut stdin_open = stdin.is_some();
    // Input read but not yet taken by the command (its pipe was full).
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    while out_open || err_open {
        // Slots: 0 stdout, 1 stderr, 2 signals, 3 the caller's stdin or the input pipe.
        let mut fds = vec![
            PollFd::new(
                stdout.as_fd(),
                if out_open {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                },
            ),
            PollFd::new(
                stderr.as_fd(),
                if err_open {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                },
            ),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        match (&stdin, pending.is_empty()) {
            (Some(w), false) => fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT)),
            (Some(_), true) if stdin_open => {
                fds.push(PollFd::new(caller_in.as_fd(), PollFlags::POLLIN))
            }
            _ => {}
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("poll", e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        for (i, (fd, open)) in [(&stdout, &mut out_open), (&stderr, &mut err_open)]
            .into_iter()
            .enumerate()
        {
            if !*open || !ready[i] {
                continue;
            }
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => *open = false,
                Ok(n) => {
                    // The caller's side gone (e.g. `| head`): keep draining, drop the rest.
                    let _ = if i == 0 {
                        let mut o = std::io::stdout();
                        o.write_all(&buf[..n]).and_then(|()| o.flush())
                    } else {
                        std::io::stderr().write_all(&buf[..n])
                    };
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => *open = false,
            }
        }
        if ready[2] {
            if let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD | Signal::SIGWINCH | Signal::SIGPIPE) | Err(_) => {}
                    Ok(other) => forward(command, other),
                }
            }
        }
        if ready.get(3).copied().unwrap_or(false) {
            if pending.is_empty() {
                match nix::unistd::read(&caller_in, &mut buf) {
                    Ok(0) | Err(_) => {
                        // End of input: the command sees it.
                        stdin_open = false;
                        stdin = None;
                    }
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
            }
            if let Some(w) = &stdin {
                match nix::unistd::write(w, &pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                    // The command closed its stdin: the rest of ours goes nowhere.
                    Err(_) => {
                        pending.clear();
                        stdin_open = false;
                        stdin = None;
                    }
                }
            }
        }
    }
    drop(stdin);
    exit_code(enter)
}

/// Wait for `pid` to end: its exit code, or 128 + the signal that killed it.
fn exit_code(pid: Pid) -> Result<i32, SandboxError> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("waitpid", e)),
        }
    }
}

fn forward(command: Option<Pid>, sig: Signal) {
    if let Some(pid) = command {
        if kill(Pid::from_raw(-pid.as_raw()), sig).is_err() {
            let _ = kill(pid, sig);
        }
    }
}

/// With a terminal: copy the caller's stdin to the pseudo-terminal and its output to
/// stdout, keep its window size the caller's, and end when the command's side is closed.
fn relay_terminal(
    master: &OwnedFd,
    pass_stdin: bool,
    command: Option<Pid>,
    enter: Pid,
    signals: &SigSet,
) -> Result<i32, SandboxError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let raw = if pass_stdin {
        RawTerminal::enter()
    } else {
        None
    };
    let sigfd =
        SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC).map_err(|e| sys_err("signalfd", e))?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut stdin_open = pass_stdin;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("poll", e)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (out_ready, sig_ready, in_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if out_ready {
            match nix::unistd::read(master, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => break,
                Ok(n) => {
                    let _ = stdout.write_all(&buf[..n]).and_then(|()| stdout.flush());
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(sys_err("read the terminal", e)),
            }
        }
        if sig_ready {
            if let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGWINCH) => {
                        if let Ok(w) = rustix::termios::tcgetwinsize(std::io::stdin()) {
                            let _ = rustix::termios::tcsetwinsize(master, w);
                        }
                    }
                    Ok(Signal::SIGCHLD | Signal::SIGPIPE) => {}
                    Ok(other) => forward(command, other),
                    Err(_) => {}
                }
            }
        }
        if in_ready {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => write_all(master, &buf[..n])?,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
    drop(raw);
    exit_code(enter)
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), SandboxError> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(sys_err("write to the terminal", e)),
        }
    }
    Ok(())
}

/// The enter process: join, fork the command, wait for it. Returns the exit code.
fn enter(
    req: &Request,
    target: Target,
    tty: Option<OwnedFd>,
    stdio: Option<[OwnedFd; 3]>,
    report: OwnedFd,
) -> i32 {
    let mut report = std::fs::File::from(report);
    match join_and_fork(req, &target, tty, stdio) {
        Ok(command) => {
            let _ = report.write_all(format!("pid {command}\n").as_bytes());
            drop(report);
            // Nothing here needs a privilege from now on: the enter process only waits.
            let filter = target.filter.as_deref().map_or(&[][..], Vec::as_slice);
            let _ = init::drop_own_privileges(&[], filter);
            exit_code(command).unwrap_or(ENTER_FAILED)
        }
        Err(e) => {
            let _ = report.write_all(format!("error {e}\n").as_bytes());
            ENTER_FAILED
        }
    }
}

fn join_and_fork(
    req: &Request,
    target: &Target,
    tty: Option<OwnedFd>,
    stdio: Option<[OwnedFd; 3]>,
) -> Result<Pid, SandboxError> {
    // The cgroup first, while still root on the host: its limits then count the command.
    target.cgroup.enter(nix::unistd::getpid())?;
    for (fd, flag) in &target.namespaces {
        nix::sched::setns(fd, *flag)
            .map_err(|e| sys_err(&format!("join the sandbox's {flag:?} namespace"), e))?;
    }
    let spec = &target.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| SandboxError::Spec("config.json has no process".into()))?;
    for r in process.rlimits().iter().flatten() {
        let res = init::rlimit_resource(r.typ())?;
        nix::sys::resource::setrlimit(res, r.soft(), r.hard())
            .map_err(|e| sys_err(&format!("setrlimit {:?}", r.typ()), e))?;
    }
    crate::special_files::refuse_in_collections(spec)?;
    // Not dumpable: the command runs as the agent's user, which could otherwise read this
    // process's memory through /proc.
    nix::sys::prctl::set_dumpable(false).map_err(|e| sys_err("prctl(PR_SET_DUMPABLE)", e))?;
    match init::fork()? {
        ForkResult::Child => {
            if let Some([stdin, stdout, stderr]) = &stdio {
                let moved = nix::unistd::dup2_stdin(stdin)
                    .and_then(|()| nix::unistd::dup2_stdout(stdout))
                    .and_then(|()| nix::unistd::dup2_stderr(stderr));
                if moved.is_err() {
                    std::process::exit(ENTER_FAILED);
                }
            }
            drop(stdio);
            let filter = target.filter.as_deref().map_or(&[][..], Vec::as_slice);
            let failed = init::exec_process(
                spec,
                filter,
                ExecAs {
                    args: Some(&req.args),
                    extra_env: &[],
                    tty,
                },
            );
            eprintln!("clawkeep exec: {}", failed.error);
            std::process::exit(match failed.exec_errno {
                Some(nix::errno::Errno::ENOENT) => NOT_FOUND,
                Some(nix::errno::Errno::EACCES | nix::errno::Errno::ENOEXEC) => CANNOT_RUN,
                _ => ENTER_FAILED,
            });
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// The helper's command line: `clawkeep __sandbox-exec` and the request, for [`Request::parse`].
impl Request {
    /// The arguments after the binary that [`Request::parse`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = vec![
            EXEC_SUBCOMMAND.to_string(),
            self.bundle.to_string_lossy().into_owned(),
            self.pid.to_string(),
            self.start_time.to_string(),
            match (self.tty, self.stdin) {
                (true, true) => "tty,stdin",
                (true, false) => "tty",
                (false, true) => "stdin",
                (false, false) => "plain",
            }
            .into(),
            "--".into(),
        ];
        out.extend(self.args.iter().cloned());
        out
    }

    /// The request from the helper's arguments (after the subcommand).
    pub fn parse(mut args: impl Iterator<Item = String>) -> Option<Self> {
        let bundle = PathBuf::from(args.next()?);
        let pid = args.next()?.parse().ok()?;
        let start_time = args.next()?.parse().ok()?;
        let flags = args.next()?;
        if args.next()? != "--" {
            return None;
        }
        Some(Self {
            bundle,
            pid,
            start_time,
            args: args.collect(),
            tty: flags.split(',').any(|f| f == "tty"),
            stdin: flags.split(',').any(|f| f == "stdin"),
        })
    }
}

/// The program path of the helper: this binary.
pub fn helper_exe() -> &'static Path {
    Path::new("/proc/self/exe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn this_process_has_a_start_time() {
        let pid = std::process::id() as i32;
        assert!(start_time(pid).unwrap() > 0);
    }

    #[test]
    fn a_request_survives_the_helper_command_line() {
        let req = Request {
            bundle: "/var/lib/clawkeep/agents/a/bundle".into(),
            pid: 12,
            start_time: 34,
            args: vec!["sh".into(), "-c".into(), "echo -- hi".into()],
            tty: true,
            stdin: false,
        };
        let args = req.to_args();
        assert_eq!(args[0], EXEC_SUBCOMMAND);
        let back = Request::parse(args.into_iter().skip(1)).unwrap();
        assert_eq!(back.args, req.args);
        assert_eq!(
            (back.pid, back.start_time, back.tty, back.stdin),
            (12, 34, true, false)
        );
        assert_eq!(back.bundle, req.bundle);
    }
}
