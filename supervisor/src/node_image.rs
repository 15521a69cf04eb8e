//! `clawkeep image build|verify|inspect`, the supervisor's side: the fleet (which the
//! supervisor owns) checked and turned into what the image builder places, the builder's
//! tools found, and an image described for a person.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use clawkeep_image::build::{AgentInfo, FleetFile, FleetInput, Inspected, Tools};

use crate::fleet::FleetFile as FleetText;

/// What the image builder places for a fleet file (`path`, read by
/// [`crate::fleet::load_file`] from `base`, its directory): the file, the agents' rootfs
/// when `[runtime] rootfs` is relative (the whole tree), every soul and workspace seed it
/// names (by their path relative to the fleet file's directory, which is
/// where they land under `/etc/clawkeep/`), and its agents. The builder then checks the
/// whole fleet inside the image ([`check_in_root`]).
pub fn fleet_input(fleet: &FleetText, path: &Path, base: &Path) -> FleetInput {
    let mut files = BTreeMap::new();
    if let Some(rootfs) = fleet.runtime.rootfs.as_deref() {
        if Path::new(rootfs).is_relative() {
            let source = base.join(rootfs);
            files.insert(dest_of(base, &source), source);
        }
    }
    for agent in &fleet.agent {
        let named = agent
            .soul
            .iter()
            .chain(agent.workspace.iter().flat_map(|w| w.values()));
        for written in named {
            let source = base.join(written);
            files.entry(dest_of(base, &source)).or_insert(source);
        }
    }
    FleetInput {
        file: path.to_path_buf(),
        files: files
            .into_iter()
            .map(|(dest, source)| FleetFile { source, dest })
            .collect(),
        agents: fleet
            .agent
            .iter()
            .map(|a| AgentInfo {
                name: a.name.clone().unwrap_or_default(),
                team: a.settings.team.clone(),
            })
            .collect(),
    }
}

/// `source`'s path relative to `base`, `.` parts dropped; where it is not inside `base`,
/// the path as it is (which the builder refuses, naming it).
fn dest_of(base: &Path, source: &Path) -> String {
    let Ok(rel) = source.strip_prefix(base) else {
        return source.display().to_string();
    };
    let parts: Vec<String> = rel
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Checks the fleet inside an image's staged root filesystem (the builder's
/// [`clawkeep_image::build::FleetCheck`]): the same rules as `clawkeep check`, paths as on the node.
pub fn check_in_root(root: &Path, fleet: &Path) -> Result<(), String> {
    crate::fleet::load_in_root(root, fleet)
        .map(|_| ())
        .map_err(|d| d.to_string())
}

/// The builder's tools: each given path, else the one `scripts/install-image-tools` caches
/// (a new enough mke2fs), else the system's.
pub fn tools(mke2fs: Option<PathBuf>, qemu_img: Option<PathBuf>, depmod: Option<PathBuf>) -> Tools {
    let cache = std::env::var_os("CLAWKEEP_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| Path::new(&c).join("clawkeep")))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/clawkeep")));
    let cached_mke2fs = cache
        .map(|c| c.join("e2fsprogs/bin/mke2fs"))
        .filter(|p| p.is_file());
    Tools {
        mke2fs: mke2fs
            .or(cached_mke2fs)
            .unwrap_or_else(|| "/usr/sbin/mke2fs".into()),
        qemu_img: qemu_img.unwrap_or_else(|| "/usr/bin/qemu-img".into()),
        depmod: depmod.unwrap_or_else(|| "/usr/sbin/depmod".into()),
    }
}

/// `clawkeep image inspect` as text: versions, the fleet's agents, digests and sizes.
pub fn describe(image: &Inspected) -> String {
    let i = &image.info;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "clawkeep  {}",
        i.clawkeep.as_deref().unwrap_or("(version not recorded)")
    );
    let _ = writeln!(s, "OpenClaw  {}", i.openclaw);
    let _ = writeln!(s, "Node      {}", i.node);
    let _ = writeln!(s, "runtime   {}", i.runtime_id);
    let _ = writeln!(s, "kernel    {} ({})", i.kernel_release, i.kernel_package);
    let _ = writeln!(
        s,
        "stage 1   {} modules; init: {}",
        i.stage1_modules.len(),
        i.stage1_init.as_deref().unwrap_or("none yet")
    );
    let _ = writeln!(
        s,
        "rootfs    {} entries, ext4 UUID {}, root=PARTUUID={}",
        i.rootfs_entries, i.rootfs_uuid, i.root_partuuid
    );
    let _ = writeln!(s, "epoch     {}", i.source_date_epoch);
    let _ = writeln!(
        s,
        "fleet     /etc/clawkeep/fleet.toml sha256 {} (+ {})",
        i.fleet_sha256,
        if i.fleet_files.is_empty() {
            "no other files".to_string()
        } else {
            i.fleet_files.join(", ")
        }
    );
    let _ = writeln!(s, "agents    {}", i.agents.len());
    for a in &i.agents {
        let _ = writeln!(
            s,
            "  {:<24} {}",
            a.name,
            a.team
                .as_deref()
                .map(|t| format!("team {t}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "inputs");
    for input in &image.lock.inputs {
        let _ = writeln!(
            s,
            "  {:<12} {:<56} {} {}",
            input.role.as_str(),
            input.path,
            &input.sha256,
            input.version.as_deref().unwrap_or("")
        );
    }
    // Top-level outputs with their sizes (the OCI layout's blobs summed as one).
    let mut sizes: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for out in &image.lock.outputs {
        let top = out.path.split('/').next().unwrap_or(&out.path);
        let e = sizes.entry(top).or_default();
        e.0 += out.size;
        e.1 += 1;
    }
    let _ = writeln!(s, "outputs");
    for (top, (size, n)) in &sizes {
        let digest = image
            .lock
            .outputs
            .iter()
            .find(|o| o.path == *top)
            .map(|o| o.sha256.as_str())
            .unwrap_or("");
        let what = if *n > 1 {
            format!("{n} files")
        } else {
            digest.to_string()
        };
        let _ = writeln!(s, "  {:<16} {:>12} bytes  {}", top, size, what);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_where_the_fleet_names_them() {
        let base = Path::new("/srv/lab");
        assert_eq!(
            dest_of(base, Path::new("/srv/lab/./souls/a.md")),
            "souls/a.md"
        );
        assert_eq!(dest_of(base, Path::new("/srv/lab/USER.md")), "USER.md");
        assert_eq!(dest_of(base, Path::new("/etc/soul.md")), "/etc/soul.md");
        assert_eq!(
            dest_of(base, Path::new("/srv/lab/../x.md")),
            "../x.md",
            "refused by the builder"
        );
    }
}
