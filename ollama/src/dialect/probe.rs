//! Answers and stream events in the request's own dialect, read without building a tree:
//! the top level as raw text, and only the few fields billing reads parsed into small
//! structs. The body goes back out with just `model` replaced. Anything unusual (an error,
//! a field of an unexpected type) gives None, and the caller reads it whole the general way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The top level of one JSON object, its values still raw.
pub(crate) struct RawObject<'a> {
    fields: BTreeMap<Cow<'a, str>, &'a RawValue>,
}

impl<'a> RawObject<'a> {
    /// The object in `text`; None when it is not an object, or reports an error (the
    /// general path words those).
    pub(crate) fn parse(text: &'a [u8]) -> Option<Self> {
        let fields: BTreeMap<Cow<'a, str>, &'a RawValue> = serde_json::from_slice(text).ok()?;
        let me = Self { fields };
        let error = me.raw("error").is_some_and(|e| e != "null");
        (!error && me.raw("object") != Some("\"error\"")).then_some(me)
    }

    /// A field's raw JSON text.
    pub(crate) fn raw(&self, key: &str) -> Option<&'a str> {
        self.fields.get(key).map(|v| v.get())
    }

    /// A field read as `T`: Some(None) when absent or null, None when of another shape.
    pub(crate) fn field<T: DeserializeOwned>(&self, key: &str) -> Option<Option<T>> {
        match self.raw(key) {
            None | Some("null") => Some(None),
            Some(raw) => serde_json::from_str(raw).ok().map(Some),
        }
    }

    /// A field holding borrowed text (choices, messages): Some(None) when absent or null.
    pub(crate) fn borrowed<T: Deserialize<'a>>(&self, key: &str) -> Option<Option<T>> {
        match self.raw(key) {
            None | Some("null") => Some(None),
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

    /// The object as JSON with `model` set to `model` (added when `always`, else only
    /// replaced where the upstream sent one); every other field as the upstream wrote it.
    pub(crate) fn write_with_model(self, model: &str, always: bool, out: &mut Vec<u8>) {
        // A &str always serialises.
        let name = serde_json::value::to_raw_value(model).ok();
        // The same map, borrowing for no longer than `name` lives.
        let mut fields: BTreeMap<Cow<'_, str>, &RawValue> = self.fields;
        if let Some(name) = &name {
            if always || fields.contains_key("model") {
                fields.insert(Cow::Borrowed("model"), name);
            }
        }
        // Raw values and string keys always serialise into a Vec.
        let _ = serde_json::to_writer(out, &fields);
    }
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
