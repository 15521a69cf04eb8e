//! The two stream framings: SSE (`data: {json}\n\n` … `data: [DONE]\n\n`) and NDJSON (one
//! JSON object per line). Parsers accept bytes in arbitrary pieces and yield whole events.

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde_json::Value;

/// The SSE event that ends an OpenAI stream.
pub(crate) const SSE_DONE: &[u8] = b"data: [DONE]\n\n";

/// `value` as one SSE event. Serialized JSON never contains a raw newline, so one `data:`
/// line suffices.
pub(crate) fn sse_data(value: &Value) -> Bytes {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len() + 8);
    out.push_str("data: ");
    out.push_str(&json);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// `value` as one NDJSON line.
pub(crate) fn ndjson_line(value: &Value) -> Bytes {
    let mut out = value.to_string();
    out.push('\n');
    Bytes::from(out)
}

/// One upstream event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A JSON payload, as its text (checked to be one whole JSON value; the translator
    /// decides how much of it to read).
    Json(String),
    /// OpenAI's `data: [DONE]`.
    Done,
    /// A payload that is not JSON (skipped by the translator).
    Garbage(String),
}

/// Splits bytes into lines ended by `\n`, `\r\n` or `\r`, across arbitrary chunk boundaries.
#[derive(Debug, Default)]
struct LineSplitter {
    buf: Vec<u8>,
    /// The last byte was `\r`: a `\n` right after it belongs to the same line end.
    after_cr: bool,
}

impl LineSplitter {
    fn push(&mut self, mut bytes: &[u8], mut on_line: impl FnMut(String)) {
        while let Some(&first) = bytes.first() {
            if std::mem::replace(&mut self.after_cr, false) && first == b'\n' {
                bytes = &bytes[1..];
                continue;
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.buf.extend_from_slice(&bytes[..end]);
                    self.after_cr = bytes[end] == b'\r';
                    on_line(self.take());
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.buf.extend_from_slice(bytes);
                    return;
                }
            }
        }
    }

    /// An unterminated last line, if any.
    fn finish(&mut self) -> Option<String> {
        self.after_cr = false;
        (!self.buf.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        // Valid UTF-8 is the rule: checking it is much cheaper than the lossy conversion.
        let line = match std::str::from_utf8(&self.buf) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(&self.buf).into_owned(),
        };
        self.buf.clear();
        line
    }
}

/// Server-sent events parser (the subset LLM servers use: `data:` fields, comments, blank-line
/// event ends). A `data:` line whose accumulated payload is already complete JSON (or
/// `[DONE]`) is dispatched at once, so a server that omits the blank line still works.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    lines: LineSplitter,
    data: Option<String>,
}

impl SseParser {
    /// Feeds bytes; complete events are appended to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) {
        let Self { lines, data } = self;
        lines.push(bytes, |line| on_sse_line(data, line, out));
    }

    /// The stream ended: dispatches whatever is pending.
    pub(crate) fn finish(&mut self, out: &mut Vec<Event>) {
        if let Some(line) = self.lines.finish() {
            on_sse_line(&mut self.data, line, out);
        }
        if let Some(data) = self.data.take() {
            out.push(classify(data));
        }
    }
}

fn on_sse_line(data: &mut Option<String>, mut line: String, out: &mut Vec<Event>) {
    if line.is_empty() {
        if let Some(pending) = data.take() {
            out.push(classify(pending));
        }
        return;
    }
    if line.starts_with(':') {
        return; // comment / keep-alive
    }
    if line.starts_with('{') {
        // Not SSE at all but a bare JSON object (some servers send an error that way).
        if let Some(pending) = data.take() {
            out.push(classify(pending));
        }
        out.push(classify(line));
        return;
    }
    let (field, value) = match line.split_once(':') {
        Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
        None => (line.as_str(), ""),
    };
    if field != "data" {
        return; // event:, id:, retry: carry nothing the translation needs
    }
    let pending = match data {
        Some(pending) => {
            pending.push('\n');
            pending.push_str(value);
            pending
        }
        // The first data line of an event becomes its payload in place (no copy).
        None => {
            let prefix = line.len() - value.len();
            line.drain(..prefix);
            data.insert(line)
        }
    };
    if pending.trim() == "[DONE]" {
        data.take();
        out.push(Event::Done);
    } else if is_json(pending) {
        if let Some(json) = data.take() {
            out.push(Event::Json(json));
        }
    }
}

fn classify(data: String) -> Event {
    if data.trim() == "[DONE]" {
        return Event::Done;
    }
    if is_json(&data) {
        Event::Json(data)
    } else {
        Event::Garbage(data)
    }
}

/// Whether `text` is one whole JSON value (checked without building it).
fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// NDJSON parser: every non-blank line is one event.
#[derive(Debug, Default)]
pub(crate) struct NdjsonParser {
    lines: LineSplitter,
}

impl NdjsonParser {
    /// Feeds bytes; complete events are appended to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) {
        self.lines.push(bytes, |line| on_ndjson_line(line, out));
    }

    /// The stream ended: an unterminated last line is still an event.
    pub(crate) fn finish(&mut self, out: &mut Vec<Event>) {
        if let Some(line) = self.lines.finish() {
            on_ndjson_line(line, out);
        }
    }
}

fn on_ndjson_line(line: String, out: &mut Vec<Event>) {
    if line.trim().is_empty() {
        return;
    }
    out.push(if is_json(&line) {
        Event::Json(line)
    } else {
        Event::Garbage(line)
    });
}
