//! `[cluster]`: the cluster a fleet is rendered for, checked where it is written (images by
//! digest, addresses as IP addresses) whatever the mode, so `clawkeep check` catches a
//! mistake before `clawkeep render k8s` does.

use std::net::IpAddr;

use super::file::FleetFile;
use super::resolve::Resolver;
use super::spans::key_path;

/// `[cluster]`, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    /// The image every clawkeep container runs, by digest.
    pub image: Option<String>,
    /// The OpenClaw runtime image, mounted at /opt/openclaw, by digest.
    pub runtime_image: Option<String>,
    /// The model gateway's Service address.
    pub gateway_ip: Option<IpAddr>,
    /// The knowledge store's S3 endpoint, `http(s)://ADDRESS:PORT`.
    pub store: Option<String>,
    /// Pods in user namespaces.
    pub user_namespaces: bool,
    /// The pods' RuntimeClass.
    pub runtime_class: Option<String>,
    /// The namespace Prometheus runs in (monitoring objects rendered).
    pub monitoring: Option<String>,
    /// How the cluster enforces network policy.
    pub network: super::NetworkFlavour,
    /// The agents' Localhost seccomp profile, relative to the kubelet's seccomp directory.
    pub seccomp_profile: Option<String>,
    /// Managed backends as the cluster runs them, by name.
    pub backends: std::collections::BTreeMap<String, ClusterBackend>,
}

/// `[cluster.backends.NAME]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterBackend {
    /// Its image, by digest.
    pub image: String,
    /// Its executable in the image, if not the backend's `binary`.
    pub binary: Option<String>,
    /// Its Service address.
    pub address: IpAddr,
    /// The claim holding its model, if any.
    pub models_claim: Option<String>,
    /// CPU cores.
    pub cpu: f64,
    /// Memory, bytes.
    pub memory: u64,
    /// GPUs, when given (else counted from the backend's devices).
    pub gpus: Option<u32>,
}

/// A backend's CPU when `[cluster.backends]` names none.
pub const BACKEND_CPU: f64 = 1.0;
/// A backend's memory when `[cluster.backends]` names none.
pub const BACKEND_MEMORY: u64 = 4 << 30;

impl Eq for Cluster {}

/// Whether `image` names its content by digest (`NAME@sha256:<64 hex digits>`).
pub fn pinned(image: &str) -> bool {
    image.rsplit_once("@sha256:").is_some_and(|(n, d)| {
        !n.is_empty() && d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Why `url` cannot be a store endpoint a pod reaches without DNS, if it cannot.
pub fn endpoint_problem(url: &str) -> Option<String> {
    let Ok(u) = reqwest::Url::parse(url) else {
        return Some("is not a URL".into());
    };
    if !matches!(u.scheme(), "http" | "https") {
        return Some(format!("has scheme {:?}, not http or https", u.scheme()));
    }
    match u.host_str() {
        None | Some("") => return Some("has no address".into()),
        Some(h) if h.trim_matches(['[', ']']).parse::<IpAddr>().is_err() => {
            return Some("names a host: pods reach the store without DNS".into())
        }
        Some(_) => {}
    }
    if u.port().is_none() {
        return Some("has no port".into());
    }
    if u.path() != "/" || u.query().is_some() || !u.username().is_empty() {
        return Some("has more than a scheme, an address and a port".into());
    }
    None
}

impl Resolver<'_> {
    /// `[cluster]`, each value checked where it is written.
    pub(crate) fn cluster(&mut self, file: &FleetFile) -> Cluster {
        let Some(c) = &file.cluster else {
            return Cluster::default();
        };
        let mut out = Cluster {
            user_namespaces: c.user_namespaces.unwrap_or(false),
            network: c.network.unwrap_or_default(),
            ..Cluster::default()
        };
        for (key, value, slot) in [
            ("image", &c.image, &mut out.image),
            ("runtime_image", &c.runtime_image, &mut out.runtime_image),
        ] {
            let Some(v) = value else { continue };
            if pinned(v) {
                *slot = Some(v.clone());
            } else {
                self.at_value(
                    &key_path!["cluster", key],
                    format!("[cluster]: {key} {v:?} is not pinned by digest"),
                    "give NAME@sha256:<64 hex digits>, the digest your registry gave when it was pushed: a tag can change under a running fleet",
                );
            }
        }
        if let Some(ip) = &c.gateway_ip {
            match ip.parse::<IpAddr>() {
                Ok(a) => out.gateway_ip = Some(a),
                Err(_) => self.at_value(
                    &key_path!["cluster", "gateway_ip"],
                    format!("[cluster]: gateway_ip {ip:?} is not an IP address"),
                    "give an unused address in the cluster's Service range, e.g. \"10.96.0.20\"",
                ),
            }
        }
        if let Some(url) = &c.store {
            match endpoint_problem(url) {
                None => out.store = Some(url.trim_end_matches('/').to_string()),
                Some(problem) => self.at_value(
                    &key_path!["cluster", "store"],
                    format!("[cluster]: store {url:?} {problem}"),
                    "give the store's S3 endpoint in the cluster by address and port, e.g. \"http://10.96.0.40:3900\"",
                ),
            }
        }
        if let Some(rc) = &c.runtime_class {
            if super::is_dns_label(rc) || rc.split('.').all(super::is_dns_label) {
                out.runtime_class = Some(rc.clone());
            } else {
                self.at_value(
                    &key_path!["cluster", "runtime_class"],
                    format!("[cluster]: runtime_class {rc:?} cannot name a RuntimeClass"),
                    "give the RuntimeClass's name, e.g. \"gvisor\"",
                );
            }
        }
        let managed: Vec<String> = file
            .models
            .as_ref()
            .and_then(|m| m.backend.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|b| b.name.clone())
            .collect();
        for (name, b) in c.backends.iter().flatten() {
            if let Some(checked) = self.cluster_backend(name, b, &managed) {
                out.backends.insert(name.clone(), checked);
            }
        }
        if let Some(path) = &c.seccomp_profile {
            let fine = !path.is_empty()
                && !path.starts_with('/')
                && path
                    .split('/')
                    .all(|p| !p.is_empty() && p != "." && p != "..")
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
            if fine {
                out.seccomp_profile = Some(path.clone());
            } else {
                self.at_value(
                    &key_path!["cluster", "seccomp_profile"],
                    format!("[cluster]: seccomp_profile {path:?} is not a relative path under the kubelet's seccomp directory"),
                    "give a relative path of letters, digits, '.', '_' and '-', e.g. \"clawkeep/agent.json\"",
                );
            }
        }
        if let Some(ns) = &c.monitoring {
            if super::is_dns_label(ns) {
                out.monitoring = Some(ns.clone());
            } else {
                self.at_value(
                    &key_path!["cluster", "monitoring"],
                    format!("[cluster]: monitoring {ns:?} cannot name a namespace"),
                    "give the namespace Prometheus runs in, e.g. \"monitoring\"",
                );
            }
        }
        out
    }

    /// One `[cluster.backends.NAME]`, or `None` with its problems reported.
    fn cluster_backend(
        &mut self,
        name: &str,
        b: &super::file::ClusterBackendFile,
        managed: &[String],
    ) -> Option<ClusterBackend> {
        let at = |k: &str| key_path!["cluster", "backends", name, k].to_vec();
        let before = self.reported();
        if !managed.iter().any(|m| m == name) {
            self.at_key(
                &key_path!["cluster", "backends", name],
                format!(
                    "[cluster.backends.{name}]: the fleet has no [[models.backend]] named {name:?}"
                ),
                format!(
                    "name one of the fleet's managed backends ({})",
                    if managed.is_empty() {
                        "it has none".to_string()
                    } else {
                        managed.join(", ")
                    }
                ),
            );
        }
        let image = match &b.image {
            Some(i) if pinned(i) => i.clone(),
            Some(i) => {
                self.at_value(
                    &at("image"),
                    format!("[cluster.backends.{name}]: image {i:?} is not pinned by digest"),
                    "give NAME@sha256:<64 hex digits>, the digest your registry gave",
                );
                String::new()
            }
            None => {
                self.at_key(
                    &key_path!["cluster", "backends", name],
                    format!("[cluster.backends.{name}]: no image"),
                    "give the model server's image by digest: image = \"REGISTRY/NAME@sha256:...\"",
                );
                String::new()
            }
        };
        let address = match b.address.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(a)) => Some(a),
            Some(Err(_)) => {
                self.at_value(
                    &at("address"),
                    format!(
                        "[cluster.backends.{name}]: address {:?} is not an IP address",
                        b.address.as_deref().unwrap_or_default()
                    ),
                    "give an unused address in the cluster's Service range, e.g. \"10.96.0.31\"",
                );
                None
            }
            None => {
                self.at_key(&key_path!["cluster", "backends", name], format!("[cluster.backends.{name}]: no address"), "give its Service address, an unused one in the cluster's Service range: address = \"10.96.0.31\"");
                None
            }
        };
        if let Some(c) = &b.models_claim {
            if !c.split('.').all(super::is_dns_label) {
                self.at_value(&at("models_claim"), format!("[cluster.backends.{name}]: models_claim {c:?} cannot name a PersistentVolumeClaim"), "give the claim's name, e.g. \"models\"");
            }
        }
        let cpu = b.cpu.unwrap_or(BACKEND_CPU);
        if !(cpu > 0.0 && cpu.is_finite()) {
            self.at_value(
                &at("cpu"),
                format!("[cluster.backends.{name}]: cpu {cpu} is not a positive number of cores"),
                "give cores, e.g. 4.0",
            );
        }
        let memory = match b.memory.as_deref().map(super::units::parse_size) {
            None => BACKEND_MEMORY,
            Some(Ok(m)) if m > 0 => m,
            Some(_) => {
                self.at_value(
                    &at("memory"),
                    format!(
                        "[cluster.backends.{name}]: memory {:?} is not a size",
                        b.memory.as_deref().unwrap_or_default()
                    ),
                    "give a size, e.g. \"16GiB\"",
                );
                0
            }
        };
        if let Some(bin) = &b.binary {
            if !bin.starts_with('/') {
                self.at_value(
                    &at("binary"),
                    format!("[cluster.backends.{name}]: binary {bin:?} is not an absolute path"),
                    "give the executable's path in the image, e.g. \"/app/llama-server\"",
                );
            }
        }
        (self.reported() == before).then(|| ClusterBackend {
            image,
            binary: b.binary.clone(),
            address: address.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            models_claim: b.models_claim.clone(),
            cpu,
            memory,
            gpus: b.gpus,
        })
    }
}
