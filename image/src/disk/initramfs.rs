//! The stage-1 initramfs: a newc cpio archive (the format the kernel unpacks into its
//! rootfs), written with the `cpio` crate from a list of entries.
//!
//! The archive is a function of the entries only: they are written sorted by path (every
//! parent directory before what it holds, implied parents added as 0755 directories), every
//! entry owned by 0:0 with one fixed mtime, inode numbers counted from 1 in that order, no
//! device numbers but those of device nodes. So the same entries give the same bytes, from
//! any checkout, whatever the source files' owners and times. Compression (gzip or zstd,
//! both understood by Debian's kernels) is deterministic too: no name or time in the gzip
//! header, zstd single-threaded at a fixed level.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use cpio::newc::{Builder, ModeFileType};

use super::error::DiskError;
use crate::digest::HashingWriter;

/// What an initramfs entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file with the contents of this host file (read when the archive is written).
    File(PathBuf),
    /// A regular file with these contents.
    Data(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
    /// A character device node.
    CharDevice {
        /// Its major number.
        major: u32,
        /// Its minor number.
        minor: u32,
    },
    /// A block device node.
    BlockDevice {
        /// Its major number.
        major: u32,
        /// Its minor number.
        minor: u32,
    },
}

/// How the archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain cpio archive.
    None,
    /// gzip at the best level, with no file name and a zero time in its header.
    Gzip,
    /// zstd at this level (1-22; 19 is what `zstd -19` does), single-threaded.
    Zstd(i32),
}

/// An archive written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Where it is.
    pub path: PathBuf,
    /// The hex sha256 of the file.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The entries of an initramfs, by their path inside it.
#[derive(Debug, Clone)]
pub struct Initramfs {
    mtime: u32,
    entries: BTreeMap<String, (u32, EntryKind)>,
}

impl Initramfs {
    /// An empty initramfs whose entries will all carry `mtime` (seconds since the epoch; a
    /// `SOURCE_DATE_EPOCH`).
    pub fn new(mtime: u32) -> Self {
        Self {
            mtime,
            entries: BTreeMap::new(),
        }
    }

    /// Adds a directory with permission bits `mode` (like 0o755).
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<&mut Self, DiskError> {
        self.add(path, mode, EntryKind::Dir)
    }

    /// Adds a regular file at `path` with the contents of the host file `source`.
    pub fn add_file(
        &mut self,
        path: &str,
        source: impl Into<PathBuf>,
        mode: u32,
    ) -> Result<&mut Self, DiskError> {
        self.add(path, mode, EntryKind::File(source.into()))
    }

    /// Adds a regular file at `path` holding `data`.
    pub fn add_data(
        &mut self,
        path: &str,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<&mut Self, DiskError> {
        self.add(path, mode, EntryKind::Data(data.into()))
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, DiskError> {
        if target.is_empty() || target.contains('\0') {
            return Err(DiskError::BadEntry {
                path: path.to_string(),
                message: format!("symlink target {target:?} is empty or holds a NUL byte"),
            });
        }
        self.add(path, 0o777, EntryKind::Symlink(target.to_string()))
    }

    /// Adds a character device node (like `dev/console`, 5:1).
    pub fn add_char_device(
        &mut self,
        path: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Self, DiskError> {
        self.add(path, mode, EntryKind::CharDevice { major, minor })
    }

    /// Adds a block device node.
    pub fn add_block_device(
        &mut self,
        path: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Self, DiskError> {
        self.add(path, mode, EntryKind::BlockDevice { major, minor })
    }

    /// Adds an entry of any kind. `mode` holds the permission bits (at most 0o7777: setuid,
    /// setgid and sticky included); the file type comes from `kind`. Adding a path twice is
    /// an error unless both are directories with the same mode.
    pub fn add(&mut self, path: &str, mode: u32, kind: EntryKind) -> Result<&mut Self, DiskError> {
        let name = normalize(path)?;
        if mode > 0o7777 {
            return Err(DiskError::BadEntry {
                path: path.to_string(),
                message: format!("mode {mode:o} has bits beyond 7777 (give only permission bits)"),
            });
        }
        // Every parent that is already an entry must be a directory.
        for (i, _) in name.match_indices('/') {
            let parent = &name[..i];
            if let Some((_, kind)) = self.entries.get(parent) {
                if *kind != EntryKind::Dir {
                    return Err(DiskError::Conflict {
                        path: name.clone(),
                        message: format!(
                            "its parent {parent} is already an entry that is not a directory"
                        ),
                    });
                }
            }
        }
        // Nothing may already live under a non-directory.
        if kind != EntryKind::Dir {
            let prefix = format!("{name}/");
            if let Some((child, _)) = self.entries.range(prefix.clone()..).next() {
                if child.starts_with(&prefix) {
                    return Err(DiskError::Conflict {
                        path: name,
                        message: format!(
                            "{child} is already an entry inside it, so it must be a directory"
                        ),
                    });
                }
            }
        }
        match self.entries.get(&name) {
            Some((m, EntryKind::Dir)) if kind == EntryKind::Dir && *m == mode => {}
            Some(_) => {
                return Err(DiskError::Conflict {
                    path: name,
                    message: "added twice".to_string(),
                })
            }
            None => {
                self.entries.insert(name, (mode, kind));
            }
        }
        Ok(self)
    }

    /// The entries as they will be written: sorted by path, implied parent directories
    /// included (mode 0755).
    pub fn entries(&self) -> Vec<(String, u32, EntryKind)> {
        let mut all: BTreeMap<&str, (u32, EntryKind)> = BTreeMap::new();
        for (name, (mode, kind)) in &self.entries {
            for (i, _) in name.match_indices('/') {
                all.entry(&name[..i]).or_insert((0o755, EntryKind::Dir));
            }
            all.insert(name, (*mode, kind.clone()));
        }
        all.into_iter()
            .map(|(name, (mode, kind))| (name.to_string(), mode, kind))
            .collect()
    }

    /// Writes the archive to `out` (replacing it) and returns its digest and size.
    pub fn write(&self, out: &Path, compression: Compression) -> Result<Written, DiskError> {
        let file = File::create(out).map_err(DiskError::io("create", out))?;
        let sink = HashingWriter::new(BufWriter::new(file));
        let write_err = DiskError::io("write", out);
        let sink = match compression {
            Compression::None => self.write_cpio(sink, out)?,
            Compression::Gzip => {
                let enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(sink, flate2::Compression::best());
                self.write_cpio(enc, out)?
                    .finish()
                    .map_err(DiskError::io("gzip", out))?
            }
            Compression::Zstd(level) => {
                let enc = zstd::stream::write::Encoder::new(sink, level)
                    .map_err(DiskError::io("zstd", out))?;
                self.write_cpio(enc, out)?
                    .finish()
                    .map_err(DiskError::io("zstd", out))?
            }
        };
        let (buffered, crate::digest::FileDigest { sha256, size }) = sink.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| write_err(e.into_error()))?;
        file.sync_all().map_err(DiskError::io("sync", out))?;
        Ok(Written {
            path: out.to_path_buf(),
            sha256,
            size,
        })
    }

    /// The cpio stream of every entry and the trailer, into `w`.
    fn write_cpio<W: Write>(&self, mut w: W, out: &Path) -> Result<W, DiskError> {
        for (i, (name, mode, kind)) in self.entries().into_iter().enumerate() {
            let ino = u32::try_from(i + 1).map_err(|_| DiskError::BadEntry {
                path: name.clone(),
                message: "more than 2^32 entries".to_string(),
            })?;
            let header = Builder::new(&name)
                .ino(ino)
                .mode(mode)
                .uid(0)
                .gid(0)
                .mtime(self.mtime);
            match kind {
                EntryKind::Dir => {
                    let header = header.nlink(2).set_mode_file_type(ModeFileType::Directory);
                    write_entry(header, &[], &mut w, out)?;
                }
                EntryKind::Data(data) => {
                    let header = header.set_mode_file_type(ModeFileType::Regular);
                    check_size(&name, data.len() as u64)?;
                    write_entry(header, &data, &mut w, out)?;
                }
                EntryKind::Symlink(target) => {
                    let header = header.set_mode_file_type(ModeFileType::Symlink);
                    write_entry(header, target.as_bytes(), &mut w, out)?;
                }
                EntryKind::CharDevice { major, minor } => {
                    let header = header
                        .rdev_major(major)
                        .rdev_minor(minor)
                        .set_mode_file_type(ModeFileType::Char);
                    write_entry(header, &[], &mut w, out)?;
                }
                EntryKind::BlockDevice { major, minor } => {
                    let header = header
                        .rdev_major(major)
                        .rdev_minor(minor)
                        .set_mode_file_type(ModeFileType::Block);
                    write_entry(header, &[], &mut w, out)?;
                }
                EntryKind::File(source) => {
                    let header = header.set_mode_file_type(ModeFileType::Regular);
                    copy_file(header, &name, &source, &mut w, out)?;
                }
            }
        }
        cpio::newc::trailer(&mut w).map_err(DiskError::io("write", out))?;
        Ok(w)
    }
}

/// The largest file newc can hold (its size field is 8 hex digits).
const MAX_SIZE: u64 = u32::MAX as u64;

fn check_size(name: &str, size: u64) -> Result<u32, DiskError> {
    if size > MAX_SIZE {
        return Err(DiskError::BadEntry {
            path: name.to_string(),
            message: format!("{size} bytes is more than a newc archive can hold (4 GiB - 1)"),
        });
    }
    Ok(size as u32)
}

fn write_entry<W: Write>(
    header: Builder,
    data: &[u8],
    w: &mut W,
    out: &Path,
) -> Result<(), DiskError> {
    let size = data.len() as u32;
    let mut entry = header.write(w, size);
    entry.write_all(data).map_err(DiskError::io("write", out))?;
    entry.finish().map_err(DiskError::io("write", out))?;
    Ok(())
}

fn copy_file<W: Write>(
    header: Builder,
    name: &str,
    source: &Path,
    w: &mut W,
    out: &Path,
) -> Result<(), DiskError> {
    let file = File::open(source).map_err(DiskError::io("open", source))?;
    let meta = file.metadata().map_err(DiskError::io("stat", source))?;
    if !meta.is_file() {
        return Err(DiskError::BadEntry {
            path: name.to_string(),
            message: format!("its source {} is not a regular file", source.display()),
        });
    }
    let size = check_size(name, meta.len())?;
    let mut entry = header.write(w, size);
    let mut reader = file.take(u64::from(size));
    let mut buf = vec![0u8; 1 << 16];
    let mut copied: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DiskError::io("read", source)(e)),
        };
        entry
            .write_all(&buf[..n])
            .map_err(DiskError::io("write", out))?;
        copied += n as u64;
    }
    if copied != u64::from(size) {
        return Err(DiskError::BadEntry {
            path: name.to_string(),
            message: format!(
                "its source {} shrank while being read ({size} bytes expected, {copied} read)",
                source.display()
            ),
        });
    }
    entry.finish().map_err(DiskError::io("write", out))?;
    Ok(())
}

/// `path` as an archive name: no leading `/` or `./`, no empty, `.` or `..` components.
fn normalize(path: &str) -> Result<String, DiskError> {
    let bad = |message: &str| DiskError::BadEntry {
        path: path.to_string(),
        message: message.to_string(),
    };
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(bad("names the archive's root, which is implied"));
    }
    if trimmed.contains('\0') {
        return Err(bad("holds a NUL byte"));
    }
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad("has an empty, '.' or '..' component"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(bytes: &[u8]) -> Vec<(String, u32, u32, u32, u32, Vec<u8>)> {
        let mut rest = bytes;
        let mut out = Vec::new();
        loop {
            let mut reader = cpio::NewcReader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let e = reader.entry().clone();
            let mut data = Vec::new();
            reader.read_to_end(&mut data).unwrap();
            out.push((
                e.name().to_string(),
                e.mode(),
                e.uid(),
                e.mtime(),
                e.ino(),
                data,
            ));
            rest = reader.finish().unwrap();
        }
        out
    }

    #[test]
    fn names_are_normalized_and_bad_ones_refused() {
        assert_eq!(normalize("/init").unwrap(), "init");
        assert_eq!(normalize("./lib/x").unwrap(), "lib/x");
        for bad in ["", "/", "a//b", "a/../b", "./", "a/./b", "a\0b"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn conflicts_are_refused() {
        let mut i = Initramfs::new(0);
        i.add_data("etc/x", "a", 0o644).unwrap();
        assert!(i.add_data("etc/x", "b", 0o644).is_err());
        assert!(i.add_dir("etc/x/y", 0o755).is_err());
        assert!(i.add_data("etc", "b", 0o644).is_err());
        i.add_dir("etc", 0o755).unwrap();
        i.add_dir("etc", 0o755).unwrap();
        assert!(i.add_dir("etc", 0o700).is_err());
        assert!(i.add_data("x", "", 0o10644).is_err());
    }

    #[test]
    fn archive_is_sorted_owned_by_root_with_one_mtime_and_parents() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"hello").unwrap();
        let mut i = Initramfs::new(1_700_000_000);
        i.add_file("/sbin/init", &src, 0o755).unwrap();
        i.add_symlink("bin", "sbin").unwrap();
        i.add_char_device("dev/console", 0o600, 5, 1).unwrap();
        i.add_data("etc/secret", "s", 0o4750).unwrap();
        let out = dir.path().join("a.cpio");
        let w = i.write(&out, Compression::None).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(w.size, bytes.len() as u64);
        let entries = read_back(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "dev",
                "dev/console",
                "etc",
                "etc/secret",
                "sbin",
                "sbin/init"
            ]
        );
        for (n, e) in entries.iter().enumerate() {
            assert_eq!(e.2, 0, "uid of {}", e.0);
            assert_eq!(e.3, 1_700_000_000, "mtime of {}", e.0);
            assert_eq!(e.4, n as u32 + 1, "ino of {}", e.0);
        }
        assert_eq!(entries[0].1, 0o120777);
        assert_eq!(entries[0].5, b"sbin");
        assert_eq!(entries[1].1, 0o40755);
        assert_eq!(entries[2].1, 0o20600);
        assert_eq!(entries[4].1, 0o104750);
        assert_eq!(entries[6].1, 0o100755);
        assert_eq!(entries[6].5, b"hello");
    }

    #[test]
    fn compressed_archives_are_deterministic_and_decompress() {
        let dir = tempfile::tempdir().unwrap();
        let mut i = Initramfs::new(1);
        i.add_data("a", vec![7u8; 100_000], 0o644).unwrap();
        let plain = i.write(&dir.path().join("p"), Compression::None).unwrap();
        for (n, c) in [Compression::Gzip, Compression::Zstd(19)]
            .into_iter()
            .enumerate()
        {
            let a = i.write(&dir.path().join(format!("a{n}")), c).unwrap();
            let b = i.write(&dir.path().join(format!("b{n}")), c).unwrap();
            assert_eq!(a.sha256, b.sha256);
            assert!(a.size < plain.size / 10, "{c:?}: {} bytes", a.size);
            let file = File::open(&a.path).unwrap();
            let mut data = Vec::new();
            match c {
                Compression::Gzip => flate2::read::GzDecoder::new(file).read_to_end(&mut data),
                _ => zstd::stream::read::Decoder::new(file)
                    .unwrap()
                    .read_to_end(&mut data),
            }
            .unwrap();
            assert_eq!(data, std::fs::read(&plain.path).unwrap());
        }
    }
}
