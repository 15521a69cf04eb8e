//! One cgroup per supervised process, through cgroups-rs: limits from the OCI resources,
//! usage for `clawkeep ps`, OOM-kill counts, and killing everything inside on stop.
//!
//! cgroups-rs finds the hierarchies itself (from /proc/self/mountinfo), on cgroup v1, hybrid
//! and v2 hosts alike; clawkeep passes in the cgroup path relative to the hierarchy roots.

use std::time::{Duration, Instant};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::{hierarchies, Cgroup, Controller};
use cgroups_rs::manager::{FsManager, Manager};
use cgroups_rs::{CgroupPid, FreezerState};
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

/// A supervised process's cgroup (one per hierarchy on v1, one directory on v2).
pub struct ProcCgroup {
    path: String,
    // FsManager wants `&mut` for changes; the lock lets readers (usage sampling) and the
    // owner share one handle.
    manager: std::sync::Mutex<FsManager>,
    cgroup: Cgroup,
}

fn cg_err(path: &str, what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Cgroup {
        path: path.to_string(),
        reason: format!("{what}: {e}"),
    }
}

impl ProcCgroup {
    /// A handle on `path` (relative to the hierarchy roots, e.g. `clawkeep/research`); nothing
    /// is created until [`ProcCgroup::enter`].
    pub fn new(path: &str) -> Result<Self, SandboxError> {
        let manager = FsManager::new(path).map_err(|e| cg_err(path, "open", e))?;
        let cgroup = Cgroup::load(hierarchies::auto(), path);
        Ok(Self {
            path: path.to_string(),
            manager: std::sync::Mutex::new(manager),
            cgroup,
        })
    }

    fn manager(&self) -> std::sync::MutexGuard<'_, FsManager> {
        // FsManager holds only paths; a panic while it was locked cannot corrupt it.
        self.manager.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cgroup path relative to the hierarchy roots.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the host uses the unified (v2) hierarchy.
    pub fn v2(&self) -> bool {
        self.cgroup.v2()
    }

    /// Create the cgroup if needed, apply `resources` and move `pid` into it.
    ///
    /// The limits are written before the process is let go, so it never runs unlimited.
    pub fn enter(&self, pid: Pid, resources: &LinuxResources) -> Result<(), SandboxError> {
        let p = CgroupPid::from(pid.as_raw() as u64);
        let mut manager = self.manager();
        manager
            .add_proc(p)
            .map_err(|e| cg_err(&self.path, &format!("add pid {pid}"), e))?;
        manager.set(resources).map_err(|e| {
            cg_err(
                &self.path,
                "apply limits",
                format!("{e} (hint: the host must have the cpu, memory and pids controllers)"),
            )
        })
    }

    /// Pids of every process in the cgroup.
    pub fn pids(&self) -> Vec<Pid> {
        self.cgroup
            .procs()
            .into_iter()
            .map(|p| Pid::from_raw(p.pid as i32))
            .collect()
    }

    /// Kill every process in the cgroup and wait (up to `timeout`) until it is empty.
    ///
    /// v2 uses `cgroup.kill`; v1 freezes the cgroup so nothing can fork while it is killed.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), SandboxError> {
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.pids();
            if pids.is_empty() || !self.cgroup.exists() {
                return Ok(());
            }
            if self.v2() && self.cgroup.kill().is_ok() {
                // cgroup.kill did it; wait below for the kernel to finish.
            } else {
                let frozen = self.manager().freeze(FreezerState::Frozen).is_ok();
                for pid in self.pids() {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                if frozen {
                    let _ = self.manager().freeze(FreezerState::Thawed);
                }
            }
            if Instant::now() > deadline {
                return Err(cg_err(
                    &self.path,
                    "kill",
                    format!("processes {:?} are still alive", self.pids()),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
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
        self.manager()
            .destroy()
            .map_err(|e| cg_err(&self.path, "remove", e))
    }

    /// Current usage; zeroes for counters the host does not have.
    pub fn usage(&self) -> Usage {
        let stats = self.manager().stats();
        let mut u = Usage {
            cpu_ns: stats.cpu.cpu_acct.map(|c| c.total_usage).unwrap_or(0),
            memory: stats.memory.memory.map(|m| m.usage).unwrap_or(0),
            tasks: stats.pids.current,
            oom_kills: 0,
        };
        if let Some(mem) = self.cgroup.controller_of::<MemController>() {
            if self.v2() {
                u.oom_kills = flat_key(mem.path(), "memory.events", "oom_kill");
            } else {
                u.oom_kills = mem.memory_stat().oom_control.oom_kill;
            }
        }
        if self.v2() {
            if let Some(cpu) = self.cgroup.controller_of::<CpuController>() {
                u.cpu_ns = flat_key(cpu.path(), "cpu.stat", "usage_usec").saturating_mul(1000);
            }
        }
        u
    }
}

/// One value of a flat-keyed cgroup file (parsed by cgroups-rs).
fn flat_key(dir: &std::path::Path, file: &str, key: &str) -> u64 {
    std::fs::File::open(dir.join(file))
        .ok()
        .and_then(|f| cgroups_rs::fs::flat_keyed_to_hashmap(f).ok())
        .and_then(|m| m.get(key).copied())
        .map(|v| v.max(0) as u64)
        .unwrap_or(0)
}
