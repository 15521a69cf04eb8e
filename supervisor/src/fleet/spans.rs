//! Positions in the fleet file: key paths such as `["agent", 1, "memory"]` to `line:col`, and
//! the name users know a place by (`[[agent]] "research": memory`).

use std::ops::Range;

use toml_edit::{Item, Table, TableLike, Value};

/// One step of a key path: a key in a table or an index in an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A key in a table.
    Key(String),
    /// A position in an array (or array of tables).
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Self {
        Seg::Key(key.to_string())
    }
}

impl From<usize> for Seg {
    fn from(index: usize) -> Self {
        Seg::Index(index)
    }
}

/// Build a key path: `key_path!["agent", i, "memory"]`.
macro_rules! key_path {
    ($($seg:expr),* $(,)?) => {
        [$($crate::fleet::spans::Seg::from($seg)),*]
    };
}
pub(crate) use key_path;

/// A 1-based line and column (0:0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

/// A node of the parsed document, whichever toml_edit type holds it.
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    /// A table entry.
    Item(&'a Item),
    /// An element of an inline array.
    Value(&'a Value),
    /// An element of an array of tables.
    Table(&'a Table),
}

/// What a [`Node`] holds, with the TOML types flattened out.
pub(crate) enum Kind<'a> {
    /// A `[table]` or `{ inline = "table" }`.
    Table(&'a dyn TableLike),
    /// An array or array of tables.
    Array(Vec<Node<'a>>),
    /// A string.
    String(&'a str),
    /// An integer.
    Integer(i64),
    /// A float.
    Float,
    /// A boolean.
    Boolean,
    /// An offset or local date-time, date or time.
    Datetime,
    /// Nothing (a removed entry).
    Absent,
}

impl Kind<'_> {
    /// The TOML type, as a noun with its article: "a string", "an integer", ...
    pub(crate) fn noun(&self) -> &'static str {
        match self {
            Kind::Table(_) => "a table",
            Kind::Array(_) => "an array",
            Kind::String(_) => "a string",
            Kind::Integer(_) => "an integer",
            Kind::Float => "a float",
            Kind::Boolean => "a boolean",
            Kind::Datetime => "a date-time",
            Kind::Absent => "nothing",
        }
    }
}

fn value_kind(v: &Value) -> Kind<'_> {
    match v {
        Value::String(s) => Kind::String(s.value()),
        Value::Integer(i) => Kind::Integer(*i.value()),
        Value::Float(_) => Kind::Float,
        Value::Boolean(_) => Kind::Boolean,
        Value::Datetime(_) => Kind::Datetime,
        Value::Array(a) => Kind::Array(a.iter().map(Node::Value).collect()),
        Value::InlineTable(t) => Kind::Table(t),
    }
}

impl<'a> Node<'a> {
    /// What this node holds.
    pub(crate) fn kind(self) -> Kind<'a> {
        match self {
            Node::Item(Item::None) => Kind::Absent,
            Node::Item(Item::Value(v)) | Node::Value(v) => value_kind(v),
            Node::Item(Item::Table(t)) | Node::Table(t) => Kind::Table(t),
            Node::Item(Item::ArrayOfTables(a)) => Kind::Array(a.iter().map(Node::Table).collect()),
        }
    }

    /// Its span: the value, or the `[header]` of a table (none for dotted-key tables).
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
    }

    /// The child at `seg` with the span of its key (none for array elements).
    fn child(self, seg: &Seg) -> Option<(Option<Range<usize>>, Node<'a>)> {
        match (seg, self.kind()) {
            (Seg::Key(k), Kind::Table(t)) => t
                .get_key_value(k)
                .filter(|(_, item)| !item.is_none())
                .map(|(key, item)| (key.span(), Node::Item(item))),
            (Seg::Index(i), Kind::Array(elems)) => elems.get(*i).map(|n| (None, *n)),
            _ => None,
        }
    }
}

/// The parsed document with its text, answering "where is this key path?".
pub(crate) struct Spans<'a> {
    text: &'a str,
    root: &'a Table,
    line_starts: Vec<usize>,
}

/// What a path lookup found: key and value spans of the last step if it exists, and the span
/// of the deepest step that exists.
struct Found<'a> {
    node: Option<Node<'a>>,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    nearest: Option<Range<usize>>,
}

impl<'a> Spans<'a> {
    /// Index `text`, whose parsed root table is `root`.
    pub(crate) fn new(text: &'a str, root: &'a Table) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            text,
            root,
            line_starts,
        }
    }

    /// Line and column of a byte offset.
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let col = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        Pos {
            line: line.max(1),
            col: col + 1,
        }
    }

    fn pos_of(&self, span: Option<Range<usize>>) -> Pos {
        span.map_or(Pos { line: 1, col: 1 }, |s| self.pos(s.start))
    }

    fn find(&self, path: &[Seg]) -> Found<'a> {
        let mut node = Node::Table(self.root);
        let mut found = Found {
            node: Some(node),
            key: None,
            value: None,
            nearest: None,
        };
        for seg in path {
            match node.child(seg) {
                Some((key, child)) => {
                    node = child;
                    found.value = child.span();
                    found.key = key;
                    found.nearest = found
                        .value
                        .clone()
                        .or_else(|| found.key.clone())
                        .or(found.nearest);
                    found.node = Some(child);
                }
                None => {
                    found.node = None;
                    found.key = None;
                    found.value = None;
                    break;
                }
            }
        }
        found
    }

    /// The node at `path`, if the file has it.
    pub(crate) fn node(&self, path: &[Seg]) -> Option<Node<'a>> {
        self.find(path).node
    }

    /// Where the value at `path` is; for a missing one, the deepest table that exists (so a
    /// missing field points at its `[[agent]]` header).
    pub(crate) fn value_pos(&self, path: &[Seg]) -> Pos {
        let f = self.find(path);
        self.pos_of(f.value.or(f.key).or(f.nearest))
    }

    /// Where the key of `path` is (its value for array elements); falls back like
    /// [`Spans::value_pos`].
    pub(crate) fn key_pos(&self, path: &[Seg]) -> Pos {
        let f = self.find(path);
        self.pos_of(f.key.or(f.value).or(f.nearest))
    }

    /// The string at `path`, if there is one.
    pub(crate) fn str_at(&self, path: &[Seg]) -> Option<&'a str> {
        match self.node(path)?.kind() {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The section a path is in, as users know it: `[node]`, `[[agent]] "research"` or
    /// `[[agent]] #2` for an unnamed one; `None` for top-level keys themselves.
    pub(crate) fn section(&self, path: &[Seg]) -> Option<String> {
        match path {
            [Seg::Key(k), Seg::Index(i), ..] => {
                let name = self.str_at(&[Seg::Key(k.clone()), Seg::Index(*i), "name".into()]);
                Some(match name {
                    Some(n) => format!("[[{k}]] {n:?}"),
                    None => format!("[[{k}]] #{}", i + 1),
                })
            }
            [Seg::Key(k), _, ..] => Some(format!("[{k}]")),
            _ => None,
        }
    }

    /// The dotted key of `path` inside its section (array indices left out): `backoff.initial`.
    pub(crate) fn key_in_section(&self, path: &[Seg]) -> String {
        let skip = match path {
            [Seg::Key(_), Seg::Index(_), ..] => 2,
            [_] => 0,
            _ => 1,
        };
        let keys: Vec<&str> = path
            .iter()
            .skip(skip)
            .filter_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }

    /// The place of `path` for a message: `[[agent]] "research": memory`, `[node]`, `agent`.
    pub(crate) fn what(&self, path: &[Seg]) -> String {
        let key = self.key_in_section(path);
        match (self.section(path), key.is_empty()) {
            (Some(s), true) => s,
            (Some(s), false) => format!("{s}: {key}"),
            (None, _) => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"[node]
name = "n1"

[defaults]
backoff.initial = "1s"

[[agent]]
name = "research"
memory = "12MiB"

[[agent]]
soul = "x.md"
env = { "A" = "1", B = "2" }

[[service]]
name = "minio"
ports = [9000, 9001]
"#;

    fn with_spans(f: impl FnOnce(&Spans<'_>)) {
        let doc = toml_edit::Document::parse(TEXT).unwrap();
        let spans = Spans::new(TEXT, doc.as_table());
        f(&spans);
    }

    fn lc(p: Pos) -> (usize, usize) {
        (p.line, p.col)
    }

    #[test]
    fn values_and_keys() {
        with_spans(|s| {
            assert_eq!(lc(s.value_pos(&key_path!["node", "name"])), (2, 8));
            assert_eq!(lc(s.key_pos(&key_path!["node", "name"])), (2, 1));
            assert_eq!(
                lc(s.value_pos(&key_path!["agent", 0usize, "memory"])),
                (9, 10)
            );
            assert_eq!(
                lc(s.key_pos(&key_path!["agent", 1usize, "env", "B"])),
                (13, 20)
            );
            assert_eq!(
                lc(s.value_pos(&key_path!["service", 0usize, "ports", 1usize])),
                (17, 16)
            );
        });
    }

    #[test]
    fn tables_point_at_their_header() {
        with_spans(|s| {
            assert_eq!(lc(s.value_pos(&key_path!["node"])), (1, 1));
            assert_eq!(lc(s.value_pos(&key_path!["agent", 1usize])), (11, 1));
            // A dotted-key table has no header: its key is the place.
            assert_eq!(lc(s.value_pos(&key_path!["defaults", "backoff"])), (5, 1));
            assert_eq!(
                lc(s.value_pos(&key_path!["defaults", "backoff", "initial"])),
                (5, 19)
            );
        });
    }

    #[test]
    fn missing_fields_point_at_the_nearest_table() {
        with_spans(|s| {
            assert_eq!(
                lc(s.value_pos(&key_path!["agent", 1usize, "name"])),
                (11, 1)
            );
            assert_eq!(lc(s.key_pos(&key_path!["agent", 1usize, "name"])), (11, 1));
            assert_eq!(lc(s.value_pos(&key_path!["agent", 7usize, "name"])), (7, 1));
        });
    }

    #[test]
    fn names_of_places() {
        with_spans(|s| {
            assert_eq!(
                s.what(&key_path!["agent", 0usize, "memory"]),
                r#"[[agent]] "research": memory"#
            );
            assert_eq!(s.what(&key_path!["agent", 1usize]), "[[agent]] #2");
            assert_eq!(
                s.what(&key_path!["defaults", "backoff", "initial"]),
                "[defaults]: backoff.initial"
            );
            assert_eq!(
                s.what(&key_path!["service", 0usize, "ports", 1usize]),
                r#"[[service]] "minio": ports"#
            );
            assert_eq!(s.what(&key_path!["node"]), "node");
            assert_eq!(s.what(&key_path!["node", "name"]), "[node]: name");
        });
    }

    #[test]
    fn columns_count_characters() {
        let text = "a = \"ü\"\nb = 1\n";
        let doc = toml_edit::Document::parse(text).unwrap();
        let s = Spans::new(text, doc.as_table());
        assert_eq!(lc(s.pos(text.find('1').unwrap())), (2, 5));
        assert_eq!(lc(s.pos(0)), (1, 1));
    }
}
