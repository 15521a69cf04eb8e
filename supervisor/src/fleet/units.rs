//! Sizes and durations as users write them: `"512MiB"`, `"1.5GiB"`, `"2GB"`, `"10s"`, `"5m"`.

use std::time::Duration;

/// Examples shown when a size cannot be read.
pub(crate) const SIZE_EXAMPLES: &str = r#"write a number with a unit, e.g. "512MiB", "2GiB" (or "2Gi"), "1.5GiB", "2GB", "64KiB", or a number of bytes without quotes"#;

/// Examples shown when a duration cannot be read.
pub(crate) const DURATION_EXAMPLES: &str =
    r#"write a number with a unit, e.g. "500ms", "10s", "5m", "1h""#;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// Why a size or duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnitError {
    /// No leading number, or a malformed one.
    #[error("is not a size")]
    NotASize,
    /// A number without any unit.
    #[error("has no unit")]
    NoUnit,
    /// A unit we do not know.
    #[error("has an unknown unit {0:?}")]
    UnknownUnit(String),
    /// More bytes than fit in 64 bits.
    #[error("is too large")]
    TooLarge,
    /// humantime could not read it; its reason.
    #[error("is not a duration: {0}")]
    NotADuration(String),
}

/// Bytes in one `unit` (case-insensitive): B, K/Ki/KiB, M/Mi/MiB, G/Gi/GiB, T/Ti/TiB are
/// powers of 1024 (Ki, Mi, Gi and Ti as Kubernetes writes them), KB, MB, GB, TB powers of
/// 1000.
fn unit_bytes(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" | "ki" | "kib" => KIB,
        "m" | "mi" | "mib" => MIB,
        "g" | "gi" | "gib" => GIB,
        "t" | "ti" | "tib" => TIB,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return None,
    })
}

/// Parse a size string such as `"512MiB"` or `"1.5GiB"` into bytes (fractions of a byte are
/// dropped). A unit is required: a bare number of bytes is written as a TOML integer.
pub(crate) fn parse_size(text: &str) -> Result<u64, UnitError> {
    let text = text.trim();
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let unit = unit.trim_start();
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty()
        || fraction.contains('.')
        || (number.contains('.') && fraction.is_empty())
        || fraction.len() > 18
    {
        return Err(UnitError::NotASize);
    }
    if unit.is_empty() {
        return Err(UnitError::NoUnit);
    }
    let multiplier = unit_bytes(unit).ok_or_else(|| UnitError::UnknownUnit(unit.to_string()))?;
    // Exact decimal arithmetic: (whole.fraction * multiplier), in u128 to catch overflow.
    let whole: u128 = whole.parse().map_err(|_| UnitError::TooLarge)?;
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| UnitError::NotASize)?
    };
    let bytes = whole
        .checked_mul(scale)
        .and_then(|n| n.checked_add(fraction))
        .and_then(|n| n.checked_mul(u128::from(multiplier)))
        .map(|n| n / scale)
        .ok_or(UnitError::TooLarge)?;
    u64::try_from(bytes).map_err(|_| UnitError::TooLarge)
}

/// Parse a duration such as `"500ms"`, `"10s"` or `"5m"` (humantime syntax).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|e| UnitError::NotADuration(e.to_string()))
}

/// Render bytes the way users write them: the largest binary unit that divides exactly.
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, size) in [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse_size("512MiB"), Ok(512 * MIB));
        assert_eq!(parse_size("2GiB"), Ok(2 * GIB));
        assert_eq!(parse_size("1.5GiB"), Ok(3 * GIB / 2));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("64KiB"), Ok(64 * KIB));
        // As Kubernetes writes them (and `render k8s` does).
        assert_eq!(parse_size("2Gi"), Ok(2 * GIB));
        assert_eq!(parse_size("512Mi"), Ok(512 * MIB));
        assert_eq!(parse_size("64Ki"), Ok(64 * KIB));
        assert_eq!(parse_size("1Ti"), Ok(TIB));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("1TiB"), Ok(TIB));
        assert_eq!(parse_size("3TB"), Ok(3_000_000_000_000));
        assert_eq!(parse_size("7kb"), Ok(7_000));
    }

    #[test]
    fn case_insensitive_and_short_units() {
        assert_eq!(parse_size("512mib"), Ok(512 * MIB));
        assert_eq!(parse_size("2gib"), Ok(2 * GIB));
        assert_eq!(parse_size("16M"), Ok(16 * MIB));
        assert_eq!(parse_size("4k"), Ok(4 * KIB));
        assert_eq!(parse_size("1G"), Ok(GIB));
        assert_eq!(parse_size(" 8 MiB "), Ok(8 * MIB));
    }

    #[test]
    fn fractions_are_exact_and_round_down() {
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size("1.25MiB"), Ok(MIB + MIB / 4));
        assert_eq!(parse_size("1.5B"), Ok(1));
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(parse_size("lots"), Err(UnitError::NotASize));
        assert_eq!(parse_size(""), Err(UnitError::NotASize));
        assert_eq!(parse_size("MiB"), Err(UnitError::NotASize));
        assert_eq!(parse_size(".5GiB"), Err(UnitError::NotASize));
        assert_eq!(parse_size("1.GiB"), Err(UnitError::NotASize));
        assert_eq!(parse_size("1.2.3GiB"), Err(UnitError::NotASize));
        assert_eq!(parse_size("-1GiB"), Err(UnitError::NotASize));
        assert_eq!(parse_size("512"), Err(UnitError::NoUnit));
        assert_eq!(
            parse_size("2 gigs"),
            Err(UnitError::UnknownUnit("gigs".into()))
        );
        assert_eq!(
            parse_size("2Gb2"),
            Err(UnitError::UnknownUnit("Gb2".into()))
        );
        assert_eq!(parse_size("16777216TiB"), Err(UnitError::TooLarge));
        assert_eq!(
            parse_size("99999999999999999999999999999999999999999B"),
            Err(UnitError::TooLarge)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(matches!(
            parse_duration("10"),
            Err(UnitError::NotADuration(_))
        ));
        assert!(matches!(
            parse_duration("soon"),
            Err(UnitError::NotADuration(_))
        ));
        assert!(matches!(
            parse_duration(""),
            Err(UnitError::NotADuration(_))
        ));
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(16 * MIB), "16MiB");
        assert_eq!(format_size(2 * GIB), "2GiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
    }
}
