//! `[cluster] network = "cilium"`: egress to names, which a Kubernetes NetworkPolicy cannot
//! say. Per agent with named `egress`, a CiliumNetworkPolicy (cilium.io/v2) that lets it ask
//! the cluster's DNS for those names only (Cilium's DNS proxy refuses other queries, so DNS is
//! no way out either) and reach what they resolve to on the listed ports. Its allows add to
//! the agent's NetworkPolicy, which still denies everything else.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::meta::{object, team_of};
use super::RenderError;
use crate::fleet::egress::Host;
use crate::fleet::Agent;

/// The agent's listed names and their ports, sorted.
pub fn named_egress(a: &Agent) -> BTreeMap<String, Vec<u16>> {
    let mut out: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for e in &a.egress {
        if let Ok(d) = crate::fleet::egress::entry(e) {
            if let Host::Name(n) = d.host {
                let ports = out.entry(n).or_default();
                if !ports.contains(&d.port) {
                    ports.push(d.port);
                    ports.sort_unstable();
                }
            }
        }
    }
    out
}

/// The agent's CiliumNetworkPolicy, when it names hosts.
pub fn policy(a: &Agent) -> Result<Option<Value>, RenderError> {
    let names = named_egress(a);
    if names.is_empty() {
        return Ok(None);
    }
    let dns: Vec<Value> = names.keys().map(|n| json!({ "matchName": n })).collect();
    let mut egress = vec![json!({
        "toEndpoints": [{ "matchLabels": {
            "k8s:io.kubernetes.pod.namespace": "kube-system",
            "k8s:k8s-app": "kube-dns",
        }}],
        "toPorts": [{
            "ports": [{ "port": "53", "protocol": "ANY" }],
            "rules": { "dns": dns },
        }],
    })];
    for (name, ports) in &names {
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({ "port": p.to_string(), "protocol": "TCP" }))
            .collect();
        egress.push(json!({
            "toFQDNs": [{ "matchName": name }],
            "toPorts": [{ "ports": ports }],
        }));
    }
    let metadata = serde_json::to_value(object(
        &format!("agent-{}-names", a.name),
        team_of(a),
        Some(&a.name),
        "agent",
    ))
    .map_err(|e| RenderError::Serialize {
        what: format!("the CiliumNetworkPolicy of {}", a.name),
        message: e.to_string(),
    })?;
    Ok(Some(json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": metadata,
        "spec": {
            "endpointSelector": { "matchLabels": { super::meta::AGENT_LABEL: a.name } },
            "egress": egress,
        },
    })))
}
