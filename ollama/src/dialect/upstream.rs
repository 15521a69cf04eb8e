//! Building the upstream request from a downstream one: same-dialect passthrough (model
//! replaced, streaming usage forced on) or translation between the dialects.
//!
//! # What reaches an upstream
//!
//! Every byte of a request is the agent's, and an agent may be hostile, so a request reaches
//! an upstream only through an allow-list of fields per dialect and endpoint: what real
//! clients (OpenClaw, the openai SDKs, Ollama's clients) send. Anything else is dropped, in
//! particular the backend's own knobs: llama-server's `n_predict` (read before `max_tokens`,
//! it bypassed the output cap), `id_slot`, `cache_prompt`, `n_keep`, `n_discard`, `n_probs`,
//! `dry_*`, `grammar`, `json_schema`, `samplers`, `lora`; Ollama's `keep_alive`, `context`
//! and the `options` that size or place the model (`num_ctx`, `num_gpu`, `num_thread`,
//! `num_batch`, `use_mmap`, ...), which reload it under every other agent. Null fields are
//! dropped too. Fields passed on unchanged when present:
//!
//! | request | fields |
//! |---|---|
//! | OpenAI chat | [`OPENAI_CHAT_FIELDS`]: `messages`, `max_tokens`, `max_completion_tokens`, `temperature`, `top_p`, `top_k`, `min_p`, `seed`, `stop`, `presence_penalty`, `frequency_penalty`, `logit_bias`, `logprobs`, `top_logprobs`, `tools`, `tool_choice`, `parallel_tool_calls`, `response_format`, `reasoning_effort`, `user` |
//! | OpenAI completion | [`OPENAI_COMPLETION_FIELDS`]: `prompt`, `max_tokens`, `temperature`, `top_p`, `top_k`, `min_p`, `seed`, `stop`, `presence_penalty`, `frequency_penalty`, `logit_bias`, `logprobs`, `user` |
//! | OpenAI embeddings | [`OPENAI_EMBED_FIELDS`]: `input`, `encoding_format`, `dimensions`, `user` |
//! | Ollama chat | [`OLLAMA_CHAT_FIELDS`]: `messages`, `tools`, `format`, `think`, `truncate`, `shift`, and `options` filtered |
//! | Ollama generate | [`OLLAMA_GENERATE_FIELDS`]: `prompt`, `suffix`, `system`, `template`, `raw`, `images`, `format`, `think`, `truncate`, `shift`, and `options` filtered |
//! | Ollama embed | [`OLLAMA_EMBED_FIELDS`]: `input` (or the legacy `prompt`, sent as `input`), `truncate`, `dimensions` |
//! | Ollama `options` | [`OLLAMA_OPTIONS`]: `temperature`, `top_p`, `top_k`, `min_p`, `typical_p`, `seed`, `stop`, `num_predict`, `repeat_penalty`, `repeat_last_n`, `presence_penalty`, `frequency_penalty` |
//!
//! The gateway sets the rest itself: `model` (the upstream's name for it), `stream` (what
//! the request asked, explicitly) and, toward OpenAI, `stream_options` (only
//! `{"include_usage": true}`, on streams). OpenAI `n` is not forwarded: validation accepts
//! only one choice (`request.rs`), and `logprobs` / `top_logprobs` are bounded there. The
//! nested values of allowed fields (messages, tools, schemas) pass as they are: they are the
//! conversation, which the upstream reads as such. A translation between the dialects builds
//! the body from these same fields and drops the others.
//!
//! The fleet may let more top-level fields through with `[models] pass_fields`
//! ([`Forwarding::pass_fields`]), e.g. `chat_template_kwargs` for a vLLM model: each is
//! copied as it is, in either dialect, and never replaces a field the gateway set.
//!
//! # The output-token cap
//!
//! Every chat and completion answer is capped at [`Forwarding::max_output_tokens`]
//! generated tokens (`[models] max_output_tokens`). Every token-limit spelling in the body
//! sent upstream ([`TOKEN_LIMITS`] at the top level: `max_tokens`, `max_completion_tokens`,
//! llama-server's `n_predict`, `num_predict`; and Ollama's `options.num_predict`) is clamped:
//! a positive integer up to the cap passes, a larger one becomes the cap, and anything else
//! becomes the cap: 0, negative values (Ollama's -1 "no limit", -2 "fill the context") and
//! non-integers. Validation already refuses a non-integer in the dialect's own spellings
//! with a 400 (`request.rs`); a JSON number beyond 2^64 is no integer to the parser and is
//! refused there too. After the allow-list only the dialect's own spellings can be present
//! (others only when the fleet passes them); when none of those is, the dialect's own limit
//! is added with the cap (OpenAI `max_tokens`, which vLLM and llama-server both read; Ollama
//! `options.num_predict`). Embeddings generate nothing and are left alone.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::request::{OLLAMA_TOKEN_KEYS, OPENAI_TOKEN_KEYS};
use super::tools::{call_name, ollama_call_to_openai, openai_call_to_ollama, tool_calls, CallIds};
use super::{Dialect, Endpoint, Request};

/// What to send upstream: a path relative to the upstream's base URL (OpenAI base URLs end
/// in `/v1`) and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamCall {
    /// `/chat/completions`, `/completions`, `/embeddings`, `/api/chat`, `/api/generate` or
    /// `/api/embed`.
    pub path: &'static str,
    /// The body, with `model` set to the upstream's name for the model.
    pub body: Value,
}

/// Sampling fields with the same name and meaning in OpenAI's body and Ollama's `options`.
const SHARED_SAMPLING: [&str; 5] = [
    "temperature",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
];

/// OpenAI `/v1/chat/completions` fields passed to an OpenAI upstream as they are (besides
/// `model`, `stream` and `stream_options`, which the gateway sets).
pub const OPENAI_CHAT_FIELDS: &[&str] = &[
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "user",
];

/// OpenAI `/v1/completions` fields passed to an OpenAI upstream as they are (`echo`,
/// `suffix` and `best_of`, which generates several answers to return one, are not).
pub const OPENAI_COMPLETION_FIELDS: &[&str] = &[
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "user",
];

/// OpenAI `/v1/embeddings` fields passed to an OpenAI upstream as they are.
pub const OPENAI_EMBED_FIELDS: &[&str] = &["input", "encoding_format", "dimensions", "user"];

/// Ollama `/api/chat` fields passed to an Ollama upstream as they are (`options` is
/// filtered by [`OLLAMA_OPTIONS`]; `keep_alive` is dropped).
pub const OLLAMA_CHAT_FIELDS: &[&str] =
    &["messages", "tools", "format", "think", "truncate", "shift"];

/// Ollama `/api/generate` fields passed to an Ollama upstream as they are (`options` is
/// filtered; `keep_alive` and the deprecated token-id `context` are dropped).
pub const OLLAMA_GENERATE_FIELDS: &[&str] = &[
    "prompt", "suffix", "system", "template", "raw", "images", "format", "think", "truncate",
    "shift",
];

/// Ollama `/api/embed` fields passed to an Ollama upstream as they are (`options` and
/// `keep_alive` are dropped; a legacy `prompt` is sent as `input`).
pub const OLLAMA_EMBED_FIELDS: &[&str] = &["input", "truncate", "dimensions"];

/// Ollama `options` passed on: sampling and the token limit only. Those that size, place
/// or thread the model (`num_ctx`, `num_batch`, `num_gpu`, `main_gpu`, `num_thread`,
/// `use_mmap`, `use_mlock`, `numa`, `low_vram`, `num_keep`, ...) are dropped: they reload
/// the model under every agent that shares it.
pub const OLLAMA_OPTIONS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "seed",
    "stop",
    "num_predict",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
];

/// Every spelling of a token limit: OpenAI's two, llama-server's own, and Ollama's (which
/// belongs in `options`). Each one present in an upstream body is clamped to the cap.
pub const TOKEN_LIMITS: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "n_predict",
    "num_predict",
];

/// Top-level fields the gateway writes into upstream requests itself (`options` being
/// filtered by its own list): `pass_fields` never carries them.
pub const GATEWAY_SET_FIELDS: &[&str] = &["model", "stream", "stream_options", "options"];

/// What the fleet decides about every upstream request (`[models]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding {
    /// Most tokens one answer may generate (`max_output_tokens`).
    pub max_output_tokens: u64,
    /// Top-level fields passed through besides the allow-list (`pass_fields`), copied as
    /// they are; never one the gateway sets ([`GATEWAY_SET_FIELDS`], or any already set).
    pub pass_fields: Vec<String>,
}

/// The upstream request for `req` toward an upstream speaking `upstream` that knows the
/// model as `upstream_model`: only the allowed fields and the fleet's `pass_fields`, every
/// token limit clamped to the output cap (see the module docs). Toward OpenAI, streams
/// always ask for the usage chunk.
pub fn upstream_call(
    req: &Request,
    upstream: Dialect,
    upstream_model: &str,
    rules: &Forwarding,
) -> UpstreamCall {
    let empty = Map::new();
    let body = req.body.as_object().unwrap_or(&empty);
    let model = Value::String(upstream_model.to_string());
    let mut call = match (req.dialect, upstream) {
        (Dialect::OpenAi, Dialect::OpenAi) => openai_passthrough(req, body, model),
        (Dialect::Ollama, Dialect::Ollama) => ollama_passthrough(req, body, model),
        (Dialect::Ollama, Dialect::OpenAi) => ollama_to_openai(req, body, model),
        (Dialect::OpenAi, Dialect::Ollama) => openai_to_ollama(req, body, model),
    };
    if let Some(out) = call.body.as_object_mut() {
        for name in &rules.pass_fields {
            if !out.contains_key(name) && !GATEWAY_SET_FIELDS.contains(&name.as_str()) {
                copy(body, out, name);
            }
        }
    }
    if req.endpoint != Endpoint::Embed {
        cap_output_tokens(&mut call.body, upstream, rules.max_output_tokens);
    }
    call
}

/// Clamps the token limits of an upstream body already in `upstream`'s dialect: every
/// spelling present is clamped ([`clamp`]); when none of the dialect's own is present, it
/// is added with the cap (OpenAI `max_tokens`, which vLLM and llama-server both read;
/// Ollama `options.num_predict`).
fn cap_output_tokens(body: &mut Value, upstream: Dialect, cap: u64) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    clamp_all(obj, cap);
    let (fields, own) = match upstream {
        Dialect::OpenAi => (obj, OPENAI_TOKEN_KEYS),
        Dialect::Ollama => {
            let options = obj
                .entry("options")
                .or_insert_with(|| Value::Object(Map::new()));
            if !options.is_object() {
                // Validation allows only an object or null here.
                *options = Value::Object(Map::new());
            }
            let Some(options) = options.as_object_mut() else {
                return;
            };
            clamp_all(options, cap);
            (options, OLLAMA_TOKEN_KEYS)
        }
    };
    if !own.iter().any(|k| present(fields, k)) {
        fields.insert(own[0].to_string(), cap.into());
    }
}

/// Clamps every [`TOKEN_LIMITS`] spelling present (not null) in `fields`.
fn clamp_all(fields: &mut Map<String, Value>, cap: u64) {
    for key in TOKEN_LIMITS {
        if let Some(v) = fields.get_mut(*key).filter(|v| !v.is_null()) {
            *v = clamp(v, cap).into();
        }
    }
}

/// Whether `fields[key]` is present and not null.
fn present(fields: &Map<String, Value>, key: &str) -> bool {
    fields.get(key).is_some_and(|v| !v.is_null())
}

/// A token limit under the cap: a positive integer up to `cap` stays, anything else (a
/// larger one, 0, a negative "no limit", a non-integer) is `cap`.
fn clamp(limit: &Value, cap: u64) -> u64 {
    limit
        .as_u64()
        .filter(|n| *n > 0)
        .map_or(cap, |n| n.min(cap))
}

/// Copies the fields of `from` named in `names` (those present and not null).
fn allowed(from: &Map<String, Value>, names: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for name in names {
        copy(from, &mut out, name);
    }
    out
}

fn openai_path(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "/chat/completions",
        Endpoint::Generate => "/completions",
        Endpoint::Embed => "/embeddings",
    }
}

fn ollama_path(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "/api/chat",
        Endpoint::Generate => "/api/generate",
        Endpoint::Embed => "/api/embed",
    }
}

fn openai_passthrough(req: &Request, body: &Map<String, Value>, model: Value) -> UpstreamCall {
    let names = match req.endpoint {
        Endpoint::Chat => OPENAI_CHAT_FIELDS,
        Endpoint::Generate => OPENAI_COMPLETION_FIELDS,
        Endpoint::Embed => OPENAI_EMBED_FIELDS,
    };
    let mut out = allowed(body, names);
    out.insert("model".into(), model);
    if req.endpoint != Endpoint::Embed {
        if req.stream {
            // Usage is the only token count an OpenAI stream gives (llm.md §3, §5). vLLM
            // rejects stream_options on a non-stream request, hence none there.
            out.insert("stream_options".into(), json!({ "include_usage": true }));
        }
        out.insert("stream".into(), Value::Bool(req.stream));
    }
    UpstreamCall {
        path: openai_path(req.endpoint),
        body: Value::Object(out),
    }
}

fn ollama_passthrough(req: &Request, body: &Map<String, Value>, model: Value) -> UpstreamCall {
    let names = match req.endpoint {
        Endpoint::Chat => OLLAMA_CHAT_FIELDS,
        Endpoint::Generate => OLLAMA_GENERATE_FIELDS,
        Endpoint::Embed => OLLAMA_EMBED_FIELDS,
    };
    let mut out = allowed(body, names);
    out.insert("model".into(), model);
    if req.endpoint == Endpoint::Embed {
        // /api/embed reads only `input`; validation also accepts the legacy `prompt`.
        if let Some(prompt) = body.get("prompt").filter(|v| !v.is_null()) {
            out.entry("input").or_insert_with(|| prompt.clone());
        }
    } else {
        if let Some(options) = body.get("options").and_then(Value::as_object) {
            out.insert(
                "options".into(),
                Value::Object(allowed(options, OLLAMA_OPTIONS)),
            );
        }
        out.insert("stream".into(), Value::Bool(req.stream));
    }
    UpstreamCall {
        path: ollama_path(req.endpoint),
        body: Value::Object(out),
    }
}

fn ollama_to_openai(req: &Request, body: &Map<String, Value>, model: Value) -> UpstreamCall {
    let mut out = Map::new();
    out.insert("model".into(), model);
    let path = match req.endpoint {
        Endpoint::Embed => {
            let input = body.get("input").filter(|v| !v.is_null());
            let input = input.or_else(|| body.get("prompt")).cloned();
            out.insert("input".into(), input.unwrap_or(Value::Null));
            copy(body, &mut out, "dimensions");
            // Ollama answers with float arrays; ask for those rather than OpenAI's base64.
            out.insert("encoding_format".into(), json!("float"));
            return UpstreamCall {
                path: "/embeddings",
                body: Value::Object(out),
            };
        }
        Endpoint::Chat => {
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            out.insert(
                "messages".into(),
                Value::Array(ollama_messages_to_openai(messages)),
            );
            copy(body, &mut out, "tools");
            "/chat/completions"
        }
        Endpoint::Generate if body.get("raw").and_then(Value::as_bool) == Some(true) => {
            copy(body, &mut out, "prompt");
            "/completions"
        }
        Endpoint::Generate => {
            let mut messages = Vec::new();
            if let Some(system) = body.get("system").and_then(Value::as_str) {
                messages.push(json!({ "role": "system", "content": system }));
            }
            let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or("");
            let content = openai_content(prompt, strings(body.get("images")));
            messages.push(json!({ "role": "user", "content": content }));
            out.insert("messages".into(), Value::Array(messages));
            "/chat/completions"
        }
    };
    out.insert("stream".into(), Value::Bool(req.stream));
    if req.stream {
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    if let Some(options) = body.get("options").and_then(Value::as_object) {
        for key in SHARED_SAMPLING.iter().chain(&["stop"]) {
            copy(options, &mut out, key);
        }
        // Ollama's -1 (no limit) and -2 (fill the context) have no OpenAI equivalent; the
        // output-token cap stands in for them (`cap_output_tokens`).
        if let Some(n) = options.get("num_predict").and_then(Value::as_u64) {
            out.insert("max_tokens".into(), n.into());
        }
    }
    match body.get("format") {
        Some(Value::String(s)) if s == "json" => {
            out.insert("response_format".into(), json!({ "type": "json_object" }));
        }
        Some(schema @ Value::Object(_)) => {
            out.insert(
                "response_format".into(),
                json!({ "type": "json_schema", "json_schema": { "name": "schema", "schema": schema } }),
            );
        }
        _ => {}
    }
    UpstreamCall {
        path,
        body: Value::Object(out),
    }
}

/// Ollama messages as OpenAI ones: tool-call arguments encoded as strings, ids generated,
/// tool results given the `tool_call_id` of the call they answer, images as content parts.
fn ollama_messages_to_openai(messages: &[Value]) -> Vec<Value> {
    let mut ids = CallIds::default();
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        let text = message.get("content").and_then(Value::as_str).unwrap_or("");
        let mut m = Map::new();
        m.insert("role".into(), json!(role));
        m.insert(
            "content".into(),
            openai_content(text, strings(message.get("images"))),
        );
        if let Some(calls) = tool_calls(Some(message)) {
            let call_ids = ids.assistant(calls);
            let calls = calls
                .iter()
                .zip(call_ids)
                .map(|(call, id)| ollama_call_to_openai(call, id))
                .collect();
            m.insert("tool_calls".into(), Value::Array(calls));
        }
        if role == "tool" {
            let explicit = message.get("tool_call_id").and_then(Value::as_str);
            let id = match explicit {
                Some(id) if !id.is_empty() => {
                    ids.answered(id);
                    Some(id.to_string())
                }
                _ => ids.result(message.get("tool_name").and_then(Value::as_str)),
            };
            if let Some(id) = id {
                m.insert("tool_call_id".into(), Value::String(id));
            }
        }
        out.push(Value::Object(m));
    }
    out
}

/// OpenAI `content`: the text alone, or text and image parts when there are images.
fn openai_content(text: &str, images: Vec<&str>) -> Value {
    if images.is_empty() {
        return json!(text);
    }
    let mut parts = Vec::with_capacity(images.len() + 1);
    if !text.is_empty() {
        parts.push(json!({ "type": "text", "text": text }));
    }
    for image in images {
        let url = format!("data:{};base64,{image}", sniff_image_type(image));
        parts.push(json!({ "type": "image_url", "image_url": { "url": url } }));
    }
    Value::Array(parts)
}

/// The MIME type of a base64-encoded image from its first bytes (PNG when unknown:
/// llama-server only needs a `data:image/` prefix and decodes the bytes themselves).
fn sniff_image_type(base64: &str) -> &'static str {
    const SIGNATURES: [(&str, &str); 4] = [
        ("iVBORw0KGgo", "image/png"),
        ("/9j/", "image/jpeg"),
        ("R0lGOD", "image/gif"),
        ("UklGR", "image/webp"),
    ];
    SIGNATURES
        .iter()
        .find(|(prefix, _)| base64.starts_with(prefix))
        .map_or("image/png", |(_, mime)| mime)
}

fn openai_to_ollama(req: &Request, body: &Map<String, Value>, model: Value) -> UpstreamCall {
    let mut out = Map::new();
    out.insert("model".into(), model);
    let path = match req.endpoint {
        Endpoint::Embed => {
            copy(body, &mut out, "input");
            copy(body, &mut out, "dimensions");
            return UpstreamCall {
                path: "/api/embed",
                body: Value::Object(out),
            };
        }
        Endpoint::Chat => {
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            out.insert(
                "messages".into(),
                Value::Array(openai_messages_to_ollama(messages)),
            );
            copy(body, &mut out, "tools");
            "/api/chat"
        }
        Endpoint::Generate => {
            let prompt = match body.get("prompt") {
                Some(Value::Array(items)) => items.first().cloned().unwrap_or(json!("")),
                Some(prompt) => prompt.clone(),
                None => json!(""),
            };
            out.insert("prompt".into(), prompt);
            // /v1/completions sends the prompt as is: no chat template.
            out.insert("raw".into(), Value::Bool(true));
            "/api/generate"
        }
    };
    out.insert("stream".into(), Value::Bool(req.stream));
    let mut options = Map::new();
    let max_tokens = body
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| body.get("max_tokens"));
    if let Some(n) = max_tokens.filter(|v| !v.is_null()) {
        options.insert("num_predict".into(), n.clone());
    }
    for key in SHARED_SAMPLING.iter().chain(&["top_k"]) {
        copy(body, &mut options, key);
    }
    match body.get("stop") {
        Some(stop @ Value::String(_)) => {
            options.insert("stop".into(), json!([stop]));
        }
        Some(stop @ Value::Array(_)) => {
            options.insert("stop".into(), stop.clone());
        }
        _ => {}
    }
    if !options.is_empty() {
        out.insert("options".into(), Value::Object(options));
    }
    let format = body.get("response_format");
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => {
            out.insert("format".into(), json!("json"));
        }
        Some("json_schema") => {
            let schema = format
                .and_then(|f| f.get("json_schema"))
                .and_then(|s| s.get("schema"))
                .filter(|s| s.is_object());
            out.insert("format".into(), schema.cloned().unwrap_or(json!("json")));
        }
        _ => {}
    }
    UpstreamCall {
        path,
        body: Value::Object(out),
    }
}

/// OpenAI messages as Ollama ones: content parts joined, tool-call arguments parsed to
/// objects, tool results given the `tool_name` of the call their `tool_call_id` names.
fn openai_messages_to_ollama(messages: &[Value]) -> Vec<Value> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let role = match message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
        {
            // OpenAI's newer name for the system role.
            "developer" => "system",
            role => role,
        };
        let (text, images) = ollama_content(message.get("content"));
        let mut m = Map::new();
        m.insert("role".into(), json!(role));
        m.insert("content".into(), Value::String(text));
        if !images.is_empty() {
            m.insert("images".into(), json!(images));
        }
        if let Some(calls) = tool_calls(Some(message)) {
            for call in calls {
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    names.insert(id, call_name(call));
                }
            }
            let calls = calls.iter().map(openai_call_to_ollama).collect();
            m.insert("tool_calls".into(), Value::Array(calls));
        }
        if role == "tool" {
            let by_id = message
                .get("tool_call_id")
                .and_then(Value::as_str)
                .and_then(|id| names.get(id).copied());
            // The legacy `name` of a function result, when the id is unknown.
            let name = by_id.or_else(|| message.get("name").and_then(Value::as_str));
            if let Some(name) = name {
                m.insert("tool_name".into(), json!(name));
            }
        }
        out.push(Value::Object(m));
    }
    out
}

/// OpenAI `content` as Ollama's text and images: text parts joined with newlines, `data:`
/// URL images decoded to their base64 payload, other parts (remote URLs, audio) dropped.
fn ollama_content(content: Option<&Value>) -> (String, Vec<&str>) {
    let parts = match content {
        Some(Value::String(s)) => return (s.clone(), Vec::new()),
        Some(Value::Array(parts)) => parts,
        _ => return (String::new(), Vec::new()),
    };
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for part in parts {
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            texts.push(text);
        }
        let image = part.get("image_url");
        let url = image
            .and_then(|i| i.get("url"))
            .or(image)
            .and_then(Value::as_str);
        if let Some((_, data)) = url
            .filter(|u| u.starts_with("data:"))
            .and_then(|u| u.split_once(";base64,"))
        {
            images.push(data);
        }
    }
    (texts.join("\n"), images)
}

/// The strings of an optional array.
fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Copies `from[key]` to `to[key]` when present and not null.
fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, key: &str) {
    if let Some(v) = from.get(key).filter(|v| !v.is_null()) {
        to.insert(key.to_string(), v.clone());
    }
}
