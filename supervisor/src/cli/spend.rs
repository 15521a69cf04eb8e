//! `clawkeep spend`: tokens spent, read from the gateway's ledger (no supervisor needed).

use std::process::ExitCode;

use anyhow::Result;

use super::args::SpendArgs;
use super::context::Context;
use super::tables::spend_table;

pub(crate) fn run(ctx: &Context, args: SpendArgs) -> Result<ExitCode> {
    let SpendArgs { by, since, json: _ } = args;
    let dir = ctx.state_dir().join("ledger");
    let from = std::time::SystemTime::now() - since;
    let report = supervisor::spend::report(&dir, from, by)?;
    for t in &report.torn.first {
        eprintln!(
            "clawkeep: skipped a torn or overlong ledger record at {}:{} (a crash mid-write; nothing else is affected)",
            t.file.display(),
            t.line
        );
    }
    if report.torn.count > report.torn.first.len() {
        eprintln!(
            "clawkeep: ... and {} more such records",
            report.torn.count - report.torn.first.len()
        );
    }
    ctx.show(&report, || spend_table(&report, by))?;
    Ok(ExitCode::SUCCESS)
}
