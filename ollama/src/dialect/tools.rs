//! Tool calls in both dialects. Ollama: `{"function":{"name","arguments":{...}}}` with
//! arguments as an object and results matched by `tool_name`. OpenAI:
//! `{"id","type":"function","function":{"name","arguments":"<json>"}}` with arguments as a
//! JSON string and results matched by `tool_call_id`.

use serde_json::{json, Map, Value};

/// The Ollama object holding OpenAI arguments that are not a JSON object.
pub(crate) const RAW_ARGUMENTS_KEY: &str = "__raw";

/// The name of a tool call in either dialect.
pub(crate) fn call_name(call: &Value) -> &str {
    call.get("function")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Arguments as OpenAI's JSON string: objects are encoded, strings kept, absent is `{}`.
pub(crate) fn encode_arguments(arguments: Option<&Value>) -> String {
    match arguments {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Arguments as Ollama's object: a JSON-object string is parsed, an empty one is `{}`, and
/// anything else is kept whole under [`RAW_ARGUMENTS_KEY`] so the model's output survives.
pub(crate) fn decode_arguments(arguments: Option<&Value>) -> Value {
    match arguments {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) => decode_argument_string(s),
        Some(other) => other.clone(),
    }
}

fn decode_argument_string(text: &str) -> Value {
    if text.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ RAW_ARGUMENTS_KEY: text }),
    }
}

/// An Ollama tool call as an OpenAI one with the given id.
pub(crate) fn ollama_call_to_openai(call: &Value, id: String) -> Value {
    let function = call.get("function");
    json!({
        "id": id,
        "type": "function",
        "function": {
            "name": call_name(call),
            "arguments": encode_arguments(function.and_then(|f| f.get("arguments"))),
        }
    })
}

/// An OpenAI tool call as an Ollama one (the id is dropped: Ollama matches by name).
pub(crate) fn openai_call_to_ollama(call: &Value) -> Value {
    let function = call.get("function");
    json!({
        "function": {
            "name": call_name(call),
            "arguments": decode_arguments(function.and_then(|f| f.get("arguments"))),
        }
    })
}

/// The tool calls of a message or delta, if it has a non-empty array of them.
pub(crate) fn tool_calls(message: Option<&Value>) -> Option<&Vec<Value>> {
    message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .filter(|calls| !calls.is_empty())
}

/// Ids for Ollama tool calls sent to an OpenAI upstream, and the matching of Ollama tool
/// results (by `tool_name`, else by position) to those ids.
#[derive(Debug, Default)]
pub(crate) struct CallIds {
    generated: usize,
    /// Calls of the most recent assistant message: (id, name, answered).
    recent: Vec<(String, String, bool)>,
    /// Calls of earlier assistant messages.
    older: Vec<(String, String)>,
}

impl CallIds {
    /// Registers an assistant message's calls; returns their ids (the call's own `id` if it
    /// has one, else `call_<n>` counting over the whole request).
    pub(crate) fn assistant(&mut self, calls: &[Value]) -> Vec<String> {
        let older = self.recent.drain(..).map(|(id, name, _)| (id, name));
        self.older.extend(older);
        let mut ids = Vec::with_capacity(calls.len());
        for call in calls {
            let id = match call.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => {
                    let id = format!("call_{}", self.generated);
                    self.generated += 1;
                    id
                }
            };
            self.recent
                .push((id.clone(), call_name(call).to_string(), false));
            ids.push(id);
        }
        ids
    }

    /// Notes that a tool result named its call's id itself.
    pub(crate) fn answered(&mut self, id: &str) {
        if let Some(call) = self.recent.iter_mut().find(|(own, _, _)| own == id) {
            call.2 = true;
        }
    }

    /// The id a tool result answers: the first unanswered call of the most recent assistant
    /// message with that name (or, without a name, the next unanswered one); failing that
    /// the latest call with that name anywhere.
    pub(crate) fn result(&mut self, tool_name: Option<&str>) -> Option<String> {
        let open = self
            .recent
            .iter_mut()
            .find(|(_, name, answered)| !answered && tool_name.is_none_or(|t| t == name));
        if let Some((id, _, answered)) = open {
            *answered = true;
            return Some(id.clone());
        }
        let tool_name = tool_name?;
        let recent = self.recent.iter().rev().map(|(id, name, _)| (id, name));
        let older = self.older.iter().rev().map(|(id, name)| (id, name));
        recent
            .chain(older)
            .find(|(_, name)| *name == tool_name)
            .map(|(id, _)| id.clone())
    }
}

/// OpenAI streamed tool-call fragments (`delta.tool_calls[i]`: id and name first, then
/// `function.arguments` pieces), accumulated into whole calls.
#[derive(Debug, Default)]
pub(crate) struct CallAccumulator {
    calls: Vec<PartialCall>,
}

#[derive(Debug, Default)]
struct PartialCall {
    index: u64,
    name: String,
    arguments: String,
}

impl CallAccumulator {
    /// Adds the fragments of one delta.
    pub(crate) fn add(&mut self, fragments: &[Value]) {
        for (position, fragment) in fragments.iter().enumerate() {
            let index = fragment
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            let slot = match self.calls.iter().position(|c| c.index == index) {
                Some(slot) => slot,
                None => {
                    self.calls.push(PartialCall {
                        index,
                        ..PartialCall::default()
                    });
                    self.calls.len() - 1
                }
            };
            let call = &mut self.calls[slot];
            let function = fragment.get("function");
            if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                call.name.push_str(name);
            }
            match function.and_then(|f| f.get("arguments")) {
                Some(Value::String(piece)) => call.arguments.push_str(piece),
                Some(object @ Value::Object(_)) => call.arguments.push_str(&object.to_string()),
                _ => {}
            }
        }
    }

    /// The whole calls so far as Ollama tool calls, emptying the accumulator.
    pub(crate) fn take_ollama(&mut self) -> Vec<Value> {
        let mut calls = std::mem::take(&mut self.calls);
        calls.sort_by_key(|c| c.index);
        calls
            .into_iter()
            .map(|c| {
                let mut function = Map::new();
                function.insert("name".into(), Value::String(c.name));
                function.insert("arguments".into(), decode_argument_string(&c.arguments));
                json!({ "function": function })
            })
            .collect()
    }

    /// Whether no call is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}
