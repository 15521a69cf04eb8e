//! Parsing and validating a downstream request body, so type errors are answered with a
//! message that names the field and the fix instead of an upstream's stack trace.
//!
//! Token limits in the dialect's own spellings (OpenAI `max_tokens` and
//! `max_completion_tokens`, Ollama `options.num_predict`) must be JSON integers: 1.5, "10"
//! or a number beyond 2^64 (which the parser reads as a float) are refused with a 400;
//! negative integers are Ollama's "no limit" and pass, to be clamped to the output cap by
//! `upstream_call`. Three OpenAI fields are bounded because they multiply what the upstream
//! generates or returns: `n` must be 1 (one choice per request; it is not forwarded),
//! `top_logprobs` (chat) at most 20 and `logprobs` (completions) at most 5, as OpenAI
//! itself allows; llama-server would otherwise return a probability list the size of the
//! vocabulary for every token.

use serde_json::{Map, Value};

use super::errors::{truncate, RequestError};
use super::{ApiError, Dialect, Endpoint, Request};

type Result<T> = std::result::Result<T, RequestError>;

const HINT_MODEL: &str =
    "name the model as a string, e.g. \"llama3.2\", or leave it out to use the agent's default";
const HINT_MESSAGES: &str = "send \"messages\": [{\"role\": \"user\", \"content\": \"...\"}, ...]";
const HINT_MESSAGE: &str =
    "each message is an object like {\"role\": \"user\", \"content\": \"hi\"}";
const HINT_ROLE: &str = "set \"role\" to \"system\", \"user\", \"assistant\" or \"tool\"";
const HINT_OLLAMA_CONTENT: &str = "send the text as a string (images go in \"images\")";
const HINT_OPENAI_CONTENT: &str =
    "send a string or an array of parts like {\"type\": \"text\", \"text\": \"...\"}";
const HINT_PART: &str = "each content part is an object with a string \"type\"";
const HINT_IMAGES: &str = "send \"images\" as an array of base64-encoded strings";
const HINT_TOOL_CALLS: &str =
    "send an array of {\"function\": {\"name\": \"...\", \"arguments\": ...}} objects";
const HINT_BOOL: &str = "use true or false";
const HINT_TOKENS: &str = "give a whole number of tokens, e.g. 256";
const HINT_NUMBER: &str = "give a number, e.g. 0.7";
const HINT_SEED: &str = "give a whole number, e.g. 42";
const HINT_STOP: &str = "give a string or an array of strings";
const HINT_OPTIONS: &str =
    "put sampling options in an object, e.g. \"options\": {\"temperature\": 0.7}";
const HINT_STREAM_OPTIONS: &str = "send \"stream_options\": {\"include_usage\": true}";
const HINT_TOOLS: &str =
    "send an array of {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": ...}} objects";
const HINT_PROMPT: &str = "send \"prompt\": \"...\" with the text to complete";
const HINT_SYSTEM: &str = "send the system prompt as a string";
const HINT_INPUT: &str = "send \"input\": \"text\" or an array of strings";
const HINT_TEXT_ONLY: &str = "token-id input is not supported here; send text";
const HINT_ONE_PROMPT: &str = "batch completions are not supported; send one prompt per request";
const HINT_FORMAT: &str = "use \"json\" or a JSON schema object";
const HINT_N: &str = "the gateway generates one choice per request; leave `n` out or send 1, and send several requests for several answers";
const HINT_TOP_LOGPROBS: &str =
    "ask for at most 20 alternatives per token, e.g. \"top_logprobs\": 5";
const HINT_LOGPROBS: &str = "ask for at most 5 alternatives per token, e.g. \"logprobs\": 2";
const HINT_RESPONSE_FORMAT: &str = "use {\"type\": \"json_object\"} or {\"type\": \"json_schema\", \"json_schema\": {\"name\": ..., \"schema\": {...}}}";

/// Fields holding a token limit, which must be integers: at the top level of an OpenAI body,
/// inside `options` of an Ollama one. The upstream request caps them (`upstream_call`).
pub(super) const OPENAI_TOKEN_KEYS: &[&str] = &["max_tokens", "max_completion_tokens"];
pub(super) const OLLAMA_TOKEN_KEYS: &[&str] = &["num_predict"];

/// Parses and validates a downstream request body: malformed JSON, a non-object body, missing
/// or mistyped fields give a 400 naming the field and the fix. `model` may be absent.
pub fn parse_request(
    dialect: Dialect,
    endpoint: Endpoint,
    body: &[u8],
) -> std::result::Result<Request, ApiError> {
    Ok(parse(dialect, endpoint, body)?)
}

fn parse(dialect: Dialect, endpoint: Endpoint, body: &[u8]) -> Result<Request> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RequestError::InvalidJson {
        detail: e.to_string(),
    })?;
    let Some(obj) = value.as_object() else {
        return Err(RequestError::NotAnObject {
            got: describe(&value),
        });
    };
    let check = Check {
        dialect,
        endpoint,
        obj,
    };
    let model = check.opt_str("model", HINT_MODEL)?.map(str::to_string);
    let stream_field = check.opt_bool("stream")?;
    let stream = match endpoint {
        Endpoint::Embed => false,
        _ => stream_field.unwrap_or(dialect == Dialect::Ollama),
    };
    let client_wants_usage = match dialect {
        Dialect::OpenAi => check.include_usage()?,
        Dialect::Ollama => false,
    };
    check.output_format()?;
    check.sampling()?;
    if dialect == Dialect::OpenAi && endpoint != Endpoint::Embed {
        check.choices()?;
    }
    if let Some(tools) = obj.get("tools") {
        check_tools(tools)?;
    }
    let prompt_chars = match endpoint {
        Endpoint::Chat => check.messages()?,
        Endpoint::Generate => check.prompt()?,
        Endpoint::Embed => check.input()?,
    };
    Ok(Request {
        dialect,
        endpoint,
        model,
        stream,
        client_wants_usage,
        body: value,
        prompt_chars,
    })
}

/// Validation of one body.
struct Check<'a> {
    dialect: Dialect,
    endpoint: Endpoint,
    obj: &'a Map<String, Value>,
}

impl<'a> Check<'a> {
    fn path(&self) -> &'static str {
        self.endpoint.path(self.dialect)
    }

    fn missing(&self, field: impl Into<String>, hint: &'static str) -> RequestError {
        RequestError::Missing {
            field: field.into(),
            endpoint: self.path(),
            hint,
        }
    }

    fn opt_str(&self, key: &str, hint: &'static str) -> Result<Option<&'a str>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong(key, "a string", other, hint)),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong(key, "a boolean", other, HINT_BOOL)),
        }
    }

    fn include_usage(&self) -> Result<bool> {
        let options = match self.obj.get("stream_options") {
            None | Some(Value::Null) => return Ok(false),
            Some(Value::Object(o)) => o,
            Some(other) => {
                return Err(wrong(
                    "stream_options",
                    "an object",
                    other,
                    HINT_STREAM_OPTIONS,
                ))
            }
        };
        match options.get("include_usage") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong(
                "stream_options.include_usage",
                "a boolean",
                other,
                HINT_BOOL,
            )),
        }
    }

    /// Ollama `format` or OpenAI `response_format`.
    fn output_format(&self) -> Result<()> {
        match (
            self.dialect,
            self.obj.get("format"),
            self.obj.get("response_format"),
        ) {
            (Dialect::Ollama, Some(format), _) => check_format(format),
            (Dialect::OpenAi, _, Some(format)) => check_response_format(format),
            _ => Ok(()),
        }
    }

    /// Sampling parameters: top level for OpenAI, inside `options` for Ollama.
    fn sampling(&self) -> Result<()> {
        let (prefix, fields, token_keys) = match (self.dialect, self.obj.get("options")) {
            (Dialect::OpenAi, _) => ("", self.obj, OPENAI_TOKEN_KEYS),
            (Dialect::Ollama, None | Some(Value::Null)) => return Ok(()),
            (Dialect::Ollama, Some(Value::Object(options))) => {
                ("options.", options, OLLAMA_TOKEN_KEYS)
            }
            (Dialect::Ollama, Some(other)) => {
                return Err(wrong("options", "an object", other, HINT_OPTIONS))
            }
        };
        for key in token_keys {
            if let Some(v) = present(fields, key) {
                if !is_integer(v) {
                    return Err(wrong(
                        format!("{prefix}{key}"),
                        "an integer",
                        v,
                        HINT_TOKENS,
                    ));
                }
            }
        }
        for key in [
            "temperature",
            "top_p",
            "frequency_penalty",
            "presence_penalty",
        ] {
            if let Some(v) = present(fields, key) {
                if !v.is_number() {
                    return Err(wrong(format!("{prefix}{key}"), "a number", v, HINT_NUMBER));
                }
            }
        }
        if let Some(v) = present(fields, "seed") {
            if !is_integer(v) {
                return Err(wrong(format!("{prefix}seed"), "an integer", v, HINT_SEED));
            }
        }
        if let Some(v) = present(fields, "stop") {
            let ok = match v {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            };
            if !ok {
                return Err(wrong(
                    format!("{prefix}stop"),
                    "a string or an array of strings",
                    v,
                    HINT_STOP,
                ));
            }
        }
        Ok(())
    }

    /// OpenAI `n`, `logprobs` and `top_logprobs`: one choice, and at most as many
    /// alternatives per token as OpenAI allows (see the module docs).
    fn choices(&self) -> Result<()> {
        if let Some(v) = present(self.obj, "n") {
            match v.as_u64() {
                Some(1) => {}
                _ if is_integer(v) => {
                    return Err(unsupported("n", format!("asks for {v} choices"), HINT_N))
                }
                _ => return Err(wrong("n", "an integer", v, HINT_N)),
            }
        }
        let (key, most, hint) = match self.endpoint {
            Endpoint::Chat => ("top_logprobs", 20, HINT_TOP_LOGPROBS),
            _ => ("logprobs", 5, HINT_LOGPROBS),
        };
        if let Some(v) = present(self.obj, key) {
            match v.as_u64() {
                Some(n) if n <= most => {}
                _ if is_integer(v) => {
                    let problem = format!("is {v}, outside 0 to {most}");
                    return Err(unsupported(key, problem, hint));
                }
                _ => return Err(wrong(key, "an integer", v, hint)),
            }
        }
        Ok(())
    }

    /// Validates `messages`; returns the characters of their text.
    fn messages(&self) -> Result<usize> {
        let messages = match self.obj.get("messages") {
            None | Some(Value::Null) => return Err(self.missing("messages", HINT_MESSAGES)),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(wrong(
                    "messages",
                    "an array of message objects",
                    other,
                    HINT_MESSAGES,
                ))
            }
        };
        let mut chars = 0;
        for (i, message) in messages.iter().enumerate() {
            let Some(m) = message.as_object() else {
                return Err(wrong(
                    format!("messages[{i}]"),
                    "an object",
                    message,
                    HINT_MESSAGE,
                ));
            };
            match m.get("role") {
                Some(Value::String(_)) => {}
                None | Some(Value::Null) => {
                    return Err(self.missing(format!("messages[{i}].role"), HINT_ROLE))
                }
                Some(other) => {
                    return Err(wrong(
                        format!("messages[{i}].role"),
                        "a string",
                        other,
                        HINT_ROLE,
                    ))
                }
            }
            chars += self.content(i, m.get("content"))?;
            if let Some(images) = present(m, "images") {
                let ok = images
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string));
                if !ok {
                    return Err(wrong(
                        format!("messages[{i}].images"),
                        "an array of strings",
                        images,
                        HINT_IMAGES,
                    ));
                }
            }
            if let Some(calls) = present(m, "tool_calls") {
                check_tool_calls(i, calls)?;
            }
        }
        Ok(chars)
    }

    /// Validates one message's `content`; returns its text's characters.
    fn content(&self, i: usize, content: Option<&Value>) -> Result<usize> {
        let field = || format!("messages[{i}].content");
        match (self.dialect, content) {
            (_, None | Some(Value::Null)) => Ok(0),
            (_, Some(Value::String(s))) => Ok(s.chars().count()),
            (Dialect::OpenAi, Some(Value::Array(parts))) => {
                let mut chars = 0;
                for (j, part) in parts.iter().enumerate() {
                    let typed = part.get("type").is_some_and(Value::is_string);
                    if !typed {
                        return Err(wrong(
                            format!("messages[{i}].content[{j}]"),
                            "an object with a string \"type\"",
                            part,
                            HINT_PART,
                        ));
                    }
                    if let Some(text) = part.get("text").and_then(Value::as_str) {
                        chars += text.chars().count();
                    }
                }
                Ok(chars)
            }
            (Dialect::OpenAi, Some(other)) => Err(wrong(
                field(),
                "a string or an array of content parts",
                other,
                HINT_OPENAI_CONTENT,
            )),
            (Dialect::Ollama, Some(other)) => {
                Err(wrong(field(), "a string", other, HINT_OLLAMA_CONTENT))
            }
        }
    }

    /// Validates the Generate prompt; returns its characters (plus Ollama's `system`).
    fn prompt(&self) -> Result<usize> {
        let prompt = self.obj.get("prompt").filter(|v| !v.is_null());
        let chars = match (self.dialect, prompt) {
            (_, None) => return Err(self.missing("prompt", HINT_PROMPT)),
            (_, Some(Value::String(s))) => s.chars().count(),
            (Dialect::OpenAi, Some(Value::Array(items))) => text_array("prompt", items, true)?,
            (Dialect::OpenAi, Some(other)) => {
                return Err(wrong(
                    "prompt",
                    "a string or an array of strings",
                    other,
                    HINT_PROMPT,
                ))
            }
            (Dialect::Ollama, Some(other)) => {
                return Err(wrong("prompt", "a string", other, HINT_PROMPT))
            }
        };
        let system = match self.dialect {
            Dialect::Ollama => self.opt_str("system", HINT_SYSTEM)?,
            Dialect::OpenAi => None,
        };
        Ok(chars + system.map_or(0, |s| s.chars().count()))
    }

    /// Validates the Embed input (Ollama also takes the legacy `prompt`); returns its characters.
    fn input(&self) -> Result<usize> {
        let input = self.obj.get("input").filter(|v| !v.is_null());
        let (key, value) = match (self.dialect, input) {
            (_, Some(v)) => ("input", v),
            (Dialect::Ollama, None) => match self.obj.get("prompt").filter(|v| !v.is_null()) {
                Some(v) => ("prompt", v),
                None => return Err(self.missing("input", HINT_INPUT)),
            },
            (Dialect::OpenAi, None) => return Err(self.missing("input", HINT_INPUT)),
        };
        match value {
            Value::String(s) => Ok(s.chars().count()),
            Value::Array(items) => text_array(key, items, false),
            other => Err(wrong(
                key,
                "a string or an array of strings",
                other,
                HINT_INPUT,
            )),
        }
    }
}

/// Characters of an array of strings; rejects token ids and (for prompts) batches.
fn text_array(key: &str, items: &[Value], single: bool) -> Result<usize> {
    let mut chars = 0;
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => chars += s.chars().count(),
            other => {
                return Err(wrong(
                    format!("{key}[{i}]"),
                    "a string",
                    other,
                    HINT_TEXT_ONLY,
                ))
            }
        }
    }
    if single && items.len() != 1 {
        return Err(RequestError::Unsupported {
            field: key.to_string(),
            problem: format!("has {} prompts", items.len()),
            hint: HINT_ONE_PROMPT,
        });
    }
    Ok(chars)
}

fn check_tools(tools: &Value) -> Result<()> {
    let Value::Array(items) = tools else {
        return Err(wrong(
            "tools",
            "an array of tool objects",
            tools,
            HINT_TOOLS,
        ));
    };
    for (i, tool) in items.iter().enumerate() {
        if !tool.is_object() {
            return Err(wrong(format!("tools[{i}]"), "an object", tool, HINT_TOOLS));
        }
    }
    Ok(())
}

fn check_tool_calls(i: usize, calls: &Value) -> Result<()> {
    let Value::Array(items) = calls else {
        return Err(wrong(
            format!("messages[{i}].tool_calls"),
            "an array",
            calls,
            HINT_TOOL_CALLS,
        ));
    };
    for (j, call) in items.iter().enumerate() {
        let name = call.get("function").and_then(|f| f.get("name"));
        if !name.is_some_and(Value::is_string) {
            return Err(wrong(
                format!("messages[{i}].tool_calls[{j}].function.name"),
                "a string",
                name.unwrap_or(&Value::Null),
                HINT_TOOL_CALLS,
            ));
        }
    }
    Ok(())
}

fn check_format(format: &Value) -> Result<()> {
    match format {
        Value::Null | Value::Object(_) => Ok(()),
        Value::String(s) if s.is_empty() || s == "json" => Ok(()),
        other => Err(wrong(
            "format",
            "\"json\" or a JSON schema object",
            other,
            HINT_FORMAT,
        )),
    }
}

fn check_response_format(format: &Value) -> Result<()> {
    match format {
        Value::Null => Ok(()),
        Value::Object(o) => match o.get("type") {
            Some(Value::String(_)) => Ok(()),
            other => Err(wrong(
                "response_format.type",
                "a string",
                other.unwrap_or(&Value::Null),
                HINT_RESPONSE_FORMAT,
            )),
        },
        other => Err(wrong(
            "response_format",
            "an object",
            other,
            HINT_RESPONSE_FORMAT,
        )),
    }
}

/// `map[key]` unless absent or null.
fn present<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn wrong(
    field: impl Into<String>,
    expected: &'static str,
    got: &Value,
    hint: &'static str,
) -> RequestError {
    RequestError::WrongType {
        field: field.into(),
        expected,
        got: describe(got),
        hint,
    }
}

fn is_integer(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

fn unsupported(field: &str, problem: String, hint: &'static str) -> RequestError {
    RequestError::Unsupported {
        field: field.to_string(),
        problem,
        hint,
    }
}

/// A short description of a JSON value for error messages: `"three" (a string)`.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("{b} (a boolean)"),
        Value::Number(n) => format!("{n} (a number)"),
        Value::String(s) => format!("{} (a string)", Value::String(truncate(s, 40))),
        Value::Array(items) if items.len() == 1 => "an array (1 item)".to_string(),
        Value::Array(items) => format!("an array ({} items)", items.len()),
        Value::Object(_) => "an object".to_string(),
    }
}
