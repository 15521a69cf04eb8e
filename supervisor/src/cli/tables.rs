//! How the CLI shows what the supervisor answers: one table renderer and the tables built
//! on it (`ps`, `sync status`, `sync history`, `spend`, `secrets list`), sizes, durations,
//! and log lines as JSON. Every cell is escaped on the way: much of it is agent-controlled.

use std::collections::BTreeMap;

use supervisor::api::types::{ProcessRow, PsReply};

/// How a column lines its cells up.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// How wide a table's columns are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Each column as wide as its widest cell, two spaces apart, no blanks at line ends.
    Fit,
    /// Each column padded to its own width (none for width 0), one space apart: a longer
    /// cell pushes only the rest of its own line along.
    Fixed,
}

/// A column: its title, how its cells line up and, in a [`Layout::Fixed`] table, its width.
struct Column {
    title: &'static str,
    align: Align,
    width: usize,
}

/// A column whose cells start at its left edge.
fn left(title: &'static str) -> Column {
    Column {
        title,
        align: Align::Left,
        width: 0,
    }
}

/// A column whose cells end at its right edge (numbers).
fn right(title: &'static str) -> Column {
    Column {
        align: Align::Right,
        ..left(title)
    }
}

impl Column {
    /// The column's width in a [`Layout::Fixed`] table.
    fn width(self, width: usize) -> Self {
        Self { width, ..self }
    }
}

enum Line {
    Cells(Vec<String>),
    Note(String),
}

/// A table: the titles, then rows, each maybe followed by notes on lines of their own.
struct Table {
    layout: Layout,
    columns: Vec<Column>,
    lines: Vec<Line>,
}

impl Table {
    fn new(layout: Layout, columns: impl IntoIterator<Item = Column>) -> Self {
        let columns: Vec<Column> = columns.into_iter().collect();
        let titles = columns.iter().map(|c| c.title.to_string()).collect();
        Self {
            layout,
            columns,
            lines: vec![Line::Cells(titles)],
        }
    }

    /// A row: one cell per column, shown escaped.
    fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let cells = cells.into_iter().map(escaped).collect();
        self.lines.push(Line::Cells(cells));
    }

    /// A line of its own under the last row, shown escaped.
    fn note(&mut self, text: &str) {
        self.lines.push(Line::Note(escaped(text.to_string())));
    }

    fn render(&self) -> String {
        let widths: Vec<usize> = match self.layout {
            Layout::Fixed => self.columns.iter().map(|c| c.width).collect(),
            Layout::Fit => (0..self.columns.len())
                .map(|i| {
                    self.lines
                        .iter()
                        .filter_map(|l| match l {
                            Line::Cells(cells) => cells.get(i).map(|c| c.chars().count()),
                            Line::Note(_) => None,
                        })
                        .max()
                        .unwrap_or(0)
                })
                .collect(),
        };
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Note(text) => out.push_str(text),
                Line::Cells(cells) => {
                    let padded: Vec<String> = cells
                        .iter()
                        .zip(&self.columns)
                        .zip(&widths)
                        .map(|((cell, column), &w)| match column.align {
                            Align::Left => format!("{cell:<w$}"),
                            Align::Right => format!("{cell:>w$}"),
                        })
                        .collect();
                    match self.layout {
                        Layout::Fit => out.push_str(padded.join("  ").trim_end()),
                        Layout::Fixed => out.push_str(&padded.join(" ")),
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Text as the terminal may show it: control characters escaped.
fn escaped(text: String) -> String {
    match supervisor::text::printable(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(shown) => shown,
    }
}

pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[i])
    }
}

fn human_secs(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn row_cells(r: &ProcessRow) -> Vec<String> {
    let dash = || "-".to_string();
    let kind = match r.kind {
        supervisor::api::types::Kind::Agent => "agent",
        supervisor::api::types::Kind::Service => "service",
    };
    let health = r.health.map(|h| format!("{h:?}").to_lowercase());
    let state = match (r.state.as_str(), health) {
        (s, Some(h)) if r.pid.is_some() => format!("{s} ({h})"),
        (s, _) => s.to_string(),
    };
    let mem = match (r.memory_bytes, r.memory_limit) {
        (Some(m), Some(l)) => format!("{}/{}", human_bytes(m), human_bytes(l)),
        (Some(m), None) => human_bytes(m),
        _ => dash(),
    };
    vec![
        r.name.clone(),
        kind.to_string(),
        state,
        r.pid.map_or_else(dash, |p| p.to_string()),
        r.restarts.to_string(),
        r.last_exit
            .as_ref()
            .map_or_else(dash, |e| e.reason.to_string()),
        r.cpu_percent.map_or_else(dash, |c| format!("{c:.1}")),
        mem,
        r.uptime_secs.map_or_else(dash, human_secs),
        r.url.clone().unwrap_or_else(dash),
        r.model.clone().unwrap_or_else(dash),
        r.tokens_today.map_or_else(dash, |t| t.to_string()),
        r.message.clone().unwrap_or_default(),
    ]
}

/// One log line as `logs --json` prints it: whose it is, and its text.
pub(crate) fn log_line_json(line: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(line);
    let source = if text.starts_with(supervisor::engine::log_text::EVENT_PREFIX) {
        "clawkeep"
    } else {
        "output"
    };
    serde_json::json!({ "source": source, "line": text })
}

pub(crate) fn ps_table(reply: &PsReply) -> String {
    let mut table = Table::new(
        Layout::Fit,
        [
            "NAME",
            "KIND",
            "STATE",
            "PID",
            "RESTARTS",
            "LAST EXIT",
            "CPU%",
            "MEMORY",
            "UPTIME",
            "URL",
            "MODEL",
            "TOKENS TODAY",
            "",
        ]
        .map(left),
    );
    for p in &reply.processes {
        table.row(row_cells(p));
    }
    table.render()
}

pub(crate) fn history_table(rows: &[clawkeep_store::history::Entry]) -> String {
    let mut table = Table::new(
        Layout::Fixed,
        [
            left("AT (for restore --at)").width(28),
            left("TAKEN (writer's clock)").width(28),
            left("ORIGIN").width(24),
            right("FILES").width(6),
            right("SIZE").width(10),
        ],
    );
    for r in rows {
        table.row([
            r.at.clone(),
            r.taken.clone(),
            r.origin.clone(),
            r.files.to_string(),
            clawkeep_store::report::size(r.bytes),
        ]);
    }
    table.render()
}

pub(crate) fn sync_table(st: &supervisor::brains::SyncStatus) -> String {
    let store = format!(
        "store {} {}{}",
        st.endpoint,
        if st.healthy {
            "healthy"
        } else {
            "NOT ANSWERING"
        },
        if st.grants_enforced {
            ""
        } else {
            " (grants NOT enforced by this store)"
        }
    );
    let mut table = Table::new(
        Layout::Fixed,
        [
            left("KIND").width(8),
            left("NAME").width(20),
            left("BUCKET").width(28),
            right("PENDING").width(7),
            right("LAG").width(8),
            left("LAST PUSH").width(20),
            left("ERROR"),
        ],
    );
    for r in &st.rows {
        let lag = r
            .lag_seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "-".into());
        let kind = if r.read_only {
            format!("{} ro", r.kind)
        } else {
            r.kind.clone()
        };
        table.row([
            kind,
            r.name.clone(),
            r.bucket.clone(),
            r.pending.to_string(),
            lag,
            r.last_push.clone().unwrap_or_else(|| "never".into()),
            r.last_error.clone().unwrap_or_default(),
        ]);
        for note in &r.notes {
            table.note(&format!("  {}: {note}", r.name));
        }
    }
    format!("{}\n{}", escaped(store), table.render())
}

/// `clawkeep spend`: a row per agent, team or model, biggest spender first.
pub(crate) fn spend_table(report: &supervisor::spend::Report, by: supervisor::spend::By) -> String {
    use supervisor::spend::By;
    let first = match by {
        By::Agent => "AGENT",
        By::Team => "TEAM",
        By::Model => "MODEL",
    };
    let mut table = Table::new(
        Layout::Fit,
        [
            left(first),
            right("REQUESTS"),
            right("PROMPT"),
            right("COMPLETION"),
            right("TOTAL"),
            right("ERRORS"),
        ],
    );
    for row in &report.rows {
        table.row([
            // Names come from the ledger, which an older clawkeep filled with whatever
            // model names agents sent: cut for the terminal.
            clawkeep_gateway::ledger::cut(&row.name, 80),
            row.requests.to_string(),
            row.prompt_tokens.to_string(),
            row.completion_tokens.to_string(),
            row.total_tokens.to_string(),
            row.errors.to_string(),
        ]);
    }
    table.render()
}

/// `clawkeep secrets list`: a line per secret that is set, under its agent.
pub(crate) fn secrets_table(names: &BTreeMap<String, Vec<String>>) -> String {
    let mut table = Table::new(Layout::Fixed, [left("AGENT").width(24), left("SECRET")]);
    for (agent, list) in names {
        for name in list {
            table.row([agent.clone(), name.clone()]);
        }
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ps_reply() -> PsReply {
        serde_json::from_value(json!({
            "node": "lab",
            "supervisor_pid": 1,
            "orphans_reaped": 0,
            "processes": [
                {
                    "name": "store", "kind": "service", "state": "running", "pid": 412,
                    "restarts": 0, "last_exit": null, "cpu_percent": 0.4, "cpu_ns": 9,
                    "memory_bytes": 73400320, "memory_limit": null, "oom_kills": 0,
                    "uptime_secs": 93784, "health": "healthy", "url": "http://127.0.0.1:9000"
                },
                {
                    "name": "research", "kind": "agent", "team": "lab", "state": "running",
                    "pid": 977, "restarts": 2,
                    "last_exit": { "reason": { "kind": "signal", "value": 9 }, "at": "2026-11-20T10:00:00Z" },
                    "cpu_percent": 12.25, "cpu_ns": 9, "memory_bytes": 536870912,
                    "memory_limit": 2147483648u64, "oom_kills": 0, "uptime_secs": 3725,
                    "health": "starting", "url": "http://127.0.0.1:18789",
                    "model": "llama3.1:8b", "tokens_today": 18234
                },
                {
                    "name": "writer", "kind": "agent", "state": "crash-loop", "pid": null,
                    "restarts": 5,
                    "last_exit": { "reason": { "kind": "code", "value": 1 }, "at": "2026-11-20T10:01:00Z" },
                    "cpu_percent": null, "cpu_ns": 0, "memory_bytes": null,
                    "memory_limit": null, "oom_kills": 0, "uptime_secs": null,
                    "health": "unhealthy", "model": "evil\u{1b}[2Jmodel",
                    "message": "exited 5 times in 60s; clawkeep start writer tries again"
                },
                {
                    "name": "idle", "kind": "agent", "state": "stopped", "pid": null,
                    "restarts": 0, "last_exit": null, "cpu_percent": null, "cpu_ns": 0,
                    "memory_bytes": null, "memory_limit": null, "oom_kills": 0,
                    "uptime_secs": null, "health": null
                }
            ]
        }))
        .expect("a valid ps reply")
    }

    fn sync_status(healthy: bool) -> supervisor::brains::SyncStatus {
        serde_json::from_value(json!({
            "endpoint": "http://127.0.0.1:9000",
            "healthy": healthy,
            "grants_enforced": healthy,
            "rows": [
                {
                    "kind": "agent", "name": "research", "bucket": "clawkeep-brain-research",
                    "dir": "/var/lib/clawkeep/agents/research/home", "read_only": false,
                    "last_push": "2026-11-20T10:00:00Z", "pending": 0, "lag_seconds": 1.25,
                    "last_error": null, "conflicts": []
                },
                {
                    "kind": "shared", "name": "docs", "bucket": "clawkeep-shared-docs",
                    "dir": "/var/lib/clawkeep/shared/docs", "read_only": true,
                    "last_push": null, "pending": 3, "lag_seconds": null,
                    "last_error": "store not answering", "conflicts": [],
                    "notes": ["42 deletions held: clawkeep sync push shared:docs --allow-deletes"]
                }
            ]
        }))
        .expect("a valid sync status")
    }

    #[test]
    fn ps_shows_one_aligned_line_per_process_with_agent_text_escaped() {
        insta::assert_snapshot!(ps_table(&ps_reply()));
    }

    #[test]
    fn ps_with_nothing_supervised_is_only_the_header() {
        let mut reply = ps_reply();
        reply.processes.clear();
        insta::assert_snapshot!(ps_table(&reply));
    }

    #[test]
    fn sync_status_shows_the_store_then_a_row_and_its_notes_per_brain() {
        insta::assert_snapshot!(sync_table(&sync_status(true)));
    }

    #[test]
    fn sync_status_says_when_the_store_does_not_answer_or_enforce_grants() {
        insta::assert_snapshot!(sync_table(&sync_status(false)));
    }

    #[test]
    fn sync_history_shows_the_time_restore_takes_for_each_push() {
        let rows: Vec<clawkeep_store::history::Entry> = serde_json::from_value(json!([
            {
                "id": "0001", "at": "2026-11-20T10:00:00.000001Z",
                "taken": "2026-11-20T10:00:00Z", "origin": "lab/research",
                "files": 12, "bytes": 48213
            },
            {
                "id": "0002", "at": "2026-11-20T10:05:00.000001Z",
                "taken": "2026-11-20T09:58:00Z", "origin": "other\rnode",
                "files": 1304, "bytes": 3221225472u64
            }
        ]))
        .expect("valid history entries");
        insta::assert_snapshot!(history_table(&rows));
    }

    #[test]
    fn spend_aligns_names_left_and_numbers_right() {
        let row = |name: &str, requests, prompt, completion, errors| supervisor::spend::Row {
            name: name.into(),
            requests,
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            errors,
        };
        let report = supervisor::spend::Report {
            rows: vec![
                row("llama3.1:8b", 1204, 912_334, 120_045, 3),
                row("tiny", 2, 12, 8, 0),
                row("forged\u{1b}[2J", 1, 1, 1, 1),
            ],
            torn: Default::default(),
        };
        insta::assert_snapshot!(spend_table(&report, supervisor::spend::By::Model));
    }

    #[test]
    fn spend_keeps_columns_straight_past_a_name_cut_at_80_characters() {
        let report = supervisor::spend::Report {
            rows: vec![supervisor::spend::Row {
                name: "m".repeat(100),
                requests: 1,
                ..Default::default()
            }],
            torn: Default::default(),
        };
        insta::assert_snapshot!(spend_table(&report, supervisor::spend::By::Agent));
    }

    #[test]
    fn secrets_list_names_each_secret_under_its_agent() {
        let names = BTreeMap::from([
            (
                "customer".to_string(),
                vec!["matrix_token".to_string(), "smtp_password".to_string()],
            ),
            ("research".to_string(), vec!["api_key".to_string()]),
        ]);
        insta::assert_snapshot!(secrets_table(&names));
    }

    #[test]
    fn a_fixed_width_cell_too_long_pushes_only_its_own_line_along() {
        let mut table = Table::new(
            Layout::Fixed,
            [left("A").width(3), right("B").width(4), left("C")],
        );
        table.row(["abcdef".to_string(), "1".to_string(), "x".to_string()]);
        table.row(["ab".to_string(), "22".to_string(), String::new()]);
        assert_eq!(table.render(), "A      B C\nabcdef    1 x\nab    22 \n");
    }
}
