//! Names: DNS labels for agents and services, and "did you mean" suggestions for typos.

/// The candidate closest to `word`, if it is close enough to be a likely typo (at most about
/// a third of it edited, or one is a prefix of the other).
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let distance = strsim::osa_distance(&lower, &c.to_lowercase());
            let longest = lower.chars().count().max(c.chars().count()).max(1);
            let similar = (distance as f64) / (longest as f64) <= 0.3;
            let prefix = lower.len() >= 4 && (c.starts_with(&lower) || lower.starts_with(c));
            (similar || prefix).then_some((distance, c))
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// Whether `name` is a DNS label: 1 to 63 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` can be a host group's name (as shadow-utils' groupadd accepts by
/// default): 1 to 32 of letters, digits, `_`, `-`, not starting with `-` or a digit.
pub fn is_group_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

/// A DNS label close to `name` (lowercased, other characters turned into `-`), if there is one.
pub(crate) fn dns_label_suggestion(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    is_dns_label(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 5] = ["memory", "gateway_port", "name", "nofile", "tmp_size"];

    #[test]
    fn typos_find_the_intended_key() {
        assert_eq!(did_you_mean("memroy", KEYS), Some("memory"));
        assert_eq!(did_you_mean("gatway_port", KEYS), Some("gateway_port"));
        assert_eq!(did_you_mean("nmae", KEYS), Some("name"));
        assert_eq!(did_you_mean("Memory", KEYS), Some("memory"));
        assert_eq!(did_you_mean("tmp-size", KEYS), Some("tmp_size"));
        assert_eq!(did_you_mean("gateway", KEYS), Some("gateway_port"));
        assert_eq!(did_you_mean("initl", ["initial", "max"]), Some("initial"));
        assert_eq!(did_you_mean("minoi", ["minio", "ollama"]), Some("minio"));
    }

    #[test]
    fn unrelated_words_find_nothing() {
        assert_eq!(did_you_mean("frobnicate", KEYS), None);
        assert_eq!(did_you_mean("x", KEYS), None);
        assert_eq!(did_you_mean("team", KEYS), None);
        assert_eq!(did_you_mean("cpu", ["cwd", "args"]), None);
        assert_eq!(did_you_mean("anything", []), None);
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("research"));
        assert!(is_dns_label("agent-2"));
        assert!(is_dns_label("a"));
        assert!(is_dns_label(&"a".repeat(63)));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("Research"));
        assert!(!is_dns_label("research_bot"));
        assert!(!is_dns_label("-research"));
        assert!(!is_dns_label("research-"));
        assert!(!is_dns_label("re.search"));
    }

    #[test]
    fn label_suggestions() {
        assert_eq!(
            dns_label_suggestion("Research_Bot").as_deref(),
            Some("research-bot")
        );
        assert_eq!(dns_label_suggestion("-web-").as_deref(), Some("web"));
        assert_eq!(
            dns_label_suggestion("my  agent").as_deref(),
            Some("my-agent")
        );
        assert_eq!(
            dns_label_suggestion(&"x".repeat(70)).as_deref(),
            Some(&*"x".repeat(63))
        );
        assert_eq!(dns_label_suggestion("___"), None);
    }
}
