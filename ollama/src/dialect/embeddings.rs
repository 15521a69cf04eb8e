//! Embedding answers both ways: Ollama `{"model","embeddings":[[...]],"prompt_eval_count"}`
//! and OpenAI `{"object":"list","data":[{"object":"embedding","index","embedding"}],…}`.

use serde_json::{json, Map, Value};

use super::response::{insert_count, Translated};
use super::{Request, Usage};

/// An OpenAI embeddings answer as an Ollama `/api/embed` one.
pub(crate) fn openai_to_ollama(value: &Value, model: &str, usage: Usage) -> Translated {
    let missing = "data[].embedding";
    let mut data: Vec<&Value> = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or(missing)?
        .iter()
        .collect();
    data.sort_by_key(|d| d.get("index").and_then(Value::as_u64).unwrap_or(0));
    let embeddings = data
        .into_iter()
        .map(|d| d.get("embedding").filter(|e| e.is_array()).cloned())
        .collect::<Option<Vec<Value>>>()
        .ok_or(missing)?;
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("embeddings".into(), Value::Array(embeddings));
    out.insert("total_duration".into(), json!(0));
    out.insert("load_duration".into(), json!(0));
    insert_count(&mut out, "prompt_eval_count", usage.prompt_tokens);
    Ok(Value::Object(out))
}

/// An Ollama `/api/embed` answer as an OpenAI embeddings one, base64-encoded when the client
/// asked for `encoding_format: "base64"` (the OpenAI Python client's default).
pub(crate) fn ollama_to_openai(
    req: &Request,
    value: &Value,
    model: &str,
    usage: Usage,
) -> Translated {
    let embeddings = value
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or("embeddings")?;
    let base64 = req.body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = embeddings
        .iter()
        .enumerate()
        .map(|(index, embedding)| {
            let embedding = match (base64, embedding.as_array()) {
                (true, Some(floats)) => Value::String(floats_to_base64(floats)),
                _ => embedding.clone(),
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let prompt = usage.prompt_tokens.unwrap_or(0);
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": prompt, "total_tokens": prompt },
    }))
}

/// Little-endian f32s in standard base64, OpenAI's `encoding_format: "base64"`.
fn floats_to_base64(floats: &[Value]) -> String {
    let bytes: Vec<u8> = floats
        .iter()
        .flat_map(|f| (f.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
        .collect();
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        // `chunks` never yields an empty slice, so `chunk[0]` exists.
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(super::base64(input.as_bytes()), expected, "{input:?}");
        }
    }
}
