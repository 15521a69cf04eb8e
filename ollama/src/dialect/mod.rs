//! The two wire dialects (Ollama native, OpenAI-compatible): parsing downstream requests,
//! building upstream requests, and translating responses and streams both ways.
//!
//! Everything here is pure translation with no IO, so the gateway can test it without a
//! server. The only ambient inputs are the clock and an id source, used for the timestamps
//! and ids that a translated body needs (`created_at`, `created`, `chatcmpl-…`).
//!
//! Lossy points, chosen once for the whole module:
//! - Ollama `images` become OpenAI `image_url` content parts with a `data:` URL (MIME type
//!   sniffed from the base64 prefix); OpenAI `image_url` parts with a `data:` URL become
//!   Ollama `images`, remote URLs are dropped (Ollama cannot fetch them).
//! - OpenAI content parts are joined with `"\n"` into one Ollama string (as vLLM does).
//! - OpenAI tool-call `arguments` that are not a JSON object become the Ollama object
//!   `{"__raw": "<the original string>"}` (empty arguments become `{}`), so nothing the
//!   model produced is lost when the conversation is sent back.

#![warn(missing_docs)]

mod clock;
mod embeddings;
mod errors;
mod framing;
mod models;
mod probe;
mod request;
mod response;
mod stream;
mod tools;
mod upstream;

#[cfg(test)]
mod tests;

pub use errors::{
    error_body, stream_error_frame, stream_error_frame_for, upstream_error_message, ApiError,
    ErrorKind, RequestError, ResponseError,
};
pub use models::{list_models, show_model, version, ModelInfo};
pub use request::parse_request;
pub use response::translate_response;
pub use stream::StreamTranslator;
pub use upstream::{
    upstream_call, Forwarding, UpstreamCall, GATEWAY_SET_FIELDS, OLLAMA_CHAT_FIELDS,
    OLLAMA_EMBED_FIELDS, OLLAMA_GENERATE_FIELDS, OLLAMA_OPTIONS, OPENAI_CHAT_FIELDS,
    OPENAI_COMPLETION_FIELDS, OPENAI_EMBED_FIELDS, TOKEN_LIMITS,
};

/// Content type of every non-streamed body (answers and errors).
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of an Ollama stream: one JSON object per line.
pub const CONTENT_TYPE_NDJSON: &str = "application/x-ndjson";
/// Content type of an OpenAI stream: server-sent events.
pub const CONTENT_TYPE_SSE: &str = "text/event-stream";

/// A wire dialect, spoken by an agent downstream or by an upstream model server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Ollama's native API (`/api/chat`, NDJSON streams).
    Ollama,
    /// The OpenAI-compatible API (`/v1/chat/completions`, SSE streams): vLLM, llama-server.
    OpenAi,
}

/// The kind of request, which fixes the body shapes in both dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Ollama `/api/chat`, OpenAI `/v1/chat/completions`.
    Chat,
    /// Ollama `/api/generate`, OpenAI `/v1/completions`.
    Generate,
    /// Ollama `/api/embed`, OpenAI `/v1/embeddings`.
    Embed,
}

impl Endpoint {
    /// The downstream path of this endpoint in `dialect`, for messages that name it.
    pub fn path(self, dialect: Dialect) -> &'static str {
        match (dialect, self) {
            (Dialect::Ollama, Endpoint::Chat) => "/api/chat",
            (Dialect::Ollama, Endpoint::Generate) => "/api/generate",
            (Dialect::Ollama, Endpoint::Embed) => "/api/embed",
            (Dialect::OpenAi, Endpoint::Chat) => "/v1/chat/completions",
            (Dialect::OpenAi, Endpoint::Generate) => "/v1/completions",
            (Dialect::OpenAi, Endpoint::Embed) => "/v1/embeddings",
        }
    }
}

/// Token counts seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens as the upstream counted them (OpenAI `prompt_tokens`, Ollama
    /// `prompt_eval_count`); `None` until the upstream reported them.
    pub prompt_tokens: Option<u64>,
    /// Generated tokens (OpenAI `completion_tokens`, Ollama `eval_count`); `None` until
    /// reported.
    pub completion_tokens: Option<u64>,
    /// Upstream events that carried generated content or tool-call data: a lower bound on
    /// the completion tokens of a stream that was cut before the upstream reported usage.
    pub produced_chunks: u64,
}

/// A downstream request, validated and normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The dialect the agent spoke.
    pub dialect: Dialect,
    /// What it asked for.
    pub endpoint: Endpoint,
    /// The model it named; `None` means the agent's default model.
    pub model: Option<String>,
    /// Whether the answer streams (Ollama defaults to true, OpenAI to false; never for Embed).
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: the client wants the final usage chunk.
    pub client_wants_usage: bool,
    /// The request body as sent (a JSON object whose known fields have been type-checked).
    pub body: serde_json::Value,
    /// Characters of prompt text (message contents, prompt, system, input), to estimate prompt
    /// tokens when a stream is cut before the upstream reports usage.
    pub prompt_chars: usize,
}
