//! Unknown keys and wrong types, checked against the JSON Schema.
//!
//! Walks the parsed document alongside the schema schemars derives from
//! [`super::file::FleetFile`], so the file and the schema editors see cannot disagree. Every
//! problem is reported and the walk goes on past it.

use serde_json::{Map, Value as Json};

use super::diag::Diagnostic;
use super::names::did_you_mean;
use super::spans::{Kind, Node, Pos, Seg, Spans};

/// Every schema violation in the document indexed by `spans`, each with the path of the key
/// it is about (so the rest of the file can still be checked without it).
pub(crate) fn check(spans: &Spans<'_>, schema: &Json) -> Vec<(Diagnostic, Vec<Seg>)> {
    let mut checker = Checker {
        spans,
        root: schema,
        diags: Vec::new(),
    };
    if let Some(root) = spans.node(&[]) {
        let hint = Hint {
            key: String::new(),
            example: None,
        };
        checker.walk(root, schema, &mut Vec::new(), &hint);
    }
    checker.diags
}

/// What the nearest property says about itself, for hints: its key and an example value.
struct Hint {
    key: String,
    example: Option<String>,
}

impl Hint {
    fn of(key: &str, property: &Json) -> Self {
        let example = property
            .get("examples")
            .and_then(Json::as_array)
            .and_then(|e| e.first())
            .map(toml_literal);
        Self {
            key: key.to_string(),
            example,
        }
    }
}

/// A JSON example written the TOML way (`"10s"`, `["a", "b"]`, `{ A = "1" }`).
fn toml_literal(example: &Json) -> String {
    match toml::Value::try_from(example) {
        Ok(v) => v.to_string(),
        Err(_) => example.to_string(),
    }
}

/// The schema that accepts anything, for references that lead nowhere.
static ANYTHING: Json = Json::Bool(true);

struct Checker<'a> {
    spans: &'a Spans<'a>,
    root: &'a Json,
    diags: Vec<(Diagnostic, Vec<Seg>)>,
}

impl<'a> Checker<'a> {
    fn report(&mut self, at: Pos, path: &[Seg], message: String, hint: Option<String>) {
        self.diags.push((
            Diagnostic::new(at.line, at.col, message, hint),
            path.to_vec(),
        ));
    }

    /// Follow `$ref`s into `$defs` (an unresolvable reference accepts anything).
    fn resolve(&self, mut schema: &'a Json) -> &'a Json {
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Json::as_str) else {
                return schema;
            };
            match reference
                .strip_prefix('#')
                .and_then(|pointer| self.root.pointer(pointer))
            {
                Some(target) => schema = target,
                None => return &ANYTHING,
            }
        }
        schema
    }

    fn walk(&mut self, node: Node<'_>, schema: &'a Json, path: &mut Vec<Seg>, hint: &Hint) {
        let schema = self.resolve(schema);
        let kind = node.kind();
        if matches!(kind, Kind::Absent) {
            return;
        }
        if let Some(allowed) = enum_values(self, schema) {
            self.check_enum(&kind, &allowed, path);
            return;
        }
        if let Some(alternatives) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            self.walk_alternatives(node, alternatives, path, hint);
            return;
        }
        let types = types_of(schema);
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, &kind)) {
            self.type_error(&kind, &types, schema, path, hint);
            return;
        }
        match kind {
            Kind::Table(table) => {
                let object = schema.as_object();
                let properties = object
                    .and_then(|o| o.get("properties"))
                    .and_then(Json::as_object);
                let additional = object.and_then(|o| o.get("additionalProperties"));
                for (key, item) in table.iter() {
                    path.push(Seg::Key(key.to_string()));
                    match (properties.and_then(|p| p.get(key)), additional) {
                        (Some(property), _) => {
                            let hint = Hint::of(key, property);
                            self.walk(Node::Item(item), property, path, &hint);
                        }
                        (None, Some(Json::Bool(false))) => self.unknown_key(key, properties, path),
                        (None, Some(extra)) if extra.is_object() => {
                            self.walk(Node::Item(item), extra, path, hint);
                        }
                        (None, _) => {}
                    }
                    path.pop();
                }
            }
            Kind::Array(elements) => {
                if let Some(items) = schema.get("items") {
                    for (i, element) in elements.into_iter().enumerate() {
                        path.push(Seg::Index(i));
                        self.walk(element, items, path, hint);
                        path.pop();
                    }
                }
            }
            Kind::Integer(n) => self.check_range(n, schema, path),
            _ => {}
        }
    }

    /// `anyOf`/`oneOf`: options are TOML's absent `null` plus one or more real schemas.
    fn walk_alternatives(
        &mut self,
        node: Node<'_>,
        alternatives: &'a [Json],
        path: &mut Vec<Seg>,
        hint: &Hint,
    ) {
        let real: Vec<&'a Json> = alternatives
            .iter()
            .map(|a| self.resolve(a))
            .filter(|a| types_of(a) != ["null"])
            .collect();
        if let [only] = real.as_slice() {
            self.walk(node, only, path, hint);
            return;
        }
        // Try each alternative on its own; the first that fits wins. Otherwise report the
        // problems of the one whose type fits, or a type error naming all of them.
        let kind = node.kind();
        let mut fitting = Vec::new();
        for alternative in &real {
            let outer = std::mem::take(&mut self.diags);
            self.walk(node, alternative, path, hint);
            let found = std::mem::replace(&mut self.diags, outer);
            if found.is_empty() {
                return;
            }
            let types = types_of(alternative);
            if types.is_empty() || types.iter().any(|t| type_matches(t, &kind)) {
                fitting.push(found);
            }
        }
        if fitting.len() == 1 {
            self.diags.extend(fitting.into_iter().flatten());
            return;
        }
        let mut types: Vec<&str> = Vec::new();
        for alternative in &real {
            for t in types_of(alternative) {
                if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
        self.type_error(&kind, &types, &Json::Null, path, hint);
    }

    fn type_error(
        &mut self,
        kind: &Kind<'_>,
        types: &[&str],
        schema: &Json,
        path: &[Seg],
        hint: &Hint,
    ) {
        let expected: Vec<&str> = types.iter().map(|t| type_noun(t)).collect();
        let message = format!(
            "{}: expected {}, found {}",
            self.spans.what(path),
            or_list(&expected),
            kind.noun()
        );
        let fix = match (&hint.example, types) {
            (_, ["array"])
                if matches!(kind, Kind::Table(_))
                    && path.len() == 1
                    && items_are_tables(self, schema) =>
            {
                format!("write [[{0}]] with double brackets, once per {0}", hint.key)
            }
            (Some(example), _) => format!("e.g. {} = {example}", hint.key),
            (None, ["object"]) => match first_example(schema) {
                Some((key, example)) => {
                    format!("write a table, e.g. {} = {{ {key} = {example} }}", hint.key)
                }
                None => format!("write a table, e.g. {} = {{ ... }}", hint.key),
            },
            (None, _) => format!("write {}", or_list(&expected)),
        };
        self.report(self.spans.value_pos(path), path, message, Some(fix));
    }

    fn unknown_key(&mut self, key: &str, properties: Option<&Map<String, Json>>, path: &[Seg]) {
        let parent = &path[..path.len().saturating_sub(1)];
        let message = match (self.spans.section(path), self.spans.key_in_section(parent)) {
            (None, _) => format!("unknown top-level key {key:?}"),
            (Some(s), inner) if inner.is_empty() || parent.len() < 2 => {
                format!("{s}: unknown key {key:?}")
            }
            (Some(s), inner) => format!("{s}: unknown key {key:?} in {inner}"),
        };
        let allowed: Vec<&str> = properties
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let hint = match did_you_mean(key, allowed.iter().copied()) {
            Some(close) => format!("did you mean {close:?}?"),
            None if allowed.is_empty() => "remove it".to_string(),
            None => format!("allowed keys: {}", allowed.join(", ")),
        };
        self.report(self.spans.key_pos(path), path, message, Some(hint));
    }

    fn check_enum(&mut self, kind: &Kind<'_>, allowed: &[&str], path: &[Seg]) {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        let one_of = format!("use one of {}", quoted.join(", "));
        let what = self.spans.what(path);
        let (message, hint) = match kind {
            Kind::String(s) if allowed.contains(s) => return,
            Kind::String(s) => (
                format!("{what} {s:?} is not allowed"),
                match did_you_mean(s, allowed.iter().copied()) {
                    Some(close) => format!("did you mean {close:?}? {}", capitalized(&one_of)),
                    None => one_of,
                },
            ),
            other => (
                format!("{what}: expected a string, found {}", other.noun()),
                one_of,
            ),
        };
        self.report(self.spans.value_pos(path), path, message, Some(hint));
    }

    fn check_range(&mut self, n: i64, schema: &Json, path: &[Seg]) {
        let (low, high) = integer_bounds(schema);
        let n = i128::from(n);
        if low.is_some_and(|l| n < l) || high.is_some_and(|h| n > h) {
            let range = match (low, high) {
                (Some(l), Some(h)) if h <= i128::from(i64::MAX) => format!("{l}..={h}"),
                (Some(l), _) => format!("{l} or more"),
                (None, Some(h)) => format!("{h} or less"),
                (None, None) => String::new(),
            };
            let message = format!("{} {n} is out of range", self.spans.what(path));
            self.report(self.spans.value_pos(path), path, message, Some(range));
        }
    }
}

/// The allowed strings when the schema is an enumeration (`enum`, or `oneOf` of `const`s).
fn enum_values<'s>(checker: &Checker<'s>, schema: &'s Json) -> Option<Vec<&'s str>> {
    if let Some(values) = schema.get("enum").and_then(Json::as_array) {
        return values.iter().map(Json::as_str).collect();
    }
    if let Some(value) = schema.get("const").and_then(Json::as_str) {
        return Some(vec![value]);
    }
    let alternatives = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Json::as_array)?;
    alternatives
        .iter()
        .map(|a| checker.resolve(a).get("const").and_then(Json::as_str))
        .collect()
}

/// The first property of an object schema that has an example, with that example.
fn first_example(schema: &Json) -> Option<(&str, String)> {
    schema
        .get("properties")?
        .as_object()?
        .iter()
        .find_map(|(key, property)| Some((key.as_str(), Hint::of(key, property).example?)))
}

/// Whether an array schema's items are tables (the `[[agent]]` kind of array).
fn items_are_tables(checker: &Checker<'_>, schema: &Json) -> bool {
    schema
        .get("items")
        .map(|items| types_of(checker.resolve(items)).contains(&"object"))
        .unwrap_or(false)
}

/// The schema's `type`s, without `null` (TOML has no null: an absent key is the null).
fn types_of(schema: &Json) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => {
            let all: Vec<&str> = ts.iter().filter_map(Json::as_str).collect();
            let real: Vec<&str> = all.iter().copied().filter(|t| *t != "null").collect();
            if real.is_empty() {
                all
            } else {
                real
            }
        }
        _ => Vec::new(),
    }
}

fn type_matches(schema_type: &str, kind: &Kind<'_>) -> bool {
    matches!(
        (schema_type, kind),
        ("string", Kind::String(_))
            | ("integer", Kind::Integer(_))
            | ("number", Kind::Integer(_) | Kind::Float)
            | ("boolean", Kind::Boolean)
            | ("array", Kind::Array(_))
            | ("object", Kind::Table(_))
    )
}

fn type_noun(schema_type: &str) -> &str {
    match schema_type {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        "array" => "an array",
        "object" => "a table",
        other => other,
    }
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Bounds of an integer from `minimum`/`maximum` and the Rust type in `format`.
fn integer_bounds(schema: &Json) -> (Option<i128>, Option<i128>) {
    let from_format: (Option<i128>, Option<i128>) =
        match schema.get("format").and_then(Json::as_str) {
            Some("uint8") => (Some(0), Some(u8::MAX.into())),
            Some("uint16") => (Some(0), Some(u16::MAX.into())),
            Some("uint32") => (Some(0), Some(u32::MAX.into())),
            Some("uint64" | "uint") => (Some(0), Some(u64::MAX.into())),
            Some("int8") => (Some(i8::MIN.into()), Some(i8::MAX.into())),
            Some("int16") => (Some(i16::MIN.into()), Some(i16::MAX.into())),
            Some("int32") => (Some(i32::MIN.into()), Some(i32::MAX.into())),
            _ => (None, None),
        };
    let bound = |key: &str| -> Option<i128> {
        let v = schema.get(key)?;
        v.as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
            // A fractional bound on an integer: the nearest integer inside it.
            .or_else(|| {
                v.as_f64().map(|f| if key == "minimum" { f.ceil() } else { f.floor() } as i128)
            })
    };
    let low = match (bound("minimum"), from_format.0) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let high = match (bound("maximum"), from_format.1) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Vec<String> {
        let doc = toml_edit::Document::parse(text).unwrap();
        let spans = Spans::new(text, doc.as_table());
        let mut diags: Vec<Diagnostic> = check(&spans, &crate::fleet::json_schema())
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        diags.sort_by_key(|d| (d.line, d.col));
        diags
            .into_iter()
            .map(|d| {
                format!(
                    "{}:{}: {} ({})",
                    d.line,
                    d.col,
                    d.message,
                    d.hint.unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_good_file_has_no_problems() {
        let text = r#"
[node]
uid_base = 1000000000
[defaults]
memory = "2GiB"
cpu = 2
restart = "on-failure"
backoff = { initial = "1s" }
[[agent]]
name = "a"
memory = 1073741824
env = { A = "1" }
[[service]]
name = "s"
ports = [9000]
health.http = "http://127.0.0.1:9000/"
"#;
        assert_eq!(check_text(text), Vec::<String>::new());
    }

    #[test]
    fn unknown_keys_suggest_or_list() {
        let text = "[node]\nnmae = \"x\"\n[runtime]\nfrobnicate = 1\n[[agent]]\nname = \"a\"\nmemroy = 1\nbackoff.initl = \"1s\"\n[servce]\n";
        assert_eq!(
            check_text(text),
            [
                r#"2:1: [node]: unknown key "nmae" (did you mean "name"?)"#,
                r#"4:1: [runtime]: unknown key "frobnicate" (allowed keys: node, openclaw, rootfs, runtimes)"#,
                r#"7:1: [[agent]] "a": unknown key "memroy" (did you mean "memory"?)"#,
                r#"8:9: [[agent]] "a": unknown key "initl" in backoff (did you mean "initial"?)"#,
                r#"9:2: unknown top-level key "servce" (did you mean "service"?)"#,
            ]
        );
    }

    #[test]
    fn wrong_types_enums_and_ranges() {
        let text = "[[agent]]\ncpu = \"two\"\nmemory = 1.5\nrestart = \"sometimes\"\n[[service]]\nports = [70000, -1]\nhealth = { retries = -3 }\n";
        let got = check_text(text);
        assert_eq!(got.len(), 6, "{got:#?}");
        assert!(
            got[0].starts_with("2:7: [[agent]] #1: cpu: expected a number, found a string"),
            "{}",
            got[0]
        );
        assert!(
            got[1].starts_with(
                "3:10: [[agent]] #1: memory: expected an integer or a string, found a float"
            ),
            "{}",
            got[1]
        );
        assert!(got[2].starts_with(r#"4:11: [[agent]] #1: restart "sometimes" is not allowed (use one of "always", "on-failure", "never")"#), "{}", got[2]);
        assert_eq!(
            got[3],
            "6:10: [[service]] #1: ports 70000 is out of range (0..=65535)"
        );
        assert_eq!(
            got[4],
            "6:17: [[service]] #1: ports -1 is out of range (0..=65535)"
        );
        assert_eq!(
            got[5],
            "7:22: [[service]] #1: health.retries -3 is out of range (0..=4294967295)"
        );
    }

    #[test]
    fn single_bracket_array_of_tables() {
        let got = check_text("[agent]\nname = \"a\"\n");
        assert_eq!(
            got,
            ["1:1: agent: expected an array, found a table (write [[agent]] with double brackets, once per agent)"]
        );
    }
}
