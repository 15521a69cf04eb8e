//! upstream_call: request translation both ways and same-dialect passthrough.

use serde_json::json;

use super::req;
use crate::dialect::{upstream_call, Dialect, Endpoint, Forwarding, UpstreamCall};

use Dialect::{Ollama, OpenAi};
use Endpoint::{Chat, Embed, Generate};

/// The gateway's default output-token cap; the limits these tests give are below it.
const CAP: u64 = 4096;

/// The cap and no extra fields passed.
const RULES: Forwarding = Forwarding {
    max_output_tokens: CAP,
    pass_fields: Vec::new(),
};

fn call(path: &'static str, body: serde_json::Value) -> UpstreamCall {
    UpstreamCall { path, body }
}

#[test]
fn ollama_chat_to_openai_with_tools_tool_results_options_and_images() {
    let tools = json!([{ "type": "function", "function": {
        "name": "get_weather", "description": "Current weather",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] },
    } }]);
    let r = req(
        Ollama,
        Chat,
        json!({
            "model": "llama3.2",
            "messages": [
                { "role": "system", "content": "You are terse." },
                { "role": "user", "content": "Weather in Paris, and the time?", "images": ["iVBORw0KGgoAAAANS", "/9j/4AAQ"] },
                { "role": "assistant", "content": "", "thinking": "two tools", "tool_calls": [
                    { "function": { "name": "get_weather", "arguments": { "city": "Paris" } } },
                    { "function": { "name": "get_time", "arguments": { "tz": "Europe/Paris" } } },
                ] },
                { "role": "tool", "tool_name": "get_time", "content": "20:54" },
                { "role": "tool", "tool_name": "get_weather", "content": "12°C" },
                { "role": "assistant", "content": "Checking Lyon too.", "tool_calls": [
                    { "function": { "name": "get_weather", "arguments": { "city": "Lyon" } } },
                ] },
                { "role": "tool", "content": "9°C" },
                { "role": "user", "content": "And Paris again?" },
                { "role": "tool", "tool_name": "get_time", "content": "late answer" },
            ],
            "tools": tools,
            "options": { "temperature": 0.2, "top_p": 0.9, "top_k": 40, "seed": 42, "stop": ["\n\n"],
                         "num_predict": 128, "num_ctx": 8192, "repeat_penalty": 1.1,
                         "frequency_penalty": 0.5, "presence_penalty": 0.25 },
            "format": "json",
            "keep_alive": "10m",
            "think": false,
        }),
    );
    let expected = json!({
        "model": "qwen2.5-7b",
        "messages": [
            { "role": "system", "content": "You are terse." },
            { "role": "user", "content": [
                { "type": "text", "text": "Weather in Paris, and the time?" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgoAAAANS" } },
                { "type": "image_url", "image_url": { "url": "data:image/jpeg;base64,/9j/4AAQ" } },
            ] },
            { "role": "assistant", "content": "", "tool_calls": [
                { "id": "call_0", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } },
                { "id": "call_1", "type": "function", "function": { "name": "get_time", "arguments": "{\"tz\":\"Europe/Paris\"}" } },
            ] },
            { "role": "tool", "content": "20:54", "tool_call_id": "call_1" },
            { "role": "tool", "content": "12°C", "tool_call_id": "call_0" },
            { "role": "assistant", "content": "Checking Lyon too.", "tool_calls": [
                { "id": "call_2", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Lyon\"}" } },
            ] },
            { "role": "tool", "content": "9°C", "tool_call_id": "call_2" },
            { "role": "user", "content": "And Paris again?" },
            { "role": "tool", "content": "late answer", "tool_call_id": "call_1" },
        ],
        "tools": tools,
        "temperature": 0.2, "top_p": 0.9, "seed": 42, "stop": ["\n\n"], "max_tokens": 128,
        "frequency_penalty": 0.5, "presence_penalty": 0.25,
        "response_format": { "type": "json_object" },
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    assert_eq!(
        upstream_call(&r, OpenAi, "qwen2.5-7b", &RULES),
        call("/chat/completions", expected)
    );
}

#[test]
fn ollama_tool_call_ids_and_string_arguments_are_kept() {
    let r = req(
        Ollama,
        Chat,
        json!({ "stream": false, "messages": [
            { "role": "assistant", "content": "", "tool_calls": [
                { "id": "call_abc", "function": { "name": "f", "arguments": "{\"a\":1}" } },
                { "function": { "name": "g" } },
            ] },
            { "role": "tool", "tool_call_id": "call_abc", "content": "F" },
            { "role": "tool", "content": "G" },
        ] }),
    );
    let expected = json!({
        "model": "m",
        "messages": [
            { "role": "assistant", "content": "", "tool_calls": [
                { "id": "call_abc", "type": "function", "function": { "name": "f", "arguments": "{\"a\":1}" } },
                { "id": "call_0", "type": "function", "function": { "name": "g", "arguments": "{}" } },
            ] },
            { "role": "tool", "content": "F", "tool_call_id": "call_abc" },
            { "role": "tool", "content": "G", "tool_call_id": "call_0" },
        ],
        "stream": false,
        "max_tokens": CAP,
    });
    assert_eq!(
        upstream_call(&r, OpenAi, "m", &RULES),
        call("/chat/completions", expected)
    );
}

#[test]
fn ollama_schema_format_and_unlimited_num_predict_gets_the_cap() {
    let schema = json!({ "type": "object", "properties": { "age": { "type": "integer" } } });
    let r = req(
        Ollama,
        Chat,
        json!({ "messages": [], "stream": false, "format": schema, "options": { "num_predict": -1 } }),
    );
    let expected = json!({
        "model": "m",
        "messages": [],
        "stream": false,
        "max_tokens": CAP,
        "response_format": { "type": "json_schema", "json_schema": { "name": "schema", "schema": schema } },
    });
    assert_eq!(
        upstream_call(&r, OpenAi, "m", &RULES),
        call("/chat/completions", expected)
    );
}

#[test]
fn ollama_generate_to_openai_chat_or_raw_completion() {
    let r = req(
        Ollama,
        Generate,
        json!({ "model": "llama3.2", "prompt": "Why is the sky blue?", "system": "Be brief.",
                "images": ["R0lGODlh"], "context": [1, 2], "template": "{{ .Prompt }}",
                "options": { "num_predict": 16 } }),
    );
    let expected = json!({
        "model": "m",
        "messages": [
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": [
                { "type": "text", "text": "Why is the sky blue?" },
                { "type": "image_url", "image_url": { "url": "data:image/gif;base64,R0lGODlh" } },
            ] },
        ],
        "max_tokens": 16,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    assert_eq!(
        upstream_call(&r, OpenAi, "m", &RULES),
        call("/chat/completions", expected)
    );

    let r = req(
        Ollama,
        Generate,
        json!({ "prompt": "<|im_start|>user\nhi", "raw": true, "stream": false, "options": { "temperature": 0 } }),
    );
    let expected = json!({
        "model": "m", "prompt": "<|im_start|>user\nhi", "stream": false, "temperature": 0,
        "max_tokens": CAP,
    });
    assert_eq!(
        upstream_call(&r, OpenAi, "m", &RULES),
        call("/completions", expected)
    );
}

#[test]
fn ollama_embed_to_openai_asks_for_floats() {
    let r = req(
        Ollama,
        Embed,
        json!({ "model": "e", "input": ["a", "b"], "truncate": true, "dimensions": 2 }),
    );
    let expected = json!({ "model": "nomic", "input": ["a", "b"], "dimensions": 2, "encoding_format": "float" });
    assert_eq!(
        upstream_call(&r, OpenAi, "nomic", &RULES),
        call("/embeddings", expected)
    );
    let r = req(Ollama, Embed, json!({ "model": "e", "prompt": "legacy" }));
    let expected = json!({ "model": "nomic", "input": "legacy", "encoding_format": "float" });
    assert_eq!(
        upstream_call(&r, OpenAi, "nomic", &RULES),
        call("/embeddings", expected)
    );
}

#[test]
fn openai_chat_to_ollama_with_tools_tool_results_parts_and_options() {
    let tools = json!([{ "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object" } } }]);
    let r = req(
        OpenAi,
        Chat,
        json!({
            "model": "gpt-4o",
            "messages": [
                { "role": "developer", "content": "You are terse." },
                { "role": "user", "content": [
                    { "type": "text", "text": "What is in this image?" },
                    { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgo=" } },
                    { "type": "image_url", "image_url": { "url": "https://example.com/cat.png" } },
                    { "type": "text", "text": "And the weather?" },
                ] },
                { "role": "assistant", "content": null, "tool_calls": [
                    { "id": "call_A", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\": \"Paris\"}" } },
                    { "id": "call_B", "type": "function", "function": { "name": "get_time", "arguments": "tz=CET" } },
                    { "id": "call_C", "type": "function", "function": { "name": "ping", "arguments": "" } },
                ] },
                { "role": "tool", "tool_call_id": "call_B", "content": "20:54" },
                { "role": "tool", "tool_call_id": "call_A", "content": [{ "type": "text", "text": "12°C" }] },
                { "role": "tool", "tool_call_id": "unknown", "content": "pong" },
            ],
            "tools": tools,
            "tool_choice": "auto",
            "max_tokens": 100,
            "max_completion_tokens": 64,
            "temperature": 0.5, "top_p": 1, "seed": 7, "top_k": 20,
            "stop": "END",
            "response_format": { "type": "json_schema", "json_schema": { "name": "w", "schema": { "type": "object" } } },
            "stream_options": { "include_usage": true },
            "n": 1, "user": "agent-1",
        }),
    );
    let expected = json!({
        "model": "llama3.2",
        "messages": [
            { "role": "system", "content": "You are terse." },
            { "role": "user", "content": "What is in this image?\nAnd the weather?", "images": ["iVBORw0KGgo="] },
            { "role": "assistant", "content": "", "tool_calls": [
                { "function": { "name": "get_weather", "arguments": { "city": "Paris" } } },
                { "function": { "name": "get_time", "arguments": { "__raw": "tz=CET" } } },
                { "function": { "name": "ping", "arguments": {} } },
            ] },
            { "role": "tool", "content": "20:54", "tool_name": "get_time" },
            { "role": "tool", "content": "12°C", "tool_name": "get_weather" },
            { "role": "tool", "content": "pong" },
        ],
        "tools": tools,
        "stream": false,
        "options": { "num_predict": 64, "temperature": 0.5, "top_p": 1, "seed": 7, "top_k": 20, "stop": ["END"] },
        "format": { "type": "object" },
    });
    assert_eq!(
        upstream_call(&r, Ollama, "llama3.2", &RULES),
        call("/api/chat", expected)
    );
}

#[test]
fn openai_completions_to_ollama_raw_generate() {
    let r = req(
        OpenAi,
        Generate,
        json!({ "model": "tiny", "prompt": ["Once upon"], "max_tokens": 8, "stream": true,
                "stop": ["\n"], "response_format": { "type": "json_object" }, "echo": false }),
    );
    let expected = json!({
        "model": "llama3.2", "prompt": "Once upon", "raw": true, "stream": true,
        "options": { "num_predict": 8, "stop": ["\n"] }, "format": "json",
    });
    assert_eq!(
        upstream_call(&r, Ollama, "llama3.2", &RULES),
        call("/api/generate", expected)
    );
}

#[test]
fn openai_embeddings_to_ollama_embed() {
    let r = req(
        OpenAi,
        Embed,
        json!({ "model": "e", "input": "hello", "encoding_format": "base64" }),
    );
    let expected = json!({ "model": "nomic", "input": "hello" });
    assert_eq!(
        upstream_call(&r, Ollama, "nomic", &RULES),
        call("/api/embed", expected)
    );
}

#[test]
fn openai_passthrough_forces_stream_usage_and_replaces_the_model() {
    // The client's stream_options are replaced: usage is asked for, nothing else (vLLM's
    // continuous_usage_stats would put usage in every chunk).
    let r = req(
        OpenAi,
        Chat,
        json!({ "model": "alias", "messages": [], "stream": true, "logit_bias": {},
                "stream_options": { "include_usage": false, "continuous_usage_stats": true } }),
    );
    let expected = json!({
        "model": "tiny-random", "messages": [], "stream": true, "logit_bias": {},
        "stream_options": { "include_usage": true },
        "max_tokens": CAP,
    });
    assert_eq!(
        upstream_call(&r, OpenAi, "tiny-random", &RULES),
        call("/chat/completions", expected)
    );

    let r = req(OpenAi, Generate, json!({ "prompt": "x", "stream": true }));
    let expected = json!({ "model": "t", "prompt": "x", "stream": true, "stream_options": { "include_usage": true }, "max_tokens": CAP });
    assert_eq!(
        upstream_call(&r, OpenAi, "t", &RULES),
        call("/completions", expected)
    );

    // vLLM rejects stream_options without streaming.
    let r = req(
        OpenAi,
        Chat,
        json!({ "messages": [], "stream_options": { "include_usage": true } }),
    );
    let expected = json!({ "model": "t", "messages": [], "stream": false, "max_tokens": CAP });
    assert_eq!(
        upstream_call(&r, OpenAi, "t", &RULES),
        call("/chat/completions", expected)
    );

    let r = req(
        OpenAi,
        Embed,
        json!({ "model": "a", "input": "x", "encoding_format": "base64" }),
    );
    let expected = json!({ "model": "e", "input": "x", "encoding_format": "base64" });
    assert_eq!(
        upstream_call(&r, OpenAi, "e", &RULES),
        call("/embeddings", expected)
    );
}

#[test]
fn ollama_passthrough_sets_stream_explicitly() {
    let r = req(
        Ollama,
        Chat,
        json!({ "model": "alias", "messages": [], "keep_alive": -1 }),
    );
    // keep_alive is dropped: it would unload or pin the model every agent shares.
    let expected = json!({ "model": "llama3.2", "messages": [], "stream": true,
                           "options": { "num_predict": CAP } });
    assert_eq!(
        upstream_call(&r, Ollama, "llama3.2", &RULES),
        call("/api/chat", expected)
    );

    let r = req(Ollama, Generate, json!({ "prompt": "x", "stream": false }));
    let expected =
        json!({ "model": "l", "prompt": "x", "stream": false, "options": { "num_predict": CAP } });
    assert_eq!(
        upstream_call(&r, Ollama, "l", &RULES),
        call("/api/generate", expected)
    );

    let r = req(Ollama, Embed, json!({ "input": "x" }));
    let expected = json!({ "model": "e", "input": "x" });
    assert_eq!(
        upstream_call(&r, Ollama, "e", &RULES),
        call("/api/embed", expected)
    );
}

/// The upstream body `upstream_call` builds for a downstream body, with a cap of 5.
fn capped_at_5(
    dialect: Dialect,
    endpoint: Endpoint,
    upstream: Dialect,
    body: serde_json::Value,
) -> serde_json::Value {
    let rules = Forwarding {
        max_output_tokens: 5,
        pass_fields: Vec::new(),
    };
    upstream_call(&req(dialect, endpoint, body), upstream, "m", &rules).body
}

/// A one-message chat with `extra` fields added.
fn chat(extra: serde_json::Value) -> serde_json::Value {
    let mut body = json!({ "messages": [{ "role": "user", "content": "hi" }], "stream": false });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

#[test]
fn the_output_cap_fills_in_a_missing_limit_and_lowers_a_larger_one() {
    // Ollama in, Ollama upstream: options.num_predict, the other options kept.
    for (extra, options) in [
        (json!({}), json!({ "num_predict": 5 })),
        (json!({ "options": null }), json!({ "num_predict": 5 })),
        (
            json!({ "options": { "temperature": 0 } }),
            json!({ "temperature": 0, "num_predict": 5 }),
        ),
        (
            json!({ "options": { "num_predict": 3 } }),
            json!({ "num_predict": 3 }),
        ),
        (
            json!({ "options": { "num_predict": 50 } }),
            json!({ "num_predict": 5 }),
        ),
        (
            json!({ "options": { "num_predict": -1 } }),
            json!({ "num_predict": 5 }),
        ),
        (
            json!({ "options": { "num_predict": -2 } }),
            json!({ "num_predict": 5 }),
        ),
        (
            json!({ "options": { "num_predict": 0 } }),
            json!({ "num_predict": 5 }),
        ),
    ] {
        let sent = capped_at_5(Ollama, Chat, Ollama, chat(extra.clone()));
        assert_eq!(sent["options"], options, "{extra}");
    }
    // Ollama in, OpenAI upstream: max_tokens.
    for (extra, max) in [
        (json!({}), 5),
        (json!({ "options": { "num_predict": 3 } }), 3),
        (json!({ "options": { "num_predict": 50 } }), 5),
        (json!({ "options": { "num_predict": -1 } }), 5),
        (json!({ "options": { "num_predict": 0 } }), 5),
    ] {
        let sent = capped_at_5(Ollama, Chat, OpenAi, chat(extra.clone()));
        assert_eq!(sent["max_tokens"], max, "{extra}");
        assert!(sent.get("max_completion_tokens").is_none(), "{sent}");
    }
    // OpenAI in, OpenAI upstream: each limit field present is capped; with none, max_tokens.
    for (extra, max, max_completion) in [
        (json!({}), json!(5), None),
        (json!({ "max_tokens": null }), json!(5), None),
        (json!({ "max_tokens": 3 }), json!(3), None),
        (json!({ "max_tokens": 50 }), json!(5), None),
        (json!({ "max_tokens": -1 }), json!(5), None),
        (
            json!({ "max_completion_tokens": 50 }),
            json!(null),
            Some(json!(5)),
        ),
        (
            json!({ "max_completion_tokens": 2 }),
            json!(null),
            Some(json!(2)),
        ),
        (
            json!({ "max_tokens": 100, "max_completion_tokens": 2 }),
            json!(5),
            Some(json!(2)),
        ),
    ] {
        let sent = capped_at_5(OpenAi, Chat, OpenAi, chat(extra.clone()));
        let got = sent.get("max_tokens").cloned().unwrap_or_default();
        assert_eq!(got, max, "{extra}");
        assert_eq!(
            sent.get("max_completion_tokens").cloned(),
            max_completion,
            "{extra}"
        );
    }
    // OpenAI in, Ollama upstream: options.num_predict.
    for (extra, num_predict) in [
        (json!({}), 5),
        (json!({ "max_tokens": 3 }), 3),
        (json!({ "max_tokens": 50 }), 5),
        (json!({ "max_tokens": 50, "max_completion_tokens": 4 }), 4),
    ] {
        let sent = capped_at_5(OpenAi, Chat, Ollama, chat(extra.clone()));
        assert_eq!(sent["options"]["num_predict"], num_predict, "{extra}");
    }
    // Completions too.
    let sent = capped_at_5(
        OpenAi,
        Generate,
        OpenAi,
        json!({ "prompt": "x", "max_tokens": 9 }),
    );
    assert_eq!(sent["max_tokens"], 5);
    let sent = capped_at_5(Ollama, Generate, Ollama, json!({ "prompt": "x" }));
    assert_eq!(sent["options"], json!({ "num_predict": 5 }));
    let sent = capped_at_5(
        Ollama,
        Generate,
        OpenAi,
        json!({ "prompt": "x", "raw": true }),
    );
    assert_eq!(sent["max_tokens"], 5);
    let sent = capped_at_5(OpenAi, Generate, Ollama, json!({ "prompt": "x" }));
    assert_eq!(sent["options"], json!({ "num_predict": 5 }));
}

#[test]
fn embeddings_get_no_output_cap() {
    for (dialect, upstream) in [
        (Ollama, Ollama),
        (Ollama, OpenAi),
        (OpenAi, OpenAi),
        (OpenAi, Ollama),
    ] {
        let sent = capped_at_5(dialect, Embed, upstream, json!({ "input": "x" }));
        for key in ["max_tokens", "max_completion_tokens", "options"] {
            assert!(
                sent.get(key).is_none(),
                "{dialect:?} to {upstream:?}: {sent}"
            );
        }
    }
}

/// Fields no upstream may see, in no dialect and at no endpoint: llama-server's own knobs
/// (the output-cap bypass `n_predict`, slot and cache control, the samplers with a history
/// of memory-safety bugs), Ollama's model placement, and OpenAI fields the gateway does not
/// serve.
fn hostile() -> serde_json::Value {
    json!({
        "n_predict": 100000, "num_predict": 100000, "id_slot": 0, "slot_id": 1,
        "cache_prompt": false, "n_keep": -1, "n_discard": -5, "n_probs": 100000, "n_indent": 4,
        "dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": -1,
        "dry_penalty_last_n": -1, "dry_sequence_breakers": ["\n"], "grammar": "root ::= \"a\"",
        "json_schema": { "type": "object" }, "samplers": ["dry"], "ignore_eos": true,
        "lora": [{ "id": 0, "scale": 1.0 }], "t_max_predict_ms": 0, "keep_alive": 0,
        "num_ctx": 131072, "context": [1, 2, 3], "n": 1, "best_of": 8, "echo": true,
        "functions": [], "store": true, "metadata": {}, "chat_template_kwargs": {},
    })
}

/// Ollama `options` no upstream may see: they size, place or thread the model.
fn hostile_options() -> serde_json::Value {
    json!({
        "num_ctx": 131072, "num_batch": 1, "num_gpu": 0, "main_gpu": 1, "num_thread": 64,
        "use_mmap": false, "use_mlock": true, "numa": true, "low_vram": true, "num_keep": -1,
        "vocab_only": true, "f16_kv": false, "logits_all": true,
    })
}

/// `a` with the fields of `b` added.
fn merged(a: &serde_json::Value, b: &serde_json::Value) -> serde_json::Value {
    let mut out = a.clone();
    if let (Some(o), Some(b)) = (out.as_object_mut(), b.as_object()) {
        o.extend(b.clone());
    }
    out
}

/// The names of an object's fields, sorted.
fn names(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    out.sort();
    out
}

/// `list` as sorted owned names.
fn sorted(list: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

#[test]
fn an_openai_request_reaches_an_openai_upstream_with_only_the_allowed_fields() {
    use crate::dialect::{OPENAI_CHAT_FIELDS, OPENAI_COMPLETION_FIELDS, OPENAI_EMBED_FIELDS};
    // Every allowed field, with a value a client would send (limits under the cap).
    let sampling = json!({ "max_tokens": 10, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
        "min_p": 0.05, "seed": 1, "stop": ["x"], "presence_penalty": 0.1,
        "frequency_penalty": 0.2, "logit_bias": { "15": -100 }, "user": "agent-1" });
    let chat = merged(
        &sampling,
        &json!({ "messages": [{ "role": "user", "content": "hi" }], "max_completion_tokens": 9,
            "logprobs": true, "top_logprobs": 2, "tools": [], "tool_choice": "auto",
            "parallel_tool_calls": false, "response_format": { "type": "json_object" },
            "reasoning_effort": "low" }),
    );
    let completion = merged(&sampling, &json!({ "prompt": "Once", "logprobs": 2 }));
    let embed =
        json!({ "input": ["a"], "encoding_format": "base64", "dimensions": 8, "user": "u" });
    for (endpoint, allowed, sample) in [
        (Chat, OPENAI_CHAT_FIELDS, chat),
        (Generate, OPENAI_COMPLETION_FIELDS, completion),
        (Embed, OPENAI_EMBED_FIELDS, embed),
    ] {
        assert_eq!(
            names(&sample),
            sorted(allowed),
            "the sample covers the list"
        );
        for stream in [false, true] {
            let body = merged(
                &merged(&sample, &hostile()),
                &json!({ "model": "alias", "stream": stream, "options": hostile_options(),
                         "stream_options": { "include_usage": false, "continuous_usage_stats": true } }),
            );
            let sent = upstream_call(&req(OpenAi, endpoint, body), OpenAi, "m", &RULES).body;
            for name in allowed {
                assert_eq!(sent[name], sample[name], "{endpoint:?} {name}");
            }
            let mut expected = sorted(allowed);
            expected.push("model".into());
            if endpoint != Embed {
                expected.push("stream".into());
                if stream {
                    expected.push("stream_options".into());
                    assert_eq!(sent["stream_options"], json!({ "include_usage": true }));
                }
            }
            expected.sort();
            assert_eq!(
                names(&sent),
                expected,
                "{endpoint:?}, stream {stream}: {sent}"
            );
        }
    }
}

#[test]
fn an_ollama_request_reaches_an_ollama_upstream_with_only_the_allowed_fields_and_options() {
    use crate::dialect::{
        OLLAMA_CHAT_FIELDS, OLLAMA_EMBED_FIELDS, OLLAMA_GENERATE_FIELDS, OLLAMA_OPTIONS,
    };
    let options = json!({ "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
        "typical_p": 0.7, "seed": 1, "stop": ["x"], "num_predict": 10, "repeat_penalty": 1.1,
        "repeat_last_n": 64, "presence_penalty": 0.1, "frequency_penalty": 0.2 });
    assert_eq!(
        names(&options),
        sorted(OLLAMA_OPTIONS),
        "the sample covers the list"
    );
    let shared = json!({ "format": "json", "think": false, "truncate": false, "shift": false });
    let chat = merged(
        &shared,
        &json!({ "messages": [{ "role": "user", "content": "hi" }], "tools": [] }),
    );
    let generate = merged(
        &shared,
        &json!({ "prompt": "Once", "suffix": "end", "system": "Be brief.",
                 "template": "{{ .Prompt }}", "raw": false, "images": ["R0lGODlh"] }),
    );
    let embed = json!({ "input": ["a"], "truncate": true, "dimensions": 8 });
    for (endpoint, allowed, sample) in [
        (Chat, OLLAMA_CHAT_FIELDS, chat),
        (Generate, OLLAMA_GENERATE_FIELDS, generate),
        (Embed, OLLAMA_EMBED_FIELDS, embed),
    ] {
        assert_eq!(
            names(&sample),
            sorted(allowed),
            "the sample covers the list"
        );
        let body = merged(
            &merged(&sample, &hostile()),
            &json!({ "model": "alias", "stream": false,
                     "options": merged(&options, &hostile_options()) }),
        );
        let sent = upstream_call(&req(Ollama, endpoint, body), Ollama, "m", &RULES).body;
        for name in allowed {
            assert_eq!(sent[name], sample[name], "{endpoint:?} {name}");
        }
        let mut expected = sorted(allowed);
        expected.push("model".into());
        if endpoint != Embed {
            expected.extend(["options".to_string(), "stream".to_string()]);
            assert_eq!(sent["options"], options, "{endpoint:?}");
        }
        expected.sort();
        assert_eq!(names(&sent), expected, "{endpoint:?}: {sent}");
    }
    // /api/embed reads only `input`: the legacy `prompt` is sent as that.
    let sent = upstream_call(
        &req(Ollama, Embed, json!({ "prompt": "x" })),
        Ollama,
        "m",
        &RULES,
    );
    assert_eq!(sent.body, json!({ "model": "m", "input": "x" }));
}

#[test]
fn a_translated_request_carries_none_of_the_backend_knobs() {
    let hostile_keys = names(&hostile());
    let hostile_option_keys = names(&hostile_options());
    for (dialect, upstream) in [(Ollama, OpenAi), (OpenAi, Ollama)] {
        for (endpoint, base) in [
            (
                Chat,
                json!({ "messages": [{ "role": "user", "content": "hi" }] }),
            ),
            (Generate, json!({ "prompt": "Once" })),
            (Generate, json!({ "prompt": "Once", "raw": true })),
            (Embed, json!({ "input": "x" })),
        ] {
            let body = merged(
                &merged(&base, &hostile()),
                &json!({ "options": merged(&json!({ "temperature": 0 }), &hostile_options()) }),
            );
            let sent = upstream_call(&req(dialect, endpoint, body), upstream, "m", &RULES).body;
            let leaked: Vec<String> = names(&sent)
                .into_iter()
                .filter(|k| hostile_keys.contains(k))
                .collect();
            assert!(
                leaked.is_empty(),
                "{dialect:?} to {upstream:?}, {endpoint:?}: {sent}"
            );
            if let Some(options) = sent.get("options") {
                assert!(
                    names(options)
                        .iter()
                        .all(|k| !hostile_option_keys.contains(k)),
                    "{dialect:?} to {upstream:?}, {endpoint:?}: {sent}"
                );
            }
        }
    }
}

#[test]
fn fields_the_fleet_passes_reach_the_upstream_but_never_replace_the_gateways_own() {
    let rules = Forwarding {
        max_output_tokens: 5,
        pass_fields: [
            "chat_template_kwargs",
            "id_slot",
            "model",
            "stream",
            "n_predict",
            "options",
        ]
        .map(String::from)
        .to_vec(),
    };
    let body = chat(
        json!({ "model": "alias", "chat_template_kwargs": { "enable_thinking": false },
        "id_slot": 2, "n_predict": 100000, "cache_prompt": true,
        "options": { "num_ctx": 131072 } }),
    );
    for (dialect, upstream) in [(OpenAi, OpenAi), (Ollama, OpenAi), (OpenAi, Ollama)] {
        let sent = upstream_call(&req(dialect, Chat, body.clone()), upstream, "m", &rules).body;
        assert_eq!(
            sent["chat_template_kwargs"],
            json!({ "enable_thinking": false })
        );
        assert_eq!(sent["id_slot"], 2, "the fleet chose to pass it");
        assert_eq!(sent["model"], "m");
        assert_eq!(sent["stream"], false);
        assert_eq!(sent["n_predict"], 5, "a passed token limit is clamped too");
        assert!(sent.get("cache_prompt").is_none(), "not listed: {sent}");
        let options = sent.get("options").cloned().unwrap_or_default();
        assert!(
            options.get("num_ctx").is_none(),
            "options is never passed: {sent}"
        );
        if upstream == OpenAi {
            // vLLM does not read n_predict: the cap is there in its own spelling as well.
            assert_eq!(sent["max_tokens"], 5, "{sent}");
        } else {
            assert_eq!(sent["options"]["num_predict"], 5, "{sent}");
        }
    }
}

#[test]
fn every_token_limit_spelling_is_clamped_to_the_cap_whatever_its_value() {
    // (asked, sent) with a cap of 5: fewer passes, anything else is the cap.
    let cases = [
        (json!(3), 3),
        (json!(5), 5),
        (json!(6), 5),
        (json!(100_000), 5),
        (json!(u64::MAX), 5),
        (json!(0), 5),
        (json!(-1), 5),
        (json!(-2), 5),
        (json!(i64::MIN), 5),
    ];
    for (asked, want) in &cases {
        for key in ["max_tokens", "max_completion_tokens"] {
            let sent = capped_at_5(OpenAi, Chat, OpenAi, chat(json!({ key: asked })));
            assert_eq!(sent[key], *want, "{key}: {asked}");
            let sent = capped_at_5(OpenAi, Chat, Ollama, chat(json!({ key: asked })));
            assert_eq!(
                sent["options"]["num_predict"], *want,
                "{key}: {asked} to Ollama"
            );
        }
        let sent = capped_at_5(
            OpenAi,
            Generate,
            OpenAi,
            json!({ "prompt": "x", "max_tokens": asked }),
        );
        assert_eq!(sent["max_tokens"], *want, "completion max_tokens: {asked}");
        let options = json!({ "options": { "num_predict": asked } });
        let sent = capped_at_5(Ollama, Chat, Ollama, chat(options.clone()));
        assert_eq!(
            sent["options"]["num_predict"], *want,
            "num_predict: {asked}"
        );
        let sent = capped_at_5(Ollama, Chat, OpenAi, chat(options));
        assert_eq!(sent["max_tokens"], *want, "num_predict: {asked} to OpenAI");
    }
    // Foreign spellings are dropped on the way: only the dialect's own reaches the upstream.
    for key in ["n_predict", "num_predict"] {
        for (dialect, upstream) in [(OpenAi, OpenAi), (Ollama, Ollama), (Ollama, OpenAi)] {
            let sent = capped_at_5(dialect, Chat, upstream, chat(json!({ key: 100_000 })));
            assert!(sent.get(key).is_none(), "{key}: {sent}");
            let limit = sent
                .get("max_tokens")
                .unwrap_or(&sent["options"]["num_predict"]);
            assert_eq!(*limit, 5, "{sent}");
        }
    }
    // Passed by the fleet, they are clamped, whatever their value, non-integers included.
    let rules = Forwarding {
        max_output_tokens: 5,
        pass_fields: vec!["n_predict".into(), "num_predict".into()],
    };
    let odd = [
        (json!(1.5), 5),
        (json!(1e30), 5),
        (json!("100000"), 5),
        (json!(true), 5),
        (json!({}), 5),
    ];
    for (asked, want) in cases.iter().chain(&odd) {
        for key in ["n_predict", "num_predict"] {
            for upstream in [OpenAi, Ollama] {
                let r = req(OpenAi, Chat, chat(json!({ key: asked })));
                let sent = upstream_call(&r, upstream, "m", &rules).body;
                assert_eq!(sent[key], *want, "{key}: {asked} to {upstream:?}");
            }
        }
    }
}

#[test]
fn a_token_limit_that_is_no_integer_is_refused_before_any_upstream() {
    for (dialect, body) in [
        (OpenAi, r#"{"messages":[],"max_tokens":1e30}"#),
        (
            OpenAi,
            r#"{"messages":[],"max_tokens":18446744073709551616}"#,
        ),
        (
            OpenAi,
            r#"{"messages":[],"max_completion_tokens":"100000"}"#,
        ),
        (Ollama, r#"{"messages":[],"options":{"num_predict":2.5}}"#),
    ] {
        match crate::dialect::parse_request(dialect, Chat, body.as_bytes()) {
            Ok(r) => panic!("accepted {body}: {r:?}"),
            Err(e) => {
                assert_eq!(e.status, 400, "{body}");
                assert!(e.message.contains("must be an integer"), "{}", e.message);
                assert!(e.message.contains("e.g. 256"), "{}", e.message);
            }
        }
    }
}
