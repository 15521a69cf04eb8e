//! What each agent gets: a service account without a token, a StatefulSet of one pod
//! (restricted security context, the fleet's limits, a home volume, the brain's init step
//! and sync sidecar, `clawkeep pod run` as its entrypoint with `pod ready` as its probe, the
//! model shim beside it), its ConfigMaps (OpenClaw's config, the brain's settings), and the
//! network policy that lets it reach only the model gateway, the store and its listed
//! egress addresses. Its Secrets (gateway token, secrets, store key, model credential) are
//! made by the operator and mounted, each into the one container that needs it.

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
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, ExecAction, ImageVolumeSource, KeyToPath, Probe,
    SecretVolumeSource,
};
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
use crate::fleet::{Agent, Fleet};
use crate::pod::brain::{BrainSettings, COLLECTION_DIR, HOME_DIR, SETTINGS_FILE};
use clawkeep_sandbox::special_files::KNOWLEDGE_ROOT;
use clawkeep_store::grants::Access;

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

/// What every agent pod of the fleet has besides its agent container.
#[derive(Debug, Clone, Copy)]
pub struct Sidecars<'a> {
    /// The model gateway's address: the model shim.
    pub gateway: Option<IpAddr>,
    /// The store's endpoint: the brain's init step and sync sidecar.
    pub store: Option<&'a str>,
    /// The fleet runs OpenClaw: a ConfigMap with its config.
    pub openclaw: bool,
    /// Egress to names goes to a Cilium policy beside the agent's NetworkPolicy.
    pub names_allowed: bool,
}

impl Sidecars<'_> {
    /// The helper containers running beside the agent.
    fn helpers(&self) -> u64 {
        u64::from(self.gateway.is_some()) + u64::from(self.store.is_some())
    }
}

/// The agent's pod: its container and the helpers beside it (the init step runs before
/// them, within the same size).
pub fn pod_size(a: &Agent, sidecars: &Sidecars) -> PodSize {
    let helpers = sidecars.helpers();
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

/// The Secret holding an agent's store key (key `key`, `ACCESS_KEY:SECRET_KEY`, the agent's
/// own key with its grants), made by the operator; only the brain's containers mount it.
pub fn store_secret(a: &Agent) -> String {
    format!("agent-{}-store", a.name)
}

/// The Secret holding an OpenClaw agent's gateway token (key `token`), made by the operator.
pub fn token_secret(a: &Agent) -> String {
    format!("agent-{}-token", a.name)
}

/// The Secret holding an agent's `secrets` (one key each), made by the operator.
pub fn secrets_secret(a: &Agent) -> String {
    format!("agent-{}-secrets", a.name)
}

/// The Secrets an agent's pod mounts, each with its keys and what it holds: the operator
/// makes them (`kubectl create secret generic NAME -n NAMESPACE --from-file=KEY=...`); the
/// rendering never holds a secret value.
pub fn secrets_needed(a: &Agent, sidecars: &Sidecars) -> Vec<(String, Vec<String>, &'static str)> {
    let mut out = Vec::new();
    if sidecars.gateway.is_some() {
        out.push((
            credential_secret(a),
            vec!["credential".to_string()],
            "the agent's model credential, 32+ printable characters (the gateway's credentials Secret holds the same value under the agent's name)",
        ));
    }
    if sidecars.store.is_some() {
        out.push((
            store_secret(a),
            vec!["key".to_string()],
            "the agent's own store key, ACCESS_KEY:SECRET_KEY, granted its bucket only",
        ));
    }
    if gets_token(a, sidecars) {
        out.push((
            token_secret(a),
            vec!["token".to_string()],
            "the agent's OpenClaw gateway token (OPENCLAW_GATEWAY_TOKEN)",
        ));
    }
    if !a.secrets.is_empty() {
        out.push((
            secrets_secret(a),
            a.secrets.clone(),
            "the agent's secrets, one key each",
        ));
    }
    out
}

/// Whether the agent runs OpenClaw's gateway, which takes a token and answers `/readyz`.
fn gets_token(a: &Agent, sidecars: &Sidecars) -> bool {
    sidecars.openclaw && crate::openclaw::ready::runs_gateway(a)
}

fn brain_config_name(a: &Agent) -> String {
    format!("agent-{}-brain", a.name)
}

/// Where the home volume is mounted in the brain's containers (the home is `home/` in it,
/// the sync state beside it, out of the agent's reach).
const BRAIN_VOLUME: &str = "/var/lib/clawkeep/brain";
/// Where the brain ConfigMap is mounted.
const BRAIN_CONFIG_DIR: &str = "/etc/clawkeep/brain";
/// Where the store key is mounted.
const STORE_KEY_DIR: &str = "/run/clawkeep/store";
/// Where an OpenClaw agent's token is mounted.
const TOKEN_DIR: &str = "/run/clawkeep/token";
/// Where the brain's containers mount the shared collections' volumes (one directory each).
const KNOWLEDGE_VOLUMES: &str = "/var/lib/clawkeep/knowledge";

/// The volume of an agent's `i`-th shared collection (an index: collection names need not
/// be DNS labels).
fn knowledge_volume(i: usize) -> String {
    format!("knowledge-{i}")
}

/// Where secrets handed over as variables are mounted (`pod run` reads them).
const ENV_SECRETS_DIR: &str = "/run/clawkeep/secrets";

/// The agent's brain ConfigMap: the store settings its init step and sidecar use.
pub fn brain_config_map(
    fleet: &Fleet,
    store: &clawkeep_store::config::StoreSettings,
    a: &Agent,
    endpoint: &str,
) -> Result<ConfigMap, RenderError> {
    let push_only: &[&str] = if fleet.openclaw.is_some() {
        &[crate::openclaw::provision::CONFIG_REL]
    } else {
        &[]
    };
    let settings = BrainSettings::new(&a.name, endpoint, store, push_only, &a.knowledge);
    let mut json = serde_json::to_string_pretty(&settings).map_err(|e| RenderError::Serialize {
        what: format!("the brain settings of {}", a.name),
        message: e.to_string(),
    })?;
    json.push('\n');
    Ok(ConfigMap {
        metadata: object(&brain_config_name(a), team_of(a), Some(&a.name), "agent"),
        data: Some(BTreeMap::from([(SETTINGS_FILE.to_string(), json)])),
        ..Default::default()
    })
}

/// A volume of the Secret `name` with `keys`, readable by the pod's group (the containers
/// run as uid 1000; the files are root's): the pod does not start until each key is there.
fn secret_volume(volume: &str, name: String, keys: &[String]) -> Volume {
    Volume {
        name: volume.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(name),
            default_mode: Some(0o440),
            items: Some(
                keys.iter()
                    .map(|k| KeyToPath {
                        key: k.clone(),
                        path: k.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            optional: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn read_only(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        read_only: Some(true),
        ..mount(name, path)
    }
}

/// The brain's container: `clawkeep pod init` (the init step) or `pod sync` (the sidecar,
/// stopped after the agent, so its last push has everything).
fn brain_container(a: &Agent, opts: &Options, sidecar: bool) -> Container {
    let verb = if sidecar { "sync" } else { "init" };
    let mut args: Vec<String> = vec![
        "--settings".into(),
        BRAIN_CONFIG_DIR.into(),
        "--key".into(),
        format!("{STORE_KEY_DIR}/key"),
        "--volume".into(),
        BRAIN_VOLUME.into(),
    ];
    if !a.knowledge.is_empty() {
        args.extend(["--knowledge".into(), KNOWLEDGE_VOLUMES.into()]);
    }
    let mut mounts = vec![
        mount("home", BRAIN_VOLUME),
        read_only("brain-config", BRAIN_CONFIG_DIR),
        // The pull stages a new home beside the old, on the volume: nothing else is
        // written, so the agent's /tmp is not shared with it.
        read_only("store-key", STORE_KEY_DIR),
    ];
    for (i, (c, _)) in a.knowledge.iter().enumerate() {
        mounts.push(mount(
            &knowledge_volume(i),
            &format!("{KNOWLEDGE_VOLUMES}/{c}"),
        ));
    }
    Container {
        name: format!("brain-{}", if sidecar { "sync" } else { "pull" }),
        image: Some(opts.image.clone()),
        command: Some(vec!["clawkeep".into(), "pod".into(), verb.into()]),
        args: Some(args),
        resources: Some(resources(HELPER_CPU, HELPER_MEMORY, HELPER_EPHEMERAL)),
        security_context: Some(restricted()),
        volume_mounts: Some(mounts),
        restart_policy: sidecar.then(|| "Always".to_string()),
        ..Default::default()
    }
}

/// The agent container's probe: OpenClaw's `/readyz` JSON, judged by `clawkeep pod ready`.
fn ready_probe(period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "clawkeep".into(),
                "pod".into(),
                "ready".into(),
                "--url".into(),
                format!("http://127.0.0.1:{GATEWAY_PORT}/readyz"),
            ]),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Default::default()
    }
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
pub fn stateful_set(a: &Agent, opts: &Options, sidecars: &Sidecars) -> StatefulSet {
    let (template, claim) = pod_template(a, opts, sidecars);
    StatefulSet {
        metadata: object(&a.name, team_of(a), Some(&a.name), "agent"),
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
            template,
            volume_claim_templates: Some(vec![claim]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The agent's pod (what every target runs) and the claim of its home volume.
pub fn pod_template(
    a: &Agent,
    opts: &Options,
    sidecars: &Sidecars,
) -> (PodTemplateSpec, PersistentVolumeClaim) {
    let team = team_of(a);
    let home = clawkeep_sandbox::bundle::AGENT_HOME;
    let token = gets_token(a, sidecars);
    let env_secrets = !a.secrets.is_empty() && a.secrets_as == crate::secrets::SecretsAs::Env;
    let mut command = vec![
        "clawkeep".to_string(),
        "pod".to_string(),
        "run".to_string(),
        "--config".to_string(),
        AGENT_CONFIG_DIR.to_string(),
    ];
    if token {
        command.extend(["--token".to_string(), format!("{TOKEN_DIR}/token")]);
    }
    if env_secrets {
        command.extend(["--env-secrets".to_string(), ENV_SECRETS_DIR.to_string()]);
    }
    // Shared collections come with the brain's containers.
    let knowledge: &[(String, Access)] = if sidecars.store.is_some() {
        &a.knowledge
    } else {
        &[]
    };
    if !knowledge.is_empty() {
        command.push("--knowledge".to_string());
    }
    command.push("--".to_string());
    command.push(a.command.program.clone());
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
    let runtime_image = opts.runtime_image.as_ref().filter(|_| sidecars.openclaw);
    // Each collection at /knowledge/NAME, read-only for a read-only grant: the kernel
    // refuses the agent's writes, and the store refuses its key's.
    let collections = knowledge
        .iter()
        .enumerate()
        .map(|(i, (c, access))| VolumeMount {
            read_only: Some(*access == Access::Ro),
            sub_path: Some(COLLECTION_DIR.to_string()),
            ..mount(&knowledge_volume(i), &format!("{KNOWLEDGE_ROOT}/{c}"))
        });
    let mounts = [
        // The home is `home/` on the volume: the sync state beside it stays the sidecar's.
        Some(VolumeMount {
            sub_path: Some(HOME_DIR.to_string()),
            ..mount("home", home)
        }),
        Some(mount("tmp", "/tmp")),
        sidecars
            .openclaw
            .then(|| read_only("agent-config", AGENT_CONFIG_DIR)),
        runtime_image.map(|_| read_only("openclaw", crate::fleet::runtime::MOUNT)),
        token.then(|| read_only("token", TOKEN_DIR)),
        (!a.secrets.is_empty()).then(|| {
            let at = if env_secrets {
                ENV_SECRETS_DIR
            } else {
                clawkeep_sandbox::secrets::SECRETS_DIR
            };
            read_only("secrets", at)
        }),
    ];
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
        security_context: Some(SecurityContext {
            // clawkeep's own filter, as on a node, where the nodes have it.
            seccomp_profile: opts
                .seccomp_profile
                .as_ref()
                .map(|p| SeccompProfile {
                    type_: "Localhost".to_string(),
                    localhost_profile: Some(p.clone()),
                })
                .or_else(|| restricted().seccomp_profile),
            ..restricted()
        }),
        // OpenClaw's gateway takes a while to start (up to 10 minutes here), then is ready
        // while its JSON says so.
        startup_probe: token.then(|| ready_probe(5, 120)),
        readiness_probe: token.then(|| ready_probe(10, 3)),
        volume_mounts: Some(mounts.into_iter().flatten().chain(collections).collect()),
        working_dir: Some(home.to_string()),
        ..Default::default()
    };
    let pod_labels = labels(team, Some(&a.name), "agent");
    // Native sidecars start in this order before the agent and stop after it, in reverse.
    let init: Vec<Container> = [
        sidecars.store.map(|_| brain_container(a, opts, false)),
        sidecars.store.map(|_| brain_container(a, opts, true)),
        sidecars.gateway.map(|ip| shim(opts, ip)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let volumes = [
        Some(Volume {
            name: "tmp".to_string(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(units::bytes(a.resources.tmp_size)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        sidecars.openclaw.then(|| Volume {
            name: "agent-config".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map_name(a),
                ..Default::default()
            }),
            ..Default::default()
        }),
        sidecars.store.map(|_| Volume {
            name: "brain-config".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: brain_config_name(a),
                ..Default::default()
            }),
            ..Default::default()
        }),
        runtime_image.map(|reference| Volume {
            name: "openclaw".to_string(),
            image: Some(ImageVolumeSource {
                reference: Some(reference.clone()),
                pull_policy: Some("IfNotPresent".to_string()),
            }),
            ..Default::default()
        }),
        sidecars
            .gateway
            .map(|_| secret_volume("credential", credential_secret(a), &["credential".into()])),
        sidecars
            .store
            .map(|_| secret_volume("store-key", store_secret(a), &["key".into()])),
        token.then(|| secret_volume("token", token_secret(a), &["token".into()])),
        (!a.secrets.is_empty()).then(|| secret_volume("secrets", secrets_secret(a), &a.secrets)),
    ];
    // The collections' copies, as large as the home may be (they come down again at the
    // next start).
    let volumes = volumes
        .into_iter()
        .flatten()
        .chain((0..knowledge.len()).map(|i| Volume {
            name: knowledge_volume(i),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(units::bytes(home_size(a))),
                ..Default::default()
            }),
            ..Default::default()
        }));
    // The agent's own grace, then the sidecar's last push.
    let grace = a.stop_grace
        + if sidecars.store.is_some() {
            crate::brains::LAST_PUSH_DEADLINE
        } else {
            std::time::Duration::ZERO
        };
    let spec = PodSpec {
        termination_grace_period_seconds: Some(
            i64::try_from(grace.as_secs()).unwrap_or(i64::MAX / 2),
        ),
        init_containers: (!init.is_empty()).then_some(init),
        containers: vec![agent],
        volumes: Some(volumes.collect()),
        ..pod(opts, account_name(a))
    };
    let claim = volume_claim("home", pod_labels.clone(), home_size(a));
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            ..Default::default()
        }),
        spec: Some(spec),
    };
    (template, claim)
}

/// The address and port of a store endpoint `[cluster]` checked (`http(s)://ADDRESS:PORT`).
pub fn store_address(url: &str) -> Result<(IpAddr, u16), RenderError> {
    let bad = || RenderError::Store {
        url: url.to_string(),
    };
    let u = reqwest::Url::parse(url).map_err(|_| bad())?;
    let ip = u
        .host_str()
        .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        .ok_or_else(bad)?;
    Ok((ip, u.port_or_known_default().ok_or_else(bad)?))
}

/// Out to one address and TCP port, as a block of that address alone.
pub(super) fn to_address(ip: IpAddr, port: u16) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: host_cidr(ip),
                except: None,
            }),
            ..Default::default()
        }]),
        ports: Some(vec![tcp(i32::from(port))]),
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
pub fn network_policy(a: &Agent, sidecars: &Sidecars) -> Result<NetworkPolicy, RenderError> {
    let mut egress = Vec::new();
    if let Some(url) = sidecars.store {
        let (ip, port) = store_address(url)?;
        egress.push(to_address(ip, port));
    }
    if let Some(ip) = sidecars.gateway {
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
        match d.host {
            Host::Ip(ip) => egress.push(to_address(ip, d.port)),
            // Names are a Cilium policy's (`[cluster] network = "cilium"`, checked at load).
            Host::Name(_) if sidecars.names_allowed => {}
            Host::Name(_) => return Err(refused()),
        }
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
