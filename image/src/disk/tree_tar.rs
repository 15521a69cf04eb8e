//! A directory tree as a deterministic tar (with the `tar` crate), the form in which
//! `mke2fs -d` takes it.
//!
//! `mke2fs -d DIR` reads the source's atime and ctime (which no one can pin) and leaves
//! mtimes older than `SOURCE_DATE_EPOCH` as they are; from a tar it takes exactly what the
//! headers say. So the tree goes through a tar whose entries are sorted by path, with every
//! time (mtime, atime, ctime) set to the epoch, numeric owners and no user or group names:
//! the tar, and so the filesystem, is a function of the tree's names, contents, modes,
//! owners, link targets, device numbers and hardlinks only.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::BufWriter;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::error::DiskError;
use crate::digest::HashingWriter;

/// The ext4 block size the accounting below assumes.
pub(crate) const BLOCK: u64 = 4096;

/// What a tree holds, as ext4 will need room for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Directories, files, symlinks, hardlinks and device nodes (the root included).
    pub entries: u64,
    /// Inodes it needs (hardlinks share one).
    pub inodes: u64,
    /// 4 KiB blocks of file data, directory entries and symlink targets too long to live
    /// in the inode.
    pub blocks: u64,
}

/// The tar written from a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeTar {
    /// The tar file.
    pub path: PathBuf,
    /// Its hex sha256.
    pub sha256: String,
    /// What the tree holds.
    pub stats: TreeStats,
}

/// Writes the tree at `root` as a tar at `out`, every time set to `epoch`.
pub fn write_tree_tar(root: &Path, out: &Path, epoch: u64) -> Result<TreeTar, DiskError> {
    let meta = fs::symlink_metadata(root).ok().filter(|m| m.is_dir());
    let Some(root_meta) = meta else {
        return Err(DiskError::NotADirectory {
            path: root.to_path_buf(),
            hint: "the root filesystem's source must be an existing directory",
        });
    };
    let file = File::create(out).map_err(DiskError::io("create", out))?;
    let mut writer = TreeWriter {
        tar: tar::Builder::new(HashingWriter::new(BufWriter::new(file))),
        out: out.to_path_buf(),
        epoch,
        links: BTreeMap::new(),
        stats: TreeStats::default(),
    };
    writer.dir(root, Path::new("."), &root_meta)?;
    let hashing = writer
        .tar
        .into_inner()
        .map_err(DiskError::io("write", out))?;
    let (buffered, crate::digest::FileDigest { sha256, .. }) = hashing.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| DiskError::io("write", out)(e.into_error()))?;
    file.sync_all().map_err(DiskError::io("sync", out))?;
    Ok(TreeTar {
        path: out.to_path_buf(),
        sha256,
        stats: writer.stats,
    })
}

struct TreeWriter {
    tar: tar::Builder<HashingWriter<BufWriter<File>>>,
    out: PathBuf,
    epoch: u64,
    /// (device, inode) of files with more than one link → the first name written.
    links: BTreeMap<(u64, u64), PathBuf>,
    stats: TreeStats,
}

impl TreeWriter {
    /// A header with the fields every entry shares.
    fn header(&self, meta: &fs::Metadata, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        h.set_mtime(self.epoch);
        if let Some(gnu) = h.as_gnu_mut() {
            gnu.set_atime(self.epoch);
            gnu.set_ctime(self.epoch);
        }
        h.set_size(0);
        h
    }

    fn write_err(&self) -> impl FnOnce(std::io::Error) -> DiskError {
        DiskError::io("write", self.out.clone())
    }

    /// The directory `path` (named `name` in the tar) and everything under it.
    fn dir(&mut self, path: &Path, name: &Path, meta: &fs::Metadata) -> Result<(), DiskError> {
        let mut children: Vec<(OsString, PathBuf)> = Vec::new();
        for entry in fs::read_dir(path).map_err(DiskError::io("read directory", path))? {
            let entry = entry.map_err(DiskError::io("read directory", path))?;
            children.push((entry.file_name(), entry.path()));
        }
        children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        let mut header = self.header(meta, EntryType::Directory);
        let tar_name = if name == Path::new(".") {
            PathBuf::from("./")
        } else {
            let mut n = name.as_os_str().to_owned();
            n.push("/");
            PathBuf::from(n)
        };
        let err = self.write_err();
        self.tar
            .append_data(&mut header, &tar_name, std::io::empty())
            .map_err(err)?;
        // ".", "..", then one record per child: 8 bytes plus the name, in 4-byte steps.
        let bytes: u64 = 24
            + children
                .iter()
                .map(|(n, _)| 8 + (n.len() as u64).div_ceil(4) * 4)
                .sum::<u64>();
        let blocks = bytes.div_ceil(BLOCK);
        // A directory of more than one block also gets an htree index block.
        self.stats.blocks += if blocks > 1 { blocks + 1 } else { 1 };
        self.stats.entries += 1;
        self.stats.inodes += 1;

        for (child_name, child_path) in children {
            let child_tar = if name == Path::new(".") {
                PathBuf::from(&child_name)
            } else {
                name.join(&child_name)
            };
            let meta =
                fs::symlink_metadata(&child_path).map_err(DiskError::io("stat", &child_path))?;
            self.entry(&child_path, &child_tar, &meta)?;
        }
        Ok(())
    }

    /// One entry that is not the root.
    fn entry(&mut self, path: &Path, name: &Path, meta: &fs::Metadata) -> Result<(), DiskError> {
        let kind = meta.file_type();
        if kind.is_dir() {
            return self.dir(path, name, meta);
        }
        self.stats.entries += 1;
        if !kind.is_symlink() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                let mut header = self.header(meta, EntryType::Link);
                let err = self.write_err();
                return self.tar.append_link(&mut header, name, &first).map_err(err);
            }
            self.links.insert(key, name.to_path_buf());
        }
        self.stats.inodes += 1;
        let err = self.write_err();
        if kind.is_file() {
            let mut header = self.header(meta, EntryType::Regular);
            header.set_size(meta.len());
            self.stats.blocks += meta.len().div_ceil(BLOCK);
            // A file spread over more than 4 extents (128 MiB each) needs an extent block.
            if meta.len() > 4 * (128 << 20) {
                self.stats.blocks += 1;
            }
            let file = File::open(path).map_err(DiskError::io("open", path))?;
            self.tar
                .append_data(&mut header, name, file)
                .map_err(DiskError::io("copy into tar", path))
        } else if kind.is_symlink() {
            let target = fs::read_link(path).map_err(DiskError::io("read link", path))?;
            // Targets of 60 bytes or more do not fit in the inode.
            if target.as_os_str().len() >= 60 {
                self.stats.blocks += 1;
            }
            let mut header = self.header(meta, EntryType::Symlink);
            self.tar
                .append_link(&mut header, name, &target)
                .map_err(err)
        } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
            let entry_type = if kind.is_char_device() {
                EntryType::Char
            } else if kind.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            let mut header = self.header(meta, entry_type);
            if !kind.is_fifo() {
                let rdev = meta.rdev();
                let bad = |e: std::io::Error| DiskError::BadEntry {
                    path: path.display().to_string(),
                    message: format!("device number {rdev:#x}: {e}"),
                };
                header.set_device_major(major(rdev)).map_err(bad)?;
                header.set_device_minor(minor(rdev)).map_err(bad)?;
            }
            self.tar
                .append_data(&mut header, name, std::io::empty())
                .map_err(err)
        } else {
            Err(DiskError::BadEntry {
                path: path.display().to_string(),
                message: "a socket cannot go into a filesystem image (remove it from the tree)"
                    .to_string(),
            })
        }
    }
}

/// The major number of a Linux `dev_t` (glibc's `gnu_dev_major`).
fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}

/// The minor number of a Linux `dev_t` (glibc's `gnu_dev_minor`).
fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn device_numbers_split_like_glibc() {
        assert_eq!((major(0x0103), minor(0x0103)), (1, 3));
        assert_eq!((major(0x0501), minor(0x0501)), (5, 1));
        // major 259, minor 300 (0x12c): minor's high bits go above bit 20
        let dev = (259u64 & 0xfff) << 8 | (300u64 & 0xff) | ((300u64 & !0xff) << 12);
        assert_eq!((major(dev), minor(dev)), (259, 300));
    }

    #[test]
    fn tar_is_sorted_with_fixed_times_and_shares_hardlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("z"), "zz").unwrap();
        fs::write(root.join("a"), "aa").unwrap();
        fs::hard_link(root.join("z"), root.join("b/c/hard")).unwrap();
        symlink("../z", root.join("b/link")).unwrap();
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o4755)).unwrap();
        let out = dir.path().join("t.tar");
        let t = write_tree_tar(&root, &out, 1_700_000_000).unwrap();
        assert_eq!(t.stats.entries, 7);
        assert_eq!(t.stats.inodes, 6);

        let mut archive = tar::Archive::new(File::open(&out).unwrap());
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            let name = e.path().unwrap().display().to_string();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            let mut data = String::new();
            e.read_to_string(&mut data).unwrap();
            seen.push((name, h.entry_type(), h.mode().unwrap(), link, data));
        }
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["./", "a", "b/", "b/c/", "b/c/hard", "b/link", "z"]);
        assert_eq!(seen[1].2, 0o4755);
        assert_eq!(
            seen[4].1,
            EntryType::Regular,
            "first name of the pair holds the data"
        );
        assert_eq!(seen[4].4, "zz");
        assert_eq!(seen[5].3.as_deref(), Some("../z"));
        assert_eq!(seen[6].1, EntryType::Link);
        assert_eq!(seen[6].3.as_deref(), Some("b/c/hard"));

        // Same tree, other times: same bytes.
        let again = dir.path().join("u.tar");
        filetime_touch(&root.join("a"));
        assert_eq!(
            write_tree_tar(&root, &again, 1_700_000_000).unwrap().sha256,
            t.sha256
        );
    }

    fn filetime_touch(path: &Path) {
        let f = File::options().append(true).open(path).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    }

    #[test]
    fn a_missing_root_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_tree_tar(&dir.path().join("nope"), &dir.path().join("t"), 0).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
