//! Error bodies, stream error frames, and reading upstream errors.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{fixture, sse_payloads};
use crate::dialect::{
    error_body, stream_error_frame, stream_error_frame_for, upstream_error_message, ApiError,
    Dialect, ErrorKind,
};

use Dialect::{Ollama, OpenAi};

fn body(dialect: Dialect, err: &ApiError) -> Value {
    let (bytes, content_type) = error_body(dialect, err);
    assert_eq!(content_type, "application/json");
    serde_json::from_slice(&bytes).expect("JSON error body")
}

#[test]
fn error_bodies_in_each_dialect() {
    let err = ApiError::new(
        ErrorKind::BudgetExceeded,
        "agent research spent 100000 of 100000 tokens today",
    );
    assert_eq!(err.status, 429);
    assert_eq!(
        body(OpenAi, &err),
        json!({ "error": { "message": "agent research spent 100000 of 100000 tokens today",
                           "type": "insufficient_quota", "code": "budget_exceeded" } })
    );
    assert_eq!(
        body(Ollama, &err),
        json!({ "error": "agent research spent 100000 of 100000 tokens today" })
    );
}

#[test]
fn kinds_have_statuses_types_and_codes() {
    let table = [
        (
            ErrorKind::InvalidRequest,
            400,
            "invalid_request_error",
            "invalid_request",
        ),
        (ErrorKind::NotFound, 404, "not_found_error", "not_found"),
        (
            ErrorKind::BudgetExceeded,
            429,
            "insufficient_quota",
            "budget_exceeded",
        ),
        (ErrorKind::Forbidden, 403, "permission_error", "forbidden"),
        (
            ErrorKind::RateLimited,
            429,
            "rate_limit_error",
            "rate_limited",
        ),
        (ErrorKind::Upstream, 502, "server_error", "upstream_error"),
        (ErrorKind::Timeout, 504, "timeout_error", "timeout"),
        (
            ErrorKind::TooLarge,
            413,
            "invalid_request_error",
            "too_large",
        ),
        (ErrorKind::Internal, 500, "server_error", "internal_error"),
    ];
    for (kind, status, openai_type, code) in table {
        assert_eq!(
            (kind.status(), kind.openai_type(), kind.code()),
            (status, openai_type, code)
        );
    }
}

#[test]
fn stream_error_frames() {
    assert_eq!(
        stream_error_frame(Ollama, "upstream \"a\" went away"),
        Bytes::from_static(b"{\"error\":\"upstream \\\"a\\\" went away\"}\n")
    );
    let frame = stream_error_frame(OpenAi, "upstream went away");
    assert_eq!(
        sse_payloads(&[frame]),
        vec![
            json!({ "error": { "message": "upstream went away", "type": "server_error", "code": "upstream_error" } })
        ]
    );
    let frame = stream_error_frame_for(
        OpenAi,
        &ApiError::new(ErrorKind::Timeout, "no token for 60s"),
    );
    assert_eq!(
        sse_payloads(&[frame]),
        vec![
            json!({ "error": { "message": "no token for 60s", "type": "timeout_error", "code": "timeout" } })
        ]
    );
}

#[test]
fn upstream_error_messages_from_every_shape() {
    let errors: Value =
        serde_json::from_str(fixture!("llama_server_errors.json")).expect("fixture");
    let message =
        |dialect, key: &str| upstream_error_message(dialect, errors[key].to_string().as_bytes());
    assert_eq!(
        message(OpenAi, "invalid_json"),
        "[json.exception.parse_error.101] parse error at line 1, column 15: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal"
    );
    assert_eq!(
        message(OpenAi, "context"),
        "request (12022 tokens) exceeds the available context size (1024 tokens), try increasing it"
    );
    assert_eq!(message(OpenAi, "not_found"), "File Not Found");
    assert_eq!(
        message(OpenAi, "vllm_old"),
        "The model `gpt-4` does not exist."
    );
    assert_eq!(
        message(Ollama, "ollama"),
        "model \"x\" not found, try pulling it first"
    );
    // Either shape is read whatever the upstream's dialect.
    assert_eq!(message(Ollama, "not_found"), "File Not Found");
    assert_eq!(
        message(OpenAi, "ollama"),
        "model \"x\" not found, try pulling it first"
    );
}

#[test]
fn upstream_error_message_falls_back_to_the_text() {
    assert_eq!(
        upstream_error_message(OpenAi, b"  Bad Gateway\n"),
        "Bad Gateway"
    );
    assert_eq!(
        upstream_error_message(Ollama, b""),
        "upstream sent an empty error body"
    );
    assert_eq!(
        upstream_error_message(OpenAi, br#"{"error":{"code":503}}"#),
        r#"{"error":{"code":503}}"#
    );
    assert_eq!(
        upstream_error_message(OpenAi, br#"{"detail":"x"}"#),
        r#"{"detail":"x"}"#
    );
    let long = "é".repeat(400);
    let message = upstream_error_message(OpenAi, long.as_bytes());
    assert_eq!(message, format!("{}…", "é".repeat(300)));
}
