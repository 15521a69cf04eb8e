//! `[cluster]`: the cluster a fleet is rendered for, checked where it is written (images by
//! digest, addresses as IP addresses) whatever the mode, so `clawkeep check` catches a
//! mistake before `clawkeep render k8s` does.

use std::net::IpAddr;

use super::file::FleetFile;
use super::resolve::Resolver;
use super::spans::key_path;

/// `[cluster]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}

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
}
