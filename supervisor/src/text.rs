//! Text that agents or the store control, made safe to print on an operator's terminal:
//! control characters (escape sequences, carriage returns, NUL) are shown escaped.

use std::borrow::Cow;

/// `s` with every control character escaped (`\u{1b}`, `\r`, `\0`, ...); unchanged, and not
/// copied, when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_carriage_returns_are_shown_not_obeyed() {
        assert_eq!(printable("clone of research"), "clone of research");
        assert_eq!(
            printable("x\u{1b}[2J\rforged\0"),
            "x\\u{1b}[2J\\rforged\\u{0}"
        );
        assert!(matches!(printable("plain é"), Cow::Borrowed(_)));
    }
}
