//! What a sandbox init reports over its status channel, and how a process ended.

use std::fmt;

/// How a supervised process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum ExitReason {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// The kernel's OOM killer killed it (memory limit reached).
    Oom,
    /// It could not be started; the message says why.
    StartFailed,
}

impl ExitReason {
    /// Whether the restart policy `on-failure` counts this as a failure.
    pub fn is_failure(self) -> bool {
        !matches!(self, ExitReason::Code(0))
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Code(c) => write!(f, "code {c}"),
            ExitReason::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {s}"));
                write!(f, "{name}")
            }
            ExitReason::Oom => write!(f, "oom"),
            ExitReason::StartFailed => write!(f, "start failed"),
        }
    }
}

/// One line of the sandbox init's status channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The agent's process exec'd; its pid inside the sandbox.
    Started(i32),
    /// The agent's process ended.
    Exit(ExitReason),
    /// Setting up or exec'ing failed.
    Error(String),
}

/// Parse a status line; unknown lines yield None.
pub fn parse_report(line: &str) -> Option<Report> {
    let (word, rest) = line.trim_end().split_once(' ')?;
    match word {
        "started" => rest.parse().ok().map(Report::Started),
        "exit" => {
            let (kind, n) = rest.split_once(' ')?;
            let n: i32 = n.parse().ok()?;
            match kind {
                "code" => Some(Report::Exit(ExitReason::Code(n))),
                "signal" => Some(Report::Exit(ExitReason::Signal(n))),
                _ => None,
            }
        }
        "error" => Some(Report::Error(rest.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        assert_eq!(parse_report("started 2\n"), Some(Report::Started(2)));
        assert_eq!(
            parse_report("exit code 3"),
            Some(Report::Exit(ExitReason::Code(3)))
        );
        assert_eq!(
            parse_report("exit signal 9"),
            Some(Report::Exit(ExitReason::Signal(9)))
        );
        assert_eq!(
            parse_report("error mount /x: EPERM"),
            Some(Report::Error("mount /x: EPERM".into()))
        );
        assert_eq!(parse_report("garbage"), None);
        assert_eq!(ExitReason::Signal(9).to_string(), "SIGKILL");
        assert!(!ExitReason::Code(0).is_failure());
        assert!(ExitReason::Oom.is_failure());
    }
}
