//! Errors and their wire shapes: OpenAI `{"error":{"message","type","code"}}`, Ollama
//! `{"error":"..."}`, in bodies and as mid-stream frames; and reading an upstream's error.

use bytes::Bytes;
use serde_json::{json, Value};

use super::framing::{ndjson_line, sse_data};
use super::{Dialect, CONTENT_TYPE_JSON};

/// What went wrong, which fixes the HTTP status and the OpenAI error `type`/`code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request body is malformed or has a wrong field (400).
    InvalidRequest,
    /// Unknown model or route (404).
    NotFound,
    /// The agent's or team's token budget is spent (429).
    BudgetExceeded,
    /// The agent may not use this model (403).
    Forbidden,
    /// Too many requests or tokens per minute (429).
    RateLimited,
    /// The upstream failed or answered something unusable (502).
    Upstream,
    /// The upstream did not answer in time (504).
    Timeout,
    /// The request body is too large (413).
    TooLarge,
    /// A bug in the gateway (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status this kind is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::BudgetExceeded | ErrorKind::RateLimited => 429,
            ErrorKind::Forbidden => 403,
            ErrorKind::Upstream => 502,
            ErrorKind::Timeout => 504,
            ErrorKind::TooLarge => 413,
            ErrorKind::Internal => 500,
        }
    }

    /// OpenAI `error.type`, using the names OpenAI and llama-server use where one exists.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::TooLarge => "invalid_request_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::BudgetExceeded => "insufficient_quota",
            ErrorKind::Forbidden => "permission_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Upstream | ErrorKind::Internal => "server_error",
            ErrorKind::Timeout => "timeout_error",
        }
    }

    /// OpenAI `error.code`: a stable machine-readable name of the kind.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Upstream => "upstream_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Internal => "internal_error",
        }
    }
}

/// A request error to answer in the request's own dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status to answer with.
    pub status: u16,
    /// Human-readable message: what is wrong and how to fix it.
    pub message: String,
    /// The class of error.
    pub kind: ErrorKind,
}

impl ApiError {
    /// An error of `kind` with its usual status.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status: kind.status(),
            message: message.into(),
            kind,
        }
    }
}

/// What is wrong with a downstream request body (always answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body does not parse as JSON.
    #[error("request body is not valid JSON ({detail}); send one JSON object")]
    InvalidJson {
        /// The parser's complaint, with line and column.
        detail: String,
    },
    /// The body is JSON but not an object.
    #[error("request body must be a JSON object, got {got}; put the fields in one object")]
    NotAnObject {
        /// What was sent instead.
        got: String,
    },
    /// A required field is absent.
    #[error("`{field}` is required for {endpoint}; {hint}")]
    Missing {
        /// Path of the field, e.g. `messages[1].role`.
        field: String,
        /// The downstream path, e.g. `/api/chat`.
        endpoint: &'static str,
        /// How to fix it.
        hint: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}, got {got}; {hint}")]
    WrongType {
        /// Path of the field.
        field: String,
        /// The accepted type(s).
        expected: &'static str,
        /// What was sent, abbreviated.
        got: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// A well-typed value the gateway cannot serve.
    #[error("`{field}` {problem}; {hint}")]
    Unsupported {
        /// Path of the field.
        field: String,
        /// What is not supported, with the value.
        problem: String,
        /// How to fix it.
        hint: &'static str,
    },
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        ApiError::new(ErrorKind::InvalidRequest, err.to_string())
    }
}

/// Why a 2xx upstream answer could not be translated (answered with 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The answer is not JSON.
    #[error("upstream answered with invalid JSON ({detail}): {snippet}; check that the upstream's base URL and dialect are configured right")]
    InvalidJson {
        /// The parser's complaint.
        detail: String,
        /// The start of the body.
        snippet: String,
    },
    /// The answer is JSON but lacks a field the translation needs.
    #[error("upstream answer has no usable `{field}`: {snippet}; check that the upstream's dialect is configured right")]
    MissingField {
        /// Path of the field.
        field: &'static str,
        /// The start of the body.
        snippet: String,
    },
    /// The upstream answered 2xx with an error body.
    #[error("upstream reported an error: {message}")]
    Reported {
        /// The upstream's message.
        message: String,
    },
}

impl From<ResponseError> for ApiError {
    fn from(err: ResponseError) -> Self {
        ApiError::new(ErrorKind::Upstream, err.to_string())
    }
}

/// Error body in a dialect: OpenAI `{"error":{"message","type","code"}}`, Ollama `{"error":"..."}`.
pub fn error_body(dialect: Dialect, err: &ApiError) -> (Bytes, &'static str) {
    let body = error_value(dialect, &err.message, err.kind);
    (Bytes::from(body.to_string()), CONTENT_TYPE_JSON)
}

/// A mid-stream error frame in the downstream dialect (an SSE `data: {"error":...}` event, or
/// an NDJSON `{"error":...}` line), classed as an upstream error.
pub fn stream_error_frame(dialect: Dialect, message: &str) -> Bytes {
    frame(dialect, &error_value(dialect, message, ErrorKind::Upstream))
}

/// Like [`stream_error_frame`] for an error of another kind (e.g. a budget cut mid-stream).
pub fn stream_error_frame_for(dialect: Dialect, err: &ApiError) -> Bytes {
    frame(dialect, &error_value(dialect, &err.message, err.kind))
}

fn frame(dialect: Dialect, value: &Value) -> Bytes {
    match dialect {
        Dialect::Ollama => ndjson_line(value),
        Dialect::OpenAi => sse_data(value),
    }
}

fn error_value(dialect: Dialect, message: &str, kind: ErrorKind) -> Value {
    match dialect {
        Dialect::Ollama => json!({ "error": message }),
        Dialect::OpenAi => json!({
            "error": { "message": message, "type": kind.openai_type(), "code": kind.code() }
        }),
    }
}

/// Longest upstream text quoted in a message, in characters.
const MAX_QUOTED_CHARS: usize = 300;

/// The message of an upstream's non-2xx answer, from either dialect's error shape (OpenAI
/// `error.message`, vLLM's older `{"object":"error","message"}`, Ollama `error`), or else the
/// body text, truncated.
pub fn upstream_error_message(upstream: Dialect, body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Some(message) = error_in(upstream, &value) {
            return message;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "upstream sent an empty error body".to_string()
    } else {
        truncate(text, MAX_QUOTED_CHARS)
    }
}

/// The error an upstream JSON value reports, if it is an error in any known shape.
pub(crate) fn error_in(upstream: Dialect, value: &Value) -> Option<String> {
    let error = value.get("error").filter(|e| !e.is_null());
    let is_vllm_error = value.get("object").and_then(Value::as_str) == Some("error");
    if error.is_none() && !is_vllm_error {
        return None;
    }
    let nested = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    let flat = error.and_then(Value::as_str);
    let top = value.get("message").and_then(Value::as_str);
    let found = match upstream {
        Dialect::OpenAi => nested.or(flat).or(top),
        Dialect::Ollama => flat.or(nested).or(top),
    };
    Some(match found {
        Some(message) => message.to_string(),
        None => truncate(&value.to_string(), MAX_QUOTED_CHARS),
    })
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
