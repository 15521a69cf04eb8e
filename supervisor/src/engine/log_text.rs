//! What an agent's output becomes in its log: text an operator's terminal can show safely
//! and that cannot pass for clawkeep's own events. Control characters other than newline
//! and tab are written as `\u{1b}`-style escapes, bytes that are not UTF-8 as U+FFFD, and a
//! line that starts like an event (`[clawkeep`) gets [`FORGED`] in front, so every line
//! of a log that starts with `[clawkeep ` was written by clawkeep.

/// What starts every line clawkeep writes into a process's log.
pub const EVENT_PREFIX: &str = "[clawkeep ";

/// Put in front of a line of output that starts like one of clawkeep's events.
pub const FORGED: &str = "(output) ";

/// The start of an event line, as far as a line of output may not imitate it.
const LOOKALIKE: &[u8] = b"[clawkeep";

/// Turns a stream of output bytes, in chunks of any size, into safe log text.
#[derive(Debug)]
pub struct OutputFilter {
    /// Bytes held back from the last chunk: an unfinished UTF-8 character, or the start of
    /// a line too short yet to tell whether it imitates an event.
    held: Vec<u8>,
    /// Whether the next byte starts a line.
    line_start: bool,
}

impl Default for OutputFilter {
    fn default() -> Self {
        Self {
            held: Vec::new(),
            line_start: true,
        }
    }
}

impl OutputFilter {
    /// The log text for `chunk` (some of it may be held back for the next call).
    pub fn filter(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(data.len() + 16);
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            if self.line_start {
                let n = rest.len().min(LOOKALIKE.len());
                if rest[..n] == LOOKALIKE[..n] {
                    if n < LOOKALIKE.len() && !rest.contains(&b'\n') {
                        // Too short to tell yet: wait for more.
                        self.held = rest.to_vec();
                        return out;
                    }
                    if n == LOOKALIKE.len() {
                        out.extend_from_slice(FORGED.as_bytes());
                    }
                }
            }
            // One line at a time (a newline byte is never inside a UTF-8 character).
            let end = rest.iter().position(|b| *b == b'\n').map(|i| i + 1);
            let (line, next) = rest.split_at(end.unwrap_or(rest.len()));
            let unfinished = decode_into(&mut out, line);
            self.line_start = end.is_some();
            if end.is_none() {
                self.held = unfinished.to_vec();
            }
            rest = next;
        }
        out
    }

    /// What is still held back, once the output has ended.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        let mut out = Vec::new();
        if self.line_start && held.starts_with(LOOKALIKE) {
            out.extend_from_slice(FORGED.as_bytes());
        }
        escape_into(&mut out, &String::from_utf8_lossy(&held));
        out
    }
}

/// Append `bytes` as escaped text; invalid sequences become U+FFFD. Returns the bytes of a
/// character left unfinished at the end (to be completed by the next chunk).
fn decode_into<'a>(out: &mut Vec<u8>, mut bytes: &'a [u8]) -> &'a [u8] {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                escape_into(out, s);
                return &[];
            }
            Err(e) => {
                let (ok, bad) = bytes.split_at(e.valid_up_to());
                // Valid by from_utf8's word: never the default.
                escape_into(out, std::str::from_utf8(ok).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.extend_from_slice("\u{fffd}".as_bytes());
                        bytes = &bad[n..];
                    }
                    None => return bad,
                }
            }
        }
    }
}

/// Append `s` with control characters (except newline and tab) escaped.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c as u8),
            c if c.is_control() => out.extend_from_slice(c.escape_unicode().to_string().as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> String {
        let mut f = OutputFilter::default();
        let out: Vec<u8> = chunks.iter().flat_map(|c| f.filter(c)).collect();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn terminal_controls_from_an_agent_are_written_as_escapes() {
        let got = all(&[b"red \x1b[31mtext\x1b[0m\r\n\tok\x07\n"]);
        assert_eq!(got, "red \\u{1b}[31mtext\\u{1b}[0m\\u{d}\n\tok\\u{7}\n");
    }

    #[test]
    fn output_cannot_pass_for_a_clawkeep_event_however_it_is_split() {
        let forged = b"hi\n[clawkeep 2026-12-05T00:00:00Z] restarting: it stayed unhealthy\n";
        let want = "hi\n(output) [clawkeep 2026-12-05T00:00:00Z] restarting: it stayed unhealthy\n";
        assert_eq!(all(&[forged]), want);
        for cut in 1..forged.len() {
            assert_eq!(all(&[&forged[..cut], &forged[cut..]]), want, "cut at {cut}");
        }
        let mut f = OutputFilter::default();
        let mut got = f.filter(b"[clawk");
        got.extend(f.finish());
        assert_eq!(got, b"[clawk", "held bytes come out at the end");
        // Only at the start of a line, and only the whole word.
        assert_eq!(all(&[b"x [clawkeep y\n[claw\n"]), "x [clawkeep y\n[claw\n");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters_even_split() {
        let e_acute = "é".as_bytes();
        assert_eq!(
            all(&[b"caf", &e_acute[..1], &e_acute[1..], b"\n"]),
            "café\n"
        );
        assert_eq!(all(&[b"a\xffb\n"]), "a\u{fffd}b\n");
        assert_eq!(
            all(&[b"\xc2\x9b2J\n"]),
            "\\u{9b}2J\n",
            "a C1 CSI is escaped"
        );
    }
}
