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
