//! The model gateway's objects, in `clawkeep-system`: its namespace (restricted, default
//! deny), a token-less service account, its view of the fleet as a ConfigMap, a StatefulSet
//! of one `clawkeep gateway` pod (its ledger on a volume, every agent's credential from one
//! Secret), its Service at the address agents' shims use, and a policy that lets in only
//! agent pods (and the operators, for `/metrics`) and out only to the model servers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, PodSpec, PodTemplateSpec,
    SecretVolumeSource, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::agent::{
    pod, resources, restricted, tcp, to_address, volume_claim, GATEWAY_NAME, MODEL_PORT,
};
use super::meta::{namespace_named, AGENT_LABEL, OPERATOR_NAMESPACE, SYSTEM_NAMESPACE};
use super::{Options, RenderError};
use crate::fleet::Fleet;

/// The ConfigMap with the gateway's fleet file.
pub const FLEET_CONFIG: &str = "clawkeep-gateway-fleet";
/// The Secret with every agent's credential, one key per agent (its name).
pub const CREDENTIALS_SECRET: &str = "clawkeep-gateway-credentials";
/// Where the gateway serves Prometheus `/metrics`.
pub const METRICS_PORT: i32 = 9090;
const CPU: f64 = 1.0;
const MEMORY: u64 = 512 << 20;
const EPHEMERAL: u64 = 64 << 20;
const LEDGER: u64 = 1 << 30;

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/component".to_string(),
            "gateway".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "clawkeep".to_string(),
        ),
        (
            "app.kubernetes.io/name".to_string(),
            GATEWAY_NAME.to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            "clawkeep".to_string(),
        ),
    ])
}

pub(super) fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(SYSTEM_NAMESPACE.to_string()),
        labels: Some(labels()),
        ..Default::default()
    }
}

pub(super) fn pods() -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_string(),
            GATEWAY_NAME.to_string(),
        )])),
        ..Default::default()
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Result<serde_json::Value, RenderError> {
    serde_json::to_value(v).map_err(|e| RenderError::Serialize {
        what: "a gateway object".into(),
        message: e.to_string(),
    })
}

/// Every address and port the gateway sends prompts to: the fleet's upstreams, which in a
/// cluster must be addresses (a NetworkPolicy cannot name hosts).
fn upstreams(fleet: &Fleet) -> Result<Vec<(IpAddr, u16)>, RenderError> {
    let mut out = Vec::new();
    let Some(m) = &fleet.models else {
        return Ok(out);
    };
    for u in m.config.upstream.iter().flatten() {
        let written = u.url.clone().unwrap_or_default();
        let refused = || RenderError::Upstream {
            url: written.clone(),
        };
        let url = reqwest::Url::parse(&written).map_err(|_| refused())?;
        let host = url.host_str().ok_or_else(refused)?;
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| refused())?;
        let port = url.port_or_known_default().ok_or_else(refused)?;
        if !out.contains(&(ip, port)) {
            out.push((ip, port));
        }
    }
    out.sort();
    Ok(out)
}

/// The gateway's objects, for agents' shims that use `address`.
pub fn objects(
    fleet: &Fleet,
    opts: &Options,
    address: IpAddr,
    fleet_file: String,
    backends: &[super::backend::Planned],
) -> Result<Vec<serde_json::Value>, RenderError> {
    let mut ns_labels = labels();
    ns_labels.remove("app.kubernetes.io/name");
    for mode in ["enforce", "audit", "warn"] {
        ns_labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".into(),
        );
        ns_labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".into(),
        );
    }
    let namespace = k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            name: Some(SYSTEM_NAMESPACE.to_string()),
            labels: Some(ns_labels),
            ..Default::default()
        },
        ..Default::default()
    };
    let deny = NetworkPolicy {
        metadata: meta("default-deny"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ..Default::default()
        }),
    };
    let agents = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/component".to_string(),
                    "team".to_string(),
                ),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "clawkeep".to_string(),
                ),
            ])),
            ..Default::default()
        }),
        pod_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: AGENT_LABEL.to_string(),
                operator: "Exists".to_string(),
                values: None,
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut egress: Vec<NetworkPolicyEgressRule> = upstreams(fleet)?
        .into_iter()
        .map(|(ip, port)| to_address(ip, port))
        .collect();
    // Managed backends: by their pods, and by their Service addresses (for networks that
    // check a connection before translating the Service address).
    for p in backends {
        let port = p.config.port();
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(super::backend::selector(p)),
                ..Default::default()
            }]),
            ports: Some(vec![tcp(i32::from(port))]),
        });
        egress.push(to_address(p.cluster.address, port));
    }
    let policy = NetworkPolicy {
        metadata: meta(GATEWAY_NAME),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods()),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    from: Some(vec![agents]),
                    ports: Some(vec![tcp(MODEL_PORT)]),
                },
                NetworkPolicyIngressRule {
                    // The operators, and Prometheus where it runs.
                    from: Some(
                        std::iter::once(OPERATOR_NAMESPACE)
                            .chain(opts.monitoring.as_deref())
                            .map(|ns| NetworkPolicyPeer {
                                namespace_selector: Some(namespace_named(ns)),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ports: Some(vec![tcp(METRICS_PORT)]),
                },
            ]),
            egress: (!egress.is_empty()).then_some(egress),
        }),
    };
    let account = ServiceAccount {
        metadata: meta(GATEWAY_NAME),
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let config = ConfigMap {
        metadata: meta(FLEET_CONFIG),
        data: Some(BTreeMap::from([("fleet.toml".to_string(), fleet_file)])),
        ..Default::default()
    };
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.to_string()),
        port,
        protocol: Some("TCP".to_string()),
        target_port: Some(IntOrString::Int(port)),
        ..Default::default()
    };
    let service = Service {
        metadata: meta(GATEWAY_NAME),
        spec: Some(ServiceSpec {
            cluster_ip: Some(address.to_string()),
            ports: Some(vec![
                port("model", MODEL_PORT),
                port("metrics", METRICS_PORT),
            ]),
            selector: pods().match_labels,
            type_: Some("ClusterIP".to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    };
    let container = Container {
        name: "gateway".to_string(),
        image: Some(opts.image.clone()),
        command: Some(vec!["clawkeep".to_string(), "gateway".to_string()]),
        args: Some(
            [
                "/etc/clawkeep/fleet.toml",
                "--credentials",
                "/run/clawkeep/credentials",
                "--ledger",
                "/var/lib/clawkeep/ledger",
                "--listen",
                &format!("0.0.0.0:{MODEL_PORT}"),
                "--metrics",
                &format!("0.0.0.0:{METRICS_PORT}"),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
        ports: Some(vec![
            ContainerPort {
                name: Some("model".to_string()),
                container_port: MODEL_PORT,
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("metrics".to_string()),
                container_port: METRICS_PORT,
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
        ]),
        resources: Some(resources(CPU, MEMORY, EPHEMERAL)),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![
            mount("fleet", "/etc/clawkeep", true),
            mount("credentials", "/run/clawkeep/credentials", true),
            mount("ledger", "/var/lib/clawkeep/ledger", false),
        ]),
        ..Default::default()
    };
    let spec = PodSpec {
        containers: vec![container],
        volumes: Some(vec![
            Volume {
                name: "fleet".to_string(),
                config_map: Some(ConfigMapVolumeSource {
                    name: FLEET_CONFIG.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "credentials".to_string(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(CREDENTIALS_SECRET.to_string()),
                    default_mode: Some(0o440),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        ..pod(opts, GATEWAY_NAME.to_string())
    };
    let set = StatefulSet {
        metadata: meta(GATEWAY_NAME),
        spec: StatefulSetSpec {
            replicas: Some(1),
            selector: pods(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    ..Default::default()
                }),
                spec: Some(spec),
            },
            volume_claim_templates: Some(vec![volume_claim("ledger", labels(), LEDGER)]),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(vec![
        to_value(namespace)?,
        to_value(deny)?,
        to_value(policy)?,
        to_value(account)?,
        to_value(config)?,
        to_value(service)?,
        to_value(set)?,
    ])
}
