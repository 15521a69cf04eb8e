//! Complete (non-stream) upstream answers to downstream bodies, and the pieces of answer
//! shapes (usage, finish reasons, final Ollama fields) that streams share.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::clock::Clock;
use super::embeddings;
use super::errors::{error_in, truncate, ResponseError};
use super::probe::{non_empty, Choice, Message, RawObject, UsageCounts};
use super::tools::{ollama_call_to_openai, openai_call_to_ollama, tool_calls};
use super::{ApiError, Dialect, Endpoint, Request, Usage, CONTENT_TYPE_JSON};

/// A complete upstream answer (2xx) as the downstream body, its content type, and the usage
/// read from it. `model` is the name the client asked for, echoed back in the body.
pub fn translate_response(
    req: &Request,
    upstream: Dialect,
    model: &str,
    body: &[u8],
) -> Result<(Bytes, &'static str, Usage), ApiError> {
    translate_response_with(req, upstream, model, body, Clock::SYSTEM)
}

/// [`translate_response`] with a given clock and id source.
pub(crate) fn translate_response_with(
    req: &Request,
    upstream: Dialect,
    model: &str,
    body: &[u8],
    clock: Clock,
) -> Result<(Bytes, &'static str, Usage), ApiError> {
    if req.dialect == upstream {
        if let Some((out, usage)) = pass_through(upstream, model, body) {
            return Ok((out, CONTENT_TYPE_JSON, usage));
        }
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ResponseError::InvalidJson {
        detail: e.to_string(),
        snippet: truncate(&String::from_utf8_lossy(body), 200),
    })?;
    if let Some(message) = error_in(upstream, &value) {
        return Err(ResponseError::Reported { message }.into());
    }
    let missing = |field: &'static str| ResponseError::MissingField {
        field,
        snippet: truncate(&String::from_utf8_lossy(body), 200),
    };
    let Value::Object(mut obj) = value else {
        return Err(missing("(a JSON object)").into());
    };
    let usage = match upstream {
        Dialect::OpenAi => openai_answer_usage(&obj),
        Dialect::Ollama => ollama_answer_usage(&obj),
    };
    let out = if req.dialect == upstream {
        obj.insert("model".into(), json!(model));
        Value::Object(obj)
    } else {
        let value = Value::Object(obj);
        let translated = match (upstream, req.endpoint) {
            (Dialect::OpenAi, Endpoint::Chat | Endpoint::Generate) => {
                openai_to_ollama(req.endpoint, &value, model, usage, clock)
            }
            (Dialect::OpenAi, Endpoint::Embed) => {
                embeddings::openai_to_ollama(&value, model, usage)
            }
            (Dialect::Ollama, Endpoint::Chat | Endpoint::Generate) => {
                ollama_to_openai(req.endpoint, &value, model, usage, clock)
            }
            (Dialect::Ollama, Endpoint::Embed) => {
                embeddings::ollama_to_openai(req, &value, model, usage)
            }
        };
        translated.map_err(missing)?
    };
    // A Value always serialises (its map keys are strings).
    let out = serde_json::to_vec(&out).unwrap_or_default();
    Ok((Bytes::from(out), CONTENT_TYPE_JSON, usage))
}

/// An answer in the request's own dialect, with only `model` replaced: the other top-level
/// fields are copied as the upstream wrote them, and only what billing needs is read (usage,
/// and whether anything was produced). Building and writing back the whole tree cost a
/// tenth of the gateway's CPU per answer. None when the answer is anything unusual (an
/// error, an unexpected shape): the general path then reads it whole and says what is wrong.
pub(crate) fn pass_through(upstream: Dialect, model: &str, body: &[u8]) -> Option<(Bytes, Usage)> {
    let top = RawObject::parse(body)?;
    let usage = match upstream {
        Dialect::OpenAi => {
            let counts: Option<UsageCounts> = top.field("usage")?;
            let choices: Vec<Choice> = top.borrowed("choices")?.unwrap_or_default();
            let produced = choices.iter().any(|c| {
                let message = c.message.as_ref();
                non_empty(c.text.as_ref().or(message.and_then(|m| m.content.as_ref())))
                    || message.is_some_and(|m| m.tool_calls > 0)
            }) || top.non_empty_array("data")?;
            Usage {
                prompt_tokens: counts.as_ref().and_then(|u| u.prompt_tokens),
                completion_tokens: counts.as_ref().and_then(|u| u.completion_tokens),
                produced_chunks: u64::from(produced),
            }
        }
        Dialect::Ollama => {
            let message: Option<Message> = top.borrowed("message")?;
            let response: Option<Cow<'_, str>> = top.borrowed("response")?;
            let text = response.or_else(|| message.as_ref().and_then(|m| m.content.clone()));
            let produced = non_empty(text.as_ref())
                || message.as_ref().is_some_and(|m| m.tool_calls > 0)
                || top.non_empty_array("embeddings")?;
            Usage {
                prompt_tokens: top.field("prompt_eval_count")?,
                completion_tokens: top.field("eval_count")?,
                produced_chunks: u64::from(produced),
            }
        }
    };
    let mut out = Vec::with_capacity(body.len() + model.len());
    top.write_with_model(model, true, &mut out);
    Some((Bytes::from(out), usage))
}

/// A translation's result: the body, or the path of the field it could not find.
pub(crate) type Translated = Result<Value, &'static str>;

/// An OpenAI chat or completion answer as an Ollama chat or generate one.
fn openai_to_ollama(
    endpoint: Endpoint,
    value: &Value,
    model: &str,
    usage: Usage,
    clock: Clock,
) -> Translated {
    let choice = first_choice(value).ok_or("choices[0]")?;
    let message = choice.get("message");
    // A chat answer carries `message`, a /completions answer `text`.
    let text = choice
        .get("text")
        .or_else(|| message.and_then(|m| m.get("content")))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("created_at".into(), json!(clock.rfc3339()));
    if endpoint == Endpoint::Generate {
        out.insert("response".into(), json!(text));
    } else {
        let mut m = Map::new();
        m.insert("role".into(), json!("assistant"));
        m.insert("content".into(), json!(text));
        if let Some(thinking) = message.and_then(openai_reasoning) {
            m.insert("thinking".into(), json!(thinking));
        }
        if let Some(calls) = tool_calls(message) {
            let calls = calls.iter().map(openai_call_to_ollama).collect();
            m.insert("tool_calls".into(), Value::Array(calls));
        }
        out.insert("message".into(), Value::Object(m));
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    insert_ollama_final(&mut out, ollama_done_reason(finish), usage);
    Ok(Value::Object(out))
}

/// An Ollama chat or generate answer as an OpenAI chat or completion one.
fn ollama_to_openai(
    endpoint: Endpoint,
    value: &Value,
    model: &str,
    usage: Usage,
    clock: Clock,
) -> Translated {
    let base = (clock.unique)();
    let done_reason = value.get("done_reason").and_then(Value::as_str);
    if endpoint == Endpoint::Generate {
        let text = value.get("response").and_then(Value::as_str).unwrap_or("");
        return Ok(json!({
            "id": completion_id(endpoint, base),
            "object": "text_completion",
            "created": clock.unix_secs(),
            "model": model,
            "choices": [{
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": openai_finish_reason(done_reason, false),
            }],
            "usage": openai_usage(usage),
        }));
    }
    let message = value
        .get("message")
        .filter(|m| m.is_object())
        .ok_or("message")?;
    let content = message.get("content").and_then(Value::as_str).unwrap_or("");
    let calls = tool_calls(Some(message));
    let mut m = Map::new();
    m.insert("role".into(), json!("assistant"));
    // OpenAI answers a pure tool call with `content: null`.
    let content = match (content.is_empty(), calls) {
        (true, Some(_)) => Value::Null,
        _ => json!(content),
    };
    m.insert("content".into(), content);
    if let Some(thinking) = ollama_thinking(message) {
        m.insert("reasoning_content".into(), json!(thinking));
    }
    if let Some(calls) = calls {
        let calls = calls
            .iter()
            .enumerate()
            .map(|(i, call)| ollama_call_to_openai(call, openai_call_id(call, base, i)))
            .collect();
        m.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(json!({
        "id": completion_id(endpoint, base),
        "object": "chat.completion",
        "created": clock.unix_secs(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": m,
            "finish_reason": openai_finish_reason(done_reason, calls.is_some()),
        }],
        "usage": openai_usage(usage),
    }))
}

/// The choice with index 0 (or the first one).
pub(crate) fn first_choice(value: &Value) -> Option<&Value> {
    let choices = value.get("choices")?.as_array()?;
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
        .or_else(|| choices.first())
}

/// OpenAI id of a generated answer: `chatcmpl-…` for chat, `cmpl-…` for completions.
pub(crate) fn completion_id(endpoint: Endpoint, base: u64) -> String {
    match endpoint {
        Endpoint::Generate => format!("cmpl-{base:016x}"),
        _ => format!("chatcmpl-{base:016x}"),
    }
}

/// OpenAI id of the `i`-th tool call of an answer: the Ollama call's own id if it has one.
pub(crate) fn openai_call_id(call: &Value, base: u64, i: usize) -> String {
    match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("call_{base:016x}_{i}"),
    }
}

/// Ollama `done_reason` for an OpenAI `finish_reason`: only `length` survives; tool calls
/// and content filters end an Ollama answer with `stop`.
pub(crate) fn ollama_done_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "length",
        _ => "stop",
    }
}

/// OpenAI `finish_reason` for an Ollama `done_reason`: an answer with tool calls ends with
/// `tool_calls`.
pub(crate) fn openai_finish_reason(done_reason: Option<&str>, tool_calls: bool) -> &'static str {
    match (tool_calls, done_reason) {
        (true, _) => "tool_calls",
        (false, Some("length")) => "length",
        (false, _) => "stop",
    }
}

/// OpenAI `usage`, with 0 for counts the upstream did not report (OpenAI clients expect
/// the object).
pub(crate) fn openai_usage(usage: Usage) -> Value {
    let prompt = usage.prompt_tokens.unwrap_or(0);
    let completion = usage.completion_tokens.unwrap_or(0);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// The fields of Ollama's last object: `done`, `done_reason`, zero durations (the gateway
/// does not see the upstream's timings) and the counts that are known (Ollama itself omits
/// unknown ones).
pub(crate) fn insert_ollama_final(out: &mut Map<String, Value>, done_reason: &str, usage: Usage) {
    out.insert("done".into(), json!(true));
    out.insert("done_reason".into(), json!(done_reason));
    for key in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        out.insert(key.into(), json!(0));
    }
    insert_count(out, "prompt_eval_count", usage.prompt_tokens);
    insert_count(out, "eval_count", usage.completion_tokens);
}

/// Inserts `key: count` when the count is known.
pub(crate) fn insert_count(out: &mut Map<String, Value>, key: &str, count: Option<u64>) {
    if let Some(count) = count {
        out.insert(key.into(), json!(count));
    }
}

/// Prompt and completion tokens of an OpenAI `usage` object, if the value has one.
pub(crate) fn openai_usage_counts(value: &Value) -> Option<(Option<u64>, Option<u64>)> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    Some((
        usage.get("prompt_tokens").and_then(Value::as_u64),
        usage.get("completion_tokens").and_then(Value::as_u64),
    ))
}

/// Reasoning text of an OpenAI message or delta (vLLM `reasoning_content`, newer
/// `reasoning`), if non-empty.
pub(crate) fn openai_reasoning(message: &Value) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|key| message.get(*key).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// Ollama `thinking` of a message, if non-empty.
pub(crate) fn ollama_thinking(message: &Value) -> Option<&str> {
    message
        .get("thinking")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn openai_answer_usage(obj: &Map<String, Value>) -> Usage {
    let value = obj.get("usage");
    let count = |key: &str| value.and_then(|u| u.get(key)).and_then(Value::as_u64);
    let produced = obj
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            choices.iter().any(|c| {
                let message = c.get("message");
                let text = c
                    .get("text")
                    .or_else(|| message.and_then(|m| m.get("content")))
                    .and_then(Value::as_str);
                text.is_some_and(|t| !t.is_empty()) || tool_calls(message).is_some()
            })
        })
        || obj
            .get("data")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
    Usage {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
        produced_chunks: u64::from(produced),
    }
}

pub(crate) fn ollama_answer_usage(obj: &Map<String, Value>) -> Usage {
    let count = |key: &str| obj.get(key).and_then(Value::as_u64);
    let message = obj.get("message");
    let text = obj
        .get("response")
        .or_else(|| message.and_then(|m| m.get("content")))
        .and_then(Value::as_str);
    let produced = text.is_some_and(|t| !t.is_empty())
        || tool_calls(message).is_some()
        || obj
            .get("embeddings")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
    Usage {
        prompt_tokens: count("prompt_eval_count"),
        completion_tokens: count("eval_count"),
        produced_chunks: u64::from(produced),
    }
}
