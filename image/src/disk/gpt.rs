//! The raw disk image: a GPT (written with `gptman`) holding one Linux root partition with
//! the ext4 image copied in, in a plain file (no loop device, no partitioning tool).
//!
//! Layout, in 512-byte sectors: protective MBR and GPT in the first MiB, the partition from
//! sector 2048 (1 MiB) for the filesystem's size rounded up to a MiB, then a MiB that holds
//! the backup GPT. The disk and partition GUIDs are derived from the filesystem's sha256
//! unless given, so the same filesystem always gives the same disk.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use gptman::{GPTPartitionEntry, GPT};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::digest::{derived_uuid, sha256_file};
use super::error::DiskError;

/// The Discoverable Partitions Specification's type for an x86-64 root partition.
pub const ROOT_X86_64: Uuid = Uuid::from_u128(0x4f68bce3_e8cd_4db1_96e7_fbcaf984b709);

const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
/// Where the partition starts (and how much room the GPT at the end gets).
const ALIGN: u64 = MIB;

/// How to build the raw disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDiskOptions {
    /// The partition's type GUID.
    pub partition_type: Uuid,
    /// The partition's name (at most 36 UTF-16 units).
    pub partition_name: String,
    /// The disk GUID; `None` derives it from the filesystem's sha256.
    pub disk_guid: Option<Uuid>,
    /// The partition GUID (`root=PARTUUID=…`); `None` derives it from the filesystem's sha256.
    pub partition_guid: Option<Uuid>,
}

impl Default for RawDiskOptions {
    /// An x86-64 root partition named `root`, GUIDs derived.
    fn default() -> Self {
        Self {
            partition_type: ROOT_X86_64,
            partition_name: "root".to_string(),
            disk_guid: None,
            partition_guid: None,
        }
    }
}

/// A raw disk image written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDisk {
    /// The image file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its hex sha256.
    pub sha256: String,
    /// The disk GUID.
    pub disk_guid: Uuid,
    /// The partition's GUID.
    pub partition_guid: Uuid,
    /// Where the partition starts, in bytes.
    pub partition_offset: u64,
    /// The partition's size in bytes.
    pub partition_size: u64,
}

/// Writes the raw disk `out` (replacing it) with one partition holding the filesystem
/// image `filesystem`. Runs of zeros in the filesystem stay holes in `out`.
pub fn build_raw_disk(
    filesystem: &Path,
    out: &Path,
    opts: &RawDiskOptions,
) -> Result<RawDisk, DiskError> {
    let mut fs_file = File::open(filesystem).map_err(DiskError::io("open", filesystem))?;
    let fs_size = fs_file
        .metadata()
        .map_err(DiskError::io("stat", filesystem))?
        .len();
    if fs_size == 0 || fs_size % SECTOR != 0 {
        return Err(DiskError::BadEntry {
            path: filesystem.display().to_string(),
            message: format!("{fs_size} bytes is not a whole, non-zero number of 512-byte sectors"),
        });
    }
    let partition_size = fs_size.div_ceil(ALIGN) * ALIGN;
    let disk_size = ALIGN + partition_size + ALIGN;

    match fs::remove_file(out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(DiskError::io("remove", out)(e))
        }
        _ => {}
    }
    let mut disk = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(DiskError::io("create", out))?;
    disk.set_len(disk_size)
        .map_err(DiskError::io("size", out))?;
    let fs_sha256 = copy_sparse(&mut fs_file, filesystem, &mut disk, out, ALIGN)?;

    let disk_guid = opts
        .disk_guid
        .unwrap_or_else(|| derived_uuid("gpt-disk", &fs_sha256));
    let partition_guid = opts
        .partition_guid
        .unwrap_or_else(|| derived_uuid("gpt-partition", &fs_sha256));
    let gpt_err = |e: gptman::Error| DiskError::Gpt {
        path: out.to_path_buf(),
        message: e.to_string(),
    };
    let mut gpt = GPT::new_from(&mut disk, SECTOR, disk_guid.to_bytes_le()).map_err(gpt_err)?;
    gpt.align = ALIGN / SECTOR;
    let first = ALIGN / SECTOR;
    let last = first + partition_size / SECTOR - 1;
    if gpt.header.first_usable_lba > first || gpt.header.last_usable_lba < last {
        return Err(DiskError::Gpt {
            path: out.to_path_buf(),
            message: format!(
                "sectors {first}..={last} do not fit the usable {}..={}",
                gpt.header.first_usable_lba, gpt.header.last_usable_lba
            ),
        });
    }
    gpt[1] = GPTPartitionEntry {
        partition_type_guid: opts.partition_type.to_bytes_le(),
        unique_partition_guid: partition_guid.to_bytes_le(),
        starting_lba: first,
        ending_lba: last,
        attribute_bits: 0,
        partition_name: opts.partition_name.as_str().into(),
    };
    gpt.write_into(&mut disk).map_err(gpt_err)?;
    GPT::write_protective_mbr_into(&mut disk, SECTOR).map_err(gpt_err)?;
    disk.sync_all().map_err(DiskError::io("sync", out))?;
    drop(disk);

    Ok(RawDisk {
        path: out.to_path_buf(),
        size: disk_size,
        sha256: sha256_file(out)?,
        disk_guid,
        partition_guid,
        partition_offset: ALIGN,
        partition_size,
    })
}

/// Copies all of `from` into `to` at `offset`, seeking over all-zero chunks (the target is
/// freshly sized, so they read as zeros), and returns the hex sha256 of `from`.
fn copy_sparse(
    from: &mut File,
    from_path: &Path,
    to: &mut File,
    to_path: &Path,
    offset: u64,
) -> Result<String, DiskError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    to.seek(SeekFrom::Start(offset))
        .map_err(DiskError::io("seek", to_path))?;
    loop {
        let n = read_full(from, &mut buf).map_err(DiskError::io("read", from_path))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        for block in chunk.chunks(64 * 1024) {
            if block.iter().all(|&b| b == 0) {
                to.seek(SeekFrom::Current(block.len() as i64))
                    .map_err(DiskError::io("seek", to_path))?;
            } else {
                to.write_all(block)
                    .map_err(DiskError::io("write", to_path))?;
            }
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Reads until `buf` is full or the file ends; the count read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_table_that_gptman_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let fs_path = dir.path().join("fs");
        let mut data = vec![0u8; 3 * MIB as usize + 4096];
        data[0] = 0xaa;
        data[2 * MIB as usize + 7] = 0xbb;
        fs::write(&fs_path, &data).unwrap();
        let out = dir.path().join("disk.raw");
        let disk = build_raw_disk(&fs_path, &out, &RawDiskOptions::default()).unwrap();
        assert_eq!(disk.partition_size, 4 * MIB);
        assert_eq!(disk.size, 6 * MIB);

        let mut f = File::open(&out).unwrap();
        let gpt = GPT::read_from(&mut f, SECTOR).unwrap();
        assert_eq!(gpt.header.disk_guid, disk.disk_guid.to_bytes_le());
        let (n, p) = gpt.iter().find(|(_, p)| p.is_used()).unwrap();
        assert_eq!(n, 1);
        assert_eq!(p.starting_lba, 2048);
        assert_eq!(p.ending_lba, 2048 + 8192 - 1);
        assert_eq!(p.partition_type_guid, ROOT_X86_64.to_bytes_le());
        assert_eq!(p.partition_name.as_str(), "root");

        let bytes = fs::read(&out).unwrap();
        assert_eq!(&bytes[510..512], &[0x55, 0xaa]);
        assert_eq!(&bytes[MIB as usize..MIB as usize + data.len()], &data[..]);

        let again = dir.path().join("again.raw");
        assert_eq!(
            build_raw_disk(&fs_path, &again, &RawDiskOptions::default())
                .unwrap()
                .sha256,
            disk.sha256
        );
    }

    #[test]
    fn an_odd_sized_filesystem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fs_path = dir.path().join("fs");
        fs::write(&fs_path, [1u8; 1000]).unwrap();
        let err = build_raw_disk(&fs_path, &dir.path().join("d"), &RawDiskOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("1000 bytes"), "{err}");
    }
}
