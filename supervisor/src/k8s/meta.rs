//! Names and labels every rendered object shares.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::fleet::Agent;

/// The team of agents without one.
pub const DEFAULT_TEAM: &str = "default";
/// Prefix of every team's namespace.
pub const NAMESPACE_PREFIX: &str = crate::fleet::TEAM_NAMESPACE_PREFIX;
/// Where the cluster-wide pieces (the model gateway) run (`clawkeep-system`).
pub const SYSTEM_NAMESPACE: &str = "clawkeep-system";
/// The namespace whose pods may reach agents' gateway ports (operators' tools).
pub const OPERATOR_NAMESPACE: &str = "clawkeep-operators";

/// Whether `namespace` is clawkeep's own rather than a team's.
pub fn reserved(namespace: &str) -> bool {
    namespace == SYSTEM_NAMESPACE || namespace == OPERATOR_NAMESPACE
}
/// The label Kubernetes puts on every namespace: its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Label of the agent a pod or object belongs to.
pub const AGENT_LABEL: &str = "clawkeep.io/agent";
/// Label of the team.
pub const TEAM_LABEL: &str = "clawkeep.io/team";

/// An agent's team.
pub fn team_of(agent: &Agent) -> &str {
    agent.team.as_deref().unwrap_or(DEFAULT_TEAM)
}

/// A team's namespace.
pub fn namespace(team: &str) -> String {
    format!("{NAMESPACE_PREFIX}{team}")
}

/// The labels of an object of `team` (and `agent`), as `component`.
pub fn labels(team: &str, agent: Option<&str>, component: &str) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            "clawkeep".to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            "clawkeep".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
        (TEAM_LABEL.to_string(), team.to_string()),
    ]);
    if let Some(a) = agent {
        l.insert(
            "app.kubernetes.io/name".to_string(),
            "clawkeep-agent".to_string(),
        );
        l.insert("app.kubernetes.io/instance".to_string(), a.to_string());
        l.insert(AGENT_LABEL.to_string(), a.to_string());
    }
    l
}

/// Metadata of a namespaced object.
pub fn object(name: &str, team: &str, agent: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace(team)),
        labels: Some(labels(team, agent, component)),
        ..Default::default()
    }
}

/// A selector of the pods of `agent`.
pub fn agent_pods(agent: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            AGENT_LABEL.to_string(),
            agent.to_string(),
        )])),
        ..Default::default()
    }
}

/// A selector of the namespace named `name`.
pub fn namespace_named(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_string(),
            name.to_string(),
        )])),
        ..Default::default()
    }
}
