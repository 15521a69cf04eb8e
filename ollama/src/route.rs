//! Routing: model names and aliases to upstreams, several upstreams per model in fleet order,
//! health checks, and a cooldown for an upstream that just failed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::http::Uri;

use crate::client::{Deadline, UpstreamClient};
use crate::config::{host_is_local, Api, GatewayConfig};
use crate::dialect::{Dialect, ModelInfo};
use crate::queue::FairQueue;

/// Why the gateway's settings cannot be used (the fleet check normally catches these first).
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// An upstream URL is unusable or off the node.
    #[error("upstream {name:?}: {message} (hint: upstreams are http:// on the loopback or a listed local address)")]
    BadUrl {
        /// The upstream.
        name: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug)]
struct Health {
    healthy: bool,
    cooldown_until: Option<Instant>,
    last_error: Option<String>,
}

/// One upstream inference server.
#[derive(Debug)]
pub struct Upstream {
    /// Its name.
    pub name: String,
    /// Base URL (OpenAI ones end in /v1).
    pub base: url::Url,
    /// The dialect it speaks.
    pub dialect: Dialect,
    /// Model names it serves.
    pub models: Vec<String>,
    /// Where its health is checked.
    pub health_url: url::Url,
    /// Its fair queue.
    pub queue: Arc<FairQueue>,
    /// Endpoint URLs parsed once (parsing a URL per request is measurable).
    endpoints: Vec<(&'static str, Uri)>,
    /// `health_url` as the client takes it.
    health_uri: Uri,
    health: Mutex<Health>,
}

impl Upstream {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // Plain flags: a panic elsewhere cannot leave them half-written.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Usable now: healthy and not cooling down.
    pub fn available(&self) -> bool {
        let h = self.health();
        h.healthy && h.cooldown_until.is_none_or(|t| Instant::now() >= t)
    }

    /// It refused or failed before the first byte: skip it for `cooldown`.
    pub fn failed(&self, cooldown: Duration, error: &str) {
        let mut h = self.health();
        h.cooldown_until = Some(Instant::now() + cooldown);
        h.last_error = Some(error.to_string());
    }

    /// It answered.
    pub fn succeeded(&self) {
        let mut h = self.health();
        h.cooldown_until = None;
        h.healthy = true;
    }

    /// Record a health-check result.
    pub fn set_healthy(&self, ok: bool, error: Option<String>) {
        let mut h = self.health();
        h.healthy = ok;
        if error.is_some() {
            h.last_error = error;
        }
    }

    /// (healthy, cooling down, last error) for operators.
    pub fn state(&self) -> (bool, bool, Option<String>) {
        let h = self.health();
        (
            h.healthy,
            h.cooldown_until.is_some_and(|t| Instant::now() < t),
            h.last_error.clone(),
        )
    }

    /// The full URL of `path` on this upstream.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// The parsed URL of `path` on this upstream.
    pub fn endpoint(&self, path: &str) -> Result<Uri, String> {
        if let Some((_, u)) = self.endpoints.iter().find(|(p, _)| *p == path) {
            return Ok(u.clone());
        }
        let url = self.url(path);
        url.parse::<Uri>().map_err(|e| format!("{url}: {e}"))
    }
}

/// A model request resolved to what the upstreams serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The served model name (sent upstream).
    pub model: String,
    /// Only this upstream, when an alias pins one.
    pub pinned: Option<String>,
}

/// The routing table.
#[derive(Debug)]
pub struct Routes {
    /// Upstreams in fleet order.
    pub upstreams: Vec<Arc<Upstream>>,
    aliases: BTreeMap<String, String>,
    /// Model for requests that name none, when the agent has no default either.
    pub default: Option<String>,
    /// Context window reported by `/api/show`.
    pub context_window: u64,
}

impl Routes {
    /// Build the table from `[models]` (already checked by `GatewayConfig::problems`; what is
    /// still unusable is an error, never a silent drop).
    pub fn new(cfg: &GatewayConfig) -> Result<Self, RouteError> {
        let locals = cfg.local_addresses.clone().unwrap_or_default();
        let mut upstreams = Vec::new();
        for u in &cfg.all_upstreams() {
            let name = u.name.clone().unwrap_or_default();
            let bad = |message: String| RouteError::BadUrl {
                name: name.clone(),
                message,
            };
            let url = u.url.clone().unwrap_or_default();
            let base = url::Url::parse(&url).map_err(|e| bad(format!("{url:?}: {e}")))?;
            if !host_is_local(base.host_str().unwrap_or(""), &locals) {
                return Err(bad(format!("{url:?} is not on this node")));
            }
            let dialect = match u.api.unwrap_or(Api::Openai) {
                Api::Ollama => Dialect::Ollama,
                Api::Openai => Dialect::OpenAi,
            };
            let health_url = match (&u.health, dialect) {
                (Some(h), _) if h.starts_with("http") => {
                    url::Url::parse(h).map_err(|e| bad(format!("health {h:?}: {e}")))?
                }
                (Some(p), _) => base
                    .join(p)
                    .map_err(|e| bad(format!("health {p:?}: {e}")))?,
                // llama-server and vLLM serve /health at the root, beside /v1.
                (None, Dialect::OpenAi) => base.join("/health").map_err(|e| bad(e.to_string()))?,
                (None, Dialect::Ollama) => {
                    base.join("/api/version").map_err(|e| bad(e.to_string()))?
                }
            };
            let endpoints = [
                "/chat/completions",
                "/completions",
                "/embeddings",
                "/api/chat",
                "/api/generate",
                "/api/embed",
            ]
            .into_iter()
            .filter_map(|p| {
                let full = format!("{}{p}", base.as_str().trim_end_matches('/'));
                full.parse::<Uri>().ok().map(|u| (p, u))
            })
            .collect();
            let health_uri = health_url
                .as_str()
                .parse::<Uri>()
                .map_err(|e| bad(format!("health {:?}: {e}", health_url.as_str())))?;
            upstreams.push(Arc::new(Upstream {
                endpoints,
                health_uri,
                name,
                base,
                dialect,
                models: u.models.clone().unwrap_or_default(),
                health_url,
                queue: FairQueue::new(u.concurrency.unwrap_or(4) as usize),
                health: Mutex::new(Health {
                    // Optimistic until the first check says otherwise.
                    healthy: true,
                    cooldown_until: None,
                    last_error: None,
                }),
            }));
        }
        Ok(Self {
            upstreams,
            aliases: cfg.aliases.clone().unwrap_or_default(),
            default: cfg.default.clone(),
            context_window: cfg.context_window.unwrap_or(32_768),
        })
    }

    /// Resolve a model name or alias; None when nothing serves it.
    pub fn resolve(&self, name: &str) -> Option<Target> {
        let target = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        if let Some((u, m)) = target.split_once('/') {
            if self
                .upstreams
                .iter()
                .any(|x| x.name == u && x.models.iter().any(|s| s == m))
            {
                return Some(Target {
                    model: m.to_string(),
                    pinned: Some(u.to_string()),
                });
            }
        }
        self.upstreams
            .iter()
            .any(|x| x.models.iter().any(|s| s == target))
            .then(|| Target {
                model: target.to_string(),
                pinned: None,
            })
    }

    /// Upstreams to try for `t`, best first: available ones in fleet order, then the ones
    /// cooling down or unhealthy (a last resort beats a certain failure).
    pub fn candidates(&self, t: &Target) -> Vec<Arc<Upstream>> {
        let serving: Vec<Arc<Upstream>> = self
            .upstreams
            .iter()
            .filter(|u| u.models.contains(&t.model))
            .filter(|u| t.pinned.as_ref().is_none_or(|p| *p == u.name))
            .cloned()
            .collect();
        let (mut ready, rest): (Vec<_>, Vec<_>) = serving.into_iter().partition(|u| u.available());
        ready.extend(rest);
        ready
    }

    /// Every name an agent may ask for (served models and aliases), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .upstreams
            .iter()
            .flat_map(|u| u.models.iter().cloned())
            .collect();
        out.extend(self.aliases.keys().cloned());
        out.sort();
        out.dedup();
        out
    }

    /// Model listing for `/api/tags` and `/v1/models`, limited to `allowed` when given.
    pub fn model_infos(&self, allowed: Option<&[String]>) -> Vec<ModelInfo> {
        self.names()
            .into_iter()
            .filter(|n| allowed.is_none_or(|a| a.contains(n)))
            .filter_map(|n| {
                let t = self.resolve(&n)?;
                let upstream = self.candidates(&t).first().map(|u| u.name.clone())?;
                Some(ModelInfo {
                    name: n,
                    context_window: self.context_window,
                    upstream,
                })
            })
            .collect()
    }
}

/// Check every upstream's health every `every` until the process ends.
pub async fn health_loop(routes: Arc<Routes>, client: UpstreamClient, every: Duration) {
    loop {
        for u in &routes.upstreams {
            let r = client
                .get(&u.health_uri, Deadline::after(Duration::from_secs(2)))
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => u.set_healthy(true, None),
                Ok(resp) => {
                    u.set_healthy(false, Some(format!("health check: HTTP {}", resp.status())))
                }
                Err(e) => u.set_healthy(false, Some(format!("health check: {e}"))),
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    fn cfg() -> GatewayConfig {
        let up = |name: &str, port: u16, models: &[&str]| UpstreamConfig {
            name: Some(name.into()),
            url: Some(format!("http://127.0.0.1:{port}/v1")),
            api: Some(Api::Openai),
            models: Some(models.iter().map(|s| s.to_string()).collect()),
            concurrency: Some(2),
            health: None,
        };
        GatewayConfig {
            upstream: Some(vec![up("a", 1, &["m", "n"]), up("b", 2, &["m"])]),
            aliases: Some(BTreeMap::from([
                ("default".into(), "m".into()),
                ("only-b".into(), "b/m".into()),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn aliases_pins_and_failover_order() {
        let r = Routes::new(&cfg()).unwrap();
        assert_eq!(
            r.resolve("default"),
            Some(Target {
                model: "m".into(),
                pinned: None
            })
        );
        assert_eq!(r.resolve("nope"), None);
        let names = |v: Vec<Arc<Upstream>>| v.iter().map(|u| u.name.clone()).collect::<Vec<_>>();
        let m = r.resolve("m").unwrap();
        assert_eq!(names(r.candidates(&m)), ["a", "b"]);
        r.upstreams[0].failed(Duration::from_secs(60), "connection refused");
        assert_eq!(
            names(r.candidates(&m)),
            ["b", "a"],
            "a cooling upstream goes last"
        );
        assert_eq!(names(r.candidates(&r.resolve("only-b").unwrap())), ["b"]);
        assert_eq!(r.names(), ["default", "m", "n", "only-b"]);
        assert_eq!(
            r.upstreams[0].health_url.as_str(),
            "http://127.0.0.1:1/health"
        );
        assert_eq!(
            r.upstreams[0].url("/chat/completions"),
            "http://127.0.0.1:1/v1/chat/completions"
        );
    }

    #[test]
    fn off_node_upstream_is_refused_at_run_time_too() {
        let mut c = cfg();
        if let Some(u) = c.upstream.as_mut() {
            u[1].url = Some("http://192.0.2.7:8000/v1".into());
        }
        let e = Routes::new(&c).unwrap_err().to_string();
        assert!(e.contains("is not on this node"), "{e}");
    }
}
