//! What each team gets: its namespace at the restricted Pod Security level, a quota and
//! limit range computed from its agents, a default-deny network policy and a read-only
//! operator role.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::agent::{pod_size, PodSize, Sidecars, HELPER_CPU, HELPER_MEMORY};
use super::meta::{labels, namespace, object};
use super::units;
use crate::fleet::Agent;

/// The Pod Security level every team namespace enforces (and warns and audits at).
pub const POD_SECURITY: &str = "restricted";

/// A team's namespace.
pub fn namespace_object(team: &str) -> Namespace {
    let mut l = labels(team, None, "team");
    for mode in ["enforce", "audit", "warn"] {
        l.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            POD_SECURITY.to_string(),
        );
        l.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_string(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(namespace(team)),
            labels: Some(l),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The team's quota: the sum of its agents' pods (agent, init step, sync and model shim
/// sidecars), one pod and one home volume each.
pub fn quota(team: &str, agents: &[&Agent], sidecars: &Sidecars) -> ResourceQuota {
    let mut total = PodSize::default();
    for a in agents {
        total.add(&pod_size(a, sidecars));
    }
    let n = agents.len().to_string();
    let hard = BTreeMap::from([
        ("limits.cpu".to_string(), units::cpu(total.cpu)),
        ("requests.cpu".to_string(), units::cpu(total.cpu)),
        ("limits.memory".to_string(), units::bytes(total.memory)),
        ("requests.memory".to_string(), units::bytes(total.memory)),
        (
            "limits.ephemeral-storage".to_string(),
            units::bytes(total.ephemeral),
        ),
        (
            "requests.ephemeral-storage".to_string(),
            units::bytes(total.ephemeral),
        ),
        ("requests.storage".to_string(), units::bytes(total.home)),
        ("persistentvolumeclaims".to_string(), Quantity(n.clone())),
        ("pods".to_string(), Quantity(n)),
    ]);
    ResourceQuota {
        metadata: object("clawkeep-quota", team, None, "team"),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The team's limit range: no container larger than its largest agent; containers that
/// name no resources get the helpers' size.
pub fn limit_range(team: &str, agents: &[&Agent]) -> LimitRange {
    let cpu = agents
        .iter()
        .map(|a| a.resources.cpu)
        .fold(HELPER_CPU, f64::max);
    let memory = agents
        .iter()
        .map(|a| a.resources.memory)
        .fold(HELPER_MEMORY, u64::max);
    let helper = BTreeMap::from([
        ("cpu".to_string(), units::cpu(HELPER_CPU)),
        ("memory".to_string(), units::bytes(HELPER_MEMORY)),
    ]);
    LimitRange {
        metadata: object("clawkeep-limits", team, None, "team"),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_string(),
                max: Some(BTreeMap::from([
                    ("cpu".to_string(), units::cpu(cpu)),
                    ("memory".to_string(), units::bytes(memory)),
                ])),
                default: Some(helper.clone()),
                default_request: Some(helper),
                ..Default::default()
            }],
        }),
    }
}

/// Nothing in or out of any pod of the namespace unless another policy allows it.
pub fn default_deny(team: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: object("default-deny", team, None, "team"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ..Default::default()
        }),
    }
}

/// What a team's operators may do: read pods, their logs and events. No exec, no secrets.
pub fn operator_role(team: &str) -> Role {
    let rule = |resources: &[&str]| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: ["get", "list", "watch"]
            .iter()
            .map(|v| v.to_string())
            .collect(),
        ..Default::default()
    };
    Role {
        metadata: object("clawkeep-operator", team, None, "team"),
        rules: Some(vec![rule(&["events", "pods", "pods/log"])]),
    }
}
