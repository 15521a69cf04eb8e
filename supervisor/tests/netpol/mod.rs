//! A small evaluator of Kubernetes NetworkPolicy semantics, for checking rendered policies
//! without a cluster: which connections between pods (and addresses outside the cluster)
//! the policies of a set of objects allow.
//!
//! What it implements (networking.k8s.io/v1): a pod is isolated for a direction when a
//! policy of its namespace selects it and has that policy type (`policyTypes`, or by default
//! Ingress, plus Egress when the policy has egress rules); an isolated pod's traffic in that
//! direction is allowed when any rule of any policy selecting it allows it (the union of
//! allows); a connection needs the sender's egress and the receiver's ingress. A rule
//! without `to`/`from` matches every peer, without `ports` every port. Peers: `podSelector`
//! alone means pods of the policy's namespace, `namespaceSelector` alone every pod of the
//! matching namespaces, both together pods matching both, `ipBlock` an address in `cidr` and
//! in none of `except`. Selectors: `matchLabels` and `matchExpressions` (In, NotIn, Exists,
//! DoesNotExist); an empty selector matches everything. Ports: number, `endPort` ranges and
//! protocol (TCP by default); named ports are not rendered and not supported.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

/// Labels of a pod or namespace.
pub type Labels = BTreeMap<String, String>;

/// Somewhere a connection starts or ends.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// A pod: its namespace, the namespace's labels, its own labels and its address.
    Pod {
        name: String,
        namespace: String,
        namespace_labels: Labels,
        labels: Labels,
        ip: IpAddr,
    },
    /// An address outside the cluster.
    External { ip: IpAddr },
}

impl Endpoint {
    pub fn name(&self) -> String {
        match self {
            Endpoint::Pod {
                name, namespace, ..
            } => format!("{namespace}/{name}"),
            Endpoint::External { ip } => ip.to_string(),
        }
    }

    fn ip(&self) -> IpAddr {
        match self {
            Endpoint::Pod { ip, .. } | Endpoint::External { ip } => *ip,
        }
    }
}

/// Whether `selector` (a LabelSelector as JSON; absent or `{}` matches all) matches `labels`.
pub fn selects(selector: &Value, labels: &Labels) -> bool {
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let has = labels.get(key).map(String::as_str);
        let ok = match e["operator"].as_str().unwrap_or_default() {
            "In" => has.is_some_and(|v| values.contains(&v)),
            "NotIn" => has.is_none_or(|v| !values.contains(&v)),
            "Exists" => has.is_some(),
            "DoesNotExist" => has.is_none(),
            other => panic!("selector operator {other}"),
        };
        if !ok {
            return false;
        }
    }
    true
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').expect("cidr with a prefix length");
    let (net, len): (IpAddr, u32) = (
        net.parse().expect("cidr address"),
        len.parse().expect("len"),
    );
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Whether a rule's peer matches `other`, for a policy in namespace `ns`.
fn peer_matches(peer: &Value, ns: &str, other: &Endpoint) -> bool {
    if let Some(block) = peer.get("ipBlock") {
        let ip = other.ip();
        return in_cidr(ip, block["cidr"].as_str().unwrap_or_default())
            && !block["except"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| in_cidr(ip, e.as_str().unwrap_or_default()));
    }
    let Endpoint::Pod {
        namespace,
        namespace_labels,
        labels,
        ..
    } = other
    else {
        return false; // Selectors match pods only.
    };
    let pods = peer.get("podSelector");
    let namespaces = peer.get("namespaceSelector");
    let ns_ok = match namespaces {
        Some(sel) => selects(sel, namespace_labels),
        None => namespace == ns,
    };
    let pod_ok = pods.is_none_or(|sel| selects(sel, labels));
    ns_ok && pod_ok
}

fn port_matches(ports: Option<&Value>, port: u16, protocol: &str) -> bool {
    let Some(ports) = ports.and_then(Value::as_array) else {
        return true;
    };
    ports.iter().any(|p| {
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        let from = match &p["port"] {
            Value::Null => return proto == protocol,
            Value::Number(n) => n.as_u64().unwrap_or(0),
            other => panic!("named port {other} is not supported"),
        };
        let to = p["endPort"].as_u64().unwrap_or(from);
        proto == protocol && (from..=to).contains(&u64::from(port))
    })
}

fn policy_types(spec: &Value) -> Vec<String> {
    match spec["policyTypes"].as_array() {
        Some(t) => t
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        None => {
            let mut t = vec!["Ingress".to_string()];
            if spec.get("egress").is_some() {
                t.push("Egress".to_string());
            }
            t
        }
    }
}

/// Whether `pod` may send (`egress`) to or receive (`!egress`) from `other` on `port`.
fn direction_allowed(
    policies: &[Value],
    pod: &Endpoint,
    other: &Endpoint,
    port: u16,
    protocol: &str,
    egress: bool,
) -> bool {
    let Endpoint::Pod {
        namespace, labels, ..
    } = pod
    else {
        return true; // Outside the cluster: no policy applies.
    };
    let (kind, rules_key, peers_key) = if egress {
        ("Egress", "egress", "to")
    } else {
        ("Ingress", "ingress", "from")
    };
    let mut isolated = false;
    for p in policies {
        if p["metadata"]["namespace"].as_str() != Some(namespace.as_str()) {
            continue;
        }
        let spec = &p["spec"];
        let selector = spec.get("podSelector").cloned().unwrap_or(Value::Null);
        if !selects(&selector, labels) || !policy_types(spec).iter().any(|t| t == kind) {
            continue;
        }
        isolated = true;
        for rule in spec[rules_key].as_array().into_iter().flatten() {
            let peer_ok = match rule.get(peers_key).and_then(Value::as_array) {
                None => true,
                Some(peers) => peers
                    .iter()
                    .any(|peer| peer_matches(peer, namespace, other)),
            };
            if peer_ok && port_matches(rule.get("ports"), port, protocol) {
                return true;
            }
        }
    }
    !isolated
}

/// Whether the policies let `from` open a connection to `to` on `port`/`protocol`.
pub fn allowed(
    policies: &[Value],
    from: &Endpoint,
    to: &Endpoint,
    port: u16,
    protocol: &str,
) -> bool {
    direction_allowed(policies, from, to, port, protocol, true)
        && direction_allowed(policies, to, from, port, protocol, false)
}
