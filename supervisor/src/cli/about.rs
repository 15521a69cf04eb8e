//! `clawkeep --version`, `clawkeep completions` and `clawkeep man`: what this binary is, and
//! its command line for shells and `man`, generated from the same clap definitions as
//! `--help`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::args::Cli;

/// `--version`: the release and the commit it was built from.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CLAWKEEP_COMMIT"),
    ")"
);

/// `--version` in full: with the compiler and target it was built with.
pub(crate) const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("CLAWKEEP_COMMIT"),
    "\nrustc: ",
    env!("CLAWKEEP_RUSTC"),
    "\ntarget: ",
    env!("CLAWKEEP_TARGET"),
    "\nprofile: ",
    env!("CLAWKEEP_PROFILE"),
);

/// Print the systemd unit for `fleet` (checked first: a unit for a fleet that cannot start
/// would only fail later).
pub(crate) fn unit(fleet: &Path, binary: Option<std::path::PathBuf>) -> Result<ExitCode> {
    let f = match supervisor::fleet::load(fleet) {
        Ok(f) => f,
        Err(d) => {
            eprint!("{d}");
            return Ok(ExitCode::from(super::exit::INVALID));
        }
    };
    let binary = match binary {
        Some(b) => b,
        None => std::env::current_exe().context("locate this clawkeep binary")?,
    };
    let binary = std::path::absolute(&binary).context("make the binary's path absolute")?;
    print!("{}", supervisor::systemd::unit(&f, &binary, &f.path));
    Ok(ExitCode::SUCCESS)
}

/// Print the completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "clawkeep", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Write clawkeep(1) and a page per command into `dir`, or print clawkeep(1).
pub(crate) fn man(dir: Option<&Path>) -> Result<ExitCode> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("write the manual page")?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("write the manual pages into {}", dir.display()))?;
    let pages = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).count())
        .unwrap_or(0);
    println!(
        "{}: {pages} manual pages (man -l {}/clawkeep.1)",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
