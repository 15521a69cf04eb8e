//! `clawkeep render k8s`: the fleet as Kubernetes objects, built with typed API structs
//! (k8s-openapi, Kubernetes 1.37) and written one YAML file per object with a
//! `kustomization.yaml`. The same fleet gives the same bytes: objects are sorted by
//! namespace, kind and name, names are derived from the fleet, and every object carries a
//! `clawkeep.io/fleet-hash` annotation computed from the rendering itself (so reordering
//! agents in the file changes nothing).

mod agent;
mod backend;
mod cilium;
mod gateway;
pub mod gateway_fleet;
pub mod helm;
pub mod meta;
mod monitoring;
pub mod sandbox;
mod team;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fleet::{is_dns_label, Fleet};

/// What the rendering needs besides the fleet: its `[cluster]`, with the command's flags
/// over it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The image every clawkeep container runs, by digest.
    pub image: String,
    /// The OpenClaw runtime image, mounted at /opt/openclaw, by digest.
    pub runtime_image: Option<String>,
    /// The knowledge store's S3 endpoint, by address (needed with `[store]`).
    pub store: Option<String>,
    /// Run pods in user namespaces (`hostUsers: false`).
    pub user_namespaces: bool,
    /// The pods' `runtimeClassName` (gVisor, Kata, ...), if any.
    pub runtime_class: Option<String>,
    /// What each agent runs as: a StatefulSet, or agent-sandbox's Sandbox.
    pub target: Target,
    /// Agent containers run under clawkeep's own seccomp filter as this Localhost profile.
    pub seccomp_profile: Option<String>,
    /// How the cluster enforces network policy (Cilium: egress to names too).
    pub network: crate::fleet::NetworkFlavour,
    /// The namespace Prometheus runs in: renders the monitoring objects (the Prometheus
    /// operator's PodMonitor and PrometheusRule, the Grafana dashboard) and lets it scrape.
    pub monitoring: Option<String>,
    /// The model gateway's Service address (an unused one in the cluster's Service range):
    /// agents' shims reach it without DNS. Needed when the fleet has `[models]`.
    pub gateway_ip: Option<std::net::IpAddr>,
}

/// What each agent runs as in the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Target {
    /// A StatefulSet of one pod (plain Kubernetes).
    #[default]
    StatefulSet,
    /// kubernetes-sigs/agent-sandbox's Sandbox and SandboxTemplate (its controller and
    /// CRDs installed).
    AgentSandbox,
}

/// Why a fleet cannot be rendered for a cluster.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("team {team:?} (agent {agent:?}) cannot name a Kubernetes namespace: \"{}{team}\" must be a DNS label of at most 63 characters and not clawkeep's own (clawkeep-system, clawkeep-operators)", meta::NAMESPACE_PREFIX)]
    Team { team: String, agent: String },
    #[error("agent {agent:?}: egress {entry:?} is not an IP address and port: a NetworkPolicy allows addresses, not names (give the address, e.g. \"192.0.2.10:443\", or leave the agent without egress)")]
    Egress { agent: String, entry: String },
    #[error("image {image:?} is not pinned by digest: give IMAGE@sha256:<64 hex digits> (clawkeep image build writes the runtime as an OCI layout; push it and use its digest)")]
    Image { image: String },
    #[error("[models] upstream {url:?}: in a cluster the gateway reaches model servers by address (a NetworkPolicy cannot name hosts): give the Service's address, e.g. http://10.96.0.30:8000, and list it in local_addresses")]
    Upstream { url: String },
    #[error("the fleet has [models], so its agents' shims need the gateway's address: set [cluster] gateway_ip (or give --gateway-ip), an unused address in the cluster's Service range (agents reach it without DNS)")]
    GatewayIp,
    #[error("the fleet has [store], so its agents' brain sidecars need the store's address in the cluster: set [cluster] store = \"http://ADDRESS:PORT\" (or give --store), the S3 endpoint by address (pods have no DNS)")]
    StoreAddress,
    #[error(
        "store endpoint {url:?} is not http(s)://ADDRESS:PORT (pods reach the store without DNS)"
    )]
    Store { url: String },
    #[error("[[models.backend]] {name:?} is run by clawkeep on a node: in a cluster it needs [cluster.backends.{name}] with its image (by digest) and its Service address (and models_claim, cpu, memory, gpus as it needs)")]
    Backend { name: String },
    #[error("no image to run: set [cluster] image (or give --image), clawkeep's image by digest, REGISTRY/NAME@sha256:<64 hex digits>")]
    NoImage,
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serialising {what}: {message}")]
    Serialize { what: String, message: String },
}

/// The `clawkeep.io/fleet-hash` the rendering carries (on every object), if any.
pub fn fleet_hash(rendered: &[Rendered]) -> Option<String> {
    let first = rendered.first()?;
    let v: serde_json::Value = serde_norway::from_str(&first.yaml).ok()?;
    v.pointer("/metadata/annotations/clawkeep.io~1fleet-hash")?
        .as_str()
        .map(str::to_string)
}

/// One rendered object: its file under the output directory and its YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub path: PathBuf,
    pub yaml: String,
}

/// The order kinds are written in (what must exist first comes first).
const KIND_ORDER: [&str; 16] = [
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "Role",
    "ServiceAccount",
    "ConfigMap",
    "NetworkPolicy",
    "CiliumNetworkPolicy",
    "Service",
    "Deployment",
    "StatefulSet",
    "SandboxTemplate",
    "Sandbox",
    "PodMonitor",
    "PrometheusRule",
    "",
];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

impl Options {
    /// The fleet's `[cluster]`, with what was given on the command line (`flags`) over it.
    pub fn of(
        cluster: &crate::fleet::cluster::Cluster,
        flags: Options,
    ) -> Result<Self, RenderError> {
        let image = if flags.image.is_empty() {
            cluster.image.clone().ok_or(RenderError::NoImage)?
        } else {
            flags.image
        };
        Ok(Options {
            image,
            runtime_image: flags
                .runtime_image
                .or_else(|| cluster.runtime_image.clone()),
            store: flags.store.or_else(|| cluster.store.clone()),
            user_namespaces: flags.user_namespaces || cluster.user_namespaces,
            runtime_class: flags
                .runtime_class
                .or_else(|| cluster.runtime_class.clone()),
            monitoring: flags.monitoring.or_else(|| cluster.monitoring.clone()),
            target: flags.target,
            network: cluster.network,
            seccomp_profile: flags
                .seccomp_profile
                .or_else(|| cluster.seccomp_profile.clone()),
            gateway_ip: flags.gateway_ip.or(cluster.gateway_ip),
        })
    }
}

/// What the rendering leaves to the operator, one line each: the Secrets and model claims to
/// make (the rendering never holds a secret value or a model), the fleet's managed store,
/// which runs on a node, and the grants each agent's store key needs.
pub fn notes(fleet: &Fleet, opts: &Options) -> Vec<String> {
    let mut out = Vec::new();
    let sidecars = agent::Sidecars {
        gateway: fleet.models.as_ref().and(opts.gateway_ip),
        store: fleet.store.as_ref().and(opts.store.as_deref()),
        openclaw: fleet.openclaw.is_some(),
        names_allowed: opts.network == crate::fleet::NetworkFlavour::Cilium,
    };
    for a in &fleet.agents {
        let ns = meta::namespace(meta::team_of(a));
        for (name, keys, what) in agent::secrets_needed(a, &sidecars) {
            let from: Vec<String> = keys
                .iter()
                .map(|k| format!("--from-file={k}=FILE"))
                .collect();
            out.push(format!(
                "make Secret {name} in {ns}, {what}: kubectl create secret generic {name} -n {ns} {}",
                from.join(" ")
            ));
        }
    }
    if sidecars.gateway.is_some() {
        out.push(format!(
            "make Secret {} in {}, one key per agent holding its credential: the gateway bills each request to the agent whose credential it carries",
            gateway::CREDENTIALS_SECRET,
            meta::SYSTEM_NAMESPACE
        ));
    }
    for p in backend::planned(fleet).unwrap_or_default() {
        if let Some(claim) = &p.cluster.models_claim {
            out.push(format!(
                "make PersistentVolumeClaim {claim} in {} holding backend {:?}'s model ({}), readable by many (ReadOnlyMany)",
                meta::SYSTEM_NAMESPACE,
                p.config.name.as_deref().unwrap_or(""),
                p.config.model.as_deref().unwrap_or("")
            ));
        }
    }
    if let Some(path) = &opts.seccomp_profile {
        out.push(format!(
            "install {NODE_FILES}/seccomp/{path} on every node that runs agents, as /var/lib/kubelet/seccomp/{path}: their containers do not start without it"
        ));
    }
    if fleet.store.as_ref().is_some_and(|s| s.managed.is_some()) {
        out.push(
            "[store] is managed (run on a node): in the cluster the brains sync with the store at [cluster] store; make each agent's bucket and key there".to_string(),
        );
    }
    let shared: std::collections::BTreeSet<&str> = fleet
        .agents
        .iter()
        .flat_map(|a| a.knowledge.iter().map(|(c, _)| c.as_str()))
        .collect();
    if let Some(store) = fleet.store.as_ref().filter(|_| !shared.is_empty()) {
        let buckets: Vec<String> = shared.iter().map(|c| store.shared_bucket(c)).collect();
        out.push(format!(
            "shared collections sync with the buckets {}: grant each agent's store key its collections (read-only or read-write as the fleet says) besides its own bucket",
            buckets.join(", ")
        ));
    }
    out
}

pub use crate::fleet::cluster::pinned;

/// Every object of the fleet, sorted, each with the fleet-hash annotation.
pub fn render(fleet: &Fleet, opts: &Options) -> Result<Vec<Rendered>, RenderError> {
    render_hashed(fleet, opts, None)
}

/// [`render`], with the fleet-hash annotation `hash` when given (a Helm chart's templates
/// carry the hash of the manifests they render to, not of their placeholders).
fn render_hashed(
    fleet: &Fleet,
    opts: &Options,
    hash: Option<&str>,
) -> Result<Vec<Rendered>, RenderError> {
    for image in std::iter::once(&opts.image).chain(&opts.runtime_image) {
        if !pinned(image) {
            return Err(RenderError::Image {
                image: image.clone(),
            });
        }
    }
    let store = match (&fleet.store, &opts.store) {
        (None, _) => None,
        (Some(_), Some(url)) => {
            if crate::fleet::cluster::endpoint_problem(url).is_some() {
                return Err(RenderError::Store { url: url.clone() });
            }
            Some(url.trim_end_matches('/'))
        }
        (Some(_), None) => return Err(RenderError::StoreAddress),
    };
    let gateway = match (&fleet.models, opts.gateway_ip) {
        (None, _) => None,
        (Some(_), Some(ip)) => Some(ip),
        (Some(_), None) => return Err(RenderError::GatewayIp),
    };
    let mut teams: BTreeMap<&str, Vec<&crate::fleet::Agent>> = BTreeMap::new();
    for a in &fleet.agents {
        let team = meta::team_of(a);
        let ns = meta::namespace(team);
        if !is_dns_label(&ns) || meta::reserved(&ns) {
            return Err(RenderError::Team {
                team: team.to_string(),
                agent: a.name.clone(),
            });
        }
        teams.entry(team).or_default().push(a);
    }
    let mut objects: Vec<serde_json::Value> = Vec::new();
    let mut add = |v: Result<serde_json::Value, serde_json::Error>| -> Result<(), RenderError> {
        objects.push(v.map_err(|e| RenderError::Serialize {
            what: "an object".into(),
            message: e.to_string(),
        })?);
        Ok(())
    };
    let sidecars = agent::Sidecars {
        gateway,
        store,
        openclaw: fleet.openclaw.is_some(),
        names_allowed: opts.network == crate::fleet::NetworkFlavour::Cilium,
    };
    for (team, agents) in &teams {
        add(serde_json::to_value(team::namespace_object(team)))?;
        add(serde_json::to_value(team::quota(team, agents, &sidecars)))?;
        add(serde_json::to_value(team::limit_range(team, agents)))?;
        add(serde_json::to_value(team::default_deny(team)))?;
        add(serde_json::to_value(team::operator_role(team)))?;
        for a in agents {
            add(serde_json::to_value(agent::service_account(a)))?;
            if sidecars.openclaw {
                add(serde_json::to_value(agent::config_map(fleet, a)?))?;
            }
            if let (Some(endpoint), Some(settings)) = (store, &fleet.store) {
                add(serde_json::to_value(agent::brain_config_map(
                    fleet, settings, a, endpoint,
                )?))?;
            }
            match opts.target {
                Target::StatefulSet => add(serde_json::to_value(agent::stateful_set(
                    a, opts, &sidecars,
                )))?,
                Target::AgentSandbox => {
                    for o in sandbox::objects(a, opts, &sidecars)? {
                        add(Ok(o))?;
                    }
                }
            }
            add(serde_json::to_value(agent::network_policy(a, &sidecars)?))?;
            if opts.network == crate::fleet::NetworkFlavour::Cilium {
                if let Some(p) = cilium::policy(a)? {
                    add(Ok(p))?;
                }
            }
        }
    }
    if let Some(address) = gateway {
        let text = std::fs::read_to_string(&fleet.path).map_err(|source| RenderError::Io {
            what: "read",
            path: fleet.path.clone(),
            source,
        })?;
        let backends = backend::planned(fleet)?;
        let upstreams: Vec<(String, String)> = backends
            .iter()
            .map(|p| {
                (
                    p.config.name.clone().unwrap_or_default(),
                    backend::upstream_url(p),
                )
            })
            .collect();
        let file = gateway_fleet::gateway_fleet(&text, &upstreams)?;
        objects.extend(gateway::objects(fleet, opts, address, file, &backends)?);
        for p in &backends {
            objects.extend(backend::objects(p, opts)?);
        }
        if opts.monitoring.is_some() {
            objects.extend(monitoring::objects(fleet)?);
        }
    }
    let key = |v: &serde_json::Value| {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        (
            // Cluster-scoped objects (namespaces) first.
            !s("/metadata/namespace").is_empty(),
            s("/metadata/namespace"),
            kind_rank(&s("/kind")),
            s("/metadata/name"),
        )
    };
    objects.sort_by_key(key);
    let mut yamls = Vec::with_capacity(objects.len());
    for v in &objects {
        yamls.push(to_yaml(v)?);
    }
    let hash = match hash {
        Some(h) => h.to_string(),
        None => {
            let mut h = Sha256::new();
            for y in &yamls {
                h.update(y.as_bytes());
            }
            hex::encode(&h.finalize()[..8])
        }
    };
    let mut out = Vec::with_capacity(objects.len());
    for mut v in objects {
        if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            let ann = meta
                .entry("annotations")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(ann) = ann.as_object_mut() {
                ann.insert("clawkeep.io/fleet-hash".into(), hash.clone().into());
            }
        }
        let s = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        let (ns, kind, name) = (s("/metadata/namespace"), s("/kind"), s("/metadata/name"));
        let file = format!("{}-{name}.yaml", kind.to_ascii_lowercase());
        let path = if ns.is_empty() {
            PathBuf::from("cluster").join(file)
        } else {
            PathBuf::from(ns).join(file)
        };
        out.push(Rendered {
            path,
            yaml: to_yaml(&v)?,
        });
    }
    Ok(out)
}

fn to_yaml(v: &serde_json::Value) -> Result<String, RenderError> {
    serde_norway::to_string(v).map_err(|e| RenderError::Serialize {
        what: v
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("an object")
            .to_string(),
        message: e.to_string(),
    })
}

/// What the nodes need that is not a Kubernetes object, as files under the output
/// directory's `nodes/`: clawkeep's seccomp profile, when the agents run under it (to be put
/// under each node's kubelet seccomp directory, `/var/lib/kubelet/seccomp/`).
pub fn node_files(opts: &Options) -> Result<Vec<Rendered>, RenderError> {
    let Some(path) = &opts.seccomp_profile else {
        return Ok(Vec::new());
    };
    let policy = clawkeep_sandbox::seccomp::policy().map_err(|e| RenderError::Serialize {
        what: "clawkeep's seccomp profile".into(),
        message: e.to_string(),
    })?;
    let text = serde_json::to_string_pretty(&policy).map_err(|e| RenderError::Serialize {
        what: "clawkeep's seccomp profile".into(),
        message: e.to_string(),
    })?;
    Ok(vec![Rendered {
        path: PathBuf::from(NODE_FILES).join("seccomp").join(path),
        yaml: text + "\n",
    }])
}

/// Where [`node_files`] go under the output directory.
pub const NODE_FILES: &str = "nodes";

/// The `kustomization.yaml` listing every file, in order.
pub fn kustomization(rendered: &[Rendered]) -> Result<String, RenderError> {
    let resources: Vec<String> = rendered
        .iter()
        .map(|r| r.path.to_string_lossy().into_owned())
        .collect();
    to_yaml(&serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }))
}

/// Write the rendering into `dir` (made if missing): the object files and
/// `kustomization.yaml`. Files of an earlier rendering that this one does not have are left.
pub fn write(dir: &Path, rendered: &[Rendered]) -> Result<(), RenderError> {
    let k = Rendered {
        path: "kustomization.yaml".into(),
        yaml: kustomization(rendered)?,
    };
    write_files(dir, rendered.iter().chain([&k]))
}

/// Write each file under `dir`, making directories as needed.
pub fn write_files<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = &'a Rendered>,
) -> Result<(), RenderError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { what, path, source }
    };
    for r in files {
        let path = dir.join(&r.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::write(&path, &r.yaml).map_err(io("write", &path))?;
    }
    Ok(())
}
