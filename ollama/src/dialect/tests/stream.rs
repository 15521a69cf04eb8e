//! StreamTranslator: streams both ways, fed whole, byte by byte and cut at awkward places
//! (inside `data:`, inside JSON strings, inside UTF-8 characters, between `\r` and `\n`),
//! all of which must give the same frames.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{fixture, ndjson_payloads, req, sse_payloads, CLOCK, CREATED, NOW};
use crate::dialect::{Dialect, Endpoint, Request, StreamTranslator, Usage};

use Dialect::{Ollama, OpenAi};
use Endpoint::{Chat, Generate};

/// What a translator produced for one way of feeding the input.
#[derive(Debug, PartialEq)]
struct Run {
    frames: Vec<Bytes>,
    usage: Usage,
    error: Option<String>,
    finished_normally: bool,
}

fn run_pieces(r: &Request, upstream: Dialect, pieces: &[&[u8]]) -> Run {
    let mut t = StreamTranslator::with_clock(r, upstream, "agent-model", CLOCK);
    let mut frames = Vec::new();
    for piece in pieces {
        frames.extend(t.feed(piece));
    }
    frames.extend(t.finish());
    assert!(t.finish().is_empty(), "a second finish() adds nothing");
    Run {
        frames,
        usage: t.usage(),
        error: t.upstream_error(),
        finished_normally: t.finished_normally(),
    }
}

/// Cut points that split a token or a character: inside every `data:`, inside JSON strings,
/// inside multi-byte characters, and between every `\r` and `\n`.
fn awkward_cuts(input: &[u8]) -> Vec<usize> {
    let mut cuts = Vec::new();
    for (i, window) in input.windows(2).enumerate() {
        if window == b"\r\n" {
            cuts.push(i + 1);
        }
    }
    for pattern in [
        &b"data:"[..],
        b"\"content\":\"",
        b"\"arguments\":\"",
        b"\"response\":\"",
    ] {
        for (i, window) in input.windows(pattern.len()).enumerate() {
            if window == pattern {
                cuts.push(i + 2);
                cuts.push(i + pattern.len() + 1);
            }
        }
    }
    for (i, byte) in input.iter().enumerate() {
        if byte & 0b1100_0000 == 0b1000_0000 {
            cuts.push(i); // a UTF-8 continuation byte
        }
    }
    cuts.retain(|&c| c > 0 && c < input.len());
    assert!(!cuts.is_empty());
    cuts
}

/// Runs `input` whole, byte by byte, in 7-byte pieces and cut at each awkward place; all
/// runs must be identical. Returns the run.
fn run_all(r: &Request, upstream: Dialect, input: &str) -> Run {
    let bytes = input.as_bytes();
    let whole = run_pieces(r, upstream, &[bytes]);
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run_pieces(r, upstream, &singles), whole, "byte by byte");
    let sevens: Vec<&[u8]> = bytes.chunks(7).collect();
    assert_eq!(run_pieces(r, upstream, &sevens), whole, "7-byte pieces");
    for cut in awkward_cuts(bytes) {
        let (a, b) = bytes.split_at(cut);
        assert_eq!(run_pieces(r, upstream, &[a, b]), whole, "cut at {cut}");
    }
    whole
}

/// [`run_all`] on the input with `\n`, with `\r\n` and with `\r` line ends: all the same.
fn run_all_line_ends(r: &Request, upstream: Dialect, input: &str) -> Run {
    let lf = run_all(r, upstream, input);
    assert_eq!(
        run_all(r, upstream, &input.replace('\n', "\r\n")),
        lf,
        "CRLF"
    );
    assert_eq!(run_all(r, upstream, &input.replace('\n', "\r")), lf, "CR");
    lf
}

fn ollama_delta(content: &str) -> Value {
    json!({ "model": "agent-model", "created_at": NOW,
            "message": { "role": "assistant", "content": content }, "done": false })
}

fn ollama_final(reason: &str, prompt: u64, eval: u64) -> Value {
    json!({ "model": "agent-model", "created_at": NOW,
            "message": { "role": "assistant", "content": "" },
            "done": true, "done_reason": reason,
            "total_duration": 0, "load_duration": 0,
            "prompt_eval_count": prompt, "prompt_eval_duration": 0,
            "eval_count": eval, "eval_duration": 0 })
}

fn chat_chunk(delta: Value, finish: Value) -> Value {
    json!({ "id": "chatcmpl-0123456789abcdef", "object": "chat.completion.chunk",
            "created": CREATED, "model": "agent-model",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
}

fn usage_chunk(object: &str, id: &str, prompt: u64, completion: u64) -> Value {
    json!({ "id": id, "object": object, "created": CREATED, "model": "agent-model",
            "choices": [],
            "usage": { "prompt_tokens": prompt, "completion_tokens": completion,
                       "total_tokens": prompt + completion } })
}

fn usage(prompt: Option<u64>, completion: Option<u64>, produced: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        produced_chunks: produced,
    }
}

fn streaming(dialect: Dialect, wants_usage: bool) -> Request {
    let mut body = json!({ "messages": [], "stream": true });
    if wants_usage {
        body["stream_options"] = json!({ "include_usage": true });
    }
    req(dialect, Chat, body)
}

/// The fixture's SSE payloads, with the client's model name, as a passthrough sends them.
fn upstream_payloads_renamed(input: &str) -> Vec<Value> {
    input
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| {
            if data == "[DONE]" {
                return json!("[DONE]");
            }
            let mut v: Value = serde_json::from_str(data).expect("fixture JSON");
            v["model"] = json!("agent-model");
            v
        })
        .collect()
}

#[test]
fn llama_server_stream_to_ollama() {
    let run = run_all_line_ends(
        &streaming(Ollama, false),
        OpenAi,
        fixture!("llama_server_stream.sse"),
    );
    assert_eq!(
        ndjson_payloads(&run.frames),
        vec![
            ollama_delta("$"),
            ollama_delta(" long"),
            ollama_delta(" most"),
            ollama_delta(" she"),
            ollama_delta(" c é"),
            ollama_final("length", 25, 5),
        ]
    );
    assert_eq!(run.usage, usage(Some(25), Some(5), 5));
    assert_eq!((run.error, run.finished_normally), (None, true));
}

#[test]
fn openai_passthrough_strips_the_usage_chunk_the_client_did_not_ask_for() {
    let input = fixture!("llama_server_stream.sse");
    let run = run_all_line_ends(&streaming(OpenAi, false), OpenAi, input);
    let mut expected = upstream_payloads_renamed(input);
    let usage_only = expected.remove(7);
    assert_eq!(
        usage_only["choices"],
        json!([]),
        "the fixture's usage chunk"
    );
    assert_eq!(sse_payloads(&run.frames), expected);
    assert_eq!(expected.len(), 8);
    // Usage is still recorded for billing.
    assert_eq!(run.usage, usage(Some(25), Some(5), 5));
    assert!(run.finished_normally);
}

#[test]
fn passthrough_copies_events_as_written_and_reads_unusual_ones_whole() {
    // Plain chunks leave with the upstream's own text, only `model` renamed.
    let plain =
        r#"{"choices":[{"delta":{"content":"caf\u00e9"},"index":0}],"model":"up","x":1.50}"#;
    let odd = r#"{"choices":[{"delta":{"content":[{"type":"text","text":"hi"}]},"index":0}],"model":"up"}"#;
    let input = format!("data: {plain}\n\ndata: {odd}\n\ndata: [DONE]\n\n");
    let run = run_all(&streaming(OpenAi, false), OpenAi, &input);
    assert_eq!(
        run.frames[0],
        Bytes::from(r#"data: {"choices":[{"delta":{"content":"caf\u00e9"},"index":0}],"model":"agent-model","x":1.50}"#.to_string() + "\n\n")
    );
    // Content that is not a string goes the general way: still passed on, renamed.
    let mut expected: Value = serde_json::from_str(odd).expect("JSON");
    expected["model"] = json!("agent-model");
    assert_eq!(sse_payloads(&run.frames[1..2]), vec![expected]);
    assert_eq!(run.usage, usage(None, None, 1));
}

#[test]
fn openai_passthrough_keeps_the_usage_chunk_when_asked() {
    let input = fixture!("llama_server_stream.sse");
    let run = run_all_line_ends(&streaming(OpenAi, true), OpenAi, input);
    assert_eq!(sse_payloads(&run.frames), upstream_payloads_renamed(input));
    assert_eq!(
        run.frames.last(),
        Some(&Bytes::from_static(b"data: [DONE]\n\n"))
    );
    assert_eq!(run.usage, usage(Some(25), Some(5), 5));
}

#[test]
fn vllm_tool_call_fragments_become_one_ollama_line() {
    let run = run_all_line_ends(
        &streaming(Ollama, false),
        OpenAi,
        fixture!("vllm_tool_stream.sse"),
    );
    assert_eq!(
        ndjson_payloads(&run.frames),
        vec![
            json!({ "model": "agent-model", "created_at": NOW, "done": false,
                    "message": { "role": "assistant", "content": "", "tool_calls": [
                        { "function": { "name": "get_weather", "arguments": { "city": "Paris", "unit": "celsius" } } },
                        { "function": { "name": "get_time", "arguments": { "tz": "Europe/Paris" } } },
                    ] } }),
            ollama_final("stop", 212, 39),
        ]
    );
    assert_eq!(run.usage, usage(Some(212), Some(39), 5));
}

#[test]
fn vllm_tool_stream_passes_through_to_openai_clients() {
    let input = fixture!("vllm_tool_stream.sse");
    let run = run_all_line_ends(&streaming(OpenAi, true), OpenAi, input);
    assert_eq!(sse_payloads(&run.frames), upstream_payloads_renamed(input));
    assert_eq!(run.usage, usage(Some(212), Some(39), 5));
}

#[test]
fn ollama_stream_to_openai_with_usage() {
    let run = run_all(
        &streaming(OpenAi, true),
        Ollama,
        fixture!("ollama_chat_stream.ndjson"),
    );
    assert_eq!(
        sse_payloads(&run.frames),
        vec![
            chat_chunk(
                json!({ "role": "assistant", "content": "The" }),
                Value::Null
            ),
            chat_chunk(json!({ "content": " sky é" }), Value::Null),
            chat_chunk(json!({ "content": " is blue." }), Value::Null),
            chat_chunk(json!({}), json!("stop")),
            usage_chunk("chat.completion.chunk", "chatcmpl-0123456789abcdef", 26, 3),
            json!("[DONE]"),
        ]
    );
    assert_eq!(run.usage, usage(Some(26), Some(3), 3));
    assert!(run.finished_normally);
}

#[test]
fn ollama_stream_to_openai_without_usage() {
    let run = run_all(
        &streaming(OpenAi, false),
        Ollama,
        fixture!("ollama_chat_stream.ndjson"),
    );
    let payloads = sse_payloads(&run.frames);
    assert_eq!(payloads.len(), 5);
    assert_eq!(payloads[3], chat_chunk(json!({}), json!("stop")));
    assert_eq!(payloads[4], json!("[DONE]"));
    assert_eq!(run.usage, usage(Some(26), Some(3), 3));
}

#[test]
fn ollama_tool_calls_stream_to_openai_as_one_delta() {
    let run = run_all(
        &streaming(OpenAi, false),
        Ollama,
        fixture!("ollama_tool_stream.ndjson"),
    );
    assert_eq!(
        sse_payloads(&run.frames),
        vec![
            chat_chunk(
                json!({ "role": "assistant", "tool_calls": [{
                    "index": 0, "id": "call_0123456789abcdef_0", "type": "function",
                    "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" },
                }] }),
                Value::Null
            ),
            chat_chunk(json!({}), json!("tool_calls")),
            json!("[DONE]"),
        ]
    );
    assert_eq!(run.usage, usage(Some(122), Some(20), 1));
}

#[test]
fn ollama_passthrough_restores_the_model_name() {
    let input = fixture!("ollama_chat_stream.ndjson");
    let run = run_all(&streaming(Ollama, false), Ollama, input);
    let expected: Vec<Value> = input
        .lines()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).expect("fixture JSON");
            v["model"] = json!("agent-model");
            v
        })
        .collect();
    assert_eq!(ndjson_payloads(&run.frames), expected);
    assert_eq!(run.usage, usage(Some(26), Some(3), 3));
    assert!(run.finished_normally);
}

#[test]
fn ollama_generate_stream_to_openai_completions() {
    let r = req(
        OpenAi,
        Generate,
        json!({ "prompt": "Sky?", "stream": true,
                                          "stream_options": { "include_usage": true } }),
    );
    let run = run_all(&r, Ollama, fixture!("ollama_generate_stream.ndjson"));
    let chunk = |text: &str, finish: Value| {
        json!({ "id": "cmpl-0123456789abcdef", "object": "text_completion", "created": CREATED,
                "model": "agent-model",
                "choices": [{ "index": 0, "text": text, "logprobs": null, "finish_reason": finish }] })
    };
    assert_eq!(
        sse_payloads(&run.frames),
        vec![
            chunk("Blue", Value::Null),
            chunk(", mostly.", Value::Null),
            chunk("", json!("length")),
            usage_chunk("text_completion", "cmpl-0123456789abcdef", 26, 4),
            json!("[DONE]"),
        ]
    );
    assert_eq!(run.usage, usage(Some(26), Some(4), 2));
}

#[test]
fn openai_completion_stream_to_ollama_generate() {
    let r = req(Ollama, Generate, json!({ "prompt": "Once", "raw": true }));
    let run = run_all_line_ends(&r, OpenAi, fixture!("openai_completion_stream.sse"));
    let line = |text: &str| json!({ "model": "agent-model", "created_at": NOW, "response": text, "done": false });
    assert_eq!(
        ndjson_payloads(&run.frames),
        vec![
            line(" the"),
            line(" fox"),
            json!({ "model": "agent-model", "created_at": NOW, "response": "", "done": true,
                    "done_reason": "length", "total_duration": 0, "load_duration": 0,
                    "prompt_eval_count": 3, "prompt_eval_duration": 0,
                    "eval_count": 2, "eval_duration": 0 }),
        ]
    );
    assert_eq!(run.usage, usage(Some(3), Some(2), 2));
}

const CONTENT: &str = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"model":"tiny-random","object":"chat.completion.chunk"}"#;
const FINISH: &str = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"model":"tiny-random","object":"chat.completion.chunk"}"#;
const USAGE: &str = r#"{"choices":[],"model":"tiny-random","object":"chat.completion.chunk","usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#;

fn sse(events: &[&str]) -> String {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

#[test]
fn openai_mid_stream_error_is_forwarded_and_recorded() {
    let error = r#"{"error":{"code":500,"message":"slot 0 crashed","type":"server_error"}}"#;
    let input = sse(&[CONTENT, error, CONTENT]);

    let run = run_all(&streaming(Ollama, false), OpenAi, &input);
    assert_eq!(
        ndjson_payloads(&run.frames),
        vec![ollama_delta("Hi"), json!({ "error": "slot 0 crashed" })]
    );
    assert_eq!(run.error.as_deref(), Some("slot 0 crashed"));
    assert!(!run.finished_normally);
    assert_eq!(run.usage, usage(None, None, 1));

    let run = run_all(&streaming(OpenAi, false), OpenAi, &input);
    let payloads = sse_payloads(&run.frames);
    assert_eq!(
        payloads[1],
        json!({ "error": { "message": "slot 0 crashed", "type": "server_error", "code": "upstream_error" } })
    );
    assert_eq!(payloads.len(), 2, "nothing after the error, and no [DONE]");
}

#[test]
fn ollama_mid_stream_error_is_forwarded_and_recorded() {
    let input = concat!(
        r#"{"model":"llama3.2","created_at":"2026-11-23T20:54:03.1Z","message":{"role":"assistant","content":"The"},"done":false}"#,
        "\n",
        r#"{"error":"an error was encountered while running the model: unexpected EOF"}"#,
        "\n"
    );
    let run = run_all(&streaming(OpenAi, false), Ollama, input);
    assert_eq!(
        sse_payloads(&run.frames),
        vec![
            chat_chunk(
                json!({ "role": "assistant", "content": "The" }),
                Value::Null
            ),
            json!({ "error": {
                "message": "an error was encountered while running the model: unexpected EOF",
                "type": "server_error", "code": "upstream_error" } }),
        ]
    );
    assert_eq!(
        run.error.as_deref(),
        Some("an error was encountered while running the model: unexpected EOF")
    );
    assert!(!run.finished_normally);

    let run = run_all(&streaming(Ollama, false), Ollama, input);
    assert_eq!(
        ndjson_payloads(&run.frames)[1],
        json!({ "error": "an error was encountered while running the model: unexpected EOF" })
    );
}

#[test]
fn a_cut_stream_ends_without_a_normal_end_but_counts_what_was_produced() {
    let input = sse(&[CONTENT, CONTENT]);
    let run = run_all(&streaming(OpenAi, false), OpenAi, &input);
    assert_eq!(
        sse_payloads(&run.frames).len(),
        2,
        "no [DONE] for a broken stream"
    );
    assert_eq!(run.usage, usage(None, None, 2));
    assert!(!run.finished_normally && run.error.is_none());

    let run = run_all(&streaming(Ollama, false), OpenAi, &input);
    assert_eq!(
        ndjson_payloads(&run.frames),
        vec![ollama_delta("Hi"), ollama_delta("Hi")]
    );
}

#[test]
fn finish_sends_the_end_once_when_done_never_came() {
    // Finish reason and usage arrived, the connection closed before `data: [DONE]`.
    let input = sse(&[CONTENT, FINISH, USAGE]);
    let run = run_all(&streaming(OpenAi, false), OpenAi, &input);
    let payloads = sse_payloads(&run.frames);
    assert_eq!(payloads.len(), 3, "content, finish, [DONE]: usage stripped");
    assert_eq!(payloads[2], json!("[DONE]"));
    assert!(run.finished_normally);

    let run = run_all(&streaming(Ollama, false), OpenAi, &input);
    assert_eq!(
        ndjson_payloads(&run.frames),
        vec![ollama_delta("Hi"), ollama_final("stop", 9, 1)]
    );

    // With [DONE] (twice, even), it is sent exactly once.
    let mut input = sse(&[CONTENT, FINISH, USAGE]);
    input.push_str("data: [DONE]\n\ndata: [DONE]\n\n");
    let run = run_all(&streaming(OpenAi, true), OpenAi, &input);
    let done = run
        .frames
        .iter()
        .filter(|f| f.as_ref() == b"data: [DONE]\n\n")
        .count();
    assert_eq!((done, run.frames.len()), (1, 4));
}

#[test]
fn sse_tolerance_comments_fields_no_space_no_blank_lines_and_garbage() {
    let first_delta = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}],"model":"x"}"#;
    let input = format!(
        ": keep-alive\n\nevent: message\nid: 1\nretry: 100\ndata:{first_delta}\n\ndata: not json\n\ndata: {CONTENT}\ndata: {FINISH}\ndata: {USAGE}\n{USAGE}\ndata:[DONE]\n"
    );
    let run = run_all(&streaming(Ollama, false), OpenAi, &input);
    assert_eq!(
        ndjson_payloads(&run.frames),
        vec![ollama_delta("Hi"), ollama_final("stop", 9, 1)]
    );
    assert!(run.finished_normally);
}

#[test]
fn split_multi_line_sse_data_is_joined() {
    let input = "data: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"Hi\"}}]}\n\n";
    // With `\r\n` line ends a parser that saw a blank line between `\r` and `\n` would
    // dispatch the first half alone and lose the event.
    let run = run_all_line_ends(&streaming(Ollama, false), OpenAi, input);
    assert_eq!(ndjson_payloads(&run.frames), vec![ollama_delta("Hi")]);
}

#[test]
fn content_types() {
    let t = StreamTranslator::new(&streaming(Ollama, false), OpenAi, "m");
    assert_eq!(t.content_type(), "application/x-ndjson");
    let t = StreamTranslator::new(&streaming(OpenAi, false), Ollama, "m");
    assert_eq!(t.content_type(), "text/event-stream");
}

#[test]
fn usage_is_available_mid_stream() {
    let mut t = StreamTranslator::with_clock(&streaming(OpenAi, false), Ollama, "m", CLOCK);
    let input = fixture!("ollama_chat_stream.ndjson");
    let (first_two, rest) = input.split_at(input.find(" is blue").expect("fixture"));
    assert_eq!(t.feed(first_two.as_bytes()).len(), 2);
    assert_eq!(t.usage(), usage(None, None, 2));
    assert_eq!(t.feed(rest.as_bytes()).len(), 3);
    assert_eq!(t.usage(), usage(Some(26), Some(3), 3));
}
