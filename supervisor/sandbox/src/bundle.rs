//! The OCI runtime bundle of an agent: config.json generated with oci-spec, and the mount
//! points its read-only rootfs needs. The same bundle runs under clawkeep's launcher and
//! under `runc run`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder,
    LinuxDeviceType, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use super::{seccomp, SandboxError};

/// Where the agent's writable home is mounted inside the sandbox.
pub const AGENT_HOME: &str = "/home/agent";
/// Where an installed OpenClaw runtime appears inside the sandbox.
pub const RUNTIME_MOUNT: &str = "/opt/openclaw";

/// Ids mapped into each sandbox: 0..ID_RANGE inside are host ids base..base+ID_RANGE.
pub const ID_RANGE: u32 = 65_536;

/// CFS period used for CPU quotas (100 ms, the kernel default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// PATH inside the sandbox.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths hidden from the agent (runc's defaults).
const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the agent may read but not write (runc's defaults).
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What an agent's sandbox is made of.
#[derive(Debug, Clone)]
pub struct SandboxPlan {
    /// Agent name, also the hostname.
    pub name: String,
    /// The shared read-only root filesystem (absolute).
    pub rootfs: PathBuf,
    /// The agent's writable home on the host (absolute).
    pub home: PathBuf,
    /// cgroup path relative to the hierarchy roots.
    pub cgroup: String,
    /// First host uid/gid of the agent's id range.
    pub host_id: u32,
    /// argv inside the sandbox.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// CPU cores.
    pub cpu: f64,
    /// Memory limit in bytes.
    pub memory: u64,
    /// Process limit.
    pub pids: u64,
    /// RLIMIT_NOFILE.
    pub nofile: u64,
    /// Size of /tmp in bytes.
    pub tmp_size: u64,
    /// Shared collections mounted at `/knowledge/<name>` (`~/knowledge` links there): host
    /// directory, name, read-only.
    pub knowledge: Vec<(PathBuf, String, bool)>,
    /// Mount a small tmpfs at [`crate::secrets::SECRETS_DIR`] for the init to put the
    /// agent's secrets in (as files); the values never appear in the spec.
    pub secrets_tmpfs: bool,
    /// An installed runtime (Node + OpenClaw) bound read-only at `/opt/openclaw`, if any.
    pub runtime: Option<PathBuf>,
    /// Host files and directories bound read-only (host path, path inside): a model
    /// backend's system directories, program and model. Agents get none.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Host device nodes bound at the same path (a model backend's GPUs). Agents get none.
    pub devices: Vec<PathBuf>,
    /// Host gids it is also a member of (its shared collections' groups), mapped inside as
    /// [`ID_RANGE`], `ID_RANGE + 1`… and set as its supplementary groups.
    pub groups: Vec<u32>,
}

/// What [`SandboxPlan::memory`] holds for "no memory limit" (a model backend without one).
pub const NO_MEMORY_LIMIT: u64 = u64::MAX;

fn spec_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Spec(e.to_string())
}

fn mnt(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Result<Mount, SandboxError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

/// Build the OCI runtime spec of an agent's sandbox.
pub fn spec(p: &SandboxPlan) -> Result<Spec, SandboxError> {
    // The plan's own variables replace the defaults (a name twice in envp is ambiguous).
    let mut env: Vec<String> = [
        ("PATH", PATH.to_string()),
        ("HOME", AGENT_HOME.to_string()),
        ("HOSTNAME", p.name.clone()),
    ]
    .into_iter()
    .filter(|(k, _)| !p.env.iter().any(|(pk, _)| pk == k))
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    env.extend(p.env.iter().map(|(k, v)| format!("{k}={v}")));
    let none = oci_spec::runtime::Capabilities::new;
    let no_caps = LinuxCapabilitiesBuilder::default()
        .bounding(none())
        .effective(none())
        .inheritable(none())
        .permitted(none())
        .ambient(none())
        .build()
        .map_err(spec_err)?;
    let rlimits = vec![
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(p.nofile)
            .hard(p.nofile)
            .build()
            .map_err(spec_err)?,
        // No core dumps: an agent's memory holds its tokens.
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitCore)
            .soft(0u64)
            .hard(0u64)
            .build()
            .map_err(spec_err)?,
    ];
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .additional_gids(inside_groups(p))
                // With shared collections, what the agent makes is its group's as much as its
                // own (the other agents granted a collection can change it too), and no one
                // else's.
                .umask(if p.groups.is_empty() { 0o022u32 } else { 0o007 })
                .build()
                .map_err(spec_err)?,
        )
        .args(p.args.clone())
        .env(env)
        .cwd(AGENT_HOME)
        .capabilities(no_caps)
        .rlimits(rlimits)
        .no_new_privileges(true)
        .build()
        .map_err(spec_err)?;

    let tmp_size = format!("size={}", p.tmp_size);
    let home = p.home.to_string_lossy().to_string();
    let mut mounts = vec![
        mnt("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mnt(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mnt(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mnt(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mnt(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mnt(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mnt(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777", &tmp_size],
        )?,
        mnt(
            AGENT_HOME,
            "bind",
            &home,
            &["rbind", "nosuid", "nodev", "rw"],
        )?,
    ];
    // Each granted collection, out of the home (see `crate::special_files`; `~/knowledge`
    // links there), read-only where the grant is (the kernel refuses writes with EROFS,
    // whatever the agent is told), and never executable: shared knowledge is data, not a
    // way to hand another agent a program.
    for (dir, name, ro) in &p.knowledge {
        let dest = format!("{}/{name}", crate::special_files::KNOWLEDGE_ROOT);
        let mode = if *ro { "ro" } else { "rw" };
        mounts.push(mnt(
            &dest,
            "bind",
            &dir.to_string_lossy(),
            &["rbind", "nosuid", "nodev", "noexec", mode],
        )?);
    }
    if let Some(rt) = &p.runtime {
        // Content-addressed and read-only on the host too; nosuid/nodev like the rootfs.
        mounts.push(mnt(
            RUNTIME_MOUNT,
            "bind",
            &rt.to_string_lossy(),
            &["rbind", "nosuid", "nodev", "ro"],
        )?);
    }
    for (host, inside) in &p.binds {
        // Programs and libraries run from here, so not noexec; read-only, like the rootfs.
        mounts.push(mnt(
            &inside.to_string_lossy(),
            "bind",
            &host.to_string_lossy(),
            &["rbind", "nosuid", "nodev", "ro"],
        )?);
    }
    if p.secrets_tmpfs {
        // Filled by the init from fd 5, then made read-only: see `crate::secrets`.
        mounts.push(mnt(
            crate::secrets::SECRETS_DIR,
            "tmpfs",
            "tmpfs",
            &[
                "nosuid",
                "nodev",
                "noexec",
                "mode=0700",
                crate::secrets::TMPFS_SIZE,
            ],
        )?);
    }

    let map = |host: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(ID_RANGE)
            .build()
            .map_err(spec_err)
    };
    let mut gid_maps = vec![map(p.host_id)?];
    for (&host, inside) in p.groups.iter().zip(inside_groups(p)) {
        gid_maps.push(
            LinuxIdMappingBuilder::default()
                .container_id(inside)
                .host_id(host)
                .size(1u32)
                .build()
                .map_err(spec_err)?,
        );
    }
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|t| {
        LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .map_err(spec_err)
    })
    .collect::<Result<Vec<_>, _>>()?;
    let quota = (p.cpu * CPU_PERIOD_US as f64).round().max(1000.0) as i64;
    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .quota(quota)
                .period(CPU_PERIOD_US)
                .build()
                .map_err(spec_err)?,
        )
        .memory(if p.memory == NO_MEMORY_LIMIT {
            // Accounted, not limited.
            LinuxMemoryBuilder::default().build().map_err(spec_err)?
        } else {
            LinuxMemoryBuilder::default()
                .limit(i64::try_from(p.memory).unwrap_or(i64::MAX))
                // OCI's swap is memory + swap: as much swap as memory, no more (Docker's
                // default), so an agent cannot push the node into swapping without bound.
                .swap(i64::try_from(p.memory.saturating_mul(2)).unwrap_or(i64::MAX))
                .build()
                .map_err(spec_err)?
        })
        .pids(
            LinuxPidsBuilder::default()
                .limit(i64::try_from(p.pids).unwrap_or(i64::MAX))
                .build()
                .map_err(spec_err)?,
        )
        .build()
        .map_err(spec_err)?;
    let devices = p
        .devices
        .iter()
        .map(|d| device(d))
        .collect::<Result<Vec<_>, _>>()?;
    let linux = LinuxBuilder::default()
        .devices(devices)
        .uid_mappings(vec![map(p.host_id)?])
        .gid_mappings(gid_maps)
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(format!("/{}", p.cgroup)))
        .resources(resources)
        .masked_paths(MASKED.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(READONLY.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .seccomp(seccomp::policy()?)
        .build()
        .map_err(spec_err)?;

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(p.rootfs.clone())
                .readonly(true)
                .build()
                .map_err(spec_err)?,
        )
        .hostname(p.name.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(spec_err)
}

/// The gids inside that `p.groups` map to, in order.
fn inside_groups(p: &SandboxPlan) -> Vec<u32> {
    (0..p.groups.len())
        .map(|i| ID_RANGE.saturating_add(u32::try_from(i).unwrap_or(u32::MAX)))
        .collect()
}

/// The OCI description of host device node `path` (its type and numbers, as the host has it).
fn device(path: &Path) -> Result<LinuxDevice, SandboxError> {
    use std::os::unix::fs::FileTypeExt;
    let md = path.metadata().map_err(|e| SandboxError::Io {
        path: path.to_path_buf(),
        what: "find device".into(),
        source: e,
    })?;
    let typ = if md.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if md.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(SandboxError::Spec(format!(
            "{} is not a device node (hint: devices lists device files such as /dev/nvidia0)",
            path.display()
        )));
    };
    let rdev = md.rdev();
    LinuxDeviceBuilder::default()
        .path(path)
        .typ(typ)
        .major(nix::sys::stat::major(rdev) as i64)
        .minor(nix::sys::stat::minor(rdev) as i64)
        .file_mode(md.mode() & 0o7777)
        .build()
        .map_err(spec_err)
}

/// Write `config.json` into `dir` (created 0700), with its seccomp filter compiled beside it
/// ([`super::seccomp::keep`]), and return its path.
pub fn write(dir: &Path, spec: &Spec) -> Result<PathBuf, SandboxError> {
    let io = |what: &str, path: &Path, e: std::io::Error| SandboxError::Io {
        path: path.to_path_buf(),
        what: what.to_string(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create bundle directory", dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("chmod bundle directory", dir, e))?;
    let path = dir.join("config.json");
    let tmp = dir.join("config.json.tmp");
    let json = serde_json::to_vec_pretty(spec).map_err(spec_err)?;
    std::fs::write(&tmp, json).map_err(|e| io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("rename into place", &path, e))?;
    if let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        super::seccomp::keep(dir, section)?;
    }
    Ok(path)
}

/// Create the mount points the spec needs inside the rootfs (as the host sees it).
///
/// Inside the sandbox the rootfs is read-only and owned by ids outside the agent's range, so
/// the mount points must exist before the sandbox starts; runc creates them the same way.
pub fn prepare_rootfs(spec: &Spec) -> Result<(), SandboxError> {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or_else(|| SandboxError::Spec("config.json has no root.path".into()))?;
    if !root.is_dir() {
        return Err(SandboxError::Io {
            path: root.clone(),
            what: "use as rootfs".into(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a directory (hint: [runtime] rootfs in the fleet file must name a root filesystem directory)",
            ),
        });
    }
    reachable_by_others(&root)?;
    if let Some(rt) = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(RUNTIME_MOUNT))
        .and_then(|m| m.source().clone())
    {
        reachable_by_others(&rt)?;
    }
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination();
        let bind = m.typ().as_deref() == Some("bind");
        // Top-level mounts and binds: /dev/pts etc. live in the /dev tmpfs, made at start.
        let in_made = ["/dev", "/proc", "/sys"]
            .iter()
            .any(|d| dest.starts_with(d) && dest != Path::new(d));
        if in_made
            || (dest.parent() != Some(Path::new("/"))
                && !bind
                && dest != Path::new(crate::secrets::SECRETS_DIR))
        {
            continue;
        }
        let target = super::mounts::resolve_in(&root, dest)?;
        if target.symlink_metadata().is_ok() {
            continue;
        }
        let made_err = |e| SandboxError::Io {
            path: target.clone(),
            what: "create mount point in the rootfs".into(),
            source: e,
        };
        let file = bind && m.source().as_deref().is_some_and(|s| s.is_file());
        if file {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(made_err)?;
            }
            std::fs::File::create(&target).map_err(made_err)?;
        } else {
            std::fs::create_dir_all(&target).map_err(made_err)?;
        }
    }
    Ok(())
}

/// The sandbox's root is an unprivileged host uid: it can only reach the rootfs if every
/// directory on the way lets others search it. Say so before the launch fails with EACCES.
pub fn reachable_by_others(path: &Path) -> Result<(), SandboxError> {
    for dir in path.ancestors() {
        let Ok(md) = dir.metadata() else { continue };
        if md.is_dir() && md.permissions().mode() & 0o001 == 0 {
            return Err(SandboxError::Io {
                path: dir.to_path_buf(),
                what: format!(
                    "a sandbox's unprivileged user cannot reach {} through",
                    path.display()
                ),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "mode {:o} has no search permission for others (hint: chmod o+x {}, or keep it under /var/lib/clawkeep or /opt)",
                        md.permissions().mode() & 0o7777,
                        dir.display()
                    ),
                ),
            });
        }
    }
    Ok(())
}

/// Create the agent's home (0700) owned by the agent's root, fixing ownership when the agent
/// moved to another id range (its position in the fleet file changed).
pub fn prepare_home(home: &Path, host_id: u32) -> Result<(), SandboxError> {
    let io = |what: &str, path: &Path, e: std::io::Error| SandboxError::Io {
        path: path.to_path_buf(),
        what: what.to_string(),
        source: e,
    };
    std::fs::create_dir_all(home).map_err(|e| io("create agent home", home, e))?;
    let md = home.symlink_metadata().map_err(|e| io("stat", home, e))?;
    if md.uid() != host_id {
        chown_tree(home, md.uid(), host_id).map_err(|e| io("change owner of", home, e))?;
    }
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("chmod", home, e))
}

/// Shift the ownership of a tree from one id range to another, without following symlinks.
fn chown_tree(path: &Path, old_base: u32, new_base: u32) -> std::io::Result<()> {
    let md = path.symlink_metadata()?;
    let shift = |id: u32| {
        if id >= old_base && id - old_base < ID_RANGE {
            new_base + (id - old_base)
        } else {
            new_base
        }
    };
    std::os::unix::fs::lchown(path, Some(shift(md.uid())), Some(shift(md.gid())))?;
    if md.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), old_base, new_base)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SandboxPlan {
        SandboxPlan {
            name: "research".into(),
            rootfs: "/rootfs".into(),
            home: "/state/agents/research/home".into(),
            cgroup: "clawkeep/research".into(),
            host_id: 1_000_000_000,
            args: vec!["/bin/sh".into()],
            env: vec![("A".into(), "b".into())],
            cpu: 0.5,
            memory: 64 << 20,
            pids: 64,
            nofile: 1024,
            tmp_size: 16 << 20,
            knowledge: Vec::new(),
            secrets_tmpfs: false,
            runtime: None,
            binds: Vec::new(),
            devices: Vec::new(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn unreachable_rootfs_is_explained() {
        let base = std::env::temp_dir().join(format!("ck-reach-{}", std::process::id()));
        let root = base.join("inner/rootfs");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(reachable_by_others(&root).is_ok());
        std::fs::set_permissions(base.join("inner"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let err = reachable_by_others(&root).unwrap_err().to_string();
        assert!(
            err.contains("inner: mode 700 has no search permission"),
            "{err}"
        );
        assert!(err.contains("chmod o+x"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_backends_binds_are_read_only_and_its_devices_carry_the_hosts_numbers() {
        let p = SandboxPlan {
            binds: vec![("/opt/models/m.gguf".into(), "/models/m.gguf".into())],
            devices: vec!["/dev/null".into()],
            memory: NO_MEMORY_LIMIT,
            ..plan()
        };
        let json = serde_json::to_value(spec(&p).unwrap()).unwrap();
        let m = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/models/m.gguf")
            .cloned()
            .unwrap();
        assert_eq!(m["source"], "/opt/models/m.gguf");
        let opts = m["options"].to_string();
        for o in ["\"ro\"", "nosuid", "nodev"] {
            assert!(opts.contains(o), "{opts}");
        }
        let d = &json["linux"]["devices"][0];
        assert_eq!(d["path"], "/dev/null");
        assert_eq!(
            (d["type"].as_str(), d["major"].as_i64(), d["minor"].as_i64()),
            (Some("c"), Some(1), Some(3))
        );
        // No memory limit means none at all, swap included, not a limit of 0.
        let mem = &json["linux"]["resources"]["memory"];
        assert!(
            mem.get("limit").is_none() && mem.get("swap").is_none(),
            "{mem}"
        );
        // A path that is not a device is refused with the fix.
        let err = spec(&SandboxPlan {
            devices: vec!["/etc/hostname".into()],
            ..plan()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("/etc/hostname is not a device node"), "{err}");
    }

    #[test]
    fn secrets_tmpfs_only_when_asked() {
        let mount = |p: &SandboxPlan| {
            let json = serde_json::to_value(spec(p).unwrap()).unwrap();
            json["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == crate::secrets::SECRETS_DIR)
                .cloned()
        };
        assert!(mount(&plan()).is_none());
        let m = mount(&SandboxPlan {
            secrets_tmpfs: true,
            ..plan()
        })
        .unwrap();
        assert_eq!(m["type"], "tmpfs");
        let opts = m["options"].to_string();
        for o in ["mode=0700", "size=1m", "noexec", "nosuid", "nodev"] {
            assert!(opts.contains(o), "{opts}");
        }
    }

    #[test]
    fn shared_knowledge_is_mounted_without_exec_suid_or_devices() {
        let p = SandboxPlan {
            knowledge: vec![
                ("/state/shared/docs".into(), "docs".into(), true),
                ("/state/shared/notes".into(), "notes".into(), false),
            ],
            ..plan()
        };
        let json = serde_json::to_value(spec(&p).unwrap()).unwrap();
        let mounts = json["mounts"].as_array().unwrap();
        for (name, mode) in [("docs", "ro"), ("notes", "rw")] {
            let m = mounts
                .iter()
                .find(|m| m["destination"] == format!("/knowledge/{name}"))
                .unwrap();
            let opts: Vec<&str> = m["options"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|o| o.as_str())
                .collect();
            for o in ["noexec", "nosuid", "nodev", mode] {
                assert!(opts.contains(&o), "{name}: {opts:?}");
            }
        }
    }

    #[test]
    fn spec_carries_isolation_and_limits() {
        let s = spec(&plan()).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["root"]["readonly"], true);
        assert_eq!(json["hostname"], "research");
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(
            json["process"]["capabilities"]["bounding"],
            serde_json::json!([])
        );
        assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(
            json["linux"]["resources"]["memory"]["swap"],
            128 << 20,
            "memory + swap: as much swap as memory, no more"
        );
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 64);
        assert_eq!(json["linux"]["uidMappings"][0]["hostID"], 1_000_000_000u32);
        assert_eq!(json["linux"]["namespaces"].as_array().unwrap().len(), 7);
        assert!(json["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&"A=b".into()));
        let round: Spec = serde_json::from_value(json).unwrap();
        assert_eq!(round, s);
    }
}
