//! Time and ids for generated bodies. Injected as plain function pointers so tests can pin
//! them and assert exact output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where translated bodies get the current time and fresh ids from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Time since the Unix epoch.
    pub(crate) now: fn() -> Duration,
    /// A fresh id, unique within the process (and very likely across processes).
    pub(crate) unique: fn() -> u64,
}

impl Clock {
    /// The real clock and a process-wide id counter.
    pub(crate) const SYSTEM: Clock = Clock {
        now: system_now,
        unique: unique_id,
    };

    /// Seconds since the epoch (OpenAI `created`).
    pub(crate) fn unix_secs(&self) -> u64 {
        (self.now)().as_secs()
    }

    /// The current time in RFC 3339 with nanoseconds, trailing zeros trimmed, UTC (Ollama
    /// `created_at`, formatted like Go's `time.RFC3339Nano`).
    pub(crate) fn rfc3339(&self) -> String {
        rfc3339((self.now)())
    }
}

fn system_now() -> Duration {
    // A clock set before 1970 is a broken host; 0 keeps the bodies well-formed.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn unique_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The process id is asked for once (a system call per id was measurable).
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let seed = system_now().as_nanos() as u64 ^ u64::from(pid).rotate_left(40);
    splitmix64(seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// SplitMix64 finaliser: spreads a counter-like seed over all 64 bits so ids look random.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `since_epoch` as `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = since_epoch.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
