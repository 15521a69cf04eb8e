//! upstream_call: request translation both ways and same-dialect passthrough.

use serde_json::json;

use super::req;
use crate::dialect::{upstream_call, Dialect, Endpoint, UpstreamCall};

use Dialect::{Ollama, OpenAi};
use Endpoint::{Chat, Embed, Generate};

/// The gateway's default output-token cap; the limits these tests give are below it.
const CAP: u64 = 4096;

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
        upstream_call(&r, OpenAi, "qwen2.5-7b", CAP),
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
        upstream_call(&r, OpenAi, "m", CAP),
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
        upstream_call(&r, OpenAi, "m", CAP),
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
        upstream_call(&r, OpenAi, "m", CAP),
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
        upstream_call(&r, OpenAi, "m", CAP),
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
        upstream_call(&r, OpenAi, "nomic", CAP),
        call("/embeddings", expected)
    );
    let r = req(Ollama, Embed, json!({ "model": "e", "prompt": "legacy" }));
    let expected = json!({ "model": "nomic", "input": "legacy", "encoding_format": "float" });
    assert_eq!(
        upstream_call(&r, OpenAi, "nomic", CAP),
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
        upstream_call(&r, Ollama, "llama3.2", CAP),
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
        upstream_call(&r, Ollama, "llama3.2", CAP),
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
        upstream_call(&r, Ollama, "nomic", CAP),
        call("/api/embed", expected)
    );
}

#[test]
fn openai_passthrough_forces_stream_usage_and_replaces_the_model() {
    let r = req(
        OpenAi,
        Chat,
        json!({ "model": "alias", "messages": [], "stream": true, "logit_bias": {},
                "stream_options": { "include_usage": false, "continuous_usage_stats": false } }),
    );
    let expected = json!({
        "model": "tiny-random", "messages": [], "stream": true, "logit_bias": {},
        "stream_options": { "include_usage": true, "continuous_usage_stats": false },
        "max_tokens": CAP,
    });
    assert_eq!(
        upstream_call(&r, OpenAi, "tiny-random", CAP),
        call("/chat/completions", expected)
    );

    let r = req(OpenAi, Generate, json!({ "prompt": "x", "stream": true }));
    let expected = json!({ "model": "t", "prompt": "x", "stream": true, "stream_options": { "include_usage": true }, "max_tokens": CAP });
    assert_eq!(
        upstream_call(&r, OpenAi, "t", CAP),
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
        upstream_call(&r, OpenAi, "t", CAP),
        call("/chat/completions", expected)
    );

    let r = req(
        OpenAi,
        Embed,
        json!({ "model": "a", "input": "x", "encoding_format": "base64" }),
    );
    let expected = json!({ "model": "e", "input": "x", "encoding_format": "base64" });
    assert_eq!(
        upstream_call(&r, OpenAi, "e", CAP),
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
    let expected = json!({ "model": "llama3.2", "messages": [], "keep_alive": -1, "stream": true,
                           "options": { "num_predict": CAP } });
    assert_eq!(
        upstream_call(&r, Ollama, "llama3.2", CAP),
        call("/api/chat", expected)
    );

    let r = req(Ollama, Generate, json!({ "prompt": "x", "stream": false }));
    let expected =
        json!({ "model": "l", "prompt": "x", "stream": false, "options": { "num_predict": CAP } });
    assert_eq!(
        upstream_call(&r, Ollama, "l", CAP),
        call("/api/generate", expected)
    );

    let r = req(Ollama, Embed, json!({ "input": "x" }));
    let expected = json!({ "model": "e", "input": "x" });
    assert_eq!(
        upstream_call(&r, Ollama, "e", CAP),
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
    upstream_call(&req(dialect, endpoint, body), upstream, "m", 5).body
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
