//! What changed between the fleet a supervisor runs and a new version of its file, as the
//! steps `clawkeep apply` takes: agents to stop, to restart (saying which settings moved)
//! and to start; or the sections whose change needs clawkeep itself restarted.

use super::{Agent, Fleet};

/// The steps, in the order they are taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Agents gone from the file: stopped first (their brains pushed), in file order.
    pub stop: Vec<String>,
    /// Agents whose settings changed, with the settings: restarted next, in file order.
    pub restart: Vec<(String, Vec<&'static str>)>,
    /// Agents new in the file: started last, in file order (agents depend only on services,
    /// which apply leaves running).
    pub start: Vec<String>,
    /// Agents left as they are.
    pub unchanged: Vec<String>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.stop.is_empty() && self.restart.is_empty() && self.start.is_empty()
    }

    /// The plan as `--dry-run` prints it: a line a step, then what is left alone.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for name in &self.stop {
            out.push_str(&format!("stop     {name} (gone from the fleet file)\n"));
        }
        for (name, why) in &self.restart {
            out.push_str(&format!("restart  {name} ({} changed)\n", why.join(", ")));
        }
        for name in &self.start {
            out.push_str(&format!("start    {name} (new in the fleet file)\n"));
        }
        if self.is_empty() {
            out.push_str("nothing to do: the running fleet is the file's\n");
        }
        if !self.unchanged.is_empty() {
            out.push_str(&format!("unchanged: {}\n", self.unchanged.join(", ")));
        }
        out
    }
}

/// Why a new fleet file cannot be applied to the running fleet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} changed: apply starts, restarts and stops agents only (hint: restart clawkeep to take the new {}, e.g. systemctl restart clawkeep, or undo that part of the file)", sections.join(", "), if sections.len() == 1 { "section" } else { "sections" })]
pub struct NeedsRestart {
    /// The sections that changed, as the file names them.
    pub sections: Vec<&'static str>,
}

/// The steps from `running` to `new`.
pub fn plan(running: &Fleet, new: &Fleet) -> Result<Plan, NeedsRestart> {
    let mut sections = Vec::new();
    let mut section = |changed: bool, name: &'static str| {
        if changed {
            sections.push(name);
        }
    };
    section(running.node != new.node, "[node]");
    section(
        running.rootfs != new.rootfs || running.openclaw != new.openclaw,
        "[runtime]",
    );
    section(running.services != new.services, "[[service]]");
    section(running.models != new.models, "[models]");
    section(running.store != new.store, "[store]");
    section(running.cluster != new.cluster, "[cluster]");
    // A collection's group id follows the sorted list of collections: a new or removed one
    // moves the others' groups, and the store's grants with them.
    section(
        running.collections() != new.collections(),
        "the shared collections agents are granted (knowledge)",
    );
    if !sections.is_empty() {
        return Err(NeedsRestart { sections });
    }
    let mut out = Plan::default();
    for old in &running.agents {
        if !new.agents.iter().any(|a| a.name == old.name) {
            out.stop.push(old.name.clone());
        }
    }
    let mut restart = Vec::new();
    let mut start = Vec::new();
    for agent in &new.agents {
        match running.agents.iter().find(|a| a.name == agent.name) {
            None => start.push(agent),
            Some(old) => {
                let why = differences(old, agent);
                if why.is_empty() {
                    out.unchanged.push(agent.name.clone());
                } else {
                    restart.push((agent, why));
                }
            }
        }
    }
    out.restart = restart
        .into_iter()
        .map(|(a, why)| (a.name.clone(), why))
        .collect();
    out.start = start.into_iter().map(|a| a.name.clone()).collect();
    Ok(out)
}

/// The settings of an agent that differ, named as in the fleet file.
fn differences(old: &Agent, new: &Agent) -> Vec<&'static str> {
    let pairs: [(bool, &'static str); 21] = [
        (
            old.index != new.index,
            "its place in the file (its uid range)",
        ),
        (old.team != new.team, "team"),
        (old.soul != new.soul, "soul"),
        (old.workspace != new.workspace, "workspace"),
        (old.gateway_port != new.gateway_port, "gateway_port"),
        (old.command != new.command, "command"),
        (old.resources != new.resources, "resources"),
        (old.restart != new.restart, "restart"),
        (old.stop_grace != new.stop_grace, "stop_grace"),
        (old.log != new.log, "log"),
        (old.depends_on != new.depends_on, "depends_on"),
        (old.model != new.model, "model"),
        (old.models != new.models, "models"),
        (old.tokens_per_day != new.tokens_per_day, "tokens_per_day"),
        (old.max_concurrent != new.max_concurrent, "max_concurrent"),
        (old.knowledge != new.knowledge, "knowledge"),
        (old.health != new.health, "health"),
        (old.egress != new.egress, "egress"),
        (old.openclaw != new.openclaw, "openclaw"),
        (old.secrets != new.secrets, "secrets"),
        (old.secrets_as != new.secrets_as, "secrets_as"),
    ];
    let mut why: Vec<&'static str> = pairs
        .into_iter()
        .filter(|(changed, _)| *changed)
        .map(|(_, name)| name)
        .collect();
    // Anything else that differs (a field added to Agent later) still counts.
    if why.is_empty() && old != new {
        why.push("settings");
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(body: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(
            &path,
            format!("[node]\nname = \"n\"\n\n[runtime]\nrootfs = \"/\"\n\n{body}"),
        )
        .unwrap();
        crate::fleet::load_for_cluster(&path).unwrap_or_else(|d| panic!("{d}"))
    }

    const AGENTS: &str = r#"
[[agent]]
name = "a"
command = "/bin/sh"

[[agent]]
name = "b"
command = "/bin/sh"
"#;

    #[test]
    fn the_same_file_is_nothing_to_do() {
        let p = plan(&fleet(AGENTS), &fleet(AGENTS)).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.unchanged, ["a", "b"]);
        assert!(p.text().starts_with("nothing to do"), "{}", p.text());
    }

    #[test]
    fn an_added_a_changed_and_a_removed_agent_are_started_restarted_and_stopped() {
        let new = r#"
[[agent]]
name = "a"
command = "/bin/sh"
args = ["-c", "sleep 1"]
memory = "256Mi"

[[agent]]
name = "c"
command = "/bin/sh"
"#;
        let p = plan(&fleet(AGENTS), &fleet(new)).unwrap();
        assert_eq!(p.stop, ["b"]);
        assert_eq!(p.restart, [("a".to_string(), vec!["command", "resources"])]);
        // c takes b's place in the file, and so b's uid range: a new agent either way.
        assert_eq!(p.start, ["c"]);
        assert!(p.unchanged.is_empty());
        assert_eq!(
            p.text(),
            "stop     b (gone from the fleet file)\nrestart  a (command, resources changed)\nstart    c (new in the fleet file)\n"
        );
    }

    #[test]
    fn removing_an_agent_before_another_moves_the_others_uid_range_so_it_restarts() {
        let new = "[[agent]]\nname = \"b\"\ncommand = \"/bin/sh\"\n";
        let p = plan(&fleet(AGENTS), &fleet(new)).unwrap();
        assert_eq!(p.stop, ["a"]);
        assert_eq!(
            p.restart,
            [(
                "b".to_string(),
                vec!["its place in the file (its uid range)"]
            )]
        );
    }

    #[test]
    fn a_changed_service_or_node_section_needs_clawkeep_restarted_and_says_so() {
        let store = "[store]\nendpoint = \"http://127.0.0.1:9000\"\ncredentials = \"/etc/hostname\"\nadmin = { kind = \"none\" }\n";
        let granted = format!("{store}{AGENTS}");
        let changed = granted.replace(
            "name = \"b\"",
            "name = \"b\"\nknowledge = { docs = \"rw\" }",
        );
        let err = plan(&fleet(&granted), &fleet(&changed)).unwrap_err();
        assert_eq!(
            err.sections,
            ["the shared collections agents are granted (knowledge)"]
        );
        let service = format!("{AGENTS}\n[[service]]\nname = \"s\"\ncommand = \"/bin/true\"\n");
        let err = plan(&fleet(AGENTS), &fleet(&service)).unwrap_err();
        assert_eq!(err.sections, ["[[service]]"]);
        assert!(err.to_string().contains("restart clawkeep"), "{err}");
    }
}
