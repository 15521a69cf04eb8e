//! `clawkeep store migrate`: every bucket, with its history, copied to another store.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::args::StoreCmd;
use super::context::Context;

pub(crate) fn run(ctx: &Context, command: StoreCmd) -> Result<ExitCode> {
    let StoreCmd::Migrate {
        to,
        credentials,
        region,
        json: _,
    } = command;
    let credentials =
        std::path::absolute(&credentials).with_context(|| format!("{}", credentials.display()))?;
    let api = ctx.api()?;
    eprintln!("clawkeep: pushing every brain, then copying each bucket to {to} ...");
    let mut meter = super::progress::Meter::new(format!("migrate to {to}"));
    let copied = api.block_on(api.migrate_watched(
        &to,
        &credentials.to_string_lossy(),
        &region,
        |p| meter.update(p),
    ));
    meter.finish();
    let copied = copied?;
    let text = || {
        let mut out = String::new();
        for c in &copied {
            out.push_str(&format!(
                "{} -> {}: {} objects, {} bytes ({} already there)\n",
                c.from, c.to, c.objects, c.bytes, c.skipped
            ));
        }
        out.push_str(
            "done: now set [store] endpoint and credentials to the new store and restart the fleet\n",
        );
        out
    };
    ctx.show(&serde_json::json!({ "to": to, "buckets": copied }), text)?;
    Ok(ExitCode::SUCCESS)
}
