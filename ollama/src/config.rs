//! The `[models]` section of the fleet file (owned by this crate, embedded by the supervisor)
//! and the rules it must follow, reported by key path so the supervisor can point at the line.

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which API an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// Ollama's native API (`/api/chat`, ...): the URL is the server's root.
    Ollama,
    /// The OpenAI-compatible API (vLLM, llama.cpp's llama-server): the URL ends in `/v1`.
    Openai,
}

/// One local inference server.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Name used in the ledger, `clawkeep spend` and aliases (`upstream/model`).
    #[schemars(example = &"gpu0")]
    pub name: Option<String>,
    /// Base URL on this node: loopback, or an address listed in `local_addresses`.
    #[schemars(example = &"http://127.0.0.1:8000/v1")]
    pub url: Option<String>,
    /// The API it speaks.
    pub api: Option<Api>,
    /// Model names it serves (requests are routed by these names; several upstreams may
    /// serve one model, in fleet-file order, for failover).
    pub models: Option<Vec<String>>,
    /// Requests it runs at once (its parallel slots); more wait in the fair queue.
    #[schemars(example = 4)]
    pub concurrency: Option<u32>,
    /// Health-check URL (default: `/health` beside an OpenAI `/v1` URL, `/api/version` for
    /// Ollama).
    pub health: Option<String>,
}

/// A daily token budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Prompt plus completion tokens per UTC day.
    #[schemars(example = 2_000_000)]
    pub tokens_per_day: Option<u64>,
}

/// `[models]`: the upstreams agents may reach, through clawkeep only.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Upstream inference servers.
    pub upstream: Option<Vec<UpstreamConfig>>,
    /// Inference servers clawkeep runs itself (each also becomes an upstream).
    pub backend: Option<Vec<crate::backend::BackendConfig>>,
    /// Other names for models, e.g. `default = "llama3.1:8b"`, or `upstream/model` to pin one
    /// upstream.
    pub aliases: Option<BTreeMap<String, String>>,
    /// Model used when an agent sets none and a request names none.
    pub default: Option<String>,
    /// Non-loopback addresses of this node that upstream URLs may use; nothing else is
    /// reachable (no egress).
    pub local_addresses: Option<Vec<String>>,
    /// Loopback address for the Prometheus `/metrics` endpoint, e.g. "127.0.0.1:9464".
    pub metrics: Option<String>,
    /// Context window `/api/show` reports for every model (default 32768).
    pub context_window: Option<u64>,
    /// Most tokens one answer may generate (default 4096). A chat or completion request
    /// that sets no limit (Ollama `options.num_predict`, OpenAI `max_tokens` /
    /// `max_completion_tokens`; Ollama's unlimited -1 and -2 count as none) is sent upstream
    /// with this one, in the upstream's dialect, so a model that never ends its turn cannot
    /// hold a slot for minutes. A request's own limit above it is lowered to it; a smaller
    /// one passes unchanged. Every other spelling (llama-server's `n_predict`, a top-level
    /// `num_predict`) is dropped before the upstream, or clamped the same way when listed
    /// in `pass_fields`. Embeddings are unaffected.
    #[schemars(example = 4096)]
    pub max_output_tokens: Option<u64>,
    /// Extra top-level request fields passed to upstreams as they are, e.g.
    /// `["chat_template_kwargs"]`. Requests reach upstreams only through an allow-list of
    /// the fields real clients send, per dialect and endpoint (README, "Models"); any other
    /// field, such as llama-server's `id_slot` or `cache_prompt`, Ollama's `keep_alive`, is
    /// dropped unless listed here. A listed field never replaces one the gateway sets, so
    /// `model`, `stream`, `stream_options` and `options` cannot be listed (Ollama `options`
    /// has its own allow-list); a token limit listed here is clamped to
    /// `max_output_tokens`.
    #[schemars(example = &["chat_template_kwargs"])]
    pub pass_fields: Option<Vec<String>>,
    /// Largest request body, e.g. "8MiB" (default).
    pub max_body: Option<String>,
    /// Time an upstream may take to answer (default "10m").
    pub timeout: Option<String>,
    /// How long a failing upstream is skipped before it is tried again (default "10s").
    pub cooldown: Option<String>,
    /// Connections one agent may hold open to its model socket (default 256); more are
    /// closed at once. Bounds what a runaway or hostile agent costs the gateway.
    #[schemars(example = 256)]
    pub max_connections: Option<u64>,
    /// Time an agent has to send a request head, and then its body (default "30s"); a
    /// kept-alive connection idle this long is closed.
    pub request_timeout: Option<String>,
}

/// Output-token cap when `[models] max_output_tokens` is not set.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

/// A rule broken in `[models]`, with the key path (relative to `[models]`) it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `["upstream", 1, "url"]` as strings and indices.
    pub path: Vec<PathPart>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPart {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

fn key(k: &str) -> PathPart {
    PathPart::Key(k.to_string())
}

/// Whether `host` (from a URL) is on this node: loopback, `localhost`, or listed.
pub fn host_is_local(host: &str, local_addresses: &[String]) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match bare.parse::<IpAddr>() {
        Ok(ip) => {
            ip.is_loopback()
                || local_addresses
                    .iter()
                    .any(|a| a.parse::<IpAddr>().ok() == Some(ip))
        }
        Err(_) => false,
    }
}

impl GatewayConfig {
    /// Upstreams as listed, then the managed backends as upstreams.
    pub fn all_upstreams(&self) -> Vec<UpstreamConfig> {
        let mut out: Vec<UpstreamConfig> = self.upstream.clone().unwrap_or_default();
        out.extend(self.backend.iter().flatten().map(|b| b.upstream()));
        out
    }

    /// The output-token cap: `max_output_tokens`, or [`DEFAULT_MAX_OUTPUT_TOKENS`].
    pub fn output_token_cap(&self) -> u64 {
        self.max_output_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS)
    }

    /// What every upstream request is held to: the output-token cap and `pass_fields`.
    pub fn forwarding(&self) -> crate::dialect::Forwarding {
        crate::dialect::Forwarding {
            max_output_tokens: self.output_token_cap(),
            pass_fields: self.pass_fields.clone().unwrap_or_default(),
        }
    }

    /// Every model name an agent may ask for: served names and aliases.
    pub fn known_models(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .all_upstreams()
            .iter()
            .flat_map(|u| u.models.iter().flatten().cloned())
            .collect();
        out.extend(self.aliases.iter().flatten().map(|(a, _)| a.clone()));
        out.sort();
        out.dedup();
        out
    }

    /// Check the rules; every problem is returned, none stops the others.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let locals = self.local_addresses.clone().unwrap_or_default();
        for (i, a) in locals.iter().enumerate() {
            if a.parse::<IpAddr>().is_err() {
                out.push(Problem {
                    path: vec![key("local_addresses"), PathPart::Index(i)],
                    message: format!("local address {a:?} is not an IP address"),
                    hint: "list this node's own addresses as IPs, e.g. \"10.0.0.5\"".into(),
                });
            }
        }
        let mut names: Vec<String> = Vec::new();
        let served: Vec<String> = self.known_models();
        for (i, u) in self.upstream.iter().flatten().enumerate() {
            let at = |k: &str| vec![key("upstream"), PathPart::Index(i), key(k)];
            match &u.name {
                None => out.push(Problem {
                    path: vec![key("upstream"), PathPart::Index(i)],
                    message: "upstream has no name".into(),
                    hint: "add name = \"...\" (it appears in the ledger and `clawkeep spend`)"
                        .into(),
                }),
                Some(n) if names.contains(n) => out.push(Problem {
                    path: at("name"),
                    message: format!("upstream name {n:?} is used twice"),
                    hint: "give every upstream its own name".into(),
                }),
                Some(n) => names.push(n.clone()),
            }
            if u.api.is_none() {
                out.push(Problem {
                    path: vec![key("upstream"), PathPart::Index(i)],
                    message: "upstream has no api".into(),
                    hint: "add api = \"openai\" (vLLM, llama-server) or api = \"ollama\"".into(),
                });
            }
            match &u.url {
                None => out.push(Problem {
                    path: vec![key("upstream"), PathPart::Index(i)],
                    message: "upstream has no url".into(),
                    hint: "add url = \"http://127.0.0.1:8000/v1\" (OpenAI) or \"http://127.0.0.1:11434\" (Ollama)".into(),
                }),
                Some(url) => out.extend(url_problems(url, &locals, at("url"))),
            }
            if let Some(h) = &u.health {
                if h.starts_with("http://") || h.starts_with("https://") {
                    out.extend(url_problems(h, &locals, at("health")));
                } else if !h.starts_with('/') {
                    out.push(Problem {
                        path: at("health"),
                        message: format!("health {h:?} is neither a path nor a URL"),
                        hint: "write a path such as \"/health\" or a loopback URL".into(),
                    });
                }
            }
            if u.models.as_ref().is_none_or(|m| m.is_empty()) {
                out.push(Problem {
                    path: vec![key("upstream"), PathPart::Index(i)],
                    message: "upstream serves no models".into(),
                    hint: "list the model names it serves: models = [\"llama3.1:8b\"]; clawkeep routes by these names and never asks the upstream (llama-server answers to any name)".into(),
                });
            }
            if u.concurrency == Some(0) {
                out.push(Problem {
                    path: at("concurrency"),
                    message: "concurrency 0 would never run a request".into(),
                    hint: "use the upstream's number of parallel slots, e.g. 4".into(),
                });
            }
        }
        for (i, b) in self.backend.iter().flatten().enumerate() {
            let at = |k: &str| vec![key("backend"), PathPart::Index(i), key(k)];
            let here = vec![key("backend"), PathPart::Index(i)];
            match &b.name {
                None => out.push(Problem {
                    path: here.clone(),
                    message: "backend has no name".into(),
                    hint: "add name = \"...\" (it names the service and the upstream)".into(),
                }),
                Some(n) if names.contains(n) => out.push(Problem {
                    path: at("name"),
                    message: format!("backend name {n:?} is already an upstream's name"),
                    hint: "give every upstream and backend its own name".into(),
                }),
                Some(n) => names.push(n.clone()),
            }
            if b.kind.is_none() {
                out.push(Problem {
                    path: here.clone(),
                    message: "backend has no kind".into(),
                    hint: "add kind = \"llama-server\", \"vllm\" or \"ollama\"".into(),
                });
            }
            if b.binary.is_none() {
                out.push(Problem {
                    path: here.clone(),
                    message: "backend has no binary".into(),
                    hint: "add binary = \"/path/to/llama-server\" (or vllm, ollama)".into(),
                });
            }
            let needs_model = !matches!(b.kind, Some(crate::backend::BackendKind::Ollama));
            if needs_model && b.model.is_none() {
                out.push(Problem {
                    path: here.clone(),
                    message: "backend has no model".into(),
                    hint: "add model = \"/path/to/model.gguf\" (llama-server) or a local model directory (vLLM)".into(),
                });
            }
            if b.models.as_ref().is_none_or(|m| m.is_empty()) {
                out.push(Problem {
                    path: here.clone(),
                    message: "backend serves no model names".into(),
                    hint: "list the names agents use: models = [\"llama3.1:8b\"]".into(),
                });
            }
            match b.port {
                None | Some(0) => out.push(Problem {
                    path: here.clone(),
                    message: "backend has no port".into(),
                    hint: "add port = 8081: it listens on 127.0.0.1 there".into(),
                }),
                Some(_) => {}
            }
        }
        for (alias, target) in self.aliases.iter().flatten() {
            let (pin, model) = match target.split_once('/') {
                Some((u, m)) if names.contains(&u.to_string()) => (Some(u), m),
                _ => (None, target.as_str()),
            };
            let serves = |u: &UpstreamConfig| u.models.iter().flatten().any(|m| m == model);
            let ok = self
                .upstream
                .iter()
                .flatten()
                .any(|u| serves(u) && pin.is_none_or(|p| u.name.as_deref() == Some(p)));
            if !ok {
                out.push(Problem {
                    path: vec![key("aliases"), key(alias)],
                    message: format!(
                        "alias {alias:?} points at {target:?}, which no upstream serves"
                    ),
                    hint: format!("use one of: {}", served.join(", ")),
                });
            }
        }
        if let Some(d) = &self.default {
            if !served.contains(d) {
                out.push(Problem {
                    path: vec![key("default")],
                    message: format!(
                        "default model {d:?} is not served by any upstream nor an alias"
                    ),
                    hint: format!("use one of: {}", served.join(", ")),
                });
            }
        }
        if let Some(m) = &self.metrics {
            match m.parse::<std::net::SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => {}
                Ok(_) => out.push(Problem {
                    path: vec![key("metrics")],
                    message: format!("metrics address {m:?} is not on the loopback"),
                    hint:
                        "serve metrics on 127.0.0.1 and let the operator's scraper reach it there"
                            .into(),
                }),
                Err(_) => out.push(Problem {
                    path: vec![key("metrics")],
                    message: format!("metrics address {m:?} is not IP:port"),
                    hint: "write e.g. \"127.0.0.1:9464\"".into(),
                }),
            }
        }
        if self.context_window == Some(0) {
            out.push(Problem {
                path: vec![key("context_window")],
                message: "context_window 0".into(),
                hint: "give the models' context length in tokens, e.g. 32768".into(),
            });
        }
        if self.max_output_tokens == Some(0) {
            out.push(Problem {
                path: vec![key("max_output_tokens")],
                message: "max_output_tokens 0 would cut every answer before its first token"
                    .into(),
                hint: format!(
                    "give the most tokens one answer may generate, e.g. {DEFAULT_MAX_OUTPUT_TOKENS}, or leave it out for that default"
                ),
            });
        }
        for (i, name) in self.pass_fields.iter().flatten().enumerate() {
            let message = if name.is_empty() {
                "an empty field name".to_string()
            } else if crate::dialect::GATEWAY_SET_FIELDS.contains(&name.as_str()) {
                format!("{name:?} is set by the gateway itself and cannot be passed through")
            } else {
                continue;
            };
            out.push(Problem {
                path: vec![key("pass_fields"), PathPart::Index(i)],
                message,
                hint: "list only extra top-level request fields an upstream should see, e.g. \"chat_template_kwargs\"".into(),
            });
        }
        out
    }
}

fn url_problems(url: &str, locals: &[String], path: Vec<PathPart>) -> Vec<Problem> {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return vec![Problem {
                path,
                message: format!("{url:?} is not a URL: {e}"),
                hint: "write e.g. \"http://127.0.0.1:8000/v1\"".into(),
            }]
        }
    };
    let mut out = Vec::new();
    if parsed.scheme() != "http" {
        out.push(Problem {
            path: path.clone(),
            message: format!("{url:?} uses {}", parsed.scheme()),
            hint:
                "upstreams on this node are plain http:// on the loopback or a listed local address"
                    .into(),
        });
    }
    let host = parsed.host_str().unwrap_or("");
    if !host_is_local(host, locals) {
        out.push(Problem {
            path,
            message: format!("{url:?} is not on this node: {host} is neither loopback nor in local_addresses"),
            hint: "clawkeep never sends prompts off the node; use 127.0.0.1, or add this node's own address to [models] local_addresses".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(name: &str, url: &str, models: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            name: Some(name.into()),
            url: Some(url.into()),
            api: Some(Api::Openai),
            models: Some(models.iter().map(|s| s.to_string()).collect()),
            concurrency: None,
            health: None,
        }
    }

    #[test]
    fn egress_is_refused() {
        let c = GatewayConfig {
            upstream: Some(vec![
                upstream("a", "http://127.0.0.1:8000/v1", &["m"]),
                upstream("b", "http://10.0.0.5:8000/v1", &["m"]),
                upstream("c", "http://api.openai.com/v1", &["m"]),
                upstream("d", "https://127.0.0.1/v1", &["m"]),
            ]),
            local_addresses: Some(vec!["10.0.0.5".into()]),
            ..Default::default()
        };
        let p = c.problems();
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0]
            .message
            .contains("api.openai.com is neither loopback nor in local_addresses"));
        assert!(p[1].message.contains("uses https"));
        assert!(host_is_local("[::1]", &[]));
        assert!(host_is_local("localhost", &[]));
        assert!(!host_is_local("localhost.evil.com", &[]));
    }

    #[test]
    fn aliases_and_default_must_resolve() {
        let c = GatewayConfig {
            upstream: Some(vec![upstream(
                "gpu0",
                "http://127.0.0.1:8000/v1",
                &["llama"],
            )]),
            aliases: Some(BTreeMap::from([
                ("default".into(), "llama".into()),
                ("pinned".into(), "gpu0/llama".into()),
                ("broken".into(), "mistral".into()),
            ])),
            default: Some("nope".into()),
            ..Default::default()
        };
        let p = c.problems();
        let msgs: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "alias \"broken\" points at \"mistral\", which no upstream serves",
                "default model \"nope\" is not served by any upstream nor an alias",
            ]
        );
    }

    #[test]
    fn pass_fields_may_not_name_what_the_gateway_sets() {
        let c = GatewayConfig {
            pass_fields: Some(vec![
                "chat_template_kwargs".into(),
                "stream".into(),
                String::new(),
                "options".into(),
            ]),
            max_output_tokens: Some(9),
            ..Default::default()
        };
        let p = c.problems();
        let at: Vec<&PathPart> = p.iter().map(|p| &p.path[1]).collect();
        assert_eq!(
            at,
            [
                &PathPart::Index(1),
                &PathPart::Index(2),
                &PathPart::Index(3)
            ],
            "{p:#?}"
        );
        assert!(
            p[0].message.contains("\"stream\" is set by the gateway"),
            "{p:#?}"
        );
        assert!(p[1].message.contains("empty"), "{p:#?}");
        let rules = c.forwarding();
        assert_eq!(rules.max_output_tokens, 9);
        assert_eq!(rules.pass_fields.len(), 4);
        assert!(GatewayConfig::default().forwarding().pass_fields.is_empty());
    }

    #[test]
    fn max_output_tokens_defaults_to_4096_and_must_be_positive() {
        let c = GatewayConfig::default();
        assert_eq!(c.output_token_cap(), 4096);
        assert!(c.problems().is_empty());
        let c = GatewayConfig {
            max_output_tokens: Some(512),
            ..Default::default()
        };
        assert_eq!(c.output_token_cap(), 512);
        assert!(c.problems().is_empty());
        let c = GatewayConfig {
            max_output_tokens: Some(0),
            ..Default::default()
        };
        let p = c.problems();
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].path, vec![key("max_output_tokens")]);
        assert!(p[0].message.contains("max_output_tokens 0"), "{p:#?}");
        assert!(p[0].hint.contains("e.g. 4096"), "{p:#?}");
    }
}
