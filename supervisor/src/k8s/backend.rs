//! Managed model servers (`[[models.backend]]`) in the cluster, as `[cluster.backends.NAME]`
//! says: per backend in clawkeep-system a Deployment of one pod (restricted, its image by
//! digest, the same command line a node runs but listening on the pod's address, its model
//! from a claim mounted read-only, its NVIDIA GPUs as `nvidia.com/gpu`), a Service at the
//! given address and a policy that lets in only the model gateway and lets nothing out. The
//! gateway's view of the fleet names each as an upstream at that address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
    PersistentVolumeClaimVolumeSource, PodTemplateSpec, Probe, Service, ServiceAccount,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::agent::{pod, resources, restricted, tcp};
use super::meta::SYSTEM_NAMESPACE;
use super::{gateway, units, Options, RenderError};
use crate::fleet::cluster::ClusterBackend;
use crate::fleet::Fleet;
use clawkeep_gateway::backend::{BackendConfig, BackendKind};

/// The label that names a backend's pods.
pub const BACKEND_LABEL: &str = "clawkeep.io/backend";
/// Scratch space of a model server.
const EPHEMERAL: u64 = 1 << 30;

/// A managed backend with how the cluster runs it.
pub struct Planned<'a> {
    pub config: &'a BackendConfig,
    pub cluster: &'a ClusterBackend,
}

/// The fleet's managed backends, each with its `[cluster.backends]` entry (an error names
/// the first without one).
pub fn planned<'a>(fleet: &'a Fleet) -> Result<Vec<Planned<'a>>, RenderError> {
    let mut out = Vec::new();
    for b in fleet
        .models
        .iter()
        .flat_map(|m| m.config.backend.iter().flatten())
    {
        let name = b.name.clone().unwrap_or_default();
        let cluster = fleet
            .cluster
            .backends
            .get(&name)
            .ok_or(RenderError::Backend { name })?;
        out.push(Planned { config: b, cluster });
    }
    Ok(out)
}

/// Its NVIDIA GPUs: as `[cluster.backends]` says, else its `/dev/nvidiaN` devices.
pub fn gpus(p: &Planned) -> u32 {
    p.cluster.gpus.unwrap_or_else(|| {
        let n = p
            .config
            .devices
            .iter()
            .flatten()
            .filter(|d| {
                d.strip_prefix("/dev/nvidia")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    })
}

/// The upstream the gateway reaches it as: its Service address and port.
pub fn upstream_url(p: &Planned) -> String {
    let host = match p.cluster.address {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let local = p.config.upstream().url.unwrap_or_default();
    // The node's URL with the Service address for the loopback one.
    let path = local
        .strip_prefix("http://127.0.0.1")
        .and_then(|r| r.split_once('/').map(|(_, p)| format!("/{p}")))
        .unwrap_or_default();
    format!("http://{host}:{}{path}", p.config.port())
}

fn name_of(p: &Planned) -> String {
    format!("model-{}", p.config.name.as_deref().unwrap_or_default())
}

fn labels(p: &Planned) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/component".into(), "model-server".into()),
        ("app.kubernetes.io/managed-by".into(), "clawkeep".into()),
        ("app.kubernetes.io/name".into(), "clawkeep-model".into()),
        ("app.kubernetes.io/part-of".into(), "clawkeep".into()),
        (
            BACKEND_LABEL.into(),
            p.config.name.clone().unwrap_or_default(),
        ),
    ])
}

fn meta(p: &Planned) -> ObjectMeta {
    ObjectMeta {
        name: Some(name_of(p)),
        namespace: Some(SYSTEM_NAMESPACE.to_string()),
        labels: Some(labels(p)),
        ..Default::default()
    }
}

/// Its pods.
pub fn selector(p: &Planned) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            BACKEND_LABEL.to_string(),
            p.config.name.clone().unwrap_or_default(),
        )])),
        ..Default::default()
    }
}

/// The node's command line, listening on the pod's address instead of loopback (the pod's
/// policy lets in only the gateway).
fn command(p: &Planned) -> (Vec<String>, BTreeMap<String, String>) {
    let launch = p.config.launch();
    let mut args = launch.args;
    if let Some(i) = args.iter().position(|a| a == "--host") {
        if let Some(h) = args.get_mut(i + 1) {
            *h = "0.0.0.0".into();
        }
    }
    let mut env = launch.env;
    if p.config.kind == Some(BackendKind::Ollama) {
        env.insert("OLLAMA_HOST".into(), format!("0.0.0.0:{}", p.config.port()));
    }
    let mut argv = vec![p.cluster.binary.clone().unwrap_or(launch.program)];
    argv.extend(args);
    (argv, env)
}

/// Where its model's claim is mounted: a model file's directory, or the model directory.
fn model_dir(p: &Planned) -> Option<String> {
    let model = p.config.model.as_deref()?;
    let path = std::path::Path::new(model);
    let dir = match p.config.kind.unwrap_or(BackendKind::LlamaServer) {
        BackendKind::LlamaServer => path.parent()?,
        _ => path,
    };
    Some(dir.to_string_lossy().into_owned())
}

/// The backend's objects.
pub fn objects(p: &Planned, opts: &Options) -> Result<Vec<serde_json::Value>, RenderError> {
    let port = i32::from(p.config.port());
    let (argv, env) = command(p);
    let mut res = resources(p.cluster.cpu, p.cluster.memory, EPHEMERAL);
    let gpus = gpus(p);
    if gpus > 0 {
        for side in [&mut res.limits, &mut res.requests] {
            if let Some(q) = side.as_mut() {
                q.insert("nvidia.com/gpu".into(), Quantity(gpus.to_string()));
            }
        }
    }
    let model = model_dir(p).zip(p.cluster.models_claim.clone());
    let health = p
        .config
        .launch()
        .health_url
        .split_once(&format!(":{port}"))
        .map(|(_, path)| path.to_string())
        .unwrap_or_else(|| "/".into());
    let container = Container {
        name: "model".into(),
        image: Some(p.cluster.image.clone()),
        command: Some(argv),
        env: (!env.is_empty()).then(|| {
            env.into_iter()
                .map(|(name, value)| EnvVar {
                    name,
                    value: Some(value),
                    ..Default::default()
                })
                .collect()
        }),
        ports: Some(vec![ContainerPort {
            name: Some("model".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(health),
                port: IntOrString::Int(port),
                ..Default::default()
            }),
            period_seconds: Some(10),
            ..Default::default()
        }),
        resources: Some(res),
        security_context: Some(restricted()),
        volume_mounts: Some(
            [
                Some(VolumeMount {
                    name: "tmp".into(),
                    mount_path: "/tmp".into(),
                    ..Default::default()
                }),
                model.as_ref().map(|(dir, _)| VolumeMount {
                    name: "model".into(),
                    mount_path: dir.clone(),
                    read_only: Some(true),
                    ..Default::default()
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        ..Default::default()
    };
    let volumes = [
        Some(Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(units::bytes(EPHEMERAL)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        model.map(|(_, claim)| Volume {
            name: "model".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim,
                read_only: Some(true),
            }),
            ..Default::default()
        }),
    ];
    let deployment = Deployment {
        metadata: meta(p),
        spec: DeploymentSpec {
            replicas: Some(1),
            // One at a time: a second would wait for the first's GPUs.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            selector: selector(p),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(p)),
                    ..Default::default()
                }),
                spec: Some(k8s_openapi::api::core::v1::PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes.into_iter().flatten().collect()),
                    ..pod(opts, name_of(p))
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let service = Service {
        metadata: meta(p),
        spec: Some(ServiceSpec {
            cluster_ip: Some(p.cluster.address.to_string()),
            ports: Some(vec![ServicePort {
                name: Some("model".into()),
                port,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(port)),
                ..Default::default()
            }]),
            selector: selector(p).match_labels,
            ..Default::default()
        }),
        ..Default::default()
    };
    let policy = NetworkPolicy {
        metadata: meta(p),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(p)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(gateway::pods()),
                    ..Default::default()
                }]),
                ports: Some(vec![tcp(port)]),
            }]),
            // Nothing out: a model server sends prompts nowhere.
            egress: None,
        }),
    };
    let account = ServiceAccount {
        metadata: meta(p),
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let v = |what: &str, x: Result<serde_json::Value, serde_json::Error>| {
        x.map_err(|e| RenderError::Serialize {
            what: format!("the {what} of backend {}", name_of(p)),
            message: e.to_string(),
        })
    };
    Ok(vec![
        v("Deployment", serde_json::to_value(deployment))?,
        v("Service", serde_json::to_value(service))?,
        v("NetworkPolicy", serde_json::to_value(policy))?,
        v("ServiceAccount", serde_json::to_value(account))?,
    ])
}
