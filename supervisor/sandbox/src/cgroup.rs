//! One cgroup per supervised process, through cgroups-rs: limits from the OCI resources,
//! usage for `clawkeep ps`, OOM-kill counts, and killing everything inside on stop.
//!
//! cgroups-rs finds the hierarchies (v1, hybrid or v2) from /proc/self/mountinfo; clawkeep
//! reads them once per process and passes in the cgroup path relative to the hierarchy roots.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::hierarchies::{self, V1, V2};
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, Controller, Hierarchy, MaxValue, Resources};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::SandboxError;

/// Usage of one cgroup, as shown by `clawkeep ps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used, in nanoseconds, since the cgroup was created.
    pub cpu_ns: u64,
    /// Memory in use, in bytes.
    pub memory: u64,
    /// OOM kills inside the cgroup since it was created.
    pub oom_kills: u64,
    /// Processes and threads.
    pub tasks: u64,
}

/// The host's cgroup layout, read once: parsing mountinfo for every start is measurable.
#[derive(Clone)]
enum Layout {
    V1(V1),
    V2(V2),
}

fn layout() -> Box<dyn Hierarchy> {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    let l = LAYOUT.get_or_init(|| {
        if hierarchies::is_cgroup2_unified_mode() {
            Layout::V2(V2::new())
        } else {
            Layout::V1(V1::new())
        }
    });
    match l.clone() {
        Layout::V1(h) => Box::new(h),
        Layout::V2(h) => Box::new(h),
    }
}

/// The controllers clawkeep uses: limits (cpu, memory, pids), accounting (cpuacct) and
/// freezing for a race-free kill on v1. Joining the others (blkio, cpuset, devices, ...)
/// would only cost time at every start and stop.
/// On v2 cpuacct is part of cpu and freezing is every cgroup's `cgroup.freeze`.
const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "freezer"];
const CONTROLLERS_V2: [&str; 3] = ["cpu", "memory", "pids"];

/// The controllers to use on this host's layout.
fn controllers() -> &'static [&'static str] {
    if layout().v2() {
        &CONTROLLERS_V2
    } else {
        &CONTROLLERS
    }
}

/// How a new child enters its cgroup without a migration by pid.
///
/// Moving a process by pid takes the kernel's global threadgroup lock for writing, which
/// waits for an RCU grace period: about 14 ms per start on the test machine, most of a
/// sandbox start. A thread moving *itself* by writing "0" to a v1 `tasks` file skips that
/// lock, and on v2 `clone3(CLONE_INTO_CGROUP)` creates the child in place.
pub enum Join {
    /// cgroup v1: open `tasks` files the child writes "0" to before it execs.
    SelfMigrate(Vec<std::os::fd::OwnedFd>),
    /// cgroup v2: the cgroup directory for clone3's CLONE_INTO_CGROUP.
    IntoCgroup(std::os::fd::OwnedFd),
}

/// A supervised process's cgroup (one directory per hierarchy on v1, one on v2).
pub struct ProcCgroup {
    path: String,
    cgroup: Cgroup,
}

fn cg_err(path: &str, what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Cgroup {
        path: path.to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// The subset of OCI resources clawkeep sets, in cgroups-rs terms.
fn to_resources(r: &LinuxResources) -> Resources {
    let mut out = Resources::default();
    if let Some(cpu) = r.cpu() {
        out.cpu.quota = cpu.quota();
        out.cpu.period = cpu.period();
        out.cpu.shares = cpu.shares();
    }
    if let Some(mem) = r.memory() {
        out.memory.memory_hard_limit = mem.limit();
        // Swap: set by `limit_swap`, which knows the layout and whether the kernel counts it.
    }
    if let Some(pids) = r.pids() {
        out.pid.maximum_number_of_processes = Some(if pids.limit() > 0 {
            MaxValue::Value(pids.limit())
        } else {
            MaxValue::Max
        });
    }
    out
}

impl ProcCgroup {
    /// A handle on `path` (relative to the hierarchy roots, e.g. `clawkeep/research`); nothing
    /// is created until [`ProcCgroup::prepare`].
    pub fn new(path: &str) -> Result<Self, SandboxError> {
        let controllers = controllers().iter().map(|c| c.to_string()).collect();
        let cgroup = Cgroup::load_with_specified_controllers(layout(), path, controllers);
        if cgroup.subsystems().is_empty() {
            return Err(cg_err(
                path,
                "find controllers",
                "no cgroup hierarchy is mounted (hint: mount cgroup2 on /sys/fs/cgroup, or run clawkeep as PID 1, which mounts it)",
            ));
        }
        Ok(Self {
            path: path.to_string(),
            cgroup,
        })
    }

    /// The cgroup path relative to the hierarchy roots.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the host uses the unified (v2) hierarchy.
    pub fn v2(&self) -> bool {
        self.cgroup.v2()
    }

    /// Create the cgroup, apply `resources`, and open what a new child needs to join it
    /// without the slow path (see [`Join`]).
    pub fn prepare(&self, resources: &LinuxResources) -> Result<Join, SandboxError> {
        self.cgroup
            .create()
            .map_err(|e| cg_err(&self.path, "create", e))?;
        self.cgroup.apply(&to_resources(resources)).map_err(|e| {
            cg_err(
                &self.path,
                "apply limits",
                format!("{e} (hint: the host must have the cpu, memory and pids controllers)"),
            )
        })?;
        self.limit_swap(resources)?;
        let open = |p: std::path::PathBuf, write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(libc::O_CLOEXEC | if write { 0 } else { libc::O_DIRECTORY })
                .open(&p)
                .map(std::os::fd::OwnedFd::from)
                .map_err(|e| cg_err(&self.path, &format!("open {}", p.display()), e))
        };
        if self.v2() {
            let dir = layout().root().join(&self.path);
            return Ok(Join::IntoCgroup(open(dir, false)?));
        }
        let mut tasks = Vec::new();
        for sub in self.cgroup.subsystems() {
            tasks.push(open(sub.to_controller().path().join("tasks"), true)?);
        }
        Ok(Join::SelfMigrate(tasks))
    }

    /// Limit swap as `resources` says (OCI: memory + swap): v1 takes that sum in
    /// memory.memsw.limit_in_bytes, v2 the swap alone in memory.swap.max. A kernel that does
    /// not account swap has neither file and no swap to limit per cgroup; nothing is written.
    fn limit_swap(&self, resources: &LinuxResources) -> Result<(), SandboxError> {
        let Some((limit, swap)) = resources
            .memory()
            .as_ref()
            .and_then(|m| Some((m.limit()?, m.swap()?)))
        else {
            return Ok(());
        };
        let Some(mem) = self.cgroup.controller_of::<MemController>() else {
            return Ok(());
        };
        let (file, value) = if self.v2() {
            ("memory.swap.max", swap.saturating_sub(limit).max(0))
        } else {
            ("memory.memsw.limit_in_bytes", swap)
        };
        if !mem.path().join(file).exists() {
            return Ok(());
        }
        mem.set_memswap_limit(value).map_err(|e| {
            cg_err(
                &self.path,
                &format!("set {file} to {value}"),
                format!("{e} (hint: the memory limit must be set first and be at most this)"),
            )
        })
    }

    /// Pids of every process in the cgroup.
    ///
    /// On v1 one hierarchy is enough: clawkeep's processes join all of them at creation and
    /// cannot move themselves; rmdir of a hierarchy that still had processes would fail.
    pub fn pids(&self) -> Vec<Pid> {
        let procs = match self.cgroup.subsystems().first() {
            Some(sub) if !self.v2() => sub.to_controller().procs(),
            _ => self.cgroup.procs(),
        };
        procs
            .into_iter()
            .map(|p| Pid::from_raw(p.pid as i32))
            .collect()
    }

    /// Move process `pid` into this (existing) cgroup, in every hierarchy.
    pub fn enter(&self, pid: Pid) -> Result<(), SandboxError> {
        self.cgroup
            .add_task_by_tgid(cgroups_rs::CgroupPid::from(pid.as_raw() as u64))
            .map_err(|e| cg_err(&self.path, &format!("move pid {pid} in"), e))
    }

    fn freeze(&self, frozen: bool) -> bool {
        let Some(f) = self.cgroup.controller_of::<FreezerController>() else {
            return false;
        };
        if frozen { f.freeze() } else { f.thaw() }.is_ok()
    }

    /// Kill every process in the cgroup and wait (up to `timeout`) until it is empty.
    ///
    /// v2 uses `cgroup.kill`; v1 freezes the cgroup so nothing can fork while it is killed.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), SandboxError> {
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            if !(self.v2() && self.cgroup.kill().is_ok()) {
                let frozen = self.freeze(true);
                for pid in self.pids() {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                if frozen {
                    self.freeze(false);
                }
            }
            if Instant::now() > deadline {
                return Err(cg_err(
                    &self.path,
                    "kill",
                    format!("processes {:?} are still alive", self.pids()),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Remove the cgroup (it must be empty: call [`ProcCgroup::kill_all`] first).
    pub fn destroy(&self) -> Result<(), SandboxError> {
        if !self.pids().is_empty() {
            return Err(cg_err(
                &self.path,
                "remove",
                "it still has processes; they would escape to the root cgroup",
            ));
        }
        if !self.cgroup.exists() {
            return Ok(());
        }
        self.cgroup
            .delete()
            .map_err(|e| cg_err(&self.path, "remove", e))
    }

    /// OOM kills inside the cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let Some(mem) = self.cgroup.controller_of::<MemController>() else {
            return 0;
        };
        let file = if self.v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        flat_key(mem.path(), file, "oom_kill")
    }

    /// Current usage; zeroes for counters the host does not have.
    pub fn usage(&self) -> Usage {
        let mut u = Usage {
            oom_kills: self.oom_kills(),
            ..Usage::default()
        };
        if let Some(mem) = self.cgroup.controller_of::<MemController>() {
            let file = if self.v2() {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            };
            u.memory = single_value(mem.path(), file);
        }
        if let Some(pids) = self.cgroup.controller_of::<PidController>() {
            u.tasks = pids.get_pid_current().unwrap_or(0);
        }
        if self.v2() {
            if let Some(cpu) = self.cgroup.controller_of::<CpuController>() {
                u.cpu_ns = flat_key(cpu.path(), "cpu.stat", "usage_usec").saturating_mul(1000);
            }
        } else if let Some(acct) = self.cgroup.controller_of::<CpuAcctController>() {
            u.cpu_ns = acct.cpuacct().usage;
        }
        u
    }
}

/// A cgroup file holding one number (parsed by cgroups-rs).
fn single_value(dir: &Path, file: &str) -> u64 {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| cgroups_rs::fs::parse_max_value(s.trim()).ok())
        .map(|v| match v {
            MaxValue::Value(n) => n.max(0) as u64,
            MaxValue::Max => u64::MAX,
        })
        .unwrap_or(0)
}

/// One value of a flat-keyed cgroup file (parsed by cgroups-rs).
fn flat_key(dir: &Path, file: &str, key: &str) -> u64 {
    std::fs::File::open(dir.join(file))
        .ok()
        .and_then(|f| cgroups_rs::fs::flat_keyed_to_hashmap(f).ok())
        .and_then(|m| m.get(key).copied())
        .map(|v| v.max(0) as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    #[test]
    fn oci_resources_map_to_cgroups_rs() {
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(50_000i64)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64i64 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(32i64).build().unwrap())
            .build()
            .unwrap();
        let c = to_resources(&r);
        assert_eq!(c.cpu.quota, Some(50_000));
        assert_eq!(c.cpu.period, Some(100_000));
        assert_eq!(c.memory.memory_hard_limit, Some(64 << 20));
        assert_eq!(c.pid.maximum_number_of_processes, Some(MaxValue::Value(32)));
    }
}
