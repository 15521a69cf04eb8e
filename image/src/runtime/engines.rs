//! npm version ranges (`engines.node`, e.g. `>=24.16.0 <25 || >=26.1.0`) read with the
//! `semver` crate.
//!
//! `semver` speaks Cargo's flavour: comparators joined by commas, no `||`, and a bare
//! `1.2.3` means `^1.2.3`. npm's ranges are alternatives joined by `||`, each a list of
//! comparators joined by spaces, where a bare version means exactly that version and
//! `A - B` means `>=A <=B`. [`NodeRange::parse`] translates one into the other.

use semver::{Version, VersionReq};

/// An npm range: satisfied when any of its alternatives is.
#[derive(Debug, Clone)]
pub struct NodeRange {
    text: String,
    alternatives: Vec<VersionReq>,
}

/// Why an npm range could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError {
    /// The alternative that failed, translated to Cargo's syntax.
    pub part: String,
    /// The `semver` crate's message.
    pub message: String,
}

impl NodeRange {
    /// Reads an npm range such as `>=24.16.0 <25 || >=26.1.0`.
    pub fn parse(text: &str) -> Result<Self, RangeError> {
        let alternatives = text
            .split("||")
            .map(|alt| {
                let cargo = to_cargo(alt);
                VersionReq::parse(&cargo).map_err(|e| RangeError {
                    part: cargo,
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: text.trim().to_string(),
            alternatives,
        })
    }

    /// The range as npm wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `version` satisfies the range.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|r| r.matches(version))
    }

    /// For each major among `available` (released versions, pre-releases ignored) the
    /// oldest version that satisfies the range, by major.
    pub fn fitting_majors(&self, available: &[Version]) -> Vec<(u64, Version)> {
        let mut fits: Vec<(u64, Version)> = Vec::new();
        let mut sorted: Vec<&Version> = available.iter().filter(|v| v.pre.is_empty()).collect();
        sorted.sort();
        for v in sorted {
            if self.matches(v) && fits.last().is_none_or(|(m, _)| *m != v.major) {
                fits.push((v.major, v.clone()));
            }
        }
        fits
    }
}

/// One npm alternative (`>=24.16.0 <25`, `1.2.3 - 2.0.0`, `24.x`) in Cargo's syntax.
fn to_cargo(alt: &str) -> String {
    // Glue operators written apart from their version (`>= 24`) back on.
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for t in alt.split_whitespace() {
        if !t.is_empty() && t.chars().all(|c| "<>=~^".contains(c)) {
            pending_op.push_str(t);
        } else {
            tokens.push(format!("{pending_op}{t}"));
            pending_op.clear();
        }
    }
    // `A - B`
    if tokens.len() == 3 && tokens[1] == "-" {
        return format!(">={}, <={}", tokens[0], tokens[2]);
    }
    if tokens.is_empty() {
        return "*".to_string();
    }
    tokens
        .iter()
        .map(|t| {
            let t = t.strip_prefix('v').unwrap_or(t);
            let bare = t.starts_with(|c: char| c.is_ascii_digit());
            let wildcard = t.contains(['x', 'X', '*']);
            if bare && !wildcard {
                format!("={t}")
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn openclaw_2026_9_6_range() {
        let r = NodeRange::parse(">=24.16.0 <25 || >=26.1.0").unwrap();
        for ok in ["24.16.0", "24.21.0", "26.1.0", "27.0.0"] {
            assert!(r.matches(&v(ok)), "{ok}");
        }
        for bad in ["20.20.2", "22.23.3", "24.15.0", "25.9.0", "26.0.0"] {
            assert!(!r.matches(&v(bad)), "{bad}");
        }
    }

    #[test]
    fn npm_forms() {
        let exact = NodeRange::parse("24.16.0").unwrap();
        assert!(exact.matches(&v("24.16.0")) && !exact.matches(&v("24.17.0")));
        let spaced = NodeRange::parse(">= 22 < 23").unwrap();
        assert!(spaced.matches(&v("22.5.0")) && !spaced.matches(&v("23.0.0")));
        let hyphen = NodeRange::parse("18.0.0 - 20.1.0").unwrap();
        assert!(hyphen.matches(&v("20.1.0")) && !hyphen.matches(&v("20.2.0")));
        let wild = NodeRange::parse("24.x").unwrap();
        assert!(wild.matches(&v("24.9.0")) && !wild.matches(&v("25.0.0")));
        assert!(NodeRange::parse("*").unwrap().matches(&v("1.0.0")));
        assert!(NodeRange::parse(">=banana").is_err());
    }

    #[test]
    fn fitting_majors_names_the_oldest_of_each() {
        let r = NodeRange::parse(">=24.16.0 <25 || >=26.1.0").unwrap();
        let all: Vec<Version> = [
            "20.20.2", "24.15.0", "24.21.0", "24.16.0", "25.9.0", "26.0.0",
        ]
        .iter()
        .chain(["26.1.0", "26.10.0", "27.0.0-rc.1"].iter())
        .map(|s| v(s))
        .collect();
        let fits = r.fitting_majors(&all);
        assert_eq!(fits, vec![(24, v("24.16.0")), (26, v("26.1.0"))]);
    }
}
