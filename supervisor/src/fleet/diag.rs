//! Diagnostics: `file:line:col: what is wrong (hint)`.

/// One problem found in a fleet file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// 1-based line, 0 when the problem has no position.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at `line:col` with an optional hint on how to fix it.
    pub fn new(line: usize, col: usize, message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            line,
            col,
            message: message.into(),
            hint,
        }
    }
}

/// Every problem found in one fleet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The file as the user named it.
    pub file: String,
    /// Problems in file order.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Problems of `file`, put in file order (line, then column; stable otherwise).
    pub fn new(file: impl Into<String>, mut items: Vec<Diagnostic>) -> Self {
        items.sort_by_key(|d| (d.line, d.col));
        Self {
            file: file.into(),
            items,
        }
    }
}

/// One line per problem, then a summary line saying that nothing was started.
impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.items {
            write!(f, "{}:{}:{}: {}", self.file, d.line, d.col, d.message)?;
            if let Some(h) = &d.hint {
                write!(f, " ({h})")?;
            }
            writeln!(f)?;
        }
        let n = self.items.len();
        let problems = if n == 1 { "problem" } else { "problems" };
        writeln!(
            f,
            "error: {n} {problems} in {}; nothing was started",
            self.file
        )
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_file_order_with_summary() {
        let d = Diagnostics::new(
            "fleet.toml",
            vec![
                Diagnostic::new(3, 1, "second", None),
                Diagnostic::new(1, 5, "first", Some("do this".into())),
            ],
        );
        assert_eq!(
            d.to_string(),
            "fleet.toml:1:5: first (do this)\nfleet.toml:3:1: second\n\
             error: 2 problems in fleet.toml; nothing was started\n"
        );
    }

    #[test]
    fn singular_summary() {
        let d = Diagnostics::new("f.toml", vec![Diagnostic::new(0, 0, "gone", None)]);
        assert!(d
            .to_string()
            .ends_with("error: 1 problem in f.toml; nothing was started\n"));
    }
}
