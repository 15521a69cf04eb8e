//! Tests of the dialect translation against realistic fixtures (`ollama/tests/fixtures`:
//! llama-server bodies as measured in llm.md §3, vLLM and Ollama bodies as documented in §5).

mod errors;
mod models;
mod request;
mod response;
mod stream;
mod upstream;

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::clock::Clock;
use super::{parse_request, Dialect, Endpoint, Request};

/// A fixture file's text.
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}
pub(crate) use fixture;

/// A clock pinned to 2026-11-23T20:54:08.5Z with the id seed 0x0123456789abcdef.
pub(crate) const CLOCK: Clock = Clock {
    now: || Duration::new(1_795_467_248, 500_000_000),
    unique: || 0x0123_4567_89ab_cdef,
};

/// [`CLOCK`]'s time as Ollama's `created_at`.
pub(crate) const NOW: &str = "2026-11-23T20:54:08.5Z";
/// [`CLOCK`]'s time as OpenAI's `created`.
pub(crate) const CREATED: u64 = 1_795_467_248;

/// A parsed request, for tests whose input is valid.
pub(crate) fn req(dialect: Dialect, endpoint: Endpoint, body: Value) -> Request {
    parse_request(dialect, endpoint, body.to_string().as_bytes()).expect("valid test request")
}

/// Checks SSE framing of each frame and returns its payload: the JSON, or the string
/// `"[DONE]"` for the end event.
pub(crate) fn sse_payloads(frames: &[Bytes]) -> Vec<Value> {
    frames
        .iter()
        .map(|frame| {
            let text = std::str::from_utf8(frame).expect("utf-8 frame");
            let data = text
                .strip_prefix("data: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("not one SSE data event: {text:?}"));
            assert!(!data.contains('\n'), "multi-line SSE data: {text:?}");
            if data == "[DONE]" {
                Value::String(data.to_string())
            } else {
                serde_json::from_str(data).expect("JSON SSE data")
            }
        })
        .collect()
}

/// Checks NDJSON framing of each frame (one line, newline-terminated) and returns its JSON.
pub(crate) fn ndjson_payloads(frames: &[Bytes]) -> Vec<Value> {
    frames
        .iter()
        .map(|frame| {
            let text = std::str::from_utf8(frame).expect("utf-8 frame");
            let line = text
                .strip_suffix('\n')
                .unwrap_or_else(|| panic!("unterminated NDJSON line: {text:?}"));
            assert!(!line.contains('\n'), "several lines in one frame: {text:?}");
            serde_json::from_str(line).expect("JSON NDJSON line")
        })
        .collect()
}

#[test]
fn clock_formats_rfc3339_like_go() {
    use super::clock::rfc3339;
    assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00Z");
    assert_eq!(CLOCK.rfc3339(), NOW);
    assert_eq!(CLOCK.unix_secs(), CREATED);
    assert_eq!(
        rfc3339(Duration::new(951_782_400, 123_456_789)),
        "2000-02-29T00:00:00.123456789Z"
    );
    assert_eq!(
        rfc3339(Duration::new(4_102_444_799, 10)),
        "2099-12-31T23:59:59.00000001Z"
    );
}

#[test]
fn system_ids_differ() {
    let a = (Clock::SYSTEM.unique)();
    let b = (Clock::SYSTEM.unique)();
    assert_ne!(a, b);
}
