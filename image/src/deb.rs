//! Debian package file names: `NAME_VERSION_ARCH.deb`, as `apt-get download` writes them
//! (an epoch's `:` is written `%3a`).

/// What a `.deb` file name says about the package in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebName {
    /// The package name, e.g. `linux-image-6.1.0-56-amd64`.
    pub name: String,
    /// The version, epoch included, e.g. `6.1.192-2`.
    pub version: String,
    /// The architecture, e.g. `amd64`.
    pub arch: String,
}

impl DebName {
    /// Reads `NAME_VERSION_ARCH.deb`; `None` when the name does not have that shape.
    pub fn parse(file_name: &str) -> Option<Self> {
        let stem = file_name.strip_suffix(".deb")?;
        let mut parts = stem.split('_');
        let (name, version, arch) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || [name, version, arch].iter().any(|p| p.is_empty()) {
            return None;
        }
        let name_ok = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
        let version = version.replace("%3a", ":").replace("%3A", ":");
        let version_ok = version.starts_with(|c: char| c.is_ascii_digit())
            && version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.~:".contains(&b));
        if !name_ok || !version_ok {
            return None;
        }
        Some(Self {
            name: name.to_string(),
            version,
            arch: arch.to_string(),
        })
    }

    /// The package URL (`pkg:deb/debian/NAME@VERSION?arch=ARCH`).
    pub fn purl(&self) -> String {
        format!(
            "pkg:deb/debian/{}@{}?arch={}",
            self.name,
            self.version.replace(':', "%3A"),
            self.arch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debian_file_names() {
        let k = DebName::parse("linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb").unwrap();
        assert_eq!(k.name, "linux-image-6.1.0-56-amd64");
        assert_eq!(k.version, "6.1.192-2");
        assert_eq!(k.arch, "amd64");
        assert_eq!(
            k.purl(),
            "pkg:deb/debian/linux-image-6.1.0-56-amd64@6.1.192-2?arch=amd64"
        );
        let e = DebName::parse("qemu-utils_1%3a10.0.2+ds-2_amd64.deb").unwrap();
        assert_eq!(e.version, "1:10.0.2+ds-2");
        assert_eq!(
            e.purl(),
            "pkg:deb/debian/qemu-utils@1%3A10.0.2+ds-2?arch=amd64"
        );
        for bad in [
            "vmlinuz",
            "x_1_amd64.tar",
            "x_1.deb",
            "X_1_amd64.deb",
            "x_v1_amd64.deb",
        ] {
            assert_eq!(DebName::parse(bad), None, "{bad}");
        }
    }
}
