//! Starting one run of a supervised process: the agent's bundle and home, or the service's
//! command line, a log pipe, and the launch. Blocking work; called from `spawn_blocking`.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fleet::{Agent, Fleet, Service};
use clawkeep_sandbox::bundle::{self, SandboxPlan};
use clawkeep_sandbox::cgroup::ProcCgroup;
use clawkeep_sandbox::launch::{self, Host, HostCommand, Starting};
use clawkeep_sandbox::SandboxError;

/// File name of the control socket inside the state dir.
pub const SOCKET: &str = "clawkeep.sock";

/// Where the supervisor keeps things, all under the state dir.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The state dir.
    pub state_dir: PathBuf,
}

impl Paths {
    /// Directory of the per-process logs.
    pub fn logs(&self) -> PathBuf {
        self.state_dir.join("logs")
    }
    /// An agent's directory (home and bundle).
    pub fn agent(&self, name: &str) -> PathBuf {
        self.state_dir.join("agents").join(name)
    }
    /// An OpenClaw agent's gateway token (root-only, outside its home).
    pub fn token(&self, name: &str) -> PathBuf {
        self.agent(name).join(crate::openclaw::token::FILE)
    }
    /// A sandboxed service's directory (root, home and bundle).
    pub fn service(&self, name: &str) -> PathBuf {
        self.state_dir.join("services").join(name)
    }
    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.state_dir.join(SOCKET)
    }
}

/// A process cloned and paused, with the read end of its log pipe.
pub struct Prepared {
    /// The paused process.
    pub starting: Starting,
    /// Read end of its stdout+stderr pipe.
    pub log: OwnedFd,
    /// Processes of a previous run found in the cgroup and killed (after a supervisor crash).
    pub killed_leftovers: usize,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_path_buf(),
        what: what.into(),
        source: e,
    }
}

/// cgroup path of a supervised process.
pub fn cgroup_path(fleet: &Fleet, name: &str) -> String {
    format!("{}/{}", fleet.node.cgroup, name)
}

/// Kill what a previous supervisor left in this cgroup (it crashed or was SIGKILLed).
pub fn clear_leftovers(path: &str) -> Result<usize, SandboxError> {
    let cg = ProcCgroup::new(path)?;
    let n = cg.pids().len();
    if n > 0 {
        cg.kill_all(Duration::from_secs(5))?;
    }
    Ok(n)
}

fn log_pipe() -> Result<(OwnedFd, OwnedFd, OwnedFd), SandboxError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::Init(format!("pipe: {e}")))?;
    let w2 = w
        .try_clone()
        .map_err(|e| io("dup", Path::new("log pipe"), e))?;
    Ok((r, w, w2))
}

/// Host id range of an agent.
pub fn host_id(fleet: &Fleet, agent: &Agent) -> u32 {
    fleet.host_id(agent)
}

/// Directories along the way to an agent's home must be searchable by the agent's host
/// uid: the sandbox's init, unprivileged on the host, bind-mounts the home by path.
fn make_traversable(dir: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let md = dir.metadata().map_err(|e| io("stat", dir, e))?;
    let mode = md.permissions().mode();
    if mode & 0o001 == 0 {
        std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode((mode | 0o711) & 0o7777),
        )
        .map_err(|e| io("chmod o+x", dir, e))?;
    }
    Ok(())
}

/// The agent's OCI spec as clawkeep generates it.
pub fn agent_plan(fleet: &Fleet, agent: &Agent, paths: &Paths) -> SandboxPlan {
    let mut args = vec![agent.command.program.clone()];
    args.extend(agent.command.args.iter().cloned());
    SandboxPlan {
        name: agent.name.clone(),
        rootfs: fleet.rootfs.clone(),
        home: paths.agent(&agent.name).join("home"),
        cgroup: cgroup_path(fleet, &agent.name),
        host_id: host_id(fleet, agent),
        args,
        env: agent
            .command
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(if agent.egress.is_empty() {
                Vec::new()
            } else {
                super::egress::proxy_env()
            })
            .chain(
                fleet
                    .openclaw
                    .iter()
                    .flat_map(|_| crate::openclaw::provision::env())
                    // What the fleet file sets wins.
                    .filter(|(k, _)| !agent.command.env.contains_key(k)),
            )
            .collect(),
        cpu: agent.resources.cpu,
        memory: agent.resources.memory,
        pids: agent.resources.pids,
        nofile: agent.resources.nofile,
        tmp_size: agent.resources.tmp_size,
        knowledge: agent
            .knowledge
            .iter()
            .map(|(c, access)| {
                (
                    crate::brains::collection_dir(&paths.state_dir, c),
                    c.clone(),
                    *access == clawkeep_store::grants::Access::Ro,
                )
            })
            .collect(),
        secrets_tmpfs: !agent.secrets.is_empty()
            && agent.secrets_as == crate::secrets::SecretsAs::Files,
        runtime: fleet.openclaw.as_ref().map(|r| r.path.clone()),
        binds: Vec::new(),
        devices: Vec::new(),
        groups: agent
            .knowledge
            .iter()
            .filter_map(|(c, _)| fleet.collection_gid(c))
            .collect(),
    }
}

/// Write an agent's bundle (config.json) and prepare its home and the rootfs mount points;
/// `runtime` replaces the fleet's pinned OpenClaw runtime (an upgrade in progress).
pub fn write_agent_bundle(
    fleet: &Fleet,
    agent: &Agent,
    paths: &Paths,
    runtime: Option<&crate::fleet::runtime::OpenclawRuntime>,
) -> Result<PathBuf, SandboxError> {
    let mut plan = agent_plan(fleet, agent, paths);
    if let Some(rt) = runtime {
        plan.runtime = Some(rt.path.clone());
    }
    make_traversable(&paths.state_dir)?;
    make_traversable(&paths.state_dir.join("agents"))?;
    make_traversable(&paths.agent(&agent.name))?;
    bundle::prepare_home(&plan.home, plan.host_id)?;
    if fleet.openclaw.is_some() {
        provision_openclaw(fleet, agent, paths, &plan)?;
    } else if let Some(soul) = &agent.soul {
        let dst = plan.home.join("SOUL.md");
        if dst.symlink_metadata().is_err() {
            std::fs::copy(soul, &dst).map_err(|e| io("copy soul to", &dst, e))?;
            std::os::unix::fs::lchown(&dst, Some(plan.host_id), Some(plan.host_id))
                .map_err(|e| io("chown", &dst, e))?;
        }
    }
    disk_limit(agent, &paths.agent(&agent.name), plan.host_id)?;
    let spec = bundle::spec(&plan)?;
    bundle::prepare_rootfs(&spec)?;
    let dir = paths.agent(&agent.name).join("bundle");
    bundle::write(&dir, &spec)?;
    Ok(dir)
}

/// Hold the agent's directory (its home, and clawkeep's staging beside it, whose files are
/// renamed into the home) to its `disk` limit, with its host id base as the project id: the
/// kernel enforces it, or the agent does not start. Without `disk`, a limit left from an
/// earlier run is lifted.
fn disk_limit(agent: &Agent, dir: &Path, project: u32) -> Result<(), SandboxError> {
    match agent.resources.disk {
        Some(bytes) => clawkeep_sandbox::quota::set_limit(dir, project, bytes)?,
        None => match clawkeep_sandbox::quota::clear_limit(dir) {
            Ok(Some(p)) => {
                tracing::info!(agent = %agent.name, project = p, "lifted the disk limit it no longer has");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(agent = %agent.name, "cannot lift its old disk limit: {e}"),
        },
    }
    Ok(())
}

/// Write an OpenClaw agent's `~/.openclaw` (config every start, workspace seeds once).
fn provision_openclaw(
    fleet: &Fleet,
    agent: &Agent,
    paths: &Paths,
    plan: &SandboxPlan,
) -> Result<(), SandboxError> {
    let config = crate::openclaw::config::for_agent(fleet, agent);
    let seeds: Vec<(String, PathBuf)> = agent
        .soul
        .iter()
        .map(|s| ("SOUL.md".to_string(), s.clone()))
        .chain(agent.workspace.iter().cloned())
        .collect();
    let done = crate::openclaw::provision::provision(&crate::openclaw::provision::Provision {
        home: &plan.home,
        scratch: &paths.agent(&agent.name),
        owner: plan.host_id,
        config: &config,
        seeds: &seeds,
    })?;
    if !done.seeded.is_empty() {
        tracing::info!(agent = %agent.name, files = ?done.seeded, "seeded the OpenClaw workspace");
    }
    Ok(())
}

/// Why an agent or service could not be made ready to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its sandbox could not be made.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Its secrets could not be read or handed over.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// Its OpenClaw gateway token could not be read or minted.
    #[error(transparent)]
    Token(#[from] crate::openclaw::token::TokenError),
}

/// Prepare and clone an agent's sandbox, paused.
pub fn agent(
    fleet: &Fleet,
    agent: &Agent,
    paths: &Paths,
    host: &Host,
    runtime: Option<&crate::fleet::runtime::OpenclawRuntime>,
) -> Result<Prepared, StartError> {
    // First: a secret declared but not set stops the start before anything is made.
    let store = crate::secrets::Store::new(&paths.state_dir);
    let mut payload =
        crate::secrets::inject::for_agent(&store, &agent.name, &agent.secrets, agent.secrets_as)?;
    if fleet.openclaw.is_some() {
        let token = crate::openclaw::token::load_or_mint(&paths.token(&agent.name))?;
        payload.env.push((
            crate::openclaw::token::ENV.into(),
            crate::secrets::Value::new(token),
        ));
    }
    let secrets = if payload.is_empty() {
        None
    } else {
        Some(clawkeep_sandbox::secrets::to_memfd(&payload)?)
    };
    drop(payload);
    let dir = write_agent_bundle(fleet, agent, paths, runtime)?;
    let spec = oci_spec::runtime::Spec::load(dir.join("config.json"))
        .map_err(|e| SandboxError::Spec(e.to_string()))?;
    let killed_leftovers = clear_leftovers(&cgroup_path(fleet, &agent.name))?;
    let (r, w, w2) = log_pipe()?;
    let starting = launch::sandbox(&dir, &spec, w, w2, secrets, host)?;
    Ok(Prepared {
        starting,
        log: r,
        killed_leftovers,
    })
}

/// The environment a service gets: the supervisor's PATH plus its own variables.
pub fn service_env(service: &Service) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    if !service.command.env.contains_key("PATH") {
        env.push((
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ));
    }
    env.extend(
        service
            .command
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    env
}

/// Processes a sandboxed service may run (a model backend's threads count here).
const SERVICE_PIDS: u64 = 16_384;
/// Its open files (at most the supervisor's own hard limit, which the sandbox cannot pass).
const SERVICE_NOFILE: u64 = 65_536;
/// Size of its /tmp.
const SERVICE_TMP: u64 = 1 << 30;

/// The sandbox of a service that runs in one (a managed model backend): its own namespaces
/// and host ids, a root of the host's system directories (see
/// [`clawkeep_sandbox::system_root`]), its program, model and `read_only` paths bound
/// read-only, its devices, a writable home of its own, and no limit on CPU or memory (it
/// is the node's model server), only on processes and files.
pub fn service_plan(
    fleet: &Fleet,
    service: &Service,
    sandbox: &crate::fleet::ServiceSandbox,
    paths: &Paths,
    host_root: &Path,
) -> Result<SandboxPlan, SandboxError> {
    let dir = paths.service(&service.name);
    let rootfs = dir.join("rootfs");
    let mut binds = clawkeep_sandbox::system_root::make(&rootfs, host_root)?;
    for path in &sandbox.binds {
        if !clawkeep_sandbox::system_root::covered(&binds, path) {
            bundle::reachable_by_others(path)?;
            binds.push((path.clone(), path.clone()));
        }
    }
    let mut args = vec![service.command.program.clone()];
    args.extend(service.command.args.iter().cloned());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(SandboxPlan {
        name: service.name.clone(),
        rootfs,
        home: dir.join("home"),
        cgroup: cgroup_path(fleet, &service.name),
        host_id: fleet.service_host_id(sandbox),
        args,
        env: service
            .command
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cpu: cpus as f64,
        memory: bundle::NO_MEMORY_LIMIT,
        pids: SERVICE_PIDS,
        nofile: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(_, hard)| hard.min(SERVICE_NOFILE)),
        tmp_size: SERVICE_TMP,
        knowledge: Vec::new(),
        secrets_tmpfs: false,
        runtime: None,
        binds,
        devices: sandbox.devices.clone(),
        groups: Vec::new(),
    })
}

/// Clone a service, paused: in a sandbox of its own when it has one (a model backend),
/// else as a host process in its own cgroup.
pub fn service(
    fleet: &Fleet,
    service: &Service,
    paths: &Paths,
    host: &Host,
) -> Result<Prepared, SandboxError> {
    if let Some(sandbox) = &service.sandbox {
        let plan = service_plan(fleet, service, sandbox, paths, &host.root)?;
        make_traversable(&paths.state_dir)?;
        make_traversable(&paths.state_dir.join("services"))?;
        make_traversable(&paths.service(&service.name))?;
        bundle::prepare_home(&plan.home, plan.host_id)?;
        let spec = bundle::spec(&plan)?;
        bundle::prepare_rootfs(&spec)?;
        let dir = paths.service(&service.name).join("bundle");
        bundle::write(&dir, &spec)?;
        let killed_leftovers = clear_leftovers(&plan.cgroup)?;
        let (r, w, w2) = log_pipe()?;
        let starting = launch::sandbox(&dir, &spec, w, w2, None, host)?;
        return Ok(Prepared {
            starting,
            log: r,
            killed_leftovers,
        });
    }
    let cmd = HostCommand {
        program: PathBuf::from(&service.command.program),
        args: service.command.args.clone(),
        env: service_env(service),
        cwd: service.cwd.clone(),
    };
    let path = cgroup_path(fleet, &service.name);
    let killed_leftovers = clear_leftovers(&path)?;
    let (r, w, w2) = log_pipe()?;
    let starting = launch::host_process(&cmd, Some(&path), w, w2)?;
    Ok(Prepared {
        starting,
        log: r,
        killed_leftovers,
    })
}
