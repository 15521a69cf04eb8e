//! Per-process log files with size-based rotation, a tail reader for `clawkeep logs -n`, and
//! a live feed for `clawkeep logs -f`. clawkeep's own events about a process are also kept
//! in `<name>.events.log`, which the process's output never reaches: a flood of output
//! cannot rotate them away.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::fleet::LogPolicy;

/// The log of one supervised process: `<dir>/<name>.log`, rotated to `.log.1`, `.log.2`, ...
pub struct LogSink {
    path: PathBuf,
    policy: LogPolicy,
    file: Mutex<Option<(File, u64)>>,
    live: broadcast::Sender<Bytes>,
    /// Where events are kept apart (none for that sink itself).
    events: Option<Box<LogSink>>,
}

/// The most a process's events file grows before it is rotated (one older file is kept).
pub const EVENTS_MAX: u64 = 1 << 20;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
#[error("log {path}: {source}")]
pub struct LogError {
    /// The log file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl LogSink {
    /// A sink writing to `dir/name.log` (the directory must exist).
    pub fn new(dir: &Path, name: &str, policy: LogPolicy) -> Self {
        let events = Self::plain(
            dir,
            &format!("{name}.events"),
            LogPolicy {
                max_size: EVENTS_MAX,
                keep: 1,
            },
        );
        Self {
            events: Some(Box::new(events)),
            ..Self::plain(dir, name, policy)
        }
    }

    fn plain(dir: &Path, name: &str, policy: LogPolicy) -> Self {
        let (live, _) = broadcast::channel(256);
        Self {
            path: dir.join(format!("{name}.log")),
            policy,
            file: Mutex::new(None),
            live,
            events: None,
        }
    }

    /// The sink holding only clawkeep's events about this process.
    pub fn events(&self) -> &LogSink {
        self.events.as_deref().unwrap_or(self)
    }

    /// Path of the current log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn err(&self, source: std::io::Error) -> LogError {
        LogError {
            path: self.path.clone(),
            source,
        }
    }

    /// Append bytes, rotating first when they would push the file past its size limit.
    /// Followers get the bytes even if the disk write fails.
    pub fn append(&self, data: &[u8]) -> Result<(), LogError> {
        let _ = self.live.send(Bytes::copy_from_slice(data));
        // A poisoned lock only means another writer panicked mid-write; the file is still usable.
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| self.err(e))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            *guard = Some((f, len));
        }
        let needs_rotation = guard
            .as_ref()
            .is_some_and(|(_, len)| *len > 0 && len + data.len() as u64 > self.policy.max_size);
        if needs_rotation {
            *guard = None;
            self.rotate().map_err(|e| self.err(e))?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| self.err(e))?;
            *guard = Some((f, 0));
        }
        if let Some((f, len)) = guard.as_mut() {
            f.write_all(data).map_err(|e| self.err(e))?;
            *len += data.len() as u64;
        }
        Ok(())
    }

    /// Append a supervisor event as its own line, marked so it stands out from the process's
    /// output.
    /// The text is escaped like output (it may carry an agent's file or model names).
    pub fn event(&self, msg: &str) {
        let line = format!(
            "{}{}] {}\n",
            super::log_text::EVENT_PREFIX,
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            crate::text::printable(msg)
        );
        for sink in std::iter::once(self).chain(self.events.as_deref()) {
            if let Err(e) = sink.append(line.as_bytes()) {
                tracing::warn!("{e}");
            }
        }
    }

    fn rotate(&self) -> std::io::Result<()> {
        if self.policy.keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(self.rotated(self.policy.keep));
        for n in (1..self.policy.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    /// Subscribe to bytes appended from now on.
    pub fn follow(&self) -> broadcast::Receiver<Bytes> {
        self.live.subscribe()
    }

    /// The last `lines` lines, reaching into rotated files when the current one is short.
    pub fn tail(&self, lines: usize) -> Result<Vec<u8>, LogError> {
        if lines == 0 {
            return Ok(Vec::new());
        }
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut count = 0;
        for n in 0..=self.policy.keep {
            let path = if n == 0 {
                self.path.clone()
            } else {
                self.rotated(n)
            };
            let data = match tail_of_file(&path, lines) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LogError { path, source: e }),
            };
            count += data.iter().filter(|b| **b == b'\n').count();
            parts.push(data);
            if count > lines {
                break;
            }
        }
        let all: Vec<u8> = parts.into_iter().rev().flatten().collect();
        Ok(last_lines(&all, lines).to_vec())
    }
}

/// The last `n` lines of `buf` (an unterminated last line counts as a line).
fn last_lines(buf: &[u8], n: usize) -> &[u8] {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &buf[i + 1..];
            }
        }
    }
    buf
}

/// Read at most the last `lines` lines of a file, scanning backwards in blocks.
fn tail_of_file(path: &Path, lines: usize) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    const BLOCK: u64 = 64 * 1024;
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        f.seek(SeekFrom::Start(start))?;
        let mut block = vec![0; (pos - start) as usize];
        f.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
        pos = start;
        if buf.iter().filter(|b| **b == b'\n').count() > lines {
            break;
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dir: &Path, max: u64, keep: u32) -> LogSink {
        LogSink::new(
            dir,
            "p",
            LogPolicy {
                max_size: max,
                keep,
            },
        )
    }

    /// A scratch directory, removed when the returned guard is dropped.
    fn tmp(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("ck-logs-{name}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn rotates_at_size_and_keeps_n_files() {
        let dir = tmp("rotate");
        let d = dir.path();
        let s = sink(d, 100, 2);
        for i in 0..30 {
            s.append(format!("line {i:04}\n").as_bytes()).unwrap();
        }
        let cur = std::fs::metadata(d.join("p.log")).unwrap().len();
        assert!(cur <= 100, "{cur}");
        assert!(d.join("p.log.1").exists() && d.join("p.log.2").exists());
        assert!(!d.join("p.log.3").exists());
        // Nothing within the kept files was lost or reordered.
        let tail = String::from_utf8(s.tail(12).unwrap()).unwrap();
        let want: String = (18..30).map(|i| format!("line {i:04}\n")).collect();
        assert_eq!(tail, want);
    }

    #[test]
    fn tail_handles_short_and_unterminated_logs() {
        let dir = tmp("tail");
        let d = dir.path();
        let s = sink(d, 1 << 20, 1);
        assert!(s.tail(5).unwrap().is_empty());
        s.append(b"a\nb\nc").unwrap();
        assert_eq!(s.tail(2).unwrap(), b"b\nc");
        assert_eq!(s.tail(10).unwrap(), b"a\nb\nc");
    }

    #[test]
    fn a_flood_of_output_cannot_rotate_away_the_events() {
        let dir = tmp("events");
        let d = dir.path();
        let s = sink(d, 1000, 1);
        s.event("restarting: it stayed unhealthy");
        for _ in 0..1000 {
            s.append(&[b'x'; 99]).unwrap();
            s.append(b"\n").unwrap();
        }
        let all = String::from_utf8(s.tail(1_000_000).unwrap()).unwrap();
        assert!(
            !all.contains("restarting"),
            "rotated away from the main log"
        );
        let events = String::from_utf8(s.events().tail(10).unwrap()).unwrap();
        assert!(events.starts_with("[clawkeep "), "{events}");
        assert!(
            events.contains("restarting: it stayed unhealthy"),
            "{events}"
        );
        assert!(!events.contains("xxx"), "output never reaches the events");
    }

    #[tokio::test]
    async fn followers_see_new_bytes() {
        let dir = tmp("follow");
        let d = dir.path();
        let s = sink(d, 1 << 20, 1);
        let mut rx = s.follow();
        s.append(b"hello\n").unwrap();
        assert_eq!(&rx.recv().await.unwrap()[..], b"hello\n");
    }
}
