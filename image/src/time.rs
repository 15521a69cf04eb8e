//! The one timestamp of a reproducible build (seconds since the epoch, like
//! `SOURCE_DATE_EPOCH`) as the RFC 3339 text OCI configs and SPDX documents carry.

use std::time::{Duration, UNIX_EPOCH};

/// `epoch` (seconds since 1970-01-01 UTC) as RFC 3339 in UTC, to the second:
/// `2023-11-14T22:13:20Z`.
pub(crate) fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch)).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_seconds_in_utc() {
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
