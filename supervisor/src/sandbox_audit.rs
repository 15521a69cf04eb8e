//! The running sandboxes and the logs, as `clawkeep audit` sees them from the host: every
//! process of every agent without capabilities, with no_new_privs and a seccomp filter, on an
//! unprivileged host uid, in a network namespace with loopback only (CK-SBX-*); no secret or
//! gateway token written into any log (CK-LOG-001); and no egress allow-list entry that leads
//! back to the node itself, its link or a cloud's metadata service (CK-EGR-001).

use std::path::{Path, PathBuf};

use crate::engine::process::Def;
use crate::engine::Shared;
use crate::findings::{finding, Finding};

/// What one process's `/proc/PID/status` says about its confinement.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Confinement {
    /// Effective capabilities (hex).
    pub cap_eff: String,
    /// no_new_privs.
    pub no_new_privs: bool,
    /// Seccomp mode (2: filter).
    pub seccomp: u32,
    /// Real uid on the host.
    pub uid: u32,
}

/// Parse the fields of `/proc/PID/status` that [`Confinement`] holds.
pub fn parse_status(text: &str) -> Confinement {
    let mut c = Confinement::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "CapEff" => c.cap_eff = v.to_string(),
            "NoNewPrivs" => c.no_new_privs = v == "1",
            "Seccomp" => c.seccomp = v.parse().unwrap_or(0),
            "Uid" => {
                c.uid = v
                    .split_whitespace()
                    .next()
                    .and_then(|u| u.parse().ok())
                    .unwrap_or(0)
            }
            _ => {}
        }
    }
    c
}

/// What is wrong with a process's confinement, one phrase each.
pub fn confinement_problems(c: &Confinement, uid_floor: u32) -> Vec<String> {
    let mut out = Vec::new();
    if !c.cap_eff.trim_start_matches('0').is_empty() {
        out.push(format!("has capabilities {}", c.cap_eff));
    }
    if !c.no_new_privs {
        out.push("may gain privileges (no_new_privs is off)".into());
    }
    if c.seccomp != 2 {
        out.push(format!("has no seccomp filter (mode {})", c.seccomp));
    }
    if c.uid < uid_floor {
        out.push(format!("runs as host uid {}", c.uid));
    }
    out
}

/// Interfaces other than `lo` in a `/proc/PID/net/dev` listing.
pub fn extra_interfaces(net_dev: &str) -> Vec<String> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .filter(|n| n != "lo")
        .collect()
}

/// Pids under `proc_root` in the pid namespace of `init`.
fn pids_in_namespace_of(proc_root: &Path, init: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(proc_root.join(pid).join("ns/pid")).ok();
    let Some(want) = ns(&init.to_string()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| ns(&pid.to_string()).as_ref() == Some(&want))
        .collect()
}

/// CK-SBX-001 and CK-SBX-002 for every running agent.
pub fn sandboxes(shared: &Shared) -> Vec<Finding> {
    let proc_root = &shared.host.proc_root;
    let mut out = Vec::new();
    for p in &shared.processes {
        let Def::Agent(a) = &p.def else { continue };
        let Some(init) = p.status().pid.map(|p| p.as_raw()) else {
            continue;
        };
        let floor = crate::engine::start::host_id(&shared.fleet, a);
        for pid in pids_in_namespace_of(proc_root, init) {
            let Ok(text) = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status"))
            else {
                continue;
            };
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("Name:"))
                .unwrap_or("?")
                .trim()
                .to_string();
            let problems = confinement_problems(&parse_status(&text), floor);
            if !problems.is_empty() {
                out.push(finding(
                    "CK-SBX-001",
                    "high",
                    &a.name,
                    format!("process {pid} ({name}) {}", problems.join(", ")),
                    "restart the agent (clawkeep restart NAME); if it persists, something outside clawkeep changed the process: investigate the host",
                ));
            }
        }
        if let Ok(dev) = std::fs::read_to_string(proc_root.join(init.to_string()).join("net/dev")) {
            let extra = extra_interfaces(&dev);
            if !extra.is_empty() {
                out.push(finding(
                    "CK-SBX-002",
                    "high",
                    &a.name,
                    format!(
                        "its network namespace has interfaces besides lo: {}",
                        extra.join(", ")
                    ),
                    "someone moved an interface into the sandbox: remove it (ip link del) and restart the agent",
                ));
            }
        }
    }
    out
}

/// Files of the logs directory (current and rotated).
fn log_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// CK-LOG-001: no log holds a secret's value or a gateway token. Values shorter than 8
/// characters are not searched for (they would match by chance); a finding never shows one.
pub fn logs(shared: &Shared) -> Vec<Finding> {
    let state = &shared.paths.state_dir;
    let mut needles: Vec<(String, String)> = Vec::new();
    if let Ok(all) = crate::secrets::Store::new(state).load() {
        for (agent, secrets) in all {
            for (name, v) in secrets {
                needles.push((format!("{agent}'s secret {name}"), v.expose().to_string()));
            }
        }
    }
    if shared.fleet.openclaw.is_some() {
        for a in &shared.fleet.agents {
            if let Ok(t) = std::fs::read_to_string(shared.paths.token(&a.name)) {
                needles.push((format!("{}'s gateway token", a.name), t.trim().to_string()));
            }
        }
    }
    needles.retain(|(_, v)| v.len() >= 8);
    if needles.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for file in log_files(&shared.paths.logs()) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (what, value) in &needles {
            if text.contains(value.as_str()) {
                out.push(finding(
                    "CK-LOG-001",
                    "high",
                    file.display().to_string(),
                    format!("the log holds {what}"),
                    "treat it as leaked: replace it (clawkeep secrets set / clawkeep token rotate), then remove the log file",
                ));
            }
        }
    }
    out
}

/// CK-EGR-001: an allow-list entry on the node itself, its link or a cloud's metadata
/// service hands the agent what only the node should reach (the store's root port, the model
/// server directly), around clawkeep. The same rule as `check` ([`crate::fleet::egress`]),
/// for fleets loaded before it.
pub fn egress(shared: &Shared) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in &shared.fleet.agents {
        for e in &a.egress {
            let Err(crate::fleet::egress::EntryError::Refused { class, shown }) =
                crate::fleet::egress::entry(e)
            else {
                continue;
            };
            let shown = shown.map(|ip| format!(" ({ip})")).unwrap_or_default();
            out.push(finding(
                "CK-EGR-001",
                "medium",
                &a.name,
                format!("egress allows {e}, {}{shown}: the agent reaches what only the node should, around clawkeep", class.describe()),
                "remove it from egress; agents reach models through the gateway and knowledge through their mounts",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_and_problems() {
        let ok = "Name:\tnode\nUid:\t1000000000\t1000000000\t1000000000\t1000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";
        let c = parse_status(ok);
        assert!(confinement_problems(&c, 1_000_000_000).is_empty(), "{c:?}");
        let bad =
            "Name:\tsh\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\nNoNewPrivs:\t0\nSeccomp:\t0\n";
        let p = confinement_problems(&parse_status(bad), 1_000_000_000);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].contains("000001ffffffffff"));
    }

    #[test]
    fn interfaces_besides_lo() {
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 0 0\n  eth0: 1 2\n";
        assert_eq!(extra_interfaces(dev), vec!["eth0"]);
        assert!(extra_interfaces("a\nb\n    lo: 0\n").is_empty());
    }
}
