//! parse_request: defaults, normalisation, and every bad-input message.

use serde_json::json;

use super::req;
use crate::dialect::{parse_request, ApiError, Dialect, Endpoint, ErrorKind};

use Dialect::{Ollama, OpenAi};
use Endpoint::{Chat, Embed, Generate};

#[test]
fn ollama_streams_by_default_and_openai_does_not() {
    let body = json!({ "model": "llama3.2", "messages": [{ "role": "user", "content": "hi" }] });
    let ollama = req(Ollama, Chat, body.clone());
    let openai = req(OpenAi, Chat, body.clone());
    assert!(ollama.stream);
    assert!(!openai.stream);
    assert!(!ollama.client_wants_usage && !openai.client_wants_usage);
    assert_eq!(ollama.model.as_deref(), Some("llama3.2"));
    assert_eq!(ollama.body, body);
    assert_eq!(ollama.prompt_chars, 2);
}

#[test]
fn explicit_stream_and_include_usage_are_read() {
    let r = req(
        OpenAi,
        Chat,
        json!({
            "messages": [{ "role": "user", "content": "hi" }],
            "stream": true,
            "stream_options": { "include_usage": true },
        }),
    );
    assert!(r.stream && r.client_wants_usage);
    assert_eq!(r.model, None, "an absent model means the agent's default");
    let r = req(
        Ollama,
        Chat,
        json!({ "messages": [], "stream": false, "stream_options": 3 }),
    );
    assert!(!r.stream, "stream:false is honoured");
    assert!(
        !r.client_wants_usage,
        "stream_options means nothing to Ollama"
    );
}

#[test]
fn embed_never_streams() {
    let r = req(Ollama, Embed, json!({ "model": "e", "input": "x" }));
    assert!(!r.stream);
    let r = req(
        OpenAi,
        Embed,
        json!({ "input": ["a", "b"], "stream": true }),
    );
    assert!(!r.stream);
}

#[test]
fn prompt_chars_count_characters_of_all_prompt_text() {
    let r = req(
        OpenAi,
        Chat,
        json!({ "messages": [
            { "role": "system", "content": "héllo" },
            { "role": "user", "content": [
                { "type": "text", "text": "abc" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } },
            ] },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "c1", "type": "function", "function": { "name": "f", "arguments": "{}" } },
            ] },
        ] }),
    );
    assert_eq!(r.prompt_chars, 8);
    let r = req(
        Ollama,
        Generate,
        json!({ "prompt": "1234", "system": "ab" }),
    );
    assert_eq!(r.prompt_chars, 6);
    let r = req(OpenAi, Generate, json!({ "prompt": ["12345"] }));
    assert_eq!(r.prompt_chars, 5);
    let r = req(OpenAi, Embed, json!({ "input": ["ab", "cde"] }));
    assert_eq!(r.prompt_chars, 5);
    let r = req(Ollama, Embed, json!({ "prompt": "legacy" }));
    assert_eq!(r.prompt_chars, 6);
}

fn error(dialect: Dialect, endpoint: Endpoint, body: &str) -> ApiError {
    match parse_request(dialect, endpoint, body.as_bytes()) {
        Ok(r) => panic!("accepted {body}: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn bad_requests_are_400_with_the_field_and_the_fix() {
    let cases: &[(Dialect, Endpoint, &str, &str)] = &[
        (Ollama, Chat, r#"{"model":"#,
            "request body is not valid JSON (EOF while parsing a value at line 1 column 9); send one JSON object"),
        (OpenAi, Chat, r#"["a","b"]"#,
            "request body must be a JSON object, got an array (2 items); put the fields in one object"),
        (OpenAi, Chat, r#""hi""#,
            r#"request body must be a JSON object, got "hi" (a string); put the fields in one object"#),
        (Ollama, Chat, r#"{"model":7,"messages":[]}"#,
            r#"`model` must be a string, got 7 (a number); name the model as a string, e.g. "llama3.2", or leave it out to use the agent's default"#),
        (Ollama, Chat, r#"{"model":"m"}"#,
            r#"`messages` is required for /api/chat; send "messages": [{"role": "user", "content": "..."}, ...]"#),
        (OpenAi, Chat, r#"{"messages":"hello"}"#,
            r#"`messages` must be an array of message objects, got "hello" (a string); send "messages": [{"role": "user", "content": "..."}, ...]"#),
        (OpenAi, Chat, r#"{"messages":[{"role":"user","content":"a"},"b"]}"#,
            r#"`messages[1]` must be an object, got "b" (a string); each message is an object like {"role": "user", "content": "hi"}"#),
        (OpenAi, Chat, r#"{"messages":[{"content":"a"}]}"#,
            r#"`messages[0].role` is required for /v1/chat/completions; set "role" to "system", "user", "assistant" or "tool""#),
        (Ollama, Chat, r#"{"messages":[{"role":1,"content":"a"}]}"#,
            r#"`messages[0].role` must be a string, got 1 (a number); set "role" to "system", "user", "assistant" or "tool""#),
        (Ollama, Chat, r#"{"messages":[{"role":"user","content":["a"]}]}"#,
            r#"`messages[0].content` must be a string, got an array (1 item); send the text as a string (images go in "images")"#),
        (OpenAi, Chat, r#"{"messages":[{"role":"user","content":5}]}"#,
            r#"`messages[0].content` must be a string or an array of content parts, got 5 (a number); send a string or an array of parts like {"type": "text", "text": "..."}"#),
        (OpenAi, Chat, r#"{"messages":[{"role":"user","content":[{"text":"a"}]}]}"#,
            r#"`messages[0].content[0]` must be an object with a string "type", got an object; each content part is an object with a string "type""#),
        (Ollama, Chat, r#"{"messages":[{"role":"user","content":"a","images":"abc"}]}"#,
            r#"`messages[0].images` must be an array of strings, got "abc" (a string); send "images" as an array of base64-encoded strings"#),
        (Ollama, Chat, r#"{"messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"arguments":{}}}]}]}"#,
            r#"`messages[0].tool_calls[0].function.name` must be a string, got null; send an array of {"function": {"name": "...", "arguments": ...}} objects"#),
        (OpenAi, Chat, r#"{"messages":[],"stream":"yes"}"#,
            r#"`stream` must be a boolean, got "yes" (a string); use true or false"#),
        (OpenAi, Chat, r#"{"messages":[],"max_tokens":"three"}"#,
            r#"`max_tokens` must be an integer, got "three" (a string); give a whole number of tokens, e.g. 256"#),
        (OpenAi, Chat, r#"{"messages":[],"max_completion_tokens":1.5}"#,
            "`max_completion_tokens` must be an integer, got 1.5 (a number); give a whole number of tokens, e.g. 256"),
        (Ollama, Generate, r#"{"prompt":"a","options":{"num_predict":"10"}}"#,
            r#"`options.num_predict` must be an integer, got "10" (a string); give a whole number of tokens, e.g. 256"#),
        (Ollama, Chat, r#"{"messages":[],"options":{"temperature":"hot"}}"#,
            r#"`options.temperature` must be a number, got "hot" (a string); give a number, e.g. 0.7"#),
        (OpenAi, Chat, r#"{"messages":[],"seed":true}"#,
            "`seed` must be an integer, got true (a boolean); give a whole number, e.g. 42"),
        (OpenAi, Chat, r#"{"messages":[],"stop":["a",1]}"#,
            "`stop` must be a string or an array of strings, got an array (2 items); give a string or an array of strings"),
        (Ollama, Chat, r#"{"messages":[],"options":"fast"}"#,
            r#"`options` must be an object, got "fast" (a string); put sampling options in an object, e.g. "options": {"temperature": 0.7}"#),
        (OpenAi, Chat, r#"{"messages":[],"stream_options":true}"#,
            r#"`stream_options` must be an object, got true (a boolean); send "stream_options": {"include_usage": true}"#),
        (OpenAi, Chat, r#"{"messages":[],"stream_options":{"include_usage":"yes"}}"#,
            r#"`stream_options.include_usage` must be a boolean, got "yes" (a string); use true or false"#),
        (OpenAi, Chat, r#"{"messages":[],"tools":{"type":"function"}}"#,
            r#"`tools` must be an array of tool objects, got an object; send an array of {"type": "function", "function": {"name": ..., "parameters": ...}} objects"#),
        (Ollama, Chat, r#"{"messages":[],"format":"xml"}"#,
            r#"`format` must be "json" or a JSON schema object, got "xml" (a string); use "json" or a JSON schema object"#),
        (OpenAi, Chat, r#"{"messages":[],"response_format":"json"}"#,
            r#"`response_format` must be an object, got "json" (a string); use {"type": "json_object"} or {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}"#),
        (Ollama, Generate, r#"{"model":"m"}"#,
            r#"`prompt` is required for /api/generate; send "prompt": "..." with the text to complete"#),
        (Ollama, Generate, r#"{"prompt":["a"]}"#,
            r#"`prompt` must be a string, got an array (1 item); send "prompt": "..." with the text to complete"#),
        (Ollama, Generate, r#"{"prompt":"a","system":1}"#,
            "`system` must be a string, got 1 (a number); send the system prompt as a string"),
        (OpenAi, Generate, r#"{"prompt":{"text":"a"}}"#,
            r#"`prompt` must be a string or an array of strings, got an object; send "prompt": "..." with the text to complete"#),
        (OpenAi, Generate, r#"{"prompt":[1,2]}"#,
            "`prompt[0]` must be a string, got 1 (a number); token-id input is not supported here; send text"),
        (OpenAi, Generate, r#"{"prompt":["a","b"]}"#,
            "`prompt` has 2 prompts; batch completions are not supported; send one prompt per request"),
        (OpenAi, Embed, r#"{"model":"e"}"#,
            r#"`input` is required for /v1/embeddings; send "input": "text" or an array of strings"#),
        (Ollama, Embed, r#"{"model":"e"}"#,
            r#"`input` is required for /api/embed; send "input": "text" or an array of strings"#),
        (Ollama, Embed, r#"{"input":{"a":1}}"#,
            r#"`input` must be a string or an array of strings, got an object; send "input": "text" or an array of strings"#),
        (OpenAi, Embed, r#"{"input":["a",[1,2]]}"#,
            "`input[1]` must be a string, got an array (2 items); token-id input is not supported here; send text"),
        (OpenAi, Chat, r#"{"messages":[],"n":3}"#,
            "`n` asks for 3 choices; the gateway generates one choice per request; leave `n` out or send 1, and send several requests for several answers"),
        (OpenAi, Generate, r#"{"prompt":"a","n":-1}"#,
            "`n` asks for -1 choices; the gateway generates one choice per request; leave `n` out or send 1, and send several requests for several answers"),
        (OpenAi, Chat, r#"{"messages":[],"n":"1"}"#,
            r#"`n` must be an integer, got "1" (a string); the gateway generates one choice per request; leave `n` out or send 1, and send several requests for several answers"#),
        (OpenAi, Chat, r#"{"messages":[],"top_logprobs":100000}"#,
            r#"`top_logprobs` is 100000, outside 0 to 20; ask for at most 20 alternatives per token, e.g. "top_logprobs": 5"#),
        (OpenAi, Chat, r#"{"messages":[],"top_logprobs":-1}"#,
            r#"`top_logprobs` is -1, outside 0 to 20; ask for at most 20 alternatives per token, e.g. "top_logprobs": 5"#),
        (OpenAi, Generate, r#"{"prompt":"a","logprobs":6}"#,
            r#"`logprobs` is 6, outside 0 to 5; ask for at most 5 alternatives per token, e.g. "logprobs": 2"#),
        (OpenAi, Generate, r#"{"prompt":"a","logprobs":true}"#,
            r#"`logprobs` must be an integer, got true (a boolean); ask for at most 5 alternatives per token, e.g. "logprobs": 2"#),
        (Ollama, Embed, r#"{"prompt":7}"#,
            r#"`prompt` must be a string or an array of strings, got 7 (a number); send "input": "text" or an array of strings"#),
    ];
    for (dialect, endpoint, body, message) in cases {
        let err = error(*dialect, *endpoint, body);
        assert_eq!(err.message, *message, "for {body}");
        assert_eq!(err.to_string(), *message);
        assert_eq!((err.status, err.kind), (400, ErrorKind::InvalidRequest));
    }
}

#[test]
fn long_string_values_are_abbreviated_in_messages() {
    let body = json!({ "messages": [], "stream": "x".repeat(100) }).to_string();
    let err = error(OpenAi, Chat, &body);
    let expected = format!(
        "`stream` must be a boolean, got \"{}…\" (a string); use true or false",
        "x".repeat(40)
    );
    assert_eq!(err.message, expected);
}

#[test]
fn lenient_where_the_dialects_are() {
    // Nulls are absent values; Ollama's -1 num_predict is an integer; empty format is none.
    let body = json!({
        "model": null, "messages": [{ "role": "user", "content": null }], "stream": null,
        "options": { "num_predict": -1, "stop": "x" }, "format": "", "tools": [],
    });
    let r = req(Ollama, Chat, body);
    assert!(r.stream);
    assert_eq!(r.model, None);
}

#[test]
fn one_choice_and_a_few_alternatives_per_token_are_accepted() {
    for (endpoint, body) in [
        (
            Chat,
            json!({ "messages": [], "n": 1, "logprobs": true, "top_logprobs": 20 }),
        ),
        (
            Chat,
            json!({ "messages": [], "n": null, "top_logprobs": 0 }),
        ),
        (Generate, json!({ "prompt": "a", "n": 1, "logprobs": 5 })),
        (Embed, json!({ "input": "a", "n": 7 })),
    ] {
        req(OpenAi, endpoint, body);
    }
    // `n` and the rest mean nothing to Ollama, whose requests lose them on the way.
    req(
        Ollama,
        Chat,
        json!({ "messages": [], "n": 7, "top_logprobs": 99 }),
    );
}
