//! What each agent gets: a service account without a token, a StatefulSet of one pod
//! (restricted security context, the fleet's limits, a home volume, `clawkeep pod run` as
//! its entrypoint, the model shim beside it), an OpenClaw agent's ConfigMap, and the network
//! policy that lets it reach only the model gateway and its listed egress addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, SecurityContext, ServiceAccount, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, SecretVolumeSource};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{
    agent_pods, labels, namespace_named, object, team_of, OPERATOR_NAMESPACE, SYSTEM_NAMESPACE,
};
use super::{units, Options, RenderError};
use crate::fleet::egress::Host;
use crate::fleet::openclaw::GATEWAY_PORT;
use crate::fleet::Agent;

/// CPU of each helper container (the model shim).
pub const HELPER_CPU: f64 = 0.1;
/// Memory of each helper container.
pub const HELPER_MEMORY: u64 = 128 << 20;
/// Scratch space of each helper container.
pub const HELPER_EPHEMERAL: u64 = 64 << 20;
/// The home volume of an agent without a `disk` limit.
pub const DEFAULT_HOME: u64 = 1 << 30;
/// The uid and gid agents run as in their pods (never root).
pub const AGENT_UID: i64 = 1000;
/// Where the model gateway listens, in the gateway's pods and in each agent's shim.
pub const MODEL_PORT: i32 = 11434;
/// Label of the model gateway's pods.
pub const GATEWAY_NAME: &str = "clawkeep-gateway";

/// Resources a pod holds: its containers' limits, ephemeral storage and home volume.
#[derive(Debug, Default, Clone, Copy)]
pub struct PodSize {
    pub cpu: f64,
    pub memory: u64,
    pub ephemeral: u64,
    pub home: u64,
}

impl PodSize {
    pub fn add(&mut self, o: &PodSize) {
        self.cpu += o.cpu;
        self.memory += o.memory;
        self.ephemeral += o.ephemeral;
        self.home += o.home;
    }
}

/// The agent's pod: its container and, with a gateway, the model shim beside it.
pub fn pod_size(a: &Agent, shim: bool) -> PodSize {
    let helpers = u64::from(shim);
    PodSize {
        cpu: a.resources.cpu + HELPER_CPU * helpers as f64,
        memory: a.resources.memory + HELPER_MEMORY * helpers,
        ephemeral: a.resources.tmp_size + HELPER_EPHEMERAL * helpers,
        home: home_size(a),
    }
}

/// Where the agent's ConfigMap (its enforced openclaw.json and workspace seeds) is mounted.
const AGENT_CONFIG_DIR: &str = "/etc/clawkeep/agent";

fn config_map_name(a: &Agent) -> String {
    format!("agent-{}-openclaw", a.name)
}

/// An OpenClaw agent's ConfigMap: the openclaw.json it gets (what the node writes into its
/// home at every start, enforced keys included) and the workspace files it is seeded with.
pub fn config_map(fleet: &crate::fleet::Fleet, a: &Agent) -> Result<ConfigMap, RenderError> {
    let config = crate::fleet::openclaw::for_agent(fleet, a);
    let mut json = serde_json::to_string_pretty(&config).map_err(|e| RenderError::Serialize {
        what: format!("the openclaw.json of {}", a.name),
        message: e.to_string(),
    })?;
    json.push('\n');
    let mut data = BTreeMap::from([("openclaw.json".to_string(), json)]);
    let seeds = a
        .soul
        .iter()
        .map(|s| ("SOUL.md".to_string(), s.clone()))
        .chain(a.workspace.iter().cloned());
    for (name, path) in seeds {
        let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Io {
            what: "read",
            path: path.clone(),
            source,
        })?;
        data.insert(name, text);
    }
    Ok(ConfigMap {
        metadata: object(&config_map_name(a), team_of(a), Some(&a.name), "agent"),
        data: Some(data),
        ..Default::default()
    })
}

/// The Secret holding an agent's gateway credential (key `credential`), made by the
/// operator: the gateway holds the same value under the agent's name.
pub fn credential_secret(a: &Agent) -> String {
    format!("agent-{}-credential", a.name)
}

/// Where the shim finds the credential.
const CREDENTIAL_DIR: &str = "/run/clawkeep";

/// The model shim sidecar: the pod's 127.0.0.1:11434, forwarding to the gateway's address
/// with the credential, which is mounted into this container only.
fn shim(opts: &Options, gateway: IpAddr) -> Container {
    let url = match gateway {
        IpAddr::V4(ip) => format!("http://{ip}:{MODEL_PORT}"),
        IpAddr::V6(ip) => format!("http://[{ip}]:{MODEL_PORT}"),
    };
    Container {
        name: "clawkeep-shim".to_string(),
        image: Some(opts.image.clone()),
        command: Some(vec!["clawkeep".into(), "pod".into(), "shim".into()]),
        args: Some(vec![
            "--gateway".into(),
            url,
            "--credential".into(),
            format!("{CREDENTIAL_DIR}/credential"),
        ]),
        resources: Some(resources(HELPER_CPU, HELPER_MEMORY, HELPER_EPHEMERAL)),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![VolumeMount {
            name: "credential".to_string(),
            mount_path: CREDENTIAL_DIR.to_string(),
            read_only: Some(true),
            ..Default::default()
        }]),
        restart_policy: Some("Always".to_string()),
        ..Default::default()
    }
}

fn home_size(a: &Agent) -> u64 {
    a.resources.disk.unwrap_or(DEFAULT_HOME)
}

/// The agent's service account: no API access, and its token never mounted.
pub fn service_account(a: &Agent) -> ServiceAccount {
    ServiceAccount {
        metadata: object(&account_name(a), team_of(a), Some(&a.name), "agent"),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

fn account_name(a: &Agent) -> String {
    format!("agent-{}", a.name)
}

/// A StatefulSet's volume claim: `size` bytes, read-write by one node.
pub(super) fn volume_claim(
    name: &str,
    labels: BTreeMap<String, String>,
    size: u64,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    units::bytes(size),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What every clawkeep pod has: its own service account and no token of it, no service
/// links, uid and gid 1000 (never root, files shared through the group), RuntimeDefault
/// seccomp, and user namespaces and the runtime class as asked.
pub(super) fn pod(opts: &Options, account: String) -> PodSpec {
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        service_account_name: Some(account),
        host_users: opts.user_namespaces.then_some(false),
        runtime_class_name: opts.runtime_class.clone(),
        security_context: Some(PodSecurityContext {
            fs_group: Some(AGENT_UID),
            run_as_group: Some(AGENT_UID),
            run_as_non_root: Some(true),
            run_as_user: Some(AGENT_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container's security context at the restricted level: not root, no privilege
/// escalation, no capabilities, a read-only root filesystem, the runtime's seccomp profile.
pub(super) fn restricted() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn resources(cpu: f64, memory: u64, ephemeral: u64) -> ResourceRequirements {
    let q = BTreeMap::from([
        ("cpu".to_string(), units::cpu(cpu)),
        ("ephemeral-storage".to_string(), units::bytes(ephemeral)),
        ("memory".to_string(), units::bytes(memory)),
    ]);
    ResourceRequirements {
        limits: Some(q.clone()),
        requests: Some(q),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        ..Default::default()
    }
}

/// The agent's StatefulSet: one pod, its home on a volume kept when the set is deleted.
pub fn stateful_set(
    a: &Agent,
    opts: &Options,
    gateway: Option<IpAddr>,
    openclaw: bool,
) -> StatefulSet {
    let team = team_of(a);
    let home = clawkeep_sandbox::bundle::AGENT_HOME;
    let mut command = vec![
        "clawkeep".to_string(),
        "pod".to_string(),
        "run".to_string(),
        "--config".to_string(),
        AGENT_CONFIG_DIR.to_string(),
        "--".to_string(),
        a.command.program.clone(),
    ];
    command.extend(a.command.args.iter().cloned());
    let mut env: Vec<EnvVar> = a
        .command
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..Default::default()
        })
        .collect();
    env.push(EnvVar {
        name: "HOME".to_string(),
        value: Some(home.to_string()),
        ..Default::default()
    });
    env.sort_by(|x, y| x.name.cmp(&y.name));
    env.dedup_by(|x, y| x.name == y.name);
    let agent = Container {
        name: "agent".to_string(),
        image: Some(opts.image.clone()),
        command: Some(command),
        env: Some(env),
        ports: a.gateway_port.map(|_| {
            vec![ContainerPort {
                name: Some("gateway".to_string()),
                container_port: i32::from(GATEWAY_PORT),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]
        }),
        resources: Some(resources(
            a.resources.cpu,
            a.resources.memory,
            a.resources.tmp_size,
        )),
        security_context: Some(restricted()),
        volume_mounts: Some(
            [
                Some(mount("home", home)),
                Some(mount("tmp", "/tmp")),
                openclaw.then(|| VolumeMount {
                    read_only: Some(true),
                    ..mount("agent-config", AGENT_CONFIG_DIR)
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        working_dir: Some(home.to_string()),
        ..Default::default()
    };
    let pod_labels = labels(team, Some(&a.name), "agent");
    let spec = PodSpec {
        termination_grace_period_seconds: Some(
            i64::try_from(a.stop_grace.as_secs()).unwrap_or(i64::MAX / 2),
        ),
        // The brain's init step and sync sidecar (`clawkeep pod init`, `pod sync`) join the
        // shim here once they exist; until then the home volume alone keeps the brain.
        init_containers: gateway.map(|ip| vec![shim(opts, ip)]),
        containers: vec![agent],
        volumes: Some(
            [
                Some(Volume {
                    name: "tmp".to_string(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        size_limit: Some(units::bytes(a.resources.tmp_size)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                openclaw.then(|| Volume {
                    name: "agent-config".to_string(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: config_map_name(a),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                gateway.map(|_| Volume {
                    name: "credential".to_string(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(credential_secret(a)),
                        // Read by the shim (uid 1000) through the pod's fsGroup.
                        default_mode: Some(0o440),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        ..pod(opts, account_name(a))
    };
    let claim = volume_claim("home", pod_labels.clone(), home_size(a));
    StatefulSet {
        metadata: object(&a.name, team, Some(&a.name), "agent"),
        spec: StatefulSetSpec {
            replicas: Some(1),
            pod_management_policy: Some("Parallel".to_string()),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_string()),
                    when_scaled: Some("Retain".to_string()),
                },
            ),
            selector: agent_pods(&a.name),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(spec),
            },
            volume_claim_templates: Some(vec![claim]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The block of one address.
pub(super) fn host_cidr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}/32"),
        IpAddr::V6(_) => format!("{ip}/128"),
    }
}

pub(super) fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

/// The agent's network policy: out only to the model gateway (its pods, and its Service
/// address for networks that check before translating it) and to its egress addresses (as
/// /32 or /128 blocks, no DNS); in only from the operators' namespace, to its gateway port.
pub fn network_policy(a: &Agent, gateway: Option<IpAddr>) -> Result<NetworkPolicy, RenderError> {
    let mut egress = Vec::new();
    if let Some(ip) = gateway {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![
                NetworkPolicyPeer {
                    namespace_selector: Some(namespace_named(SYSTEM_NAMESPACE)),
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/name".to_string(),
                            GATEWAY_NAME.to_string(),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                NetworkPolicyPeer {
                    ip_block: Some(IPBlock {
                        cidr: host_cidr(ip),
                        except: None,
                    }),
                    ..Default::default()
                },
            ]),
            ports: Some(vec![tcp(MODEL_PORT)]),
        });
    }
    for entry in &a.egress {
        // `check` took the entry; in a cluster only addresses are (the resolver refuses names).
        let refused = || RenderError::Egress {
            agent: a.name.clone(),
            entry: entry.clone(),
        };
        let d = crate::fleet::egress::entry(entry).map_err(|_| refused())?;
        let cidr = match d.host {
            Host::Ip(ip) => host_cidr(ip),
            Host::Name(_) => return Err(refused()),
        };
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock { cidr, except: None }),
                ..Default::default()
            }]),
            ports: Some(vec![tcp(i32::from(d.port))]),
        });
    }
    let ingress = a.gateway_port.map(|_| {
        vec![NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(namespace_named(OPERATOR_NAMESPACE)),
                ..Default::default()
            }]),
            ports: Some(vec![tcp(i32::from(GATEWAY_PORT))]),
        }]
    });
    Ok(NetworkPolicy {
        metadata: object(
            &format!("agent-{}", a.name),
            team_of(a),
            Some(&a.name),
            "agent",
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(agent_pods(&a.name)),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            egress: (!egress.is_empty()).then_some(egress),
            ingress,
        }),
    })
}
