//! Running npm (and reading its `--json` answers).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};

use super::error::RuntimeError;

/// How much of a failed command's output goes into the error.
const TAIL: usize = 2000;

/// Runs `program args…` in `cwd` with extra `env`; its output is returned, a failure is
/// an error with the tail of its stderr and `hint`.
pub(crate) fn run(
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    env: &[(&str, OsString)],
    hint: &str,
) -> Result<Output, RuntimeError> {
    let shown = std::iter::once(program.as_os_str().to_owned())
        .chain(args.iter().cloned())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| RuntimeError::Command {
        command: shown.clone(),
        message: e.to_string(),
        hint: hint.to_string(),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let text = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        let text = text.trim();
        let tail = match text.char_indices().rev().nth(TAIL) {
            Some((i, _)) => &text[i..],
            None => text,
        };
        return Err(RuntimeError::Command {
            command: shown,
            message: format!("{}: {tail}", out.status),
            hint: hint.to_string(),
        });
    }
    Ok(out)
}

/// `npm ARGS` with the host's npm (prepare runs on a connected machine).
pub(crate) fn host_npm(args: &[&str], cwd: &Path) -> Result<Output, RuntimeError> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    run(
        Path::new("npm"),
        &args,
        cwd,
        &[("npm_config_update_notifier", "false".into())],
        "prepare needs npm on PATH and the npm registry reachable",
    )
}

/// `npm view SPEC FIELDS… --json`, parsed.
pub(crate) fn view(
    spec: &str,
    fields: &[&str],
    cwd: &Path,
) -> Result<serde_json::Value, RuntimeError> {
    let mut args = vec!["view", spec];
    args.extend_from_slice(fields);
    args.push("--json");
    let out = host_npm(&args, cwd)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Err(RuntimeError::Unexpected {
            what: format!("npm view {spec}"),
            message: "no such version in the registry".into(),
            hint: "check the version with `npm view PACKAGE versions`",
        });
    }
    serde_json::from_str(&text).map_err(|e| RuntimeError::Unexpected {
        what: format!("npm view {spec} {}", fields.join(" ")),
        message: format!("not JSON ({e}): {}", text.trim()),
        hint: "a registry or npm version this code does not know",
    })
}

/// A list of version strings from `npm view` (one string or an array of them).
pub(crate) fn versions(value: &serde_json::Value) -> Vec<semver::Version> {
    let strings: Vec<&str> = match value {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    strings
        .into_iter()
        .filter_map(|s| semver::Version::parse(s).ok())
        .collect()
}
