//! The ext4 root filesystem image, made by `mke2fs -d` from a directory tree: no mounts, no
//! loop devices, no root needed beyond reading the tree.
//!
//! Bit-identical output takes (see ../shared/research/image.md, section 3):
//! - e2fsprogs >= 1.47.1, which clamps every inode time to `SOURCE_DATE_EPOCH` (1.47.0, in
//!   Debian 12, copies the source's atime and ctime instead): checked, and refused with the
//!   way out, before anything is written;
//! - the tree passed as a deterministic tar ([`super::tree_tar`]), so mtimes too are the
//!   epoch and the order of entries is fixed;
//! - a fixed filesystem UUID and directory hash seed (derived from the tar's digest unless
//!   given), `E2FSPROGS_FAKE_TIME` for the superblock's times;
//! - every layout choice explicit: the features in a `mke2fs.conf` of our own (Debian 12's
//!   ext4 set), block and inode size, inode count, journal size, no reserved blocks, and the
//!   size itself;
//! - `E2FSCK_TIME` for the e2fsck pass that follows.
//!
//! The filesystem has project quotas (`quota,project`, project quota only): clawkeep limits
//! each agent's home with them (an agent's `disk` setting). `mke2fs -d` writes the quota file
//! as the empty filesystem had it, so an `e2fsck -fy` pass counts what the tree put there;
//! nothing else is left for it to change, and `e2fsck -fn` then finds the image clean.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::digest::{derived_uuid, sha256_file};
use super::error::DiskError;
use super::tool;
use super::tree_tar::{write_tree_tar, TreeStats, BLOCK};

/// The oldest e2fsprogs whose `mke2fs -d` output is reproducible.
pub const MKE2FS_MIN_VERSION: &str = "1.47.1";

/// What `mke2fs -t ext4` makes: Debian 12's ext4 features, spelled out so that the host's
/// `/etc/mke2fs.conf` (or a newer e2fsprogs's defaults) cannot change the image. The size
/// classes mke2fs looks up are there, empty: block size, inode size and count are given on
/// its command line.
const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize,quota,project
\t}
";

/// Bytes per inode when the size, not the content, decides the inode count.
const INODE_RATIO: u64 = 16384;
/// Bytes of one inode.
const INODE_SIZE: u64 = 256;
/// Blocks per block group (4 KiB blocks: 128 MiB a group).
const BLOCKS_PER_GROUP: u64 = 32768;
const MIB: u64 = 1 << 20;
/// The smallest filesystem built: mke2fs wants the journal (4 MiB) to take at most half
/// of the free blocks.
const MIN_SIZE: u64 = 16 * MIB;

/// How big the filesystem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext4Size {
    /// Computed from the content: room for it plus this many percent more data (and inodes),
    /// plus the filesystem's own metadata, rounded up to a MiB.
    Auto {
        /// Free space to leave, in percent of the content.
        headroom_percent: u32,
    },
    /// Exactly this many bytes (a multiple of 4096); refused if the content does not fit.
    Bytes(u64),
}

/// How to build an ext4 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Options {
    /// The mke2fs to run (>= [`MKE2FS_MIN_VERSION`]; `scripts/install-image-tools` prints one).
    pub mke2fs: PathBuf,
    /// The e2fsck that counts the quota usage (by default the one beside `mke2fs`, from the
    /// same e2fsprogs).
    pub e2fsck: PathBuf,
    /// Every time in the filesystem (a `SOURCE_DATE_EPOCH`), seconds since 1970.
    pub epoch: u64,
    /// The volume label.
    pub label: String,
    /// The size.
    pub size: Ext4Size,
    /// The filesystem UUID; `None` derives it from the content.
    pub uuid: Option<Uuid>,
    /// The directory hash seed; `None` derives it from the content.
    pub hash_seed: Option<Uuid>,
}

impl Ext4Options {
    /// Options with label `root`, a computed size with 20% headroom, and UUID and hash seed
    /// derived from the content.
    pub fn new(mke2fs: impl Into<PathBuf>, epoch: u64) -> Self {
        let mke2fs: PathBuf = mke2fs.into();
        Self {
            e2fsck: mke2fs.with_file_name("e2fsck"),
            mke2fs,
            epoch,
            label: "root".to_string(),
            size: Ext4Size::Auto {
                headroom_percent: 20,
            },
            uuid: None,
            hash_seed: None,
        }
    }
}

/// An ext4 image written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Image {
    /// The image file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its hex sha256.
    pub sha256: String,
    /// The filesystem UUID.
    pub uuid: Uuid,
    /// The directory hash seed.
    pub hash_seed: Uuid,
    /// The inode count it was made with.
    pub inodes: u64,
    /// What the tree holds.
    pub content: TreeStats,
    /// The mke2fs version that made it.
    pub mke2fs_version: String,
}

/// The version of the mke2fs at `mke2fs` (the older of the program's and its library's),
/// refused with [`DiskError::Mke2fsTooOld`] if it cannot make reproducible images.
pub fn check_mke2fs(mke2fs: &Path) -> Result<String, DiskError> {
    let out = tool::run(
        "mke2fs",
        mke2fs,
        &["-V".into()],
        &[],
        "install e2fsprogs >= 1.47.1: scripts/install-image-tools prints its path",
        "is this e2fsprogs' mke2fs?",
    )?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let mut versions = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("mke2fs ") {
            versions.extend(rest.split_whitespace().next().map(str::to_string));
        } else if let Some(rest) = line.strip_prefix("Using EXT2FS Library version ") {
            versions.extend(rest.split_whitespace().next().map(str::to_string));
        }
    }
    let oldest = versions
        .into_iter()
        .reduce(|a, b| if tool::version_at_least(&a, &b) { b } else { a });
    let Some(oldest) = oldest else {
        return Err(DiskError::ToolFailed {
            command: format!("{} -V", mke2fs.display()),
            message: format!("no version in its output: {}", text.trim()),
            hint: "is this e2fsprogs' mke2fs?".to_string(),
        });
    };
    if !tool::version_at_least(&oldest, MKE2FS_MIN_VERSION) {
        return Err(DiskError::Mke2fsTooOld {
            path: mke2fs.to_path_buf(),
            version: oldest,
            needed: MKE2FS_MIN_VERSION,
        });
    }
    Ok(oldest)
}

/// Builds the ext4 image `out` (replacing it) holding the tree at `source`: owners, modes
/// (setuid, setgid, sticky), symlinks, hardlinks, device nodes and FIFOs as in the tree,
/// every time set to `opts.epoch`. Scratch files go next to `out` and are removed.
pub fn build_ext4(source: &Path, out: &Path, opts: &Ext4Options) -> Result<Ext4Image, DiskError> {
    let version = check_mke2fs(&opts.mke2fs)?;
    let scratch = Scratch::new(out)?;
    let tar = write_tree_tar(source, &scratch.path("tree.tar"), opts.epoch)?;
    let stats = tar.stats;

    let (size, inodes) = match opts.size {
        Ext4Size::Auto { headroom_percent } => auto_size(&stats, headroom_percent),
        Ext4Size::Bytes(size) => {
            if size % BLOCK != 0 {
                return Err(DiskError::BadEntry {
                    path: out.display().to_string(),
                    message: format!("ext4 size {size} is not a multiple of 4096 bytes"),
                });
            }
            let inodes = inode_count(size, &stats, 0);
            if size < needed(size, inodes, &stats) || size < MIN_SIZE {
                return Err(too_small(size, source, &stats));
            }
            (size, inodes)
        }
    };

    let uuid = opts
        .uuid
        .unwrap_or_else(|| derived_uuid("ext4-uuid", &tar.sha256));
    let hash_seed = opts
        .hash_seed
        .unwrap_or_else(|| derived_uuid("ext4-hash-seed", &tar.sha256));
    let conf = scratch.path("mke2fs.conf");
    fs::write(&conf, MKE2FS_CONF).map_err(DiskError::io("write", &conf))?;
    match fs::remove_file(out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(DiskError::io("remove", out)(e))
        }
        _ => {}
    }

    let args: Vec<OsString> = vec![
        "-q".into(),
        "-F".into(),
        "-t".into(),
        "ext4".into(),
        "-b".into(),
        BLOCK.to_string().into(),
        "-I".into(),
        INODE_SIZE.to_string().into(),
        "-N".into(),
        inodes.to_string().into(),
        "-m".into(),
        "0".into(),
        "-J".into(),
        format!("size={}", journal_bytes(size) / MIB).into(),
        "-L".into(),
        opts.label.clone().into(),
        "-U".into(),
        uuid.to_string().into(),
        "-E".into(),
        format!("hash_seed={hash_seed},root_owner=0:0,quotatype=prjquota").into(),
        "-d".into(),
        tar.path.clone().into(),
        out.into(),
        format!("{}k", size / 1024).into(),
    ];
    let epoch: OsString = opts.epoch.to_string().into();
    let env = [
        ("MKE2FS_CONFIG", conf.clone().into_os_string()),
        ("SOURCE_DATE_EPOCH", epoch.clone()),
        ("E2FSPROGS_FAKE_TIME", epoch),
    ];
    match tool::run(
        "mke2fs",
        &opts.mke2fs,
        &args,
        &env,
        "install e2fsprogs >= 1.47.1: scripts/install-image-tools prints its path",
        "",
    ) {
        Ok(_) => {}
        Err(DiskError::ToolFailed { message, .. })
            if message.contains("Could not allocate")
                || message.contains("No space left")
                || message.contains("too small") =>
        {
            let _ = fs::remove_file(out);
            return Err(too_small(size, source, &stats));
        }
        Err(DiskError::ToolFailed {
            command, message, ..
        }) => {
            let _ = fs::remove_file(out);
            let hint = if message.contains("libarchive") {
                "mke2fs reads the tree as a tar through libarchive: install it (Debian: \
                 libarchive13; scripts/install-image-tools does)"
            } else {
                "see mke2fs's message"
            };
            return Err(DiskError::ToolFailed {
                command,
                message,
                hint: hint.to_string(),
            });
        }
        Err(e) => return Err(e),
    }
    count_quota_usage(out, opts)?;
    let written = fs::metadata(out).map_err(DiskError::io("stat", out))?.len();
    Ok(Ext4Image {
        path: out.to_path_buf(),
        size: written,
        sha256: sha256_file(out)?,
        uuid,
        hash_seed,
        inodes,
        content: stats,
        mke2fs_version: version,
    })
}

/// `e2fsck -fy` over the new image, which records in the project quota file what the tree
/// uses (exit code 1: "errors corrected", the quota counts). Any other exit code fails.
fn count_quota_usage(image: &Path, opts: &Ext4Options) -> Result<(), DiskError> {
    let epoch: OsString = opts.epoch.to_string().into();
    let env = [
        ("E2FSCK_TIME", epoch.clone()),
        ("E2FSPROGS_FAKE_TIME", epoch),
    ];
    let args: Vec<OsString> = vec!["-fy".into(), image.into()];
    let hint = "e2fsck from the same e2fsprogs as mke2fs (>= 1.47.1) counts the quota usage: \
                scripts/install-image-tools caches both";
    let found = "e2fsck found more than the quota counts to correct in the image mke2fs \
                 just made: see its message";
    tool::run_allowing("e2fsck", &opts.e2fsck, &args, &env, hint, found, &[1])
        .map(drop)
        .inspect_err(|_| {
            let _ = fs::remove_file(image);
        })
}

/// The journal mke2fs would pick for a filesystem of `size` bytes
/// (`ext2fs_default_journal_size`), made explicit.
fn journal_bytes(size: u64) -> u64 {
    let blocks = size / BLOCK;
    let journal_blocks = match blocks {
        b if b < 32768 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        b if b < 8192 * 1024 => 32768,
        b if b < 16384 * 1024 => 65536,
        b if b < 32768 * 1024 => 131072,
        _ => 262144,
    };
    journal_blocks * BLOCK
}

/// Inodes for a filesystem of `size` bytes: the usual one per 16 KiB, or the content's
/// plus `headroom_percent` (and some to spare) if that is more.
fn inode_count(size: u64, stats: &TreeStats, headroom_percent: u32) -> u64 {
    let content = (stats.inodes + 16) * (100 + u64::from(headroom_percent)) / 100 + 64;
    (size / INODE_RATIO).max(content)
}

/// Bytes a filesystem of `size` with `inodes` inodes needs for the content and its own
/// metadata: data blocks, inode tables, bitmaps, group descriptors and the blocks reserved
/// for growing them (in the superblock backups too), the journal, lost+found, and a MiB of
/// slack for what this estimate leaves out.
fn needed(size: u64, inodes: u64, stats: &TreeStats) -> u64 {
    let groups = (size / BLOCK).div_ceil(BLOCKS_PER_GROUP).max(1);
    // Groups 0, 1 and powers of 3, 5 and 7 hold a superblock and descriptor backup.
    let mut backups = 0u64;
    for g in 0..groups {
        if g <= 1 || [3u64, 5, 7].iter().any(|&b| is_power_of(g, b)) {
            backups += 1;
        }
    }
    let desc_blocks = (groups * 64).div_ceil(BLOCK);
    let reserved_gdt = (1024 * groups * 64).div_ceil(BLOCK).min(1024);
    let per_backup = 1 + desc_blocks + reserved_gdt;
    let metadata_blocks = backups * per_backup + groups * 2;
    let inode_table = inodes * INODE_SIZE;
    stats.blocks * BLOCK
        + metadata_blocks * BLOCK
        + inode_table
        + journal_bytes(size)
        + 4 * BLOCK // lost+found
        + MIB
}

fn is_power_of(mut n: u64, base: u64) -> bool {
    if n < base {
        return false;
    }
    while n.is_multiple_of(base) {
        n /= base;
    }
    n == 1
}

/// The size (a whole number of MiB) and inode count for the content plus headroom.
fn auto_size(stats: &TreeStats, headroom_percent: u32) -> (u64, u64) {
    let data = stats.blocks * BLOCK * (100 + u64::from(headroom_percent)) / 100;
    let mut size = round_mib(data + 2 * MIB).max(MIN_SIZE);
    loop {
        let inodes = inode_count(size, stats, headroom_percent);
        let need = round_mib(needed(size, inodes, stats) + data - stats.blocks * BLOCK);
        if size >= need {
            return (size, inodes);
        }
        size = need;
    }
}

/// The smallest size that holds the content (no headroom), for messages.
fn minimum_size(stats: &TreeStats) -> u64 {
    auto_size(stats, 0).0
}

fn too_small(size: u64, source: &Path, stats: &TreeStats) -> DiskError {
    let needed = minimum_size(stats);
    DiskError::TooSmall {
        size,
        size_mib: size / MIB,
        source_dir: source.to_path_buf(),
        content: stats.blocks * BLOCK,
        entries: stats.entries,
        needed,
        needed_mib: needed.div_ceil(MIB),
    }
}

fn round_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB) * MIB
}

/// A scratch directory next to the output, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(out: &Path) -> Result<Self, DiskError> {
        let mut name = out
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "ext4".into());
        name.push(".clawkeep-scratch");
        let dir = out.with_file_name(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(DiskError::io("create directory", &dir))?;
        Ok(Self(dir))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_follows_e2fsprogs_table() {
        assert_eq!(journal_bytes(64 * MIB), 4 * MIB);
        assert_eq!(journal_bytes(512 * MIB), 16 * MIB);
        assert_eq!(journal_bytes(1536 * MIB), 32 * MIB);
        assert_eq!(journal_bytes(8 << 30), 64 * MIB);
    }

    #[test]
    fn backups_live_in_groups_0_1_and_powers_of_3_5_7() {
        let with: Vec<u64> = (0..50)
            .filter(|&g| g <= 1 || [3, 5, 7].iter().any(|&b| is_power_of(g, b)))
            .collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49]);
    }

    #[test]
    fn auto_size_grows_with_content_and_headroom() {
        let small = TreeStats {
            entries: 10,
            inodes: 10,
            blocks: 10,
        };
        assert_eq!(auto_size(&small, 20).0, MIN_SIZE);
        let big = TreeStats {
            entries: 7000,
            inodes: 7000,
            blocks: 200 * MIB / BLOCK,
        };
        let (size, inodes) = auto_size(&big, 20);
        assert!(size > 240 * MIB && size < 300 * MIB, "{}", size / MIB);
        assert!(inodes >= 7000 * 6 / 5);
        let (bare, _) = auto_size(&big, 0);
        assert!(bare < size && bare > 200 * MIB);
        assert_eq!(size % MIB, 0);
    }

    #[test]
    fn many_small_files_get_enough_inodes() {
        let many = TreeStats {
            entries: 100_000,
            inodes: 100_000,
            blocks: 100_000,
        };
        let (size, inodes) = auto_size(&many, 10);
        assert!(inodes >= 110_000);
        assert!(size >= needed(size, inodes, &many));
    }
}
