//! Host side of starting a process: clone it paused (in new namespaces for a sandbox), write
//! its id maps, put it in its cgroup with its limits, then let it exec. No daemon and no
//! helper process stays behind: the supervisor is the parent of every sandbox's init.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, LinuxResources, Spec};

use super::cgroup::ProcCgroup;
use super::SandboxError;
use crate::sys::{self, Paused, SpawnPlan};

/// Host paths and the binary the launcher uses (passed in so tests and PID 1 can differ).
#[derive(Debug, Clone)]
pub struct Host {
    /// The host's `/`: where a sandboxed host program's system directories come from.
    pub root: PathBuf,
    /// Where the host's procfs is mounted (`/proc`).
    pub proc_root: PathBuf,
    /// The clawkeep binary that runs as the sandbox init (`/proc/self/exe`).
    pub init_exe: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            root: "/".into(),
            proc_root: "/proc".into(),
            init_exe: "/proc/self/exe".into(),
        }
    }
}

/// The hidden subcommand of `clawkeep` that runs the sandbox init.
pub const INIT_SUBCOMMAND: &str = "__sandbox-init";

/// A process cloned but not yet exec'd: register its pid with the reaper, then `start` it.
pub struct Starting {
    paused: Paused,
    cgroup: Option<ProcCgroup>,
    status: Option<OwnedFd>,
}

/// A running process and what the supervisor keeps of it.
pub struct Started {
    /// Host pid (the init's, for a sandbox).
    pub pid: Pid,
    /// Its cgroup (None for short host commands run without one).
    pub cgroup: Option<ProcCgroup>,
    /// Read end of the sandbox init's status channel (None for host processes).
    pub status: Option<OwnedFd>,
}

impl Starting {
    /// Host pid of the paused process.
    pub fn pid(&self) -> Pid {
        self.paused.pid
    }

    /// Give up before exec: the child exits, its cgroup is emptied and removed.
    pub fn abort(self) {
        let Starting { paused, cgroup, .. } = self;
        let _ = paused.abort();
        if let Some(cg) = cgroup {
            let _ = cg.kill_all(std::time::Duration::from_secs(1));
            let _ = cg.destroy();
        }
    }

    /// Let the process exec; returns once it has (or failed to).
    pub fn start(self) -> Result<Started, SandboxError> {
        let Starting {
            paused,
            cgroup,
            status,
        } = self;
        match paused.resume() {
            Ok(pid) => Ok(Started {
                pid,
                cgroup,
                status,
            }),
            Err(e) => {
                if let Some(cg) = cgroup.as_ref() {
                    let _ = cg.kill_all(std::time::Duration::from_secs(1));
                    let _ = cg.destroy();
                }
                Err(SandboxError::Spawn(e))
            }
        }
    }
}

fn cstr(what: &str, s: &str) -> Result<CString, SandboxError> {
    sys::cstring(what, s).map_err(SandboxError::Spec)
}

fn dev_null() -> Result<OwnedFd, SandboxError> {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| SandboxError::Io {
            path: "/dev/null".into(),
            what: "open".into(),
            source: e,
        })
}

/// A memfd holding `bytes`, read from its start by whoever inherits it.
fn program_fd(bytes: &[u8]) -> Result<OwnedFd, SandboxError> {
    use std::io::{Seek, Write};
    let fd =
        nix::sys::memfd::memfd_create(c"clawkeep-filter", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| SandboxError::Init(format!("memfd_create: {e}")))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes)
        .and_then(|_| f.rewind())
        .map_err(|e| SandboxError::Init(format!("writing the filter memfd: {e}")))?;
    Ok(f.into())
}

fn write_map(path: &Path, maps: &[LinuxIdMapping]) -> Result<(), SandboxError> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    std::fs::write(path, text).map_err(|e| SandboxError::Io {
        path: path.to_path_buf(),
        what: "write id map".into(),
        source: e,
    })
}

/// Clone the init of the sandbox described by `bundle/config.json` (already loaded as
/// `spec`), paused, with its id maps written and its cgroup entered. `secrets`, when given,
/// is the init's fd 5 (see [`crate::secrets`]); otherwise fd 5 is /dev/null.
pub fn sandbox(
    bundle: &Path,
    spec: &Spec,
    stdout: OwnedFd,
    stderr: OwnedFd,
    secrets: Option<OwnedFd>,
    host: &Host,
) -> Result<Starting, SandboxError> {
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| SandboxError::Spec("config.json has no linux section".into()))?;
    let mut flags = CloneFlags::empty();
    for ns in linux.namespaces().iter().flatten() {
        if ns.path().is_some() {
            return Err(SandboxError::Spec(format!(
                "joining an existing {:?} namespace is not supported by clawkeep's launcher",
                ns.typ()
            )));
        }
        flags |= match ns.typ() {
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            // Unshared by the init once it is inside its cgroup, so that cgroup is its root.
            LinuxNamespaceType::Cgroup => CloneFlags::empty(),
            other => {
                return Err(SandboxError::Spec(format!(
                    "namespace {other:?} is not supported"
                )))
            }
        };
    }
    let userns = flags.contains(CloneFlags::CLONE_NEWUSER);
    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::Init(format!("pipe: {e}")))?;
    // The init runs as the agent's root, which cannot read the 0700 bundle directory: it
    // gets config.json as fd 4, opened here.
    let config_path = bundle.join("config.json");
    let config = std::fs::File::open(&config_path).map_err(|e| SandboxError::Io {
        path: config_path.clone(),
        what: "open".into(),
        source: e,
    })?;
    let cgroup_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().trim_start_matches('/').to_string())
        .ok_or_else(|| SandboxError::Spec("config.json has no linux.cgroupsPath".into()))?;
    // The filter, compiled by the launcher (once per process, or kept in the bundle) rather
    // than by every init: fd 6, a memfd of its instructions (empty: none).
    let filter = match linux.seccomp() {
        Some(section) => {
            let program = crate::seccomp::cached(bundle, section)?;
            program_fd(&crate::seccomp::to_bytes(&program))?
        }
        None => dev_null()?,
    };
    let cg = ProcCgroup::new(&cgroup_path)?;
    let empty = LinuxResources::default();
    let join = cg.prepare(linux.resources().as_ref().unwrap_or(&empty))?;
    let bundle_s = bundle.to_string_lossy();
    let plan = SpawnPlan {
        namespaces: flags,
        program: cstr("init binary", &host.init_exe.to_string_lossy())?,
        argv: vec![
            cstr("argv", "clawkeep-init")?,
            cstr("argv", INIT_SUBCOMMAND)?,
            cstr("bundle path", &bundle_s)?,
        ],
        envp: Vec::new(),
        cwd: Some(cstr("cwd", "/")?),
        stdin: dev_null()?,
        stdout,
        stderr,
        extra_fds: vec![
            status_w,
            config.into(),
            match secrets {
                Some(fd) => fd,
                None => dev_null()?,
            },
            filter,
        ],
        setsid: true,
        become_userns_root: userns,
        cgroup: Some(join.into()),
    };
    let paused = match sys::spawn_paused(&plan) {
        Ok(p) => p,
        Err(e) => {
            let _ = cg.destroy();
            return Err(SandboxError::Spawn(e));
        }
    };
    drop(plan);
    let pid = paused.pid;
    let maps = || -> Result<(), SandboxError> {
        if userns {
            let proc_dir = host.proc_root.join(pid.to_string());
            write_map(
                &proc_dir.join("uid_map"),
                linux.uid_mappings().as_deref().unwrap_or(&[]),
            )?;
            write_map(
                &proc_dir.join("gid_map"),
                linux.gid_mappings().as_deref().unwrap_or(&[]),
            )?;
        }
        Ok(())
    };
    match maps() {
        Ok(()) => Ok(Starting {
            paused,
            cgroup: Some(cg),
            status: Some(status_r),
        }),
        Err(e) => {
            // Closing the go pipe makes the child exit without exec'ing.
            let _ = paused.abort();
            let _ = cg.kill_all(std::time::Duration::from_secs(1));
            let _ = cg.destroy();
            Err(e)
        }
    }
}

impl From<super::cgroup::Join> for sys::CgroupJoin {
    fn from(j: super::cgroup::Join) -> Self {
        match j {
            super::cgroup::Join::SelfMigrate(fds) => sys::CgroupJoin::Tasks(fds),
            super::cgroup::Join::IntoCgroup(fd) => sys::CgroupJoin::Dir(fd),
        }
    }
}

/// A process run on the host, outside any sandbox (a service or a health-check command).
#[derive(Debug, Clone)]
pub struct HostCommand {
    /// Absolute program path.
    pub program: PathBuf,
    /// argv after argv[0].
    pub args: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
}

/// Clone a host process paused, in its own session and (when `cgroup` is given) its own
/// cgroup, so stopping it can reach every descendant.
pub fn host_process(
    cmd: &HostCommand,
    cgroup: Option<&str>,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<Starting, SandboxError> {
    let program = cstr("program", &cmd.program.to_string_lossy())?;
    let mut argv = vec![program.clone()];
    for a in &cmd.args {
        argv.push(cstr("argument", a)?);
    }
    let envp = cmd
        .env
        .iter()
        .map(|(k, v)| cstr("environment variable", &format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let cg = match cgroup {
        Some(path) => {
            let cg = ProcCgroup::new(path)?;
            let join = cg.prepare(&LinuxResources::default())?;
            Some((cg, join))
        }
        None => None,
    };
    let (cg, join) = match cg {
        Some((cg, join)) => (Some(cg), Some(join.into())),
        None => (None, None),
    };
    let plan = SpawnPlan {
        namespaces: CloneFlags::empty(),
        program,
        argv,
        envp,
        cwd: Some(cstr("working directory", &cmd.cwd.to_string_lossy())?),
        stdin: dev_null()?,
        stdout,
        stderr,
        extra_fds: Vec::new(),
        setsid: true,
        become_userns_root: false,
        cgroup: join,
    };
    let paused = sys::spawn_paused(&plan).map_err(SandboxError::Spawn)?;
    Ok(Starting {
        paused,
        cgroup: cg,
        status: None,
    })
}
