//! The SPDX 2.3 JSON document, as serde types: only the fields clawkeep writes, with the
//! names and shapes of the SPDX 2.3 JSON schema.

use serde::{Deserialize, Serialize};

/// The SPDX version this code writes.
pub const SPDX_VERSION: &str = "SPDX-2.3";

/// The license of the SBOM's own data, as SPDX requires.
pub const DATA_LICENSE: &str = "CC0-1.0";

/// The document's own SPDX id.
pub const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";

/// A value SPDX fields take when nothing is asserted.
pub const NOASSERTION: &str = "NOASSERTION";

/// An SPDX 2.3 document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// `SPDX-2.3`.
    pub spdx_version: String,
    /// `CC0-1.0`.
    pub data_license: String,
    /// `SPDXRef-DOCUMENT`.
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// The document's name.
    pub name: String,
    /// A URI unique to this document (no `#`).
    pub document_namespace: String,
    /// Who made it, and when.
    pub creation_info: CreationInfo,
    /// Every package.
    pub packages: Vec<Package>,
    /// How they relate.
    pub relationships: Vec<Relationship>,
}

/// When and by what a document was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationInfo {
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub created: String,
    /// `Tool: …`, `Organization: …` or `Person: …`.
    pub creators: Vec<String>,
}

/// One package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// Its name.
    pub name: String,
    /// `SPDXRef-…`, unique in the document.
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<String>,
    /// Where it came from: a URL, or `NOASSERTION`.
    pub download_location: String,
    /// Always false: files are not listed.
    pub files_analyzed: bool,
    /// Digests of the package as fetched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    /// What kind of thing it is (`APPLICATION`, `LIBRARY`, `OPERATING-SYSTEM`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_package_purpose: Option<String>,
    /// Package URLs and the like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
    /// A note for the reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checksum {
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    /// Lowercase hex.
    pub checksum_value: String,
}

/// An external reference of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    /// `PACKAGE-MANAGER`.
    pub reference_category: String,
    /// `purl`.
    pub reference_type: String,
    /// The package URL.
    pub reference_locator: String,
}

impl ExternalRef {
    /// A `purl` reference.
    pub fn purl(locator: String) -> Self {
        Self {
            reference_category: "PACKAGE-MANAGER".into(),
            reference_type: "purl".into(),
            reference_locator: locator,
        }
    }
}

/// A relationship between two elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    /// The element it is about.
    pub spdx_element_id: String,
    /// `DESCRIBES`, `CONTAINS`, `DEPENDS_ON`, ….
    pub relationship_type: String,
    /// The other element.
    pub related_spdx_element: String,
}
