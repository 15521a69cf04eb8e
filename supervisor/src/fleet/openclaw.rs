//! An agent's `openclaw.json`: clawkeep's template, then `[defaults] openclaw`, then the
//! agent's own `openclaw` table (deep-merged, later wins), then the settings clawkeep
//! enforces, which a fleet file may not change: local mode on the sandbox's loopback, token
//! auth, no update checks, telemetry or catalog refreshes, and the model provider pointing at
//! clawkeep's gateway inside the sandbox.

use serde_json::{json, Value};

/// Port of OpenClaw's gateway inside the sandbox (forwarded from `gateway_port` on the host).
pub const GATEWAY_PORT: u16 = 18789;
/// Where the OpenClaw state lives inside the sandbox (`$HOME/.openclaw`).
pub const STATE_DIR: &str = "/home/agent/.openclaw";
/// The provider id clawkeep's model gateway gets in OpenClaw's configuration.
pub const PROVIDER: &str = "clawkeep";
/// The smallest context window a model entry may declare (OpenClaw's prompt alone is ~16k).
pub const MIN_CONTEXT: u64 = 16_000;

/// Keys clawkeep sets and a fleet file may not override, as dotted paths.
pub const ENFORCED: &[&str] = &[
    "gateway.mode",
    "gateway.bind",
    "gateway.port",
    "gateway.auth",
    "update.checkOnStart",
    "telemetry.enabled",
    "models.catalogRefresh",
    "models.providers.clawkeep",
];

/// Merge `over` into `base`: objects key by key, recursively; anything else replaces.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Dotted paths in `overrides` that touch an enforced key (or a parent of one).
pub fn enforced_in(overrides: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, at: &str, out: &mut Vec<String>) {
        let Value::Object(m) = v else { return };
        for (k, child) in m {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if ENFORCED
                .iter()
                .any(|e| *e == path || e.starts_with(&format!("{path}.")) && !child.is_object())
            {
                out.push(path);
            } else if ENFORCED.iter().any(|e| e.starts_with(&format!("{path}."))) {
                walk(child, &path, out);
            }
        }
    }
    walk(overrides, "", &mut out);
    out
}

/// What the generated configuration depends on.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The model the agent uses by default (a name or alias the gateway serves).
    pub model: &'a str,
    /// Context window declared for it (raised to [`MIN_CONTEXT`]).
    pub context_window: u64,
    /// Longest answer it may ask for: the gateway's `max_output_tokens`.
    pub max_tokens: u64,
    /// `[defaults] openclaw`, if any.
    pub defaults: Option<&'a Value>,
    /// The agent's own `openclaw` table, if any.
    pub own: Option<&'a Value>,
}

fn enforced(model: &str, context_window: u64, max_tokens: u64) -> Value {
    json!({
        "gateway": {
            "mode": "local",
            "bind": "loopback",
            "port": GATEWAY_PORT,
            // The token itself comes from OPENCLAW_GATEWAY_TOKEN, so it is never in this
            // file, which is synced to the store with the brain.
            "auth": { "mode": "token" }
        },
        "update": { "checkOnStart": false },
        "telemetry": { "enabled": false },
        "models": {
            "catalogRefresh": { "enabled": false },
            "providers": {
                PROVIDER: {
                    "baseUrl": "http://127.0.0.1:11434",
                    "apiKey": "clawkeep-local",
                    "api": "ollama",
                    "models": [{
                        "id": model,
                        "name": model,
                        "reasoning": false,
                        "input": ["text"],
                        "contextWindow": context_window.max(MIN_CONTEXT),
                        "maxTokens": max_tokens
                    }]
                }
            }
        }
    })
}

/// The OpenClaw workspace files a fleet may seed besides SOUL.md (which comes from `soul`).
pub const WORKSPACE_FILES: [&str; 6] = [
    "AGENTS.md",
    "USER.md",
    "IDENTITY.md",
    "TOOLS.md",
    "HEARTBEAT.md",
    "MEMORY.md",
];

/// The openclaw.json an agent of `fleet` gets: clawkeep's template, the fleet's settings,
/// the enforced keys, with the agent's model (or the gateway's default) as its primary model.
pub fn for_agent(fleet: &super::Fleet, agent: &super::Agent) -> Value {
    let models = fleet.models.as_ref();
    let model = agent
        .model
        .clone()
        .or_else(|| models.and_then(|m| m.config.default.clone()))
        .unwrap_or_else(|| "default".into());
    let context_window = models
        .and_then(|m| m.config.context_window)
        // What the gateway reports when [models] sets none (clawkeep_gateway::route).
        .unwrap_or(32_768);
    let max_tokens = models.map(|m| m.config.output_token_cap()).unwrap_or(4096);
    render(&Inputs {
        model: &model,
        context_window,
        max_tokens,
        defaults: None,
        own: agent.openclaw.as_ref(),
    })
}

/// The agent's configuration: template, defaults, own table, then the enforced settings.
pub fn render(i: &Inputs) -> Value {
    let mut v = json!({
        // The operator's OpenAI-compatible endpoint (token auth, the sandbox's loopback,
        // reached through gateway_port): how people and `clawkeep upgrade`'s gate talk to it.
        "gateway": { "http": { "endpoints": { "chatCompletions": { "enabled": true } } } },
        "models": { "mode": "merge" },
        "agents": { "defaults": {
            "workspace": format!("{STATE_DIR}/workspace"),
            "model": { "primary": format!("{PROVIDER}/{}", i.model) }
        } },
        "cron": { "enabled": false }
    });
    for layer in [i.defaults, i.own].into_iter().flatten() {
        deep_merge(&mut v, layer);
    }
    deep_merge(&mut v, &enforced(i.model, i.context_window, i.max_tokens));
    // The `ollama` transport is a plugin: an allow list without it leaves the agent with no
    // way to reach its model ("No API provider registered for api: ollama").
    if let Some(Value::Array(allow)) = v.pointer_mut("/plugins/allow") {
        if !allow.iter().any(|p| p == "ollama") {
            allow.push(json!("ollama"));
        }
    }
    // The provider's model list is clawkeep's alone: a merge would append, so set it.
    if let Some(p) = v.pointer_mut(&format!("/models/providers/{PROVIDER}")) {
        *p = enforced(i.model, i.context_window, i.max_tokens)["models"]["providers"][PROVIDER]
            .clone();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_merge_deeply_and_enforced_keys_win() {
        let defaults = json!({"agents": {"defaults": {"timeoutSeconds": 600, "heartbeat": {"every": "30m"}}}, "plugins": {"allow": ["memory-core"]}});
        let own =
            json!({"agents": {"defaults": {"timeoutSeconds": 900}}, "gateway": {"bind": "lan"}});
        let v = render(&Inputs {
            model: "tiny",
            context_window: 4096,
            max_tokens: 4096,
            defaults: Some(&defaults),
            own: Some(&own),
        });
        assert_eq!(v["agents"]["defaults"]["timeoutSeconds"], 900);
        assert_eq!(v["agents"]["defaults"]["heartbeat"]["every"], "30m");
        assert_eq!(v["agents"]["defaults"]["model"]["primary"], "clawkeep/tiny");
        assert_eq!(
            v["plugins"]["allow"],
            json!(["memory-core", "ollama"]),
            "the model transport stays allowed"
        );
        assert_eq!(v["gateway"]["bind"], "loopback", "enforced");
        assert_eq!(
            v["models"]["providers"]["clawkeep"]["models"][0]["contextWindow"],
            16000
        );
        assert_eq!(v["update"]["checkOnStart"], false);
        assert!(
            v["gateway"]["auth"].get("token").is_none(),
            "the token never goes in the file"
        );
    }

    #[test]
    fn overriding_what_clawkeep_enforces_is_named() {
        let own = json!({"gateway": {"bind": "lan", "http": {"endpoints": {}}}, "telemetry": {"enabled": true}, "models": {"providers": {"clawkeep": {}, "mine": {}}}, "update": true});
        assert_eq!(
            enforced_in(&own),
            [
                "gateway.bind",
                "models.providers.clawkeep",
                "telemetry.enabled",
                "update"
            ]
        );
        assert!(
            enforced_in(&json!({"agents": {"defaults": {}}, "gateway": {"http": {}}})).is_empty()
        );
    }
}
