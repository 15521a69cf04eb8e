//! Answers and stream events in the request's own dialect, read without building a tree:
//! the few top-level fields billing reads are found as raw text (nothing allocated), parsed
//! into small structs, and the body goes back out as the upstream wrote it with only the
//! text of `model` replaced. Anything unusual (an error, a field of an unexpected type, a
//! repeated field) gives None, and the caller reads it whole the general way.

use std::borrow::Cow;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The top-level fields either dialect's billing reads; all others are skipped unread.
#[derive(Deserialize)]
struct Fields<'a> {
    /// Kept when null too: it is replaced, never added a second time.
    #[serde(default, borrow, deserialize_with = "present")]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    choices: Option<&'a RawValue>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
    #[serde(default, borrow)]
    response: Option<&'a RawValue>,
    #[serde(default, borrow)]
    done: Option<&'a RawValue>,
    #[serde(default, borrow)]
    prompt_eval_count: Option<&'a RawValue>,
    #[serde(default, borrow)]
    eval_count: Option<&'a RawValue>,
    #[serde(default, borrow)]
    embeddings: Option<&'a RawValue>,
}

/// One JSON object and the raw text of the fields billing reads.
pub(crate) struct RawObject<'a> {
    text: &'a str,
    fields: Fields<'a>,
}

impl<'a> RawObject<'a> {
    /// The object in `text`; None when it is not an object, or reports an error (the
    /// general path words those).
    pub(crate) fn parse(text: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(text).ok()?;
        if !text.trim_start().starts_with('{') {
            return None;
        }
        let fields: Fields<'a> = serde_json::from_str(text).ok()?;
        let me = Self { text, fields };
        let error = me.raw("error").is_some();
        (!error && me.raw("object") != Some("\"error\"")).then_some(me)
    }

    /// A field's raw JSON text (None when absent or null).
    pub(crate) fn raw(&self, key: &str) -> Option<&'a str> {
        let f = &self.fields;
        let raw = match key {
            "model" => f.model,
            "error" => f.error,
            "object" => f.object,
            "usage" => f.usage,
            "choices" => f.choices,
            "data" => f.data,
            "message" => f.message,
            "response" => f.response,
            "done" => f.done,
            "prompt_eval_count" => f.prompt_eval_count,
            "eval_count" => f.eval_count,
            "embeddings" => f.embeddings,
            _ => None,
        };
        raw.map(RawValue::get).filter(|r| *r != "null")
    }

    /// A field read as `T`: Some(None) when absent or null, None when of another shape.
    pub(crate) fn field<T: DeserializeOwned>(&self, key: &str) -> Option<Option<T>> {
        match self.raw(key) {
            None => Some(None),
            Some(raw) => serde_json::from_str(raw).ok().map(Some),
        }
    }

    /// A field holding borrowed text (choices, messages): Some(None) when absent or null.
    pub(crate) fn borrowed<T: Deserialize<'a>>(&self, key: &str) -> Option<Option<T>> {
        match self.raw(key) {
            None => Some(None),
            Some(raw) => serde_json::from_str(raw).ok().map(Some),
        }
    }

    /// Whether a field is a non-empty array (false when absent or null; None otherwise).
    pub(crate) fn non_empty_array(&self, key: &str) -> Option<bool> {
        Some(
            self.field::<Vec<IgnoredAny>>(key)?
                .is_some_and(|v| !v.is_empty()),
        )
    }

    /// The object as the upstream wrote it with `model` set to `model`: its value's text
    /// replaced where there is one; otherwise added first when `always`, else left out.
    pub(crate) fn write_with_model(self, model: &str, always: bool, out: &mut Vec<u8>) {
        let text = self.text;
        if let Some(old) = self.fields.model {
            // The raw value is a slice of `text`: its place is the distance between them.
            let start = old.get().as_ptr() as usize - text.as_ptr() as usize;
            let end = start + old.get().len();
            out.extend_from_slice(&text.as_bytes()[..start]);
            // A &str always serialises into a Vec.
            let _ = serde_json::to_writer(&mut *out, model);
            out.extend_from_slice(&text.as_bytes()[end..]);
        } else if always {
            // parse() saw that the text opens an object.
            let brace = text.find('{').map_or(0, |i| i + 1);
            let (head, rest) = text.split_at(brace);
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(b"\"model\":");
            let _ = serde_json::to_writer(&mut *out, model);
            if !rest.trim_start().starts_with('}') {
                out.push(b',');
            }
            out.extend_from_slice(rest.as_bytes());
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// A field that is there, null or not.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The counts of an OpenAI `usage` object.
#[derive(Deserialize)]
pub(crate) struct UsageCounts {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// What billing reads of an OpenAI choice (whole answers carry `message`, stream chunks
/// `delta`, completions `text`).
#[derive(Deserialize)]
pub(crate) struct Choice<'a> {
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Message<'a>>,
    #[serde(default, borrow)]
    pub delta: Option<Message<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// What billing reads of a message or delta: its texts and how many tool calls it makes.
#[derive(Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    /// Ollama's reasoning text.
    #[serde(default, borrow)]
    pub thinking: Option<Cow<'a, str>>,
    /// vLLM's reasoning text, and the newer OpenAI name for it.
    #[serde(default, borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reasoning: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "count_calls")]
    pub tool_calls: usize,
}

impl Message<'_> {
    /// Non-empty OpenAI reasoning text (`reasoning_content`, else `reasoning`).
    pub(crate) fn has_openai_reasoning(&self) -> bool {
        let r = self.reasoning_content.as_ref().or(self.reasoning.as_ref());
        r.is_some_and(|r| !r.is_empty())
    }
}

/// Whether a text is there and not empty.
pub(crate) fn non_empty(text: Option<&Cow<'_, str>>) -> bool {
    text.is_some_and(|t| !t.is_empty())
}

/// The length of a `tool_calls` array (0 for null).
fn count_calls<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let calls: Option<Vec<IgnoredAny>> = Option::deserialize(d)?;
    Ok(calls.map_or(0, |c| c.len()))
}

#[cfg(test)]
mod tests {
    use super::RawObject;

    fn with_model(text: &str, always: bool) -> String {
        let mut out = Vec::new();
        RawObject::parse(text.as_bytes())
            .expect("object")
            .write_with_model("m\"1", always, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn only_the_model_text_changes() {
        let cases = [
            (
                r#"{"a":1, "model" : "x" ,"b":[1.50]}"#,
                true,
                r#"{"a":1, "model" : "m\"1" ,"b":[1.50]}"#,
            ),
            (r#"{"model":null,"b":2}"#, true, r#"{"model":"m\"1","b":2}"#),
            (r#" {"b":2}"#, true, r#" {"model":"m\"1","b":2}"#),
            ("{ }", true, r#"{"model":"m\"1" }"#),
            (r#"{"b":2}"#, false, r#"{"b":2}"#),
            (
                r#"{"b":"model","c":{"model":"inner"}}"#,
                false,
                r#"{"b":"model","c":{"model":"inner"}}"#,
            ),
        ];
        for (text, always, expected) in cases {
            assert_eq!(with_model(text, always), expected, "{text}");
            let _: serde_json::Value = serde_json::from_str(expected).expect("still JSON");
        }
    }

    #[test]
    fn errors_repeats_and_non_objects_go_the_general_way() {
        for text in [
            r#"{"error":"boom"}"#,
            r#"{"object":"error","message":"boom"}"#,
            r#"{"model":"a","model":"b"}"#,
            r#"["model"]"#,
            "[]",
            "{",
        ] {
            assert!(RawObject::parse(text.as_bytes()).is_none(), "{text}");
        }
        let ok = RawObject::parse(br#"{"error":null,"usage":null,"done":true}"#).expect("object");
        assert_eq!(
            (ok.raw("error"), ok.raw("usage"), ok.raw("done")),
            (None, None, Some("true"))
        );
    }
}
