//! How the CLI shows what the supervisor answers: sizes, durations, the `ps`, history and
//! sync tables, and log lines as JSON. Agent-controlled text is escaped on the way.

use supervisor::api::types::{ProcessRow, PsReply};

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

pub(crate) fn human_secs(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

pub(crate) fn row_cells(r: &ProcessRow) -> Vec<String> {
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
    let header: Vec<String> = [
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
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(reply.processes.iter().map(|p| {
            // Agent-controlled text (a model name, an exit message) is shown escaped.
            row_cells(p)
                .into_iter()
                .map(|c| supervisor::text::printable(&c).into_owned())
                .collect()
        }))
        .collect();
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn history_table(rows: &[clawkeep_store::history::Entry]) -> String {
    let mut out = format!(
        "{:<28} {:<28} {:<24} {:>6} {:>10}\n",
        "AT (for restore --at)", "TAKEN (writer's clock)", "ORIGIN", "FILES", "SIZE"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<28} {:<28} {:<24} {:>6} {:>10}\n",
            r.at,
            r.taken,
            supervisor::text::printable(&r.origin),
            r.files,
            clawkeep_store::report::size(r.bytes)
        ));
    }
    out
}

pub(crate) fn sync_table(st: &supervisor::brains::SyncStatus) -> String {
    let mut out = format!(
        "store {} {}{}\n",
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
    out.push_str(&format!(
        "{:<8} {:<20} {:<28} {:>7} {:>8} {:<20} {}\n",
        "KIND", "NAME", "BUCKET", "PENDING", "LAG", "LAST PUSH", "ERROR"
    ));
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
        out.push_str(&format!(
            "{:<8} {:<20} {:<28} {:>7} {:>8} {:<20} {}\n",
            kind,
            r.name,
            r.bucket,
            r.pending,
            lag,
            r.last_push.as_deref().unwrap_or("never"),
            r.last_error.as_deref().unwrap_or("")
        ));
        for note in &r.notes {
            out.push_str(&format!("  {}: {note}\n", r.name));
        }
    }
    out
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
        insta::assert_snapshot!(supervisor::spend::table(
            &report,
            supervisor::spend::By::Model
        ));
    }
}
