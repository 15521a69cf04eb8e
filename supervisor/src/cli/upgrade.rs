//! `clawkeep upgrade|rollback`: the fleet moved to another OpenClaw runtime, or back.

use std::process::ExitCode;

use anyhow::Result;
use supervisor::engine::upgrade::{UpgradeReport, UpgradeRequest};

use super::args::UpgradeCmd;
use super::context::Context;

pub(crate) fn run(ctx: &Context, command: UpgradeCmd) -> Result<ExitCode> {
    let api = ctx.api()?;
    let report = match command {
        UpgradeCmd::Upgrade {
            openclaw,
            node,
            canary,
            message,
            json: _,
        } => {
            let req = UpgradeRequest {
                openclaw,
                node,
                canary,
                message,
            };
            eprintln!(
                "clawkeep: upgrading one agent at a time (each must come up ready and answer)..."
            );
            api.block_on(api.upgrade(&req))?
        }
        UpgradeCmd::Rollback { json: _ } => api.block_on(api.rollback())?,
    };
    ctx.show(&report, || steps(&report))?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The steps, then the outcome.
fn steps(r: &UpgradeReport) -> String {
    let mut out: String = r.steps.iter().map(|s| format!("  {s}\n")).collect();
    out.push_str(&match (&r.error, r.ok) {
        (None, true) if !r.upgraded.is_empty() => {
            format!("upgraded {} to {}\n", r.upgraded.join(", "), r.to)
        }
        (None, true) => format!("rolled back {} to {}\n", r.rolled_back.join(", "), r.to),
        (Some(e), _) if !r.rolled_back.is_empty() => {
            format!("FAILED: {e}\nrolled back: {}\n", r.rolled_back.join(", "))
        }
        (Some(e), _) => format!("FAILED: {e}\n"),
        (None, false) => "FAILED\n".to_string(),
    });
    out
}
