//! Model listings the gateway answers itself (`/api/tags`, `/v1/models`, `/api/show`,
//! `/api/version`), so agents discover exactly the models they may use.

use serde_json::{json, Value};

use super::Dialect;

/// The Ollama version the gateway claims: recent enough for clients that gate tool calling
/// and `/api/show`'s `capabilities` on the server version.
pub const OLLAMA_VERSION: &str = "0.12.6";

/// Architecture reported by `/api/show`; clients only use it to find `<arch>.context_length`.
const ARCHITECTURE: &str = "llama";

/// Modification time reported for every model: the gateway's models have no file.
const MODIFIED_AT: &str = "1970-01-01T00:00:00Z";

/// A model an agent may use, as the gateway knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The name agents use.
    pub name: String,
    /// Context window in tokens (what OpenClaw sizes prompts by).
    pub context_window: u64,
    /// The upstream serving it (not shown to agents: routing is the gateway's business).
    pub upstream: String,
}

/// The model list in a dialect: Ollama `/api/tags` or OpenAI `/v1/models`.
pub fn list_models(dialect: Dialect, models: &[ModelInfo]) -> Value {
    match dialect {
        Dialect::Ollama => {
            let models: Vec<Value> = models
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "model": m.name,
                        "modified_at": MODIFIED_AT,
                        "size": 0,
                        "digest": "",
                        "details": details(),
                    })
                })
                .collect();
            json!({ "models": models })
        }
        Dialect::OpenAi => {
            let data: Vec<Value> = models
                .iter()
                .map(|m| {
                    json!({
                        "id": m.name,
                        "object": "model",
                        "created": 0,
                        "owned_by": "clawkeep",
                        // vLLM's field for the context window; OpenClaw's discovery reads it.
                        "max_model_len": m.context_window,
                    })
                })
                .collect();
            json!({ "object": "list", "data": data })
        }
    }
}

/// Ollama `/api/show` for a model: details, capabilities, and `model_info` with
/// `general.architecture` and `<arch>.context_length` (where OpenClaw reads the context window).
pub fn show_model(model: &ModelInfo) -> Value {
    let mut model_info = serde_json::Map::new();
    model_info.insert("general.architecture".into(), json!(ARCHITECTURE));
    model_info.insert("general.basename".into(), json!(model.name));
    model_info.insert(
        format!("{ARCHITECTURE}.context_length"),
        json!(model.context_window),
    );
    json!({
        "license": "",
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": details(),
        "model_info": model_info,
        "capabilities": ["completion", "tools"],
        "modified_at": MODIFIED_AT,
    })
}

/// Ollama `/api/version`.
pub fn version() -> Value {
    json!({ "version": OLLAMA_VERSION })
}

fn details() -> Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": ARCHITECTURE,
        "families": [ARCHITECTURE],
        "parameter_size": "",
        "quantization_level": "",
    })
}
