//! One reproducible image layer from a directory tree: a tar (entries in sorted order,
//! owner 0:0, one fixed mtime, read-only modes, no extended attributes or PAX records)
//! compressed with gzip (no name, no mtime in the header, a fixed level).

use std::fs::{self, File};
use std::io::BufWriter;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use super::blobs::blob_path;
use super::error::OciError;
use crate::digest::{FileDigest, HashingWriter};

/// gzip level of the layer. The compressed bytes depend on it and on the deflate code
/// (flate2's, pinned by Cargo.lock).
const GZIP_LEVEL: u32 = 6;

/// Mode of the directories above the runtime (`opt/`).
const PARENT_DIR_MODE: u32 = 0o755;

/// A layer written into the blobs of a layout.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// The compressed blob: its digest names it.
    pub blob: FileDigest,
    /// The uncompressed tar: its digest is the config's diff_id.
    pub tar: FileDigest,
    /// Entries in the tar.
    pub entries: u64,
}

/// Writes `tree` as a gzip-compressed tar layer under `mount` (e.g. `opt/openclaw`, its
/// parents included) into `layout`'s blobs. Every entry gets owner 0:0 and mtime `epoch`;
/// directories and files with any execute bit get 0555, other files 0444 (the runtime is
/// read-only wherever it lands), symlinks keep their target. Directory entries are sorted
/// by name (bytewise) and written parents first, so the same tree always gives the same
/// bytes, wherever it is and whatever its timestamps.
pub(crate) fn write_layer(
    tree: &Path,
    mount: &str,
    epoch: u64,
    layout: &Path,
) -> Result<Layer, OciError> {
    let scratch = Scratch(blob_path(
        layout,
        &format!(".layer-{}.tmp", std::process::id()),
    ));
    let tmp = scratch.0.as_path();
    let file = File::create(tmp).map_err(OciError::io("create", tmp))?;
    let compressed = HashingWriter::new(BufWriter::new(file));
    let gz = GzBuilder::new().write(compressed, Compression::new(GZIP_LEVEL));
    let mut writer = LayerWriter {
        tar: tar::Builder::new(HashingWriter::new(gz)),
        epoch,
        tmp,
        entries: 0,
    };

    let mut prefix = PathBuf::new();
    let parts: Vec<&str> = mount.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        prefix.push(part);
        let mode = if i + 1 == parts.len() {
            0o555
        } else {
            PARENT_DIR_MODE
        };
        writer.dir(&prefix, mode)?;
    }
    writer.walk(tree, &prefix)?;

    let LayerWriter { tar, entries, .. } = writer;
    let gz_in = tar.into_inner().map_err(OciError::io("write", tmp))?;
    let (gz, tar_digest) = gz_in.finish();
    let compressed = gz.finish().map_err(OciError::io("write", tmp))?;
    let (buffered, blob_digest) = compressed.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| OciError::io("write", tmp)(e.into_error()))?;
    file.sync_all().map_err(OciError::io("sync", tmp))?;
    let path = blob_path(layout, &blob_digest.sha256);
    fs::rename(tmp, &path).map_err(OciError::io("rename into", &path))?;
    Ok(Layer {
        blob: blob_digest,
        tar: tar_digest,
        entries,
    })
}

type Gz = flate2::write::GzEncoder<HashingWriter<BufWriter<File>>>;

struct LayerWriter<'a> {
    tar: tar::Builder<HashingWriter<Gz>>,
    epoch: u64,
    tmp: &'a Path,
    entries: u64,
}

impl LayerWriter<'_> {
    fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.epoch);
        h.set_size(size);
        h
    }

    fn dir(&mut self, name: &Path, mode: u32) -> Result<(), OciError> {
        let mut h = self.header(EntryType::Directory, mode, 0);
        self.tar
            .append_data(&mut h, name, std::io::empty())
            .map_err(OciError::io("write", self.tmp))?;
        self.entries += 1;
        Ok(())
    }

    /// The children of `dir` (already written as `name`), sorted, parents first.
    fn walk(&mut self, dir: &Path, name: &Path) -> Result<(), OciError> {
        let mut children: Vec<_> = fs::read_dir(dir)
            .map_err(OciError::io("read directory", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(OciError::io("read directory", dir))?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for child in children {
            let path = dir.join(&child);
            let entry_name = name.join(&child);
            let meta = fs::symlink_metadata(&path).map_err(OciError::io("stat", &path))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                self.dir(&entry_name, 0o555)?;
                self.walk(&path, &entry_name)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).map_err(OciError::io("read link", &path))?;
                let mut h = self.header(EntryType::Symlink, 0o777, 0);
                self.tar
                    .append_link(&mut h, &entry_name, &target)
                    .map_err(OciError::io("write", self.tmp))?;
                self.entries += 1;
            } else if kind.is_file() {
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    0o555
                } else {
                    0o444
                };
                let mut h = self.header(EntryType::Regular, mode, meta.len());
                let file = File::open(&path).map_err(OciError::io("open", &path))?;
                self.tar
                    .append_data(&mut h, &entry_name, file)
                    .map_err(OciError::io("add to the layer", &path))?;
                self.entries += 1;
            } else {
                return Err(OciError::Unsupported {
                    path,
                    message: "neither a file, a directory nor a symlink".into(),
                    hint: "a runtime holds none: install it again with `clawkeep runtime install`",
                });
            }
        }
        Ok(())
    }
}

/// A scratch file removed when dropped (a partial layer on an error; after the rename it
/// is gone already).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
