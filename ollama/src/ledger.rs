//! The token ledger: one JSON line per request in an append-only file per UTC day under the
//! state dir. Each record is one `write(2)` to an `O_APPEND` file, so a crash can at worst
//! leave a torn last line, which readers skip and report; the next writer starts a fresh line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered in full.
    Ok,
    /// The client went away before the end: a stream is billed for what was produced (an
    /// estimate when the usage had not come yet), a whole answer is read to its end and
    /// billed with the upstream's counts.
    ClientClosed,
    /// Refused before reaching an upstream (bad input, unknown model, budget, ...).
    Refused,
    /// The upstream failed or timed out.
    UpstreamError,
}

/// One request, as billed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix time in milliseconds when the request arrived.
    pub ts_ms: u64,
    /// The agent whose socket it came in on.
    pub agent: String,
    /// The agent's team, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The model as the agent named it (after default and alias resolution): always a name
    /// the fleet configures, or [`REFUSED_MODEL`] for a request refused before its model was
    /// known to be one.
    pub model: String,
    /// For a request billed as [`REFUSED_MODEL`]: the name it asked for, cut to
    /// [`REQUESTED_MAX`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// The upstream that served it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Prompt tokens (from the upstream's usage; estimated when `estimated`).
    pub prompt_tokens: u64,
    /// Completion tokens (from the upstream's usage, or counted chunks when `estimated`).
    pub completion_tokens: u64,
    /// Time from request to last byte, in milliseconds.
    pub latency_ms: u64,
    /// HTTP status sent to the agent.
    pub status: u16,
    /// What happened.
    pub outcome: Outcome,
    /// True when the counts are estimates (a stream the client cut before the usage came).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

/// The model a refused request is billed (and labelled in metrics) under, whatever it named:
/// names an agent makes up never become ledger keys or metric series.
pub const REFUSED_MODEL: &str = "<refused>";

/// Characters of a refused request's model name kept in its ledger line.
pub const REQUESTED_MAX: usize = 64;

/// The longest ledger line read back; a longer one (written by an older clawkeep, or
/// damaged) is skipped and reported, never loaded whole.
pub const MAX_LINE: usize = 16 * 1024;

/// `s` cut to at most `max` characters, with `…` when something was cut.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Record {
    /// Prompt plus completion tokens.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// Why the ledger could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error(
    "ledger {path}: {source} (hint: the state dir's ledger/ must be writable by the supervisor)"
)]
pub struct LedgerError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The UTC date of `t` as `YYYY-MM-DD`.
pub fn utc_day(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..10).unwrap_or("1970-01-01").to_string()
}

/// Days since the Unix epoch of `t`'s UTC date: a cheap key for "same day" checks on the
/// hot path, where formatting a date each time would cost more than the check.
pub fn day_number(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

/// The next UTC midnight after `t`.
pub fn next_midnight(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs((secs / 86_400 + 1) * 86_400)
}

/// The writer side.
pub struct Ledger {
    dir: PathBuf,
    /// The open file and the day number it holds.
    current: Mutex<Option<(u64, File)>>,
}

impl Ledger {
    /// Open (creating) the ledger directory, readable by its owner only: it says who asked
    /// which model what and when.
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|source| LedgerError {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            current: Mutex::new(None),
        })
    }

    /// The file holding records of UTC day `day`.
    pub fn file_for(dir: &Path, day: &str) -> PathBuf {
        dir.join(format!("{day}.jsonl"))
    }

    /// Append one record (one write; the file is the day of the record's timestamp).
    pub fn append(&self, r: &Record) -> Result<(), LedgerError> {
        let at = UNIX_EPOCH + Duration::from_millis(r.ts_ms);
        let day = day_number(at);
        let path = || Self::file_for(&self.dir, &utc_day(at));
        let err = |source| LedgerError {
            path: path(),
            source,
        };
        let mut line = serde_json::to_vec(r).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        // A poisoned lock only means a writer panicked; the file handle is still good.
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.as_ref().is_none_or(|(d, _)| *d != day) {
            let path = path();
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .mode(0o600)
                .open(&path)
                .map_err(err)?;
            // After a crash the last line may be torn: start ours on a fresh line.
            if !ends_with_newline(&mut f).map_err(err)? {
                f.write_all(b"\n").map_err(err)?;
            }
            *cur = Some((day, f));
        }
        if let Some((_, f)) = cur.as_mut() {
            f.write_all(&line).map_err(err)?;
        }
        Ok(())
    }

    /// Flush written records to the disk (called periodically; records already survive a
    /// crash of the process without it).
    pub fn sync(&self) {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, f)) = cur.as_ref() {
            let _ = f.sync_data();
        }
    }
}

fn ends_with_newline(f: &mut File) -> std::io::Result<bool> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(b[0] == b'\n')
}

/// A line that could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

/// Lines that could not be read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TornLines {
    /// The first of them.
    pub first: Vec<Torn>,
    /// How many in all.
    pub count: usize,
}

impl TornLines {
    fn push(&mut self, t: Torn) {
        self.count += 1;
        if self.first.len() < 20 {
            self.first.push(t);
        }
    }
}

/// Records read back from the ledger.
#[derive(Debug, Default)]
pub struct Entries {
    /// Records at or after the `since` time, oldest first.
    pub records: Vec<Record>,
    /// Lines that were not whole records (a crash mid-write); skipped.
    pub torn: TornLines,
}

/// Read every record with `ts_ms >= since` from the ledger in `dir` into memory (for tests
/// and small ranges; [`for_each`] reads in constant memory).
pub fn read(dir: &Path, since: SystemTime) -> Result<Entries, LedgerError> {
    let mut records = Vec::new();
    let torn = for_each(dir, since, |r| records.push(r))?;
    Ok(Entries { records, torn })
}

/// Hand every record with `ts_ms >= since` in the ledger in `dir` to `f`, oldest first, one
/// at a time: memory stays constant whatever the ledger's size. Lines longer than
/// [`MAX_LINE`] and lines that are not records are skipped and counted.
pub fn for_each(
    dir: &Path,
    since: SystemTime,
    mut f: impl FnMut(Record),
) -> Result<TornLines, LedgerError> {
    let mut torn = TornLines::default();
    let since_ms = unix_ms(since);
    let first_day = utc_day(since);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(torn),
        Err(source) => {
            return Err(LedgerError {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|d| d >= first_day.as_str())
        })
        .collect();
    files.sort();
    let mut line = Vec::new();
    for path in files {
        let err = |source| LedgerError {
            path: path.clone(),
            source,
        };
        let mut r = BufReader::new(File::open(&path).map_err(err)?);
        let mut n = 0;
        loop {
            n += 1;
            let whole = match next_line(&mut r, &mut line, MAX_LINE).map_err(err)? {
                None => break,
                Some(whole) => whole,
            };
            if whole && line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Record>(&line)
                .ok()
                .filter(|_| whole)
            {
                Some(rec) if rec.ts_ms >= since_ms => f(rec),
                Some(_) => {}
                None => torn.push(Torn {
                    file: path.clone(),
                    line: n,
                }),
            }
        }
    }
    Ok(torn)
}

/// The next line of `r` (without its newline) into `buf`, at most `max` bytes of it: `Some(true)`
/// for a whole line, `Some(false)` for one longer than `max` (the rest is skipped, not kept),
/// `None` at the end.
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut whole = true;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(whole));
        }
        any = true;
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let room = max.saturating_sub(buf.len());
        if part.len() > room {
            whole = false;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(whole));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts_ms: u64, agent: &str, p: u64, c: u64) -> Record {
        Record {
            ts_ms,
            agent: agent.into(),
            team: None,
            model: "m".into(),
            requested: None,
            upstream: Some("u".into()),
            prompt_tokens: p,
            completion_tokens: c,
            latency_ms: 1,
            status: 200,
            outcome: Outcome::Ok,
            estimated: false,
        }
    }

    #[test]
    fn days_and_midnights() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_467_248); // 2026-11-23T...
        assert_eq!(utc_day(t), "2026-11-23");
        assert_eq!(utc_day(next_midnight(t)), "2026-11-24");
        assert_eq!(day_number(next_midnight(t)), day_number(t) + 1);
        assert_eq!(unix_ms(next_midnight(t)) % 86_400_000, 0);
    }

    #[test]
    fn torn_last_line_is_skipped_reported_and_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(d.path()).unwrap();
        let day0 = 1_795_392_000_000; // 2026-11-23T00:00:00Z
        l.append(&rec(day0 + 1, "a", 3, 4)).unwrap();
        // A crash in the middle of a write:
        let file = Ledger::file_for(d.path(), "2026-11-23");
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(br#"{"ts_ms":17953920"#).unwrap();
        drop(f);
        drop(l);
        // A new writer after the crash starts on a fresh line.
        let l = Ledger::open(d.path()).unwrap();
        l.append(&rec(day0 + 2, "b", 5, 6)).unwrap();
        let r = read(d.path(), UNIX_EPOCH).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records.iter().map(Record::tokens).sum::<u64>(), 18);
        assert_eq!(r.torn.first, vec![Torn { file, line: 2 }]);
        assert_eq!(r.torn.count, 1);
    }

    #[test]
    fn an_overlong_line_is_skipped_and_the_ledger_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("ledger");
        let l = Ledger::open(&dir).unwrap();
        let day0 = 1_795_392_000_000;
        l.append(&rec(day0 + 1, "a", 1, 1)).unwrap();
        // A line an older clawkeep wrote with an 8 MB model name, then a good one.
        let file = Ledger::file_for(&dir, "2026-11-23");
        let mut huge = rec(day0 + 2, "a", 1, 1);
        huge.model = "m".repeat(8 << 20);
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&serde_json::to_vec(&huge).unwrap()).unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        l.append(&rec(day0 + 3, "b", 2, 2)).unwrap();
        let mut seen = Vec::new();
        let torn = for_each(&dir, UNIX_EPOCH, |r| seen.push(r.agent)).unwrap();
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(torn.count, 1);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("été", 5), "été");
    }

    #[test]
    fn since_filters_by_time_and_day_files() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(d.path()).unwrap();
        let day0 = 1_795_392_000_000;
        l.append(&rec(day0 - 1000, "a", 1, 1)).unwrap(); // previous day's file
        l.append(&rec(day0 + 1000, "a", 2, 2)).unwrap();
        l.append(&rec(day0 + 5000, "a", 3, 3)).unwrap();
        let since = UNIX_EPOCH + Duration::from_millis(day0 + 2000);
        let r = read(d.path(), since).unwrap();
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].prompt_tokens, 3);
        assert_eq!(read(d.path(), UNIX_EPOCH).unwrap().records.len(), 3);
    }
}
