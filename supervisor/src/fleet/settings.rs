//! Settings layers: built-in defaults, `[defaults]`, each `[[agent]]` (and each service's own
//! restart and log settings), checked value by value where they are written and then merged
//! field by field.

use std::collections::BTreeMap;
use std::time::Duration;

use super::file::{AgentSettings, BackoffFile, CrashLoopFile, LogFile, SizeFile};
use super::resolve::Resolver;
use super::spans::Seg;
use super::units::{self, UnitError, DURATION_EXAMPLES, SIZE_EXAMPLES};
use super::{LogPolicy, Resources, Restart, RestartMode};

/// Built-in defaults, used where neither the `[[agent]]` nor `[defaults]` says otherwise.
pub(crate) mod builtin {
    use std::time::Duration;

    use crate::fleet::RestartMode;

    /// CPU cores.
    pub const CPU: f64 = 1.0;
    /// Memory limit: 2GiB.
    pub const MEMORY: u64 = 2 << 30;
    /// Process/thread limit.
    pub const PIDS: u64 = 512;
    /// RLIMIT_NOFILE.
    pub const NOFILE: u64 = 4096;
    /// Size of /tmp: 256MiB.
    pub const TMP_SIZE: u64 = 256 << 20;
    /// Restart mode.
    pub const RESTART: RestartMode = RestartMode::Always;
    /// First backoff delay.
    pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
    /// Backoff cap.
    pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
    /// Failures that make a crash loop.
    pub const CRASH_FAILURES: u32 = 5;
    /// Crash-loop window.
    pub const CRASH_WINDOW: Duration = Duration::from_secs(60);
    /// Crash-loop hold.
    pub const CRASH_HOLD: Duration = Duration::from_secs(5 * 60);
    /// Grace between SIGTERM and kill.
    pub const STOP_GRACE: Duration = Duration::from_secs(10);
    /// Log rotation size: 10MiB.
    pub const LOG_MAX_SIZE: u64 = 10 << 20;
    /// Rotated logs kept.
    pub const LOG_KEEP: u32 = 3;
    /// Health-check interval.
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
    /// Health-check time limit.
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
    /// Failures before unhealthy.
    pub const HEALTH_RETRIES: u32 = 3;
    /// Grace after start.
    pub const HEALTH_START_PERIOD: Duration = Duration::ZERO;
}

/// Smallest memory limit: 16MiB.
const MIN_MEMORY: u64 = 16 << 20;
/// Smallest /tmp: 1MiB.
const MIN_TMP_SIZE: u64 = 1 << 20;
/// Smallest disk limit: 1MiB.
pub(super) const MIN_DISK: u64 = 1 << 20;
/// Smallest log rotation size: 1KiB.
const MIN_LOG_SIZE: u64 = 1 << 10;
/// Smallest RLIMIT_NOFILE.
const MIN_NOFILE: u64 = 16;

/// Restart settings of one layer; `None` where the layer says nothing (or something wrong).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RestartLayer {
    mode: Option<RestartMode>,
    backoff_initial: Option<Duration>,
    backoff_max: Option<Duration>,
    crash_failures: Option<u32>,
    crash_window: Option<Duration>,
    crash_hold: Option<Duration>,
}

impl RestartLayer {
    /// This layer, falling back to `base` field by field.
    pub(crate) fn over(self, base: &Self) -> Self {
        Self {
            mode: self.mode.or(base.mode),
            backoff_initial: self.backoff_initial.or(base.backoff_initial),
            backoff_max: self.backoff_max.or(base.backoff_max),
            crash_failures: self.crash_failures.or(base.crash_failures),
            crash_window: self.crash_window.or(base.crash_window),
            crash_hold: self.crash_hold.or(base.crash_hold),
        }
    }

    /// The policy, built-in defaults filling the gaps.
    pub(crate) fn finish(&self) -> Restart {
        Restart {
            mode: self.mode.unwrap_or(builtin::RESTART),
            backoff_initial: self.backoff_initial.unwrap_or(builtin::BACKOFF_INITIAL),
            backoff_max: self.backoff_max.unwrap_or(builtin::BACKOFF_MAX),
            crash_failures: self.crash_failures.unwrap_or(builtin::CRASH_FAILURES),
            crash_window: self.crash_window.unwrap_or(builtin::CRASH_WINDOW),
            crash_hold: self.crash_hold.unwrap_or(builtin::CRASH_HOLD),
        }
    }
}

/// Log settings of one layer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogLayer {
    max_size: Option<u64>,
    keep: Option<u32>,
}

impl LogLayer {
    /// This layer, falling back to `base` field by field.
    pub(crate) fn over(self, base: &Self) -> Self {
        Self {
            max_size: self.max_size.or(base.max_size),
            keep: self.keep.or(base.keep),
        }
    }

    /// The policy, built-in defaults filling the gaps.
    pub(crate) fn finish(&self) -> LogPolicy {
        LogPolicy {
            max_size: self.max_size.unwrap_or(builtin::LOG_MAX_SIZE),
            keep: self.keep.unwrap_or(builtin::LOG_KEEP),
        }
    }
}

/// Agent settings of one layer (`[defaults]` or an `[[agent]]`), values parsed and checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct SettingsLayer {
    /// Program inside the sandbox.
    pub command: Option<String>,
    /// Its arguments.
    pub args: Option<Vec<String>>,
    /// Environment, merged variable by variable.
    pub env: BTreeMap<String, String>,
    cpu: Option<f64>,
    memory: Option<u64>,
    pids: Option<u64>,
    nofile: Option<u64>,
    tmp_size: Option<u64>,
    /// Disk limit of the home.
    pub disk: Option<u64>,
    /// Restart policy.
    pub restart: RestartLayer,
    /// Stop grace.
    pub stop_grace: Option<Duration>,
    /// Log rotation.
    pub log: LogLayer,
    /// Team.
    pub team: Option<String>,
    /// Default model.
    pub model: Option<String>,
    /// Allowed models.
    pub models: Option<Vec<String>>,
    /// Daily token budget.
    pub tokens_per_day: Option<u64>,
    /// Model requests in flight at once.
    pub max_concurrent: Option<u32>,
    /// Health check inside the sandbox.
    pub health: Option<super::Health>,
    /// OpenClaw settings of this layer.
    pub openclaw: Option<serde_json::Value>,
}

impl SettingsLayer {
    /// This layer, falling back to `base` field by field (sub-fields of backoff, crash_loop and
    /// log too; env variable by variable).
    pub(crate) fn over(self, base: &Self) -> Self {
        let mut env = base.env.clone();
        env.extend(self.env);
        Self {
            command: self.command.or_else(|| base.command.clone()),
            args: self.args.or_else(|| base.args.clone()),
            env,
            cpu: self.cpu.or(base.cpu),
            memory: self.memory.or(base.memory),
            pids: self.pids.or(base.pids),
            nofile: self.nofile.or(base.nofile),
            tmp_size: self.tmp_size.or(base.tmp_size),
            disk: self.disk.or(base.disk),
            restart: self.restart.over(&base.restart),
            stop_grace: self.stop_grace.or(base.stop_grace),
            log: self.log.over(&base.log),
            team: self.team.or_else(|| base.team.clone()),
            model: self.model.or_else(|| base.model.clone()),
            models: self.models.or_else(|| base.models.clone()),
            tokens_per_day: self.tokens_per_day.or(base.tokens_per_day),
            max_concurrent: self.max_concurrent.or(base.max_concurrent),
            health: self.health.or_else(|| base.health.clone()),
            openclaw: match (&base.openclaw, self.openclaw) {
                (Some(b), Some(o)) => {
                    let mut v = b.clone();
                    crate::fleet::openclaw::deep_merge(&mut v, &o);
                    Some(v)
                }
                (b, o) => o.or_else(|| b.clone()),
            },
        }
    }

    /// Resource limits, built-in defaults filling the gaps.
    pub(crate) fn resources(&self) -> Resources {
        Resources {
            cpu: self.cpu.unwrap_or(builtin::CPU),
            memory: self.memory.unwrap_or(builtin::MEMORY),
            pids: self.pids.unwrap_or(builtin::PIDS),
            nofile: self.nofile.unwrap_or(builtin::NOFILE),
            tmp_size: self.tmp_size.unwrap_or(builtin::TMP_SIZE),
            disk: self.disk,
        }
    }
}

/// `at` followed by `keys`.
pub(crate) fn sub(at: &[Seg], keys: &[&str]) -> Vec<Seg> {
    at.iter()
        .cloned()
        .chain(keys.iter().map(|&k| Seg::from(k)))
        .collect()
}

/// A size as the user wrote it, for messages.
pub(super) fn written_size(size: &SizeFile) -> String {
    match size {
        SizeFile::Bytes(n) => n.to_string(),
        SizeFile::Text(t) => format!("{t:?}"),
    }
}

impl Resolver<'_> {
    /// Check one settings table (`[defaults]` or an `[[agent]]`) at `at`.
    pub(crate) fn settings(&mut self, s: &AgentSettings, at: &[Seg]) -> SettingsLayer {
        let cpu = s.cpu.filter(|&cpu| {
            let ok = cpu.is_finite() && cpu > 0.0;
            if !ok {
                let path = sub(at, &["cpu"]);
                let what = self.what(&path);
                // Written the TOML way: nan and inf rather than Rust's NaN and inf.
                let written = if cpu.is_nan() {
                    "nan".to_string()
                } else {
                    cpu.to_string()
                };
                self.at_value(
                    &path,
                    format!("{what} {written} is not a positive number of cores"),
                    "give CPU cores as a number above 0, e.g. cpu = 0.5 or cpu = 2",
                );
            }
            ok
        });
        SettingsLayer {
            command: s.command.clone(),
            args: s.args.clone(),
            env: self.env(s.env.as_ref(), at),
            cpu,
            memory: self.size(s.memory.as_ref(), &sub(at, &["memory"]), MIN_MEMORY),
            pids: self.at_least(
                s.pids,
                1,
                &sub(at, &["pids"]),
                "an agent needs at least one process",
            ),
            nofile: self.at_least(
                s.nofile,
                MIN_NOFILE,
                &sub(at, &["nofile"]),
                "programs need some open files",
            ),
            tmp_size: self.size(s.tmp_size.as_ref(), &sub(at, &["tmp_size"]), MIN_TMP_SIZE),
            disk: self.size(s.disk.as_ref(), &sub(at, &["disk"]), MIN_DISK),
            restart: self.restart_layer(s.restart, s.backoff.as_ref(), s.crash_loop.as_ref(), at),
            stop_grace: self.duration(s.stop_grace.as_deref(), &sub(at, &["stop_grace"])),
            log: self.log_layer(s.log.as_ref(), at),
            team: s.team.clone(),
            model: s.model.clone(),
            models: s.models.clone(),
            tokens_per_day: self.at_least(
                s.budget.and_then(|b| b.tokens_per_day),
                1,
                &sub(at, &["budget", "tokens_per_day"]),
                "a budget of 0 tokens would refuse every request",
            ),
            max_concurrent: self
                .at_least(
                    s.max_concurrent.map(u64::from),
                    1,
                    &sub(at, &["max_concurrent"]),
                    "an agent needs at least one model request at a time",
                )
                .map(|v| v as u32),
            health: s
                .health
                .as_ref()
                .and_then(|h| self.agent_health(h, &sub(at, &["health"]))),
            openclaw: self.openclaw_table(s.openclaw.as_ref(), at),
        }
    }

    /// An `openclaw` table: a table, and nothing in it that clawkeep enforces.
    fn openclaw_table(
        &mut self,
        v: Option<&serde_json::Value>,
        at: &[Seg],
    ) -> Option<serde_json::Value> {
        let v = v?;
        let path = sub(at, &["openclaw"]);
        if !v.is_object() {
            let what = self.what(&path);
            self.at_value(
                &path,
                format!("{what} must be a table of OpenClaw settings"),
                "write it like openclaw = { agents = { defaults = { timeoutSeconds = 600 } } }",
            );
            return None;
        }
        let bad = crate::fleet::openclaw::enforced_in(v);
        for key in &bad {
            let mut p = path.clone();
            p.extend(key.split('.').map(Seg::from));
            let what = self.what(&path);
            self.at_key(&p, format!("{what}: {key} is set by clawkeep"), "remove it: clawkeep keeps the gateway on the sandbox's loopback with token auth, offline, and talking to its own model gateway");
        }
        bad.is_empty().then(|| v.clone())
    }

    /// Check the restart, backoff and crash_loop settings of the table at `at`.
    pub(crate) fn restart_layer(
        &mut self,
        mode: Option<RestartMode>,
        backoff: Option<&BackoffFile>,
        crash: Option<&CrashLoopFile>,
        at: &[Seg],
    ) -> RestartLayer {
        let backoff_at = sub(at, &["backoff"]);
        let crash_at = sub(at, &["crash_loop"]);
        RestartLayer {
            mode,
            backoff_initial: backoff
                .and_then(|b| self.duration(b.initial.as_deref(), &sub(&backoff_at, &["initial"]))),
            backoff_max: backoff
                .and_then(|b| self.duration(b.max.as_deref(), &sub(&backoff_at, &["max"]))),
            crash_failures: crash
                .and_then(|c| {
                    self.at_least(
                        c.failures.map(u64::from),
                        1,
                        &sub(&crash_at, &["failures"]),
                        "a crash loop takes at least one failure",
                    )
                })
                .and_then(|n| u32::try_from(n).ok()),
            crash_window: crash
                .and_then(|c| self.duration(c.window.as_deref(), &sub(&crash_at, &["window"]))),
            crash_hold: crash
                .and_then(|c| self.duration(c.hold.as_deref(), &sub(&crash_at, &["hold"]))),
        }
    }

    /// Report a first backoff delay above the cap, where the table at `at` sets either one
    /// (`merged` is its settings over everything it inherits).
    pub(crate) fn check_backoff_order(
        &mut self,
        own: &RestartLayer,
        merged: &RestartLayer,
        at: &[Seg],
    ) {
        let restart = merged.finish();
        if restart.backoff_initial <= restart.backoff_max {
            return;
        }
        let key = match (own.backoff_initial, own.backoff_max) {
            (Some(_), _) => "initial",
            (None, Some(_)) => "max",
            (None, None) => return,
        };
        let section = self
            .spans
            .section(&sub(at, &["backoff"]))
            .unwrap_or_default();
        self.at_value(
            &sub(at, &["backoff", key]),
            format!(
                "{section}: backoff.initial {} is longer than backoff.max {}",
                humantime::format_duration(restart.backoff_initial),
                humantime::format_duration(restart.backoff_max)
            ),
            "the first delay cannot exceed the cap: lower initial or raise max",
        );
    }

    /// Check the log settings of the table at `at`.
    pub(crate) fn log_layer(&mut self, log: Option<&LogFile>, at: &[Seg]) -> LogLayer {
        let Some(log) = log else {
            return LogLayer::default();
        };
        LogLayer {
            max_size: self.size(
                log.max_size.as_ref(),
                &sub(at, &["log", "max_size"]),
                MIN_LOG_SIZE,
            ),
            keep: log.keep,
        }
    }

    /// Check the `env` table of the table at `at`: names must be usable by `execve`.
    pub(crate) fn env(
        &mut self,
        env: Option<&BTreeMap<String, String>>,
        at: &[Seg],
    ) -> BTreeMap<String, String> {
        let Some(env) = env else {
            return BTreeMap::new();
        };
        for (name, value) in env {
            let path = sub(at, &["env", name]);
            let what = self.what(&sub(at, &["env"]));
            let problem = if name.is_empty() {
                Some(format!("{what} has a variable with an empty name"))
            } else if name.contains('=') {
                Some(format!("{what} variable name {name:?} contains '='"))
            } else if name.contains('\0') {
                Some(format!(
                    "{what} variable name {name:?} contains a NUL character"
                ))
            } else if value.contains('\0') {
                Some(format!(
                    "{what} variable {name:?} has a NUL character in its value"
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                self.at_key(
                    &path,
                    message,
                    "names must be non-empty, without '=' or NUL; write NAME = \"value\"",
                );
            }
        }
        env.clone()
    }

    /// Parse a duration at `path`, reporting a bad one.
    pub(crate) fn duration(&mut self, text: Option<&str>, path: &[Seg]) -> Option<Duration> {
        let text = text?;
        match units::parse_duration(text) {
            Ok(d) => Some(d),
            Err(_) => {
                let what = self.what(path);
                self.at_value(
                    path,
                    format!("{what} {text:?} is not a duration"),
                    DURATION_EXAMPLES,
                );
                None
            }
        }
    }

    /// Parse a size at `path` and check it is at least `min` bytes.
    pub(crate) fn size(&mut self, size: Option<&SizeFile>, path: &[Seg], min: u64) -> Option<u64> {
        let size = size?;
        let what = self.what(path);
        let written = written_size(size);
        let bytes = match size {
            SizeFile::Bytes(n) => Ok(*n),
            SizeFile::Text(text) => units::parse_size(text),
        };
        let (message, hint) = match bytes {
            Ok(n) if n >= min => return Some(n),
            Ok(_) => (
                format!("{what} {written} is below the minimum of {}", units::format_size(min)),
                format!("raise it to at least {:?}", units::format_size(min)),
            ),
            Err(e @ UnitError::NoUnit) => (
                format!("{what} {written} {e}"),
                format!(
                    "add a unit, e.g. \"{}MiB\", or write a number of bytes without quotes",
                    written.trim_matches('"')
                ),
            ),
            Err(e @ UnitError::UnknownUnit(_)) => (
                format!("{what} {written} {e}"),
                "use B, KiB, MiB, GiB or TiB (or Ki, Mi, Gi, Ti) for powers of 1024, or KB, MB, GB or TB for powers of 1000"
                    .to_string(),
            ),
            Err(e @ UnitError::TooLarge) => (
                format!("{what} {written} {e}"),
                "sizes must fit in 64 bits of bytes".to_string(),
            ),
            Err(e) => (format!("{what} {written} {e}"), SIZE_EXAMPLES.to_string()),
        };
        self.at_value(path, message, hint);
        None
    }

    /// Check that a number at `path` is at least `min`; `why` explains the minimum.
    pub(crate) fn at_least(
        &mut self,
        value: Option<u64>,
        min: u64,
        path: &[Seg],
        why: &str,
    ) -> Option<u64> {
        let value = value?;
        if value >= min {
            return Some(value);
        }
        let what = self.what(path);
        self.at_value(
            path,
            format!("{what} {value} is below the minimum of {min}"),
            format!("{why}: use {min} or more"),
        );
        None
    }
}
