//! The npm packages an installed runtime holds, from its `app/package-lock.json`: name,
//! version, resolved URL and integrity digests.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use base64::Engine;

use super::error::SbomError;
use super::spdx::Checksum;

/// One npm package (name and version) of the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NpmPackage {
    /// Its name, scope included (`@scope/name`).
    pub name: String,
    /// Its exact version.
    pub version: String,
    /// The URL it was fetched from, when the lockfile has one.
    pub resolved: Option<String>,
    /// Its integrity digests, as SPDX checksums.
    pub checksums: Vec<Checksum>,
}

impl NpmPackage {
    /// Its package URL: `pkg:npm/%40scope/name@version`.
    pub fn purl(&self) -> String {
        format!(
            "pkg:npm/{}@{}",
            self.name.replacen('@', "%40", 1),
            self.version
        )
    }
}

/// The packages of `runtime/app/package-lock.json` that are installed under
/// `runtime/app/` (optional packages for other platforms are locked but not installed),
/// each name and version once, sorted by name, then version.
pub(crate) fn installed_packages(runtime: &Path) -> Result<Vec<NpmPackage>, SbomError> {
    let app = runtime.join("app");
    let path = app.join("package-lock.json");
    let bad = |message: String, hint: &'static str| SbomError::BadInput {
        path: path.clone(),
        message,
        hint,
    };
    let text = fs::read(&path).map_err(SbomError::io("read", &path))?;
    let lock: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        bad(
            format!("not JSON: {e}"),
            "the runtime is damaged: install it again",
        )
    })?;
    let entries = lock
        .get("packages")
        .and_then(|p| p.as_object())
        .ok_or_else(|| {
            bad(
                "no \"packages\" (lockfileVersion 2 or 3 expected)".into(),
                "prepare the runtime bundle again with npm 7 or later",
            )
        })?;
    let mut found: BTreeMap<(String, String), NpmPackage> = BTreeMap::new();
    for (key, entry) in entries {
        if key.is_empty() || entry.get("link").is_some() || !app.join(key).is_dir() {
            continue;
        }
        let name = entry
            .get("name")
            .and_then(|n| n.as_str())
            .or_else(|| key.rsplit("node_modules/").next())
            .unwrap_or(key)
            .to_string();
        let Some(version) = entry.get("version").and_then(|v| v.as_str()) else {
            return Err(bad(
                format!("{key} has no version"),
                "the runtime's lockfile is damaged: prepare the runtime bundle again",
            ));
        };
        let checksums = match entry.get("integrity").and_then(|i| i.as_str()) {
            Some(sri) => integrity(sri).map_err(|m| {
                bad(
                    format!("{key}: integrity {sri:?}: {m}"),
                    "the runtime's lockfile is damaged: prepare the runtime bundle again",
                )
            })?,
            None => Vec::new(),
        };
        let package = NpmPackage {
            name: name.clone(),
            version: version.to_string(),
            resolved: entry
                .get("resolved")
                .and_then(|r| r.as_str())
                .map(str::to_string),
            checksums,
        };
        found.entry((name, version.to_string())).or_insert(package);
    }
    Ok(found.into_values().collect())
}

/// A Subresource Integrity value (`sha512-BASE64 sha1-BASE64`) as SPDX checksums.
fn integrity(sri: &str) -> Result<Vec<Checksum>, String> {
    let mut out = Vec::new();
    for part in sri.split_whitespace() {
        let (alg, b64) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not ALGORITHM-BASE64"))?;
        let (algorithm, len) = match alg {
            "sha512" => ("SHA512", 64),
            "sha384" => ("SHA384", 48),
            "sha256" => ("SHA256", 32),
            "sha1" => ("SHA1", 20),
            other => return Err(format!("unknown algorithm {other:?}")),
        };
        let b64 = b64.split('?').next().unwrap_or(b64);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("{part:?}: {e}"))?;
        if bytes.len() != len {
            return Err(format!("{alg} digest of {} bytes", bytes.len()));
        }
        out.push(Checksum {
            algorithm: algorithm.into(),
            checksum_value: hex::encode(bytes),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_installed_packages_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path();
        let sha512 = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 64])
        );
        let lock = serde_json::json!({ "lockfileVersion": 3, "packages": {
            "": { "dependencies": { "openclaw": "1.2.3" } },
            "node_modules/openclaw": {
                "version": "1.2.3",
                "resolved": "https://registry.npmjs.org/openclaw/-/openclaw-1.2.3.tgz",
                "integrity": sha512,
            },
            "node_modules/@scope/x": { "version": "0.1.0", "integrity": "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA=" },
            "node_modules/openclaw/node_modules/@scope/x": { "version": "0.1.0", "inBundle": true },
            "node_modules/@esbuild/darwin-arm64": { "version": "0.1.0", "optional": true },
            "node_modules/local": { "resolved": "../local", "link": true },
        }});
        fs::create_dir_all(rt.join("app/node_modules/openclaw/node_modules/@scope/x")).unwrap();
        fs::create_dir_all(rt.join("app/node_modules/@scope/x")).unwrap();
        fs::write(rt.join("app/package-lock.json"), lock.to_string()).unwrap();
        let got = installed_packages(rt).unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].name, "@scope/x");
        assert_eq!(got[0].purl(), "pkg:npm/%40scope/x@0.1.0");
        assert_eq!(got[0].checksums[0].algorithm, "SHA1");
        assert_eq!(got[0].checksums[0].checksum_value, "0".repeat(40));
        assert_eq!(got[1].name, "openclaw");
        assert_eq!(got[1].checksums[0].checksum_value, "07".repeat(64));
        assert_eq!(
            got[1].resolved.as_deref(),
            Some("https://registry.npmjs.org/openclaw/-/openclaw-1.2.3.tgz")
        );
        assert!(integrity("md5-AAAA").is_err());
    }
}
