//! Progress of long work on stderr: on a terminal a bar with the rate and the time left; in
//! a log (stderr not a terminal, or TERM=dumb) a plain line at each new stage and every
//! CLAWKEEP_PROGRESS_EVERY (default 5 s), and a last line with the average rate.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clawkeep_store::progress::Stage;
use clawkeep_store::report::size;
use clawkeep_store::ProgressSnapshot;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Shows one piece of work's progress.
pub(crate) struct Meter {
    what: String,
    start: Instant,
    bar: Option<ProgressBar>,
    bytes_bar: bool,
    every: Duration,
    last_line: Option<Instant>,
    last_stage: Option<Stage>,
    last: Option<ProgressSnapshot>,
}

impl Meter {
    /// A meter for `what` (e.g. "push research"): a bar when stderr is a terminal.
    pub(crate) fn new(what: impl Into<String>) -> Self {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let every = std::env::var("CLAWKEEP_PROGRESS_EVERY")
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok())
            .unwrap_or(PLAIN_EVERY);
        let what = what.into();
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_prefix(format!("clawkeep: {what}"));
            bar
        });
        Self {
            what,
            start: Instant::now(),
            bar,
            bytes_bar: false,
            every,
            last_line: None,
            last_stage: None,
            last: None,
        }
    }

    /// Show `p`.
    pub(crate) fn update(&mut self, p: &ProgressSnapshot) {
        self.last = Some(*p);
        if let Some(bar) = &self.bar {
            let bytes = p.bytes_total > 0;
            if bytes != self.bytes_bar || bar.length().is_none() {
                self.bytes_bar = bytes;
                let template = if bytes {
                    "{prefix}: {msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} at {binary_bytes_per_sec}, {eta} left"
                } else {
                    "{prefix}: {msg} [{wide_bar}] {pos}/{len} files at {per_sec}, {eta} left"
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
            }
            if bytes {
                bar.set_length(p.bytes_total);
                bar.set_position(p.bytes_done);
            } else {
                bar.set_length(p.files_total);
                bar.set_position(p.files_done);
            }
            bar.set_message(p.stage.as_str());
            return;
        }
        let now = Instant::now();
        let due = self
            .last_line
            .is_none_or(|t| now.duration_since(t) >= self.every);
        if due || self.last_stage != Some(p.stage) {
            self.last_line = Some(now);
            self.last_stage = Some(p.stage);
            eprintln!(
                "clawkeep: {}: {}",
                self.what,
                plain_line(p, now.duration_since(self.start))
            );
        }
    }

    /// The work ended: clear the bar, or write the last line with the average rate.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            return;
        }
        if let Some(p) = self.last {
            let took = self.start.elapsed();
            eprintln!(
                "clawkeep: {}: done, {} files and {} in {:.1} s ({}/s)",
                self.what,
                p.files_done,
                size(p.bytes_done),
                took.as_secs_f64(),
                size(rate(p.bytes_done, took) as u64)
            );
        }
    }
}

fn rate(done: u64, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        done as f64 / secs
    } else {
        0.0
    }
}

/// "uploading, 120 of 10001 files, 12.0 MiB of 1.0 GiB at 4.1 MiB/s, about 4m 2s left".
fn plain_line(p: &ProgressSnapshot, took: Duration) -> String {
    let mut line = p.stage.as_str().to_string();
    if p.files_total == 0 {
        return line;
    }
    line.push_str(&format!(", {} of {} files", p.files_done, p.files_total));
    let (done, total, unit_rate) = if p.bytes_total > 0 {
        let r = rate(p.bytes_done, took);
        line.push_str(&format!(
            ", {} of {} at {}/s",
            size(p.bytes_done),
            size(p.bytes_total),
            size(r as u64)
        ));
        (p.bytes_done, p.bytes_total, r)
    } else {
        let r = rate(p.files_done, took);
        line.push_str(&format!(" at {r:.1} files/s"));
        (p.files_done, p.files_total, r)
    };
    if unit_rate > 0.0 && total > done {
        let left = Duration::from_secs(((total - done) as f64 / unit_rate).ceil() as u64);
        line.push_str(&format!(
            ", about {} left",
            humantime::format_duration(left)
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(stage: Stage, files: (u64, u64), bytes: (u64, u64)) -> ProgressSnapshot {
        ProgressSnapshot {
            stage,
            files_done: files.0,
            files_total: files.1,
            bytes_done: bytes.0,
            bytes_total: bytes.1,
        }
    }

    #[test]
    fn a_plain_line_says_the_stage_the_counts_the_rate_and_the_time_left() {
        let p = snap(Stage::Uploading, (120, 10_001), (10 << 20, 40 << 20));
        assert_eq!(
            plain_line(&p, Duration::from_secs(5)),
            "uploading, 120 of 10001 files, 10.0 MiB of 40.0 MiB at 2.0 MiB/s, about 15s left"
        );
    }

    #[test]
    fn without_bytes_the_rate_is_in_files_and_planning_shows_no_counts() {
        let p = snap(Stage::Deleting, (10, 30), (0, 0));
        assert_eq!(
            plain_line(&p, Duration::from_secs(2)),
            "deleting, 10 of 30 files at 5.0 files/s, about 4s left"
        );
        assert_eq!(
            plain_line(&snap(Stage::Planning, (0, 0), (0, 0)), Duration::ZERO),
            "planning"
        );
    }
}
