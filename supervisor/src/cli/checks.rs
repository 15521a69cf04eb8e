//! `clawkeep doctor|audit`: the node's checks, a line per finding; exit 3 on any.

use std::process::ExitCode;

use anyhow::Result;
use supervisor::audit::AuditReport;

use super::args::ChecksCmd;
use super::context::Context;

pub(crate) fn run(ctx: &Context, command: ChecksCmd) -> Result<ExitCode> {
    let api = ctx.api()?;
    let report = match command {
        ChecksCmd::Doctor { json: _ } => api.block_on(api.doctor())?,
        ChecksCmd::Audit { json: _ } => api.block_on(api.audit())?,
    };
    ctx.show(&report, || findings(&report))?;
    Ok(super::exit::findings(!report.findings.is_empty()))
}

fn findings(report: &AuditReport) -> String {
    if report.findings.is_empty() {
        return format!("{} checks, no findings\n", report.checks.len());
    }
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!(
            "{} {:<6} {}: {} (fix: {})\n",
            f.id, f.severity, f.subject, f.message, f.fix
        ));
    }
    out.push_str(&format!(
        "{} finding(s) from {} checks\n",
        report.findings.len(),
        report.checks.len()
    ));
    out
}
