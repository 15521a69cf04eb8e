//! Stream translation: upstream bytes in arbitrary pieces in, downstream frames out at once.
//! Each upstream event becomes zero or more downstream frames as soon as it is complete;
//! only OpenAI tool-call fragments are held back until the call is whole (Ollama sends whole
//! calls), and the final Ollama line waits for OpenAI's usage chunk.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::clock::Clock;
use super::errors::{error_in, stream_error_frame};
use super::framing::{ndjson_line, sse_data, Event, NdjsonParser, SseParser, SSE_DONE};
use super::probe::{non_empty, Choice, Message, RawObject, UsageCounts};
use super::response::{
    completion_id, first_choice, insert_ollama_final, ollama_done_reason, ollama_thinking,
    openai_call_id, openai_finish_reason, openai_reasoning, openai_usage, openai_usage_counts,
};
use super::tools::{ollama_call_to_openai, tool_calls, CallAccumulator};
use super::{Dialect, Endpoint, Request, Usage, CONTENT_TYPE_NDJSON, CONTENT_TYPE_SSE};

/// Translates one upstream stream into the downstream dialect, frame by frame, and keeps the
/// usage seen so far for billing (also when the client cuts the stream).
#[derive(Debug)]
pub struct StreamTranslator {
    downstream: Dialect,
    upstream: Dialect,
    endpoint: Endpoint,
    model: String,
    wants_usage: bool,
    clock: Clock,
    /// Seed of the ids of generated OpenAI chunks and tool calls.
    base: u64,
    /// OpenAI `created`, the same in every chunk of a stream.
    created: u64,
    parser: Parser,
    usage: Usage,
    error: Option<String>,
    /// The upstream ended normally (`finish_reason`, `[DONE]` or a `done:true` line).
    upstream_finished: bool,
    /// The downstream end (`data: [DONE]` or the `done:true` line) has been sent.
    ended: bool,
    /// OpenAI upstream: the finish reason, kept for the final Ollama line.
    finish_reason: Option<String>,
    /// OpenAI upstream, Ollama downstream: tool-call fragments not yet whole.
    calls: CallAccumulator,
    /// Ollama upstream, OpenAI downstream: the first chunk (with the role) was sent.
    role_sent: bool,
    /// Ollama upstream, OpenAI downstream: tool calls sent so far (their `index`).
    calls_sent: usize,
}

#[derive(Debug)]
enum Parser {
    Sse(SseParser),
    Ndjson(NdjsonParser),
}

impl StreamTranslator {
    /// A translator for the stream answering `req` from an upstream speaking `upstream`;
    /// `model` is the name the client asked for, restored in every frame.
    pub fn new(req: &Request, upstream: Dialect, model: &str) -> Self {
        Self::with_clock(req, upstream, model, Clock::SYSTEM)
    }

    /// [`StreamTranslator::new`] with a given clock and id source.
    pub(crate) fn with_clock(req: &Request, upstream: Dialect, model: &str, clock: Clock) -> Self {
        Self {
            downstream: req.dialect,
            upstream,
            endpoint: req.endpoint,
            model: model.to_string(),
            wants_usage: req.client_wants_usage,
            clock,
            base: (clock.unique)(),
            created: clock.unix_secs(),
            parser: match upstream {
                Dialect::OpenAi => Parser::Sse(SseParser::default()),
                Dialect::Ollama => Parser::Ndjson(NdjsonParser::default()),
            },
            usage: Usage::default(),
            error: None,
            upstream_finished: false,
            ended: false,
            finish_reason: None,
            calls: CallAccumulator::default(),
            role_sent: false,
            calls_sent: 0,
        }
    }

    /// Content type of the downstream stream: `application/x-ndjson` or `text/event-stream`.
    pub fn content_type(&self) -> &'static str {
        match self.downstream {
            Dialect::Ollama => CONTENT_TYPE_NDJSON,
            Dialect::OpenAi => CONTENT_TYPE_SSE,
        }
    }

    /// Feeds upstream bytes as they arrive; returns the downstream frames to send now.
    pub fn feed(&mut self, upstream_bytes: &[u8]) -> Vec<Bytes> {
        let mut events = Vec::new();
        match &mut self.parser {
            Parser::Sse(p) => p.push(upstream_bytes, &mut events),
            Parser::Ndjson(p) => p.push(upstream_bytes, &mut events),
        }
        let mut out = Vec::new();
        for event in events {
            self.on_event(event, &mut out);
        }
        out
    }

    /// The upstream ended (normally or not): translates what is pending and, if the upstream
    /// finished normally, makes sure the downstream end (`data: [DONE]` once, or Ollama's
    /// `done:true` line) was sent. After an abnormal end nothing is added: the gateway
    /// decides what to tell the client (see [`StreamTranslator::finished_normally`]).
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut events = Vec::new();
        match &mut self.parser {
            Parser::Sse(p) => p.finish(&mut events),
            Parser::Ndjson(p) => p.finish(&mut events),
        }
        let mut out = Vec::new();
        for event in events {
            self.on_event(event, &mut out);
        }
        if self.finished_normally() && !self.ended {
            self.end(&mut out);
        }
        out
    }

    /// Token counts so far (for billing a stream the client cut).
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// An error the upstream reported mid-stream.
    pub fn upstream_error(&self) -> Option<String> {
        self.error.clone()
    }

    /// Whether the upstream signalled a normal end without reporting an error; false for a
    /// stream that broke off, so the gateway can send its own error frame.
    pub fn finished_normally(&self) -> bool {
        self.upstream_finished && self.error.is_none()
    }

    fn on_event(&mut self, event: Event, out: &mut Vec<Bytes>) {
        if self.error.is_some() || self.ended {
            return;
        }
        match event {
            Event::Garbage(text) => {
                tracing::debug!(event = %text, "skipping an upstream stream event that is not JSON");
            }
            Event::Done => {
                self.upstream_finished = true;
                self.end(out);
            }
            Event::Json(text) => {
                if self.upstream == self.downstream && self.pass_through(&text, out) {
                    return;
                }
                // The framing checked that it is whole JSON.
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    return;
                };
                if let Some(message) = error_in(self.upstream, &value) {
                    out.push(stream_error_frame(self.downstream, &message));
                    self.error = Some(message);
                    return;
                }
                match (self.upstream, self.downstream) {
                    (Dialect::OpenAi, Dialect::OpenAi) => self.openai_passthrough(value, out),
                    (Dialect::Ollama, Dialect::Ollama) => self.ollama_passthrough(value, out),
                    (Dialect::OpenAi, Dialect::Ollama) => self.openai_to_ollama(&value, out),
                    (Dialect::Ollama, Dialect::OpenAi) => self.ollama_to_openai(&value, out),
                }
            }
        }
    }

    /// Sends the downstream end.
    fn end(&mut self, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.ended = true;
        match (self.upstream, self.downstream) {
            (_, Dialect::OpenAi) => out.push(Bytes::from_static(SSE_DONE)),
            (Dialect::OpenAi, Dialect::Ollama) => {
                self.flush_calls(out);
                let mut line = self.ollama_line_start();
                match self.endpoint {
                    Endpoint::Generate => line.insert("response".into(), json!("")),
                    _ => line.insert(
                        "message".into(),
                        json!({ "role": "assistant", "content": "" }),
                    ),
                };
                let reason = ollama_done_reason(self.finish_reason.as_deref());
                insert_ollama_final(&mut line, reason, self.usage);
                out.push(ndjson_line(&Value::Object(line)));
            }
            // Ollama's own done line was passed through.
            (Dialect::Ollama, Dialect::Ollama) => {}
        }
    }

    /// Records usage, generated content and the finish of an OpenAI chunk.
    fn record_openai(&mut self, chunk: &Value) {
        if let Some((prompt, completion)) = openai_usage_counts(chunk) {
            self.usage.prompt_tokens = prompt.or(self.usage.prompt_tokens);
            self.usage.completion_tokens = completion.or(self.usage.completion_tokens);
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        let choices = choices.map_or(&[][..], Vec::as_slice);
        let produced = choices.iter().any(|choice| {
            let delta = choice.get("delta");
            let text = choice
                .get("text")
                .or_else(|| delta.and_then(|d| d.get("content")))
                .and_then(Value::as_str);
            text.is_some_and(|t| !t.is_empty())
                || delta.and_then(openai_reasoning).is_some()
                || tool_calls(delta).is_some()
        });
        if produced {
            self.usage.produced_chunks += 1;
        }
        if choices
            .iter()
            .any(|c| c.get("finish_reason").is_some_and(Value::is_string))
        {
            self.upstream_finished = true;
        }
    }

    /// Records generated content and, on the done line, the counts of an Ollama line.
    fn record_ollama(&mut self, line: &Value) {
        let message = line.get("message");
        let text = line
            .get("response")
            .or_else(|| message.and_then(|m| m.get("content")))
            .and_then(Value::as_str);
        if text.is_some_and(|t| !t.is_empty())
            || message.and_then(ollama_thinking).is_some()
            || tool_calls(message).is_some()
        {
            self.usage.produced_chunks += 1;
        }
        if is_done(line) {
            self.upstream_finished = true;
            let count = |key: &str| line.get(key).and_then(Value::as_u64);
            self.usage.prompt_tokens = count("prompt_eval_count").or(self.usage.prompt_tokens);
            self.usage.completion_tokens = count("eval_count").or(self.usage.completion_tokens);
        }
    }

    /// An event in the client's own dialect, passed on with only `model` restored and read
    /// only as far as billing needs (see `probe`); false when it is unusual and must be
    /// read whole the general way (errors included).
    fn pass_through(&mut self, text: &str, out: &mut Vec<Bytes>) -> bool {
        let Some(top) = RawObject::parse(text.as_bytes()) else {
            return false;
        };
        let mut frame = Vec::with_capacity(text.len() + self.model.len() + 8);
        match self.upstream {
            Dialect::OpenAi => {
                let Some(counts) = top.field::<UsageCounts>("usage") else {
                    return false;
                };
                let Some(choices) = top.borrowed::<Vec<Choice>>("choices") else {
                    return false;
                };
                if let Some(u) = &counts {
                    self.usage.prompt_tokens = u.prompt_tokens.or(self.usage.prompt_tokens);
                    self.usage.completion_tokens =
                        u.completion_tokens.or(self.usage.completion_tokens);
                }
                let choices = choices.unwrap_or_default();
                let produced = choices.iter().any(|c| {
                    let delta = c.delta.as_ref();
                    non_empty(c.text.as_ref().or(delta.and_then(|d| d.content.as_ref())))
                        || delta.is_some_and(|d| d.has_openai_reasoning() || d.tool_calls > 0)
                });
                if produced {
                    self.usage.produced_chunks += 1;
                }
                if choices.iter().any(|c| c.finish_reason.is_some()) {
                    self.upstream_finished = true;
                }
                let usage_only = choices.is_empty() && counts.is_some();
                if usage_only && !self.wants_usage {
                    return true; // asked for by the gateway, not by the client
                }
                frame.extend_from_slice(b"data: ");
                top.write_with_model(&self.model, false, &mut frame);
                frame.extend_from_slice(b"\n\n");
            }
            Dialect::Ollama => {
                let Some(message) = top.borrowed::<Message>("message") else {
                    return false;
                };
                let Some(response) = top.borrowed::<std::borrow::Cow<str>>("response") else {
                    return false;
                };
                let (Some(done), Some(prompt), Some(completion)) = (
                    top.field::<bool>("done"),
                    top.field::<u64>("prompt_eval_count"),
                    top.field::<u64>("eval_count"),
                ) else {
                    return false;
                };
                let message = message.as_ref();
                let text = response
                    .as_ref()
                    .or(message.and_then(|m| m.content.as_ref()));
                if non_empty(text)
                    || message.is_some_and(|m| non_empty(m.thinking.as_ref()) || m.tool_calls > 0)
                {
                    self.usage.produced_chunks += 1;
                }
                top.write_with_model(&self.model, false, &mut frame);
                frame.push(b'\n');
                if done == Some(true) {
                    self.upstream_finished = true;
                    self.usage.prompt_tokens = prompt.or(self.usage.prompt_tokens);
                    self.usage.completion_tokens = completion.or(self.usage.completion_tokens);
                    self.ended = true;
                }
            }
        }
        out.push(Bytes::from(frame));
        true
    }

    fn openai_passthrough(&mut self, mut chunk: Value, out: &mut Vec<Bytes>) {
        self.record_openai(&chunk);
        let usage_only = chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
            && openai_usage_counts(&chunk).is_some();
        if usage_only && !self.wants_usage {
            return; // asked for by the gateway, not by the client
        }
        self.restore_model(&mut chunk);
        out.push(sse_data(&chunk));
    }

    fn ollama_passthrough(&mut self, mut line: Value, out: &mut Vec<Bytes>) {
        self.record_ollama(&line);
        self.restore_model(&mut line);
        out.push(ndjson_line(&line));
        if is_done(&line) {
            self.ended = true;
        }
    }

    fn restore_model(&self, value: &mut Value) {
        if let Some(obj) = value.as_object_mut() {
            if obj.contains_key("model") {
                obj.insert("model".into(), json!(self.model));
            }
        }
    }

    fn openai_to_ollama(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.record_openai(chunk);
        let Some(choice) = first_choice(chunk) else {
            return; // the usage chunk: its counts go into the final line
        };
        let delta = choice.get("delta");
        let content = choice
            .get("text")
            .or_else(|| delta.and_then(|d| d.get("content")))
            .and_then(Value::as_str)
            .unwrap_or("");
        if self.endpoint == Endpoint::Generate {
            if !content.is_empty() {
                let mut line = self.ollama_line_start();
                line.insert("response".into(), json!(content));
                line.insert("done".into(), json!(false));
                out.push(ndjson_line(&Value::Object(line)));
            }
        } else {
            let thinking = delta.and_then(openai_reasoning);
            if !content.is_empty() || thinking.is_some() {
                let mut message = Map::new();
                message.insert("role".into(), json!("assistant"));
                message.insert("content".into(), json!(content));
                if let Some(thinking) = thinking {
                    message.insert("thinking".into(), json!(thinking));
                }
                out.push(self.ollama_message_line(message));
            }
            if let Some(fragments) = tool_calls(delta) {
                self.calls.add(fragments);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
            self.flush_calls(out);
        }
    }

    /// Sends the accumulated tool calls as one Ollama line.
    fn flush_calls(&mut self, out: &mut Vec<Bytes>) {
        if self.calls.is_empty() {
            return;
        }
        let mut message = Map::new();
        message.insert("role".into(), json!("assistant"));
        message.insert("content".into(), json!(""));
        message.insert("tool_calls".into(), Value::Array(self.calls.take_ollama()));
        out.push(self.ollama_message_line(message));
    }

    fn ollama_line_start(&self) -> Map<String, Value> {
        let mut line = Map::new();
        line.insert("model".into(), json!(self.model));
        line.insert("created_at".into(), json!(self.clock.rfc3339()));
        line
    }

    fn ollama_message_line(&self, message: Map<String, Value>) -> Bytes {
        let mut line = self.ollama_line_start();
        line.insert("message".into(), Value::Object(message));
        line.insert("done".into(), json!(false));
        ndjson_line(&Value::Object(line))
    }

    fn ollama_to_openai(&mut self, line: &Value, out: &mut Vec<Bytes>) {
        self.record_ollama(line);
        if self.endpoint == Endpoint::Generate {
            let text = line.get("response").and_then(Value::as_str).unwrap_or("");
            if !text.is_empty() {
                out.push(self.completion_chunk(text, None));
            }
        } else {
            self.ollama_message_to_delta(line.get("message"), out);
        }
        if !is_done(line) {
            return;
        }
        let done_reason = line.get("done_reason").and_then(Value::as_str);
        let finish = openai_finish_reason(done_reason, self.calls_sent > 0);
        out.push(match self.endpoint {
            Endpoint::Generate => self.completion_chunk("", Some(finish)),
            _ => self.chat_chunk(Map::new(), Some(finish)),
        });
        if self.wants_usage {
            out.push(self.openai_chunk(json!([]), Some(openai_usage(self.usage))));
        }
        out.push(Bytes::from_static(SSE_DONE));
        self.ended = true;
    }

    /// The delta for one Ollama chat line: role on the first chunk, then content, thinking
    /// and whole tool calls; nothing for a line with nothing new.
    fn ollama_message_to_delta(&mut self, message: Option<&Value>, out: &mut Vec<Bytes>) {
        let content = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let thinking = message.and_then(ollama_thinking);
        let calls = tool_calls(message);
        if self.role_sent && content.is_empty() && thinking.is_none() && calls.is_none() {
            return;
        }
        let mut delta = Map::new();
        if !self.role_sent {
            delta.insert("role".into(), json!("assistant"));
            self.role_sent = true;
        }
        if !content.is_empty() || calls.is_none() {
            delta.insert("content".into(), json!(content));
        }
        if let Some(thinking) = thinking {
            delta.insert("reasoning_content".into(), json!(thinking));
        }
        if let Some(calls) = calls {
            let first = self.calls_sent;
            self.calls_sent += calls.len();
            let calls = calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    let index = first + i;
                    let id = openai_call_id(call, self.base, index);
                    let mut call = ollama_call_to_openai(call, id);
                    if let Some(obj) = call.as_object_mut() {
                        obj.insert("index".into(), json!(index));
                    }
                    call
                })
                .collect();
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        out.push(self.chat_chunk(delta, None));
    }

    fn chat_chunk(&self, delta: Map<String, Value>, finish: Option<&str>) -> Bytes {
        let choice = json!({ "index": 0, "delta": delta, "finish_reason": finish });
        self.openai_chunk(json!([choice]), None)
    }

    fn completion_chunk(&self, text: &str, finish: Option<&str>) -> Bytes {
        let choice = json!({ "index": 0, "text": text, "logprobs": null, "finish_reason": finish });
        self.openai_chunk(json!([choice]), None)
    }

    fn openai_chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let object = match self.endpoint {
            Endpoint::Generate => "text_completion",
            _ => "chat.completion.chunk",
        };
        let mut chunk = Map::new();
        chunk.insert("id".into(), json!(completion_id(self.endpoint, self.base)));
        chunk.insert("object".into(), json!(object));
        chunk.insert("created".into(), json!(self.created));
        chunk.insert("model".into(), json!(self.model));
        chunk.insert("choices".into(), choices);
        if let Some(usage) = usage {
            chunk.insert("usage".into(), usage);
        }
        sse_data(&Value::Object(chunk))
    }
}

fn is_done(line: &Value) -> bool {
    line.get("done").and_then(Value::as_bool) == Some(true)
}
