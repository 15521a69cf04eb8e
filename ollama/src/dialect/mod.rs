//! The two wire dialects (Ollama native, OpenAI-compatible): parsing downstream requests,
//! building upstream requests, and translating responses and streams both ways.
