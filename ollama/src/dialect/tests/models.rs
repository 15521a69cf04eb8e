//! Model listings answered by the gateway itself.

use serde_json::json;

use crate::dialect::{list_models, show_model, version, Dialect, ModelInfo};

fn models() -> Vec<ModelInfo> {
    vec![
        ModelInfo {
            name: "llama3.2".into(),
            context_window: 8192,
            upstream: "ollama-1".into(),
        },
        ModelInfo {
            name: "qwen2.5-7b".into(),
            context_window: 32768,
            upstream: "vllm".into(),
        },
    ]
}

#[test]
fn ollama_tags() {
    let details = json!({ "parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                          "parameter_size": "", "quantization_level": "" });
    assert_eq!(
        list_models(Dialect::Ollama, &models()),
        json!({ "models": [
            { "name": "llama3.2", "model": "llama3.2", "modified_at": "1970-01-01T00:00:00Z",
              "size": 0, "digest": "", "details": details },
            { "name": "qwen2.5-7b", "model": "qwen2.5-7b", "modified_at": "1970-01-01T00:00:00Z",
              "size": 0, "digest": "", "details": details },
        ] })
    );
}

#[test]
fn openai_models() {
    assert_eq!(
        list_models(Dialect::OpenAi, &models()),
        json!({ "object": "list", "data": [
            { "id": "llama3.2", "object": "model", "created": 0, "owned_by": "clawkeep", "max_model_len": 8192 },
            { "id": "qwen2.5-7b", "object": "model", "created": 0, "owned_by": "clawkeep", "max_model_len": 32768 },
        ] })
    );
    assert_eq!(
        list_models(Dialect::OpenAi, &[]),
        json!({ "object": "list", "data": [] })
    );
}

#[test]
fn show_gives_the_context_window_where_openclaw_reads_it() {
    let shown = show_model(&models()[1]);
    let arch = shown["model_info"]["general.architecture"]
        .as_str()
        .expect("architecture");
    assert_eq!(
        shown["model_info"][format!("{arch}.context_length")],
        json!(32768)
    );
    assert_eq!(
        shown,
        json!({
            "license": "", "modelfile": "", "parameters": "", "template": "",
            "details": { "parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                         "parameter_size": "", "quantization_level": "" },
            "model_info": { "general.architecture": "llama", "general.basename": "qwen2.5-7b",
                            "llama.context_length": 32768 },
            "capabilities": ["completion", "tools"],
            "modified_at": "1970-01-01T00:00:00Z",
        })
    );
}

#[test]
fn version_looks_like_ollama() {
    assert_eq!(version(), json!({ "version": "0.12.6" }));
}
