//! translate_response: non-stream answers both ways, usage, finish reasons, passthrough.

use serde_json::{json, Value};

use super::{fixture, req, CLOCK, CREATED, NOW};
use crate::dialect::response::{pass_through, translate_response_with};
use crate::dialect::{ApiError, Dialect, Endpoint, ErrorKind, Request, Usage};

use Dialect::{Ollama, OpenAi};
use Endpoint::{Chat, Embed, Generate};

fn translate(r: &Request, upstream: Dialect, body: &str) -> (Value, Usage) {
    let (bytes, content_type, usage) =
        translate_response_with(r, upstream, "agent-model", body.as_bytes(), CLOCK)
            .expect("translatable answer");
    assert_eq!(content_type, "application/json");
    (serde_json::from_slice(&bytes).expect("JSON body"), usage)
}

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: Some(prompt),
        completion_tokens: Some(completion),
        produced_chunks: 1,
    }
}

fn chat(dialect: Dialect) -> Request {
    req(dialect, Chat, json!({ "messages": [], "stream": false }))
}

#[test]
fn llama_server_chat_to_ollama() {
    let (body, u) = translate(&chat(Ollama), OpenAi, fixture!("llama_server_chat.json"));
    assert_eq!(
        body,
        json!({
            "model": "agent-model",
            "created_at": NOW,
            "message": { "role": "assistant", "content": " most word two word two_ are other s it first hello helloE first hello" },
            "done": true,
            "done_reason": "length",
            "total_duration": 0, "load_duration": 0,
            "prompt_eval_count": 43, "prompt_eval_duration": 0,
            "eval_count": 16, "eval_duration": 0,
        })
    );
    assert_eq!(u, usage(43, 16));
}

#[test]
fn vllm_tool_calls_to_ollama_parse_arguments_and_finish_with_stop() {
    let (body, u) = translate(&chat(Ollama), OpenAi, fixture!("vllm_tool_chat.json"));
    assert_eq!(
        body,
        json!({
            "model": "agent-model",
            "created_at": NOW,
            "message": { "role": "assistant", "content": "", "tool_calls": [
                { "function": { "name": "get_weather", "arguments": { "city": "Paris", "unit": "celsius" } } },
                { "function": { "name": "get_time", "arguments": { "__raw": "not json" } } },
            ] },
            "done": true,
            "done_reason": "stop",
            "total_duration": 0, "load_duration": 0,
            "prompt_eval_count": 212, "prompt_eval_duration": 0,
            "eval_count": 39, "eval_duration": 0,
        })
    );
    assert_eq!(u, usage(212, 39));
}

#[test]
fn ollama_chat_to_openai() {
    let (body, u) = translate(&chat(OpenAi), Ollama, fixture!("ollama_chat.json"));
    assert_eq!(
        body,
        json!({
            "id": "chatcmpl-0123456789abcdef",
            "object": "chat.completion",
            "created": CREATED,
            "model": "agent-model",
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": "The sky is blue because of Rayleigh scattering." },
                "finish_reason": "stop",
            }],
            "usage": { "prompt_tokens": 26, "completion_tokens": 11, "total_tokens": 37 },
        })
    );
    assert_eq!(u, usage(26, 11));
}

#[test]
fn ollama_tool_calls_to_openai_get_ids_string_arguments_and_tool_calls_finish() {
    let (body, u) = translate(&chat(OpenAi), Ollama, fixture!("ollama_tool_chat.json"));
    assert_eq!(
        body,
        json!({
            "id": "chatcmpl-0123456789abcdef",
            "object": "chat.completion",
            "created": CREATED,
            "model": "agent-model",
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": null, "tool_calls": [
                    { "id": "call_0123456789abcdef_0", "type": "function",
                      "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}" } },
                    { "id": "call_0123456789abcdef_1", "type": "function",
                      "function": { "name": "get_time", "arguments": "{\"tz\":\"Europe/Paris\"}" } },
                ] },
                "finish_reason": "tool_calls",
            }],
            "usage": { "prompt_tokens": 122, "completion_tokens": 33, "total_tokens": 155 },
        })
    );
    assert_eq!(u, usage(122, 33));
}

#[test]
fn finish_reasons_map_both_ways() {
    let ollama_answer = |reason: &str| {
        json!({ "message": { "role": "assistant", "content": "x" }, "done": true, "done_reason": reason }).to_string()
    };
    for (done_reason, finish) in [("stop", "stop"), ("length", "length"), ("load", "stop")] {
        let (body, _) = translate(&chat(OpenAi), Ollama, &ollama_answer(done_reason));
        assert_eq!(
            body["choices"][0]["finish_reason"],
            json!(finish),
            "{done_reason}"
        );
    }
    let openai_answer = |reason: Value| {
        json!({ "choices": [{ "index": 0, "message": { "role": "assistant", "content": "x" }, "finish_reason": reason }] }).to_string()
    };
    for (finish, done_reason) in [
        (json!("stop"), "stop"),
        (json!("length"), "length"),
        (json!("tool_calls"), "stop"),
        (json!("content_filter"), "stop"),
        (json!(null), "stop"),
    ] {
        let (body, u) = translate(&chat(Ollama), OpenAi, &openai_answer(finish.clone()));
        assert_eq!(body["done_reason"], json!(done_reason), "{finish}");
        // No usage in the answer: no counts invented, and Ollama's fields are left out.
        assert_eq!(
            u,
            Usage {
                prompt_tokens: None,
                completion_tokens: None,
                produced_chunks: 1
            }
        );
        assert!(body.get("eval_count").is_none() && body.get("prompt_eval_count").is_none());
    }
}

#[test]
fn openai_answer_without_usage_reports_zero_counts_to_openai_clients() {
    let body =
        json!({ "message": { "role": "assistant", "content": "" }, "done": true }).to_string();
    let (body, u) = translate(&chat(OpenAi), Ollama, &body);
    assert_eq!(
        body["usage"],
        json!({ "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 })
    );
    assert_eq!(u, Usage::default());
}

#[test]
fn reasoning_maps_to_thinking_and_back() {
    let openai = json!({ "choices": [{ "index": 0, "finish_reason": "stop",
        "message": { "role": "assistant", "content": "4", "reasoning_content": "2+2" } }] });
    let (body, _) = translate(&chat(Ollama), OpenAi, &openai.to_string());
    assert_eq!(
        body["message"],
        json!({ "role": "assistant", "content": "4", "thinking": "2+2" })
    );
    let ollama = json!({ "message": { "role": "assistant", "content": "4", "thinking": "2+2" }, "done": true });
    let (body, _) = translate(&chat(OpenAi), Ollama, &ollama.to_string());
    assert_eq!(
        body["choices"][0]["message"],
        json!({ "role": "assistant", "content": "4", "reasoning_content": "2+2" })
    );
}

#[test]
fn completions_both_ways() {
    let r = req(
        Ollama,
        Generate,
        json!({ "prompt": "x", "raw": true, "stream": false }),
    );
    let (body, u) = translate(&r, OpenAi, fixture!("openai_completion.json"));
    assert_eq!(
        body,
        json!({
            "model": "agent-model", "created_at": NOW, "response": " the quick brown fox",
            "done": true, "done_reason": "stop",
            "total_duration": 0, "load_duration": 0, "prompt_eval_count": 3,
            "prompt_eval_duration": 0, "eval_count": 4, "eval_duration": 0,
        })
    );
    assert_eq!(u, usage(3, 4));

    // A non-raw generate went to /chat/completions: the text is in `message`.
    let r = req(Ollama, Generate, json!({ "prompt": "x", "stream": false }));
    let (body, u) = translate(&r, OpenAi, fixture!("llama_server_chat.json"));
    assert_eq!(
        body["response"],
        json!(" most word two word two_ are other s it first hello helloE first hello")
    );
    assert_eq!(body["done_reason"], json!("length"));
    assert_eq!(u, usage(43, 16));

    let r = req(OpenAi, Generate, json!({ "prompt": "x" }));
    let (body, u) = translate(&r, Ollama, fixture!("ollama_generate.json"));
    assert_eq!(
        body,
        json!({
            "id": "cmpl-0123456789abcdef", "object": "text_completion", "created": CREATED,
            "model": "agent-model",
            "choices": [{ "index": 0, "text": "Blue, mostly.", "logprobs": null, "finish_reason": "length" }],
            "usage": { "prompt_tokens": 26, "completion_tokens": 4, "total_tokens": 30 },
        })
    );
    assert_eq!(u, usage(26, 4));
}

#[test]
fn embeddings_both_ways() {
    let r = req(Ollama, Embed, json!({ "input": ["a", "b"] }));
    let (body, u) = translate(&r, OpenAi, fixture!("openai_embeddings.json"));
    assert_eq!(
        body,
        json!({
            "model": "agent-model", "embeddings": [[0.25, 0.125], [0.5, -1.0]],
            "total_duration": 0, "load_duration": 0, "prompt_eval_count": 6,
        })
    );
    assert_eq!(
        u,
        Usage {
            prompt_tokens: Some(6),
            completion_tokens: None,
            produced_chunks: 1
        }
    );

    let r = req(OpenAi, Embed, json!({ "input": ["a", "b"] }));
    let (body, u) = translate(&r, Ollama, fixture!("ollama_embed.json"));
    assert_eq!(
        body,
        json!({
            "object": "list",
            "data": [
                { "object": "embedding", "index": 0, "embedding": [0.25, 0.125] },
                { "object": "embedding", "index": 1, "embedding": [0.5, -1.0] },
            ],
            "model": "agent-model",
            "usage": { "prompt_tokens": 6, "total_tokens": 6 },
        })
    );
    assert_eq!(
        u,
        Usage {
            prompt_tokens: Some(6),
            completion_tokens: None,
            produced_chunks: 1
        }
    );

    // The OpenAI Python client asks for base64: little-endian f32s.
    let r = req(
        OpenAi,
        Embed,
        json!({ "input": ["a", "b"], "encoding_format": "base64" }),
    );
    let (body, _) = translate(&r, Ollama, fixture!("ollama_embed.json"));
    assert_eq!(body["data"][0]["embedding"], json!("AACAPgAAAD4="));
    assert_eq!(body["data"][1]["embedding"], json!("AAAAPwAAgL8="));
}

#[test]
fn same_dialect_passes_through_with_the_clients_model_name() {
    let upstream: Value =
        serde_json::from_str(fixture!("llama_server_chat.json")).expect("fixture");
    let (body, u) = translate(&chat(OpenAi), OpenAi, fixture!("llama_server_chat.json"));
    let mut expected = upstream;
    expected["model"] = json!("agent-model");
    assert_eq!(body, expected);
    assert_eq!(u, usage(43, 16));

    let upstream: Value = serde_json::from_str(fixture!("ollama_tool_chat.json")).expect("fixture");
    let (body, u) = translate(&chat(Ollama), Ollama, fixture!("ollama_tool_chat.json"));
    let mut expected = upstream;
    expected["model"] = json!("agent-model");
    assert_eq!(body, expected);
    assert_eq!(u, usage(122, 33));

    let r = req(Ollama, Embed, json!({ "input": "x" }));
    let (_, u) = translate(&r, Ollama, fixture!("ollama_embed.json"));
    assert_eq!(
        u,
        Usage {
            prompt_tokens: Some(6),
            completion_tokens: None,
            produced_chunks: 1
        }
    );
}

#[test]
fn pass_through_copies_every_field_but_model_and_reads_the_same_usage() {
    let cases = [
        (OpenAi, fixture!("llama_server_chat.json")),
        (OpenAi, fixture!("vllm_tool_chat.json")),
        (OpenAi, fixture!("openai_completion.json")),
        (OpenAi, fixture!("openai_embeddings.json")),
        (Ollama, fixture!("ollama_chat.json")),
        (Ollama, fixture!("ollama_tool_chat.json")),
        (Ollama, fixture!("ollama_generate.json")),
        (Ollama, fixture!("ollama_embed.json")),
    ];
    for (dialect, body) in cases {
        let (out, u) = pass_through(dialect, "agent-model", body.as_bytes())
            .unwrap_or_else(|| panic!("{body} should pass through"));
        let mut expected: Value = serde_json::from_str(body).expect("fixture");
        expected["model"] = json!("agent-model");
        let got: Value = serde_json::from_slice(&out).expect("JSON out");
        assert_eq!(got, expected, "{body}");
        // The same usage as reading the whole tree (the general path's functions).
        let Value::Object(obj) = serde_json::from_str::<Value>(body).expect("fixture") else {
            panic!("object fixture")
        };
        let whole = match dialect {
            OpenAi => super::super::response::openai_answer_usage(&obj),
            Ollama => super::super::response::ollama_answer_usage(&obj),
        };
        assert_eq!(u, whole, "{body}");
    }
    // Numbers and strings leave exactly as the upstream wrote them.
    let body =
        r#"{"model":"x","n":1.50,"s":"café","usage":{"prompt_tokens":2,"completion_tokens":3}}"#;
    let (out, u) = pass_through(OpenAi, "m", body.as_bytes()).expect("plain answer");
    assert_eq!(
        std::str::from_utf8(&out).expect("utf-8"),
        r#"{"model":"m","n":1.50,"s":"café","usage":{"prompt_tokens":2,"completion_tokens":3}}"#
    );
    assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(2), Some(3)));
    // Anything unusual goes the general way, which reads it whole and names what is wrong.
    for odd in [
        r#"{"error":{"message":"boom"}}"#,
        r#"{"object":"error","message":"boom"}"#,
        r#"{"choices":[{"message":{"content":[{"type":"text","text":"hi"}]}}]}"#,
        r#"{"usage":{"prompt_tokens":"many"}}"#,
        "[1]",
        "<html>",
    ] {
        assert!(pass_through(OpenAi, "m", odd.as_bytes()).is_none(), "{odd}");
    }
    assert!(pass_through(Ollama, "m", br#"{"error":"model not found"}"#).is_none());
    assert!(pass_through(Ollama, "m", br#"{"eval_count":-1}"#).is_none());
}

fn failure(r: &Request, upstream: Dialect, body: &str) -> ApiError {
    match translate_response_with(r, upstream, "m", body.as_bytes(), CLOCK) {
        Ok((bytes, _, _)) => panic!("translated {body} into {bytes:?}"),
        Err(e) => e,
    }
}

#[test]
fn unusable_answers_are_502_upstream_errors() {
    let cases: &[(Request, Dialect, &str, &str)] = &[
        (chat(Ollama), OpenAi, "<html>Bad Gateway</html>",
         "upstream answered with invalid JSON (expected value at line 1 column 1): <html>Bad Gateway</html>; check that the upstream's base URL and dialect are configured right"),
        (chat(Ollama), OpenAi, r#"{"id":"x","choices":[]}"#,
         r#"upstream answer has no usable `choices[0]`: {"id":"x","choices":[]}; check that the upstream's dialect is configured right"#),
        (chat(OpenAi), Ollama, r#"{"done":true}"#,
         r#"upstream answer has no usable `message`: {"done":true}; check that the upstream's dialect is configured right"#),
        (chat(OpenAi), Ollama, "[1]",
         "upstream answer has no usable `(a JSON object)`: [1]; check that the upstream's dialect is configured right"),
        (chat(OpenAi), Ollama, r#"{"error":"model \"x\" not found, try pulling it first"}"#,
         r#"upstream reported an error: model "x" not found, try pulling it first"#),
        (req(Ollama, Embed, json!({ "input": "x" })), OpenAi, r#"{"data":[{"index":0,"embedding":"AACAPw=="}]}"#,
         r#"upstream answer has no usable `data[].embedding`: {"data":[{"index":0,"embedding":"AACAPw=="}]}; check that the upstream's dialect is configured right"#),
    ];
    for (r, upstream, body, message) in cases {
        let err = failure(r, *upstream, body);
        assert_eq!(err.message, *message, "for {body}");
        assert_eq!((err.status, err.kind), (502, ErrorKind::Upstream));
    }
}
