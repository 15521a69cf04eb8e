//! The structural rules of SPDX 2.3 a document must keep: required fields present and
//! well-formed, ids unique, relationships between known elements.

use std::collections::BTreeSet;

use super::spdx::{Document, DATA_LICENSE, DOCUMENT_ID, SPDX_VERSION};

/// Every broken rule of `doc`, one line each (empty when it is valid).
pub fn check(doc: &Document) -> Vec<String> {
    let mut problems = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    need(
        doc.spdx_version == SPDX_VERSION,
        format!("spdxVersion is {:?}, not {SPDX_VERSION}", doc.spdx_version),
    );
    need(
        doc.data_license == DATA_LICENSE,
        format!("dataLicense is {:?}, not {DATA_LICENSE}", doc.data_license),
    );
    need(
        doc.spdx_id == DOCUMENT_ID,
        format!("SPDXID is {:?}, not {DOCUMENT_ID}", doc.spdx_id),
    );
    need(!doc.name.is_empty(), "name is empty".into());
    need(
        is_uri_without_fragment(&doc.document_namespace),
        format!(
            "documentNamespace {:?} is not an absolute URI without '#'",
            doc.document_namespace
        ),
    );
    need(
        is_spdx_time(&doc.creation_info.created),
        format!(
            "creationInfo.created {:?} is not YYYY-MM-DDThh:mm:ssZ",
            doc.creation_info.created
        ),
    );
    need(
        !doc.creation_info.creators.is_empty(),
        "creationInfo.creators is empty".into(),
    );
    for c in &doc.creation_info.creators {
        need(
            ["Tool: ", "Organization: ", "Person: "]
                .iter()
                .any(|p| c.starts_with(p) && c.len() > p.len()),
            format!("creator {c:?} is not Tool:, Organization: or Person: and a name"),
        );
    }

    let mut ids = BTreeSet::from([DOCUMENT_ID.to_string()]);
    for p in &doc.packages {
        need(
            !p.name.is_empty(),
            format!("package {} has no name", p.spdx_id),
        );
        need(
            is_spdx_id(&p.spdx_id),
            format!("package {:?}: SPDXID is not SPDXRef-[A-Za-z0-9.-]+", p.name),
        );
        need(
            ids.insert(p.spdx_id.clone()),
            format!("SPDXID {} is used twice", p.spdx_id),
        );
        need(
            p.download_location == "NOASSERTION"
                || p.download_location == "NONE"
                || is_uri_without_fragment(&p.download_location),
            format!(
                "package {}: downloadLocation {:?} is not a URL, NONE or NOASSERTION",
                p.spdx_id, p.download_location
            ),
        );
        for c in &p.checksums {
            let len = match c.algorithm.as_str() {
                "SHA1" => 40,
                "SHA256" => 64,
                "SHA384" => 96,
                "SHA512" => 128,
                _ => 0,
            };
            need(
                len > 0
                    && c.checksum_value.len() == len
                    && c.checksum_value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                format!(
                    "package {}: checksum {} {:?} is not lowercase hex of the right length",
                    p.spdx_id, c.algorithm, c.checksum_value
                ),
            );
        }
    }
    let mut describes = false;
    for r in &doc.relationships {
        for end in [&r.spdx_element_id, &r.related_spdx_element] {
            need(
                ids.contains(end.as_str()),
                format!(
                    "relationship {} {} {} names unknown element {end}",
                    r.spdx_element_id, r.relationship_type, r.related_spdx_element
                ),
            );
        }
        describes |= r.spdx_element_id == DOCUMENT_ID && r.relationship_type == "DESCRIBES";
    }
    need(
        describes,
        "no DESCRIBES relationship from the document".into(),
    );
    problems
}

fn is_spdx_id(id: &str) -> bool {
    id.strip_prefix("SPDXRef-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    })
}

fn is_uri_without_fragment(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !uri.contains('#')
        && !uri.contains(char::is_whitespace)
}

/// `YYYY-MM-DDThh:mm:ssZ`.
fn is_spdx_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::spdx::{CreationInfo, Package, Relationship};

    fn doc() -> Document {
        Document {
            spdx_version: SPDX_VERSION.into(),
            data_license: DATA_LICENSE.into(),
            spdx_id: DOCUMENT_ID.into(),
            name: "x".into(),
            document_namespace: "https://clawkeep.invalid/spdx/x".into(),
            creation_info: CreationInfo {
                created: "2023-11-14T22:13:20Z".into(),
                creators: vec!["Tool: clawkeep".into()],
            },
            packages: vec![Package {
                name: "a".into(),
                spdx_id: "SPDXRef-a".into(),
                version_info: None,
                download_location: "NOASSERTION".into(),
                files_analyzed: false,
                checksums: Vec::new(),
                primary_package_purpose: None,
                external_refs: Vec::new(),
                comment: None,
            }],
            relationships: vec![Relationship {
                spdx_element_id: DOCUMENT_ID.into(),
                relationship_type: "DESCRIBES".into(),
                related_spdx_element: "SPDXRef-a".into(),
            }],
        }
    }

    #[test]
    fn a_minimal_document_passes_and_each_rule_bites() {
        assert_eq!(check(&doc()), Vec::<String>::new());
        let mut d = doc();
        d.document_namespace = "https://x/#frag".into();
        d.creation_info.created = "2023-11-14 22:13:20".into();
        d.packages[0].spdx_id = "SPDXRef-a_b".into();
        d.relationships[0].related_spdx_element = "SPDXRef-zzz".into();
        let p = check(&d);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("documentNamespace"), "{p:?}");
        assert!(p[1].starts_with("creationInfo.created"), "{p:?}");
        assert!(p[2].contains("SPDXID is not"), "{p:?}");
        assert!(p[3].contains("unknown element SPDXRef-zzz"), "{p:?}");
        d.relationships.clear();
        assert_eq!(
            check(&d).last().unwrap(),
            "no DESCRIBES relationship from the document"
        );
    }
}
