//! `clawkeep sync status|push|pull|history|takeover`: brains and collections in the store.

use std::process::ExitCode;

use anyhow::Result;

use super::args::SyncCmd;
use super::context::{Api, Context};
use super::tables::{history_table, sync_table};

pub(crate) fn run(ctx: &Context, command: SyncCmd) -> Result<ExitCode> {
    let api = ctx.api()?;
    match command {
        SyncCmd::Status { json: _ } => {
            let st = api.block_on(api.sync_status())?;
            ctx.show(&st, || sync_table(&st))?;
            let behind = st
                .rows
                .iter()
                .any(|r| r.last_error.is_some() || r.held.is_some());
            Ok(super::exit::findings(!st.healthy || behind))
        }
        SyncCmd::Push { name, .. } | SyncCmd::Pull { name, .. } if name.is_empty() => {
            anyhow::bail!("name an agent or shared:COLLECTION")
        }
        SyncCmd::Push {
            name,
            allow_deletes,
            json: _,
        } => pass(ctx, api, &name, "push", allow_deletes),
        SyncCmd::Pull { name, json: _ } => pass(ctx, api, &name, "pull", false),
        SyncCmd::History {
            name,
            last,
            json: _,
        } => {
            let rows = api.block_on(api.sync_history(&name, last))?;
            ctx.show(&rows, || history_table(&rows))?;
            Ok(ExitCode::SUCCESS)
        }
        SyncCmd::Takeover { name } => {
            let v = api.block_on(api.sync_takeover(&name))?;
            println!("{}", v["message"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `sync push|pull NAME`: one pass, and its report (`--json`: the report itself); exit 1
/// unless it did all it should.
fn pass(
    ctx: &Context,
    api: &Api,
    name: &str,
    action: &str,
    allow_deletes: bool,
) -> Result<ExitCode> {
    let mut meter = super::progress::Meter::new(format!("{action} {name}"));
    let r = api.block_on(api.sync_pass_watched(name, action, allow_deletes, |p| meter.update(p)));
    meter.finish();
    let r = r?;
    ctx.show(&r, || pass_text(name, &r))?;
    Ok(if r.complete() && r.held.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A pass's report for people.
fn pass_text(name: &str, r: &clawkeep_store::SyncReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{name}: {} uploaded ({} bytes), {} downloaded, {} deleted in the store, {} deleted here{}",
        r.uploaded,
        r.uploaded_bytes,
        r.downloaded,
        r.deleted_remote,
        r.deleted_local,
        r.snapshot
            .as_deref()
            .map(|s| format!(", snapshot {s}"))
            .unwrap_or_default()
    );
    for c in &r.conflicts {
        let _ = writeln!(out, "  conflict, both kept: {c}");
    }
    for x in &r.refused {
        let _ = writeln!(out, "  refused key: {x}");
    }
    for x in &r.skipped {
        let _ = writeln!(out, "  not synced: {x}");
    }
    for t in &r.too_big {
        let (side, not) = match t.in_store {
            true => (" in the store", "not downloaded"),
            false => ("", "not uploaded"),
        };
        let _ = writeln!(
            out,
            "  larger than [store] max_file_size, {not} (nothing deleted): {} ({}{side})",
            t.path,
            clawkeep_store::report::size(t.size)
        );
    }
    if r.too_big_count > r.too_big.len() {
        let _ = writeln!(
            out,
            "  and {} more larger than [store] max_file_size",
            r.too_big_count - r.too_big.len()
        );
    }
    for x in &r.retry {
        let _ = writeln!(out, "  changed meanwhile, goes up next pass: {x}");
    }
    for x in &r.failed {
        let _ = writeln!(out, "  retried later: {x}");
    }
    if r.deferred_deletes > 0 {
        let _ = writeln!(
            out,
            "  {} deletions wait for the next pass (per-pass cap)",
            r.deferred_deletes
        );
    }
    if let Some(why) = &r.rebased {
        let _ = writeln!(out, "  merged without deleting anything: {why}");
    }
    let kind = if name.starts_with("shared:") {
        "shared"
    } else {
        "agent"
    };
    let bare = name.trim_start_matches("shared:");
    let deleted = (!r.deleted.is_empty()).then(|| clawkeep_store::report::Deletions {
        at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        count: r.deleted_remote,
        paths: r.deleted.clone(),
        restore_at: r.restore_at.clone(),
    });
    for note in
        supervisor::brains::status_notes(kind, bare, r.held.as_ref(), deleted.as_ref(), None, None)
    {
        let _ = writeln!(out, "  {note}");
    }
    out
}
