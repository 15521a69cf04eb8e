//! Running the external tools (mke2fs, e2fsck, qemu-img) in a fixed environment.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};

use super::error::DiskError;

/// How much of a failed command's output goes into the error.
const TAIL: usize = 2000;

/// The only environment a tool sees, besides `env`: no locale, no user settings (such as
/// `MKE2FS_CONFIG` or `MKE2FS_SYNC`) that could change what it writes.
const BASE_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LC_ALL", "C"),
];

/// Runs `program args…` with a cleared environment plus `env`. A program that cannot be
/// started is [`DiskError::ToolMissing`] (with `missing_hint`); a failure is
/// [`DiskError::ToolFailed`] with the tail of its output and `hint`.
pub(crate) fn run(
    tool: &'static str,
    program: &Path,
    args: &[OsString],
    env: &[(&str, OsString)],
    missing_hint: &'static str,
    hint: &str,
) -> Result<Output, DiskError> {
    run_allowing(tool, program, args, env, missing_hint, hint, &[])
}

/// [`run`], with exit codes besides 0 that also mean success (e2fsck's 1, "errors
/// corrected").
pub(crate) fn run_allowing(
    tool: &'static str,
    program: &Path,
    args: &[OsString],
    env: &[(&str, OsString)],
    missing_hint: &'static str,
    hint: &str,
    also_ok: &[i32],
) -> Result<Output, DiskError> {
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear();
    for (k, v) in BASE_ENV {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|source| DiskError::ToolMissing {
        tool,
        path: program.to_path_buf(),
        source,
        hint: missing_hint,
    })?;
    if !out.status.success() && !out.status.code().is_some_and(|c| also_ok.contains(&c)) {
        return Err(DiskError::ToolFailed {
            command: shown(program, args),
            message: format!("{}: {}", out.status, output_tail(&out)),
            hint: hint.to_string(),
        });
    }
    Ok(out)
}

/// The command line as a user would type it.
pub(crate) fn shown(program: &Path, args: &[OsString]) -> String {
    std::iter::once(program.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last part of a command's stderr (or stdout if stderr is empty).
pub(crate) fn output_tail(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let text = text.trim();
    match text.char_indices().rev().nth(TAIL) {
        Some((i, _)) => text[i..].to_string(),
        None => text.to_string(),
    }
}

/// Whether dotted version `have` (like `1.47.2`, or `1.47.2-WIP`) is at least `need`.
pub(crate) fn version_at_least(have: &str, need: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|part| {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .collect()
    };
    let (mut a, mut b) = (parse(have), parse(need));
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    a >= b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("1.47.1", "1.47.1"));
        assert!(version_at_least("1.47.2", "1.47.1"));
        assert!(version_at_least("1.48", "1.47.1"));
        assert!(version_at_least("1.47.10", "1.47.9"));
        assert!(!version_at_least("1.47.0", "1.47.1"));
        assert!(!version_at_least("1.46.6", "1.47.1"));
        assert!(version_at_least("1.47.3-WIP", "1.47.1"));
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = run(
            "mke2fs",
            Path::new("/nonexistent/mke2fs"),
            &[],
            &[],
            "run scripts/install-image-tools",
            "",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/mke2fs"), "{text}");
        assert!(text.contains("install-image-tools"), "{text}");
    }
}
