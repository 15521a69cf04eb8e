//! Per-agent disk limits: a kernel project quota (ext4, xfs) on the agent's directory tree.
//!
//! Every file and directory under the agent's directory gets the agent's project id, and
//! its directories the inherit flag, so whatever is made there later counts too; the
//! filesystem then refuses writes past the project's block limit with EDQUOT ("Disk quota
//! exceeded"), to the agent's processes whatever their uid. The supervisor itself, root on
//! the host, is not held by the limit on ext4 (CAP_SYS_RESOURCE), so pulls and restores
//! into a full home still land.
//!
//! The walk never follows a symlink and opens only directories and regular files (after
//! checking, on the open file, that it is the one it looked at): a hostile home may hold
//! links, FIFOs and sockets. Those hold no data blocks (a long symlink's one block aside)
//! and are left as they are; made later, they inherit the id.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::sys::{self, FsXattr, FS_XFLAG_PROJINHERIT};

/// How to give a filesystem project quotas, for the hints.
const EXT4_FIX: &str = "make the filesystem with `mkfs.ext4 -O quota,project -E quotatype=prjquota`, or turn the features on with `tune2fs -O quota,project` while it is unmounted, and mount it with `prjquota`; the kernel needs CONFIG_QUOTA and CONFIG_QFMT_V2";
const XFS_FIX: &str =
    "mount it with `prjquota` (xfs turns project quotas on at mount time); the kernel needs CONFIG_XFS_QUOTA";
const OTHER_FIX: &str =
    "put the state dir on ext4 or xfs with project quotas (ext4: `mkfs.ext4 -O quota,project -E quotatype=prjquota`, mounted with `prjquota`; xfs: mounted with `prjquota`), or remove `disk`";

/// Deepest directory nesting the walk follows: it holds one open directory per level.
pub const MAX_DEPTH: usize = 256;

/// Bytes per quota block (QIF_DQBLKSIZE): limits are set in these.
const QUOTA_BLOCK: u64 = 1024;

/// Whether a filesystem can hold an agent to a disk limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Project quotas are accounted and their limits enforced.
    Enforced,
    /// Project quotas are accounted but their limits not enforced (ext4 with the quota
    /// feature mounted without `prjquota`): [`set_limit`] turns enforcement on.
    Accounted,
}

/// Why a disk limit cannot be set or read.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The kernel has no quotactl_fd(2).
    #[error("{} (hint: {})", self.problem(), self.hint())]
    NoQuotactl {
        /// The directory.
        path: PathBuf,
    },
    /// The filesystem has no project quotas at all.
    #[error("{} (hint: {})", self.problem(), self.hint())]
    Unsupported {
        /// The directory.
        path: PathBuf,
        /// Its filesystem type.
        fs: String,
    },
    /// The filesystem could have project quotas, but they are not on.
    #[error("{} (hint: {})", self.problem(), self.hint())]
    NotAccounted {
        /// The directory.
        path: PathBuf,
        /// Its filesystem type.
        fs: String,
    },
    /// Project quotas are accounted but enforcement could not be turned on.
    #[error("{} (hint: {})", self.problem(), self.hint())]
    NotEnforced {
        /// The directory.
        path: PathBuf,
        /// Its filesystem type.
        fs: String,
        /// Why Q_QUOTAON failed.
        errno: Errno,
    },
    /// The tree is nested deeper than [`MAX_DEPTH`].
    #[error("{} (hint: {})", self.problem(), self.hint())]
    TooDeep {
        /// The directory at the limit.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("{what} {path}: {errno}")]
    Sys {
        /// The file or directory.
        path: PathBuf,
        /// What clawkeep was doing.
        what: &'static str,
        /// The error.
        errno: Errno,
    },
}

impl QuotaError {
    /// The same problem told of `path` (a directory on the same filesystem not made yet,
    /// whose nearest existing parent was looked at).
    pub fn at(mut self, dir: &Path) -> Self {
        match &mut self {
            Self::NoQuotactl { path }
            | Self::Unsupported { path, .. }
            | Self::NotAccounted { path, .. }
            | Self::NotEnforced { path, .. } => *path = dir.to_path_buf(),
            Self::TooDeep { .. } | Self::Sys { .. } => {}
        }
        self
    }

    /// What is wrong, without the hint.
    pub fn problem(&self) -> String {
        match self {
            Self::NoQuotactl { path } => format!(
                "{}: this kernel has no quotactl_fd system call, so clawkeep cannot set project quotas",
                path.display()
            ),
            Self::Unsupported { path, fs } => {
                format!("{} is on {fs}, which has no project quotas here", path.display())
            }
            Self::NotAccounted { path, fs } => format!(
                "{} is on {fs} without project quotas turned on",
                path.display()
            ),
            Self::NotEnforced { path, fs, errno } => format!(
                "{} is on {fs}, which counts project quotas but does not enforce them, and turning enforcement on failed: {errno}",
                path.display()
            ),
            Self::TooDeep { path } => format!(
                "{} is nested more than {MAX_DEPTH} directories deep: clawkeep does not walk further to give it the agent's project id",
                path.display()
            ),
            Self::Sys { path, what, errno } => format!("{what} {}: {errno}", path.display()),
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::NoQuotactl { .. } => {
                "Linux 5.14 or later built with CONFIG_QUOTACTL; or remove `disk`"
            }
            Self::Unsupported { fs, .. } | Self::NotAccounted { fs, .. } => match fs.as_str() {
                "ext4" => EXT4_FIX,
                "xfs" => XFS_FIX,
                _ => OTHER_FIX,
            },
            Self::NotEnforced { .. } => "mount it with `prjquota`",
            Self::TooDeep { .. } => "flatten it, or remove `disk`",
            Self::Sys { .. } => {
                "see the error; `disk` needs the state dir on ext4 or xfs with project quotas"
            }
        }
    }
}

fn sys_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> QuotaError + 'a {
    move |errno| QuotaError::Sys {
        path: path.to_path_buf(),
        what,
        errno,
    }
}

/// The name of the filesystem type of `fd`, for messages.
fn fs_name(fd: &OwnedFd) -> String {
    let Ok(st) = nix::sys::statfs::fstatfs(fd) else {
        return "an unknown filesystem".into();
    };
    let magic = st.filesystem_type().0 as u64;
    match magic {
        0xef53 => "ext4",
        0x5846_5342 => "xfs",
        0x0102_1994 => "tmpfs",
        0x9123_683e => "btrfs",
        0x794c_7630 => "overlayfs",
        0x858_458f6 => "ramfs",
        0x2fc1_2fc1 => "zfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0xf2f5_2010 => "f2fs",
        _ => return format!("a filesystem of type {magic:#x}"),
    }
    .into()
}

fn open_dir(path: &Path) -> Result<OwnedFd, QuotaError> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys_err("open", path))
}

/// Whether the filesystem of `dir` (an existing directory) can hold an agent to a disk
/// limit, and if not, why and how to fix it.
pub fn support(dir: &Path) -> Result<Support, QuotaError> {
    let fd = open_dir(dir)?;
    support_of(&fd, dir)
}

fn support_of(fd: &OwnedFd, dir: &Path) -> Result<Support, QuotaError> {
    let fs = fs_name(fd);
    match sys::quota_state(fd.as_fd()) {
        Ok(st) if st.flags & sys::FS_QUOTA_PDQ_ENFD != 0 => Ok(Support::Enforced),
        Ok(st) if st.flags & sys::FS_QUOTA_PDQ_ACCT != 0 => Ok(Support::Accounted),
        Ok(_) | Err(Errno::ESRCH) => Err(QuotaError::NotAccounted {
            path: dir.to_path_buf(),
            fs,
        }),
        Err(Errno::ENOSYS) if !sys::has_quotactl_fd() => Err(QuotaError::NoQuotactl {
            path: dir.to_path_buf(),
        }),
        // No quota operations in this filesystem (ENOSYS), or none for projects (EINVAL).
        Err(Errno::ENOSYS | Errno::EINVAL | Errno::ENOTSUP) => Err(QuotaError::Unsupported {
            path: dir.to_path_buf(),
            fs,
        }),
        Err(errno) => Err(QuotaError::Sys {
            path: dir.to_path_buf(),
            what: "read the quota state of",
            errno,
        }),
    }
}

/// Hold everything under `dir` (the agent's directory: its home and clawkeep's staging
/// beside it) to `bytes` with project quota `project`: the tree gets the project id, the
/// project the limit, and the filesystem enforcement of project limits if it only counted.
pub fn set_limit(dir: &Path, project: u32, bytes: u64) -> Result<(), QuotaError> {
    let fd = open_dir(dir)?;
    if support_of(&fd, dir)? == Support::Accounted {
        match sys::quota_enforce(fd.as_fd()) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(errno) => {
                return Err(QuotaError::NotEnforced {
                    path: dir.to_path_buf(),
                    fs: fs_name(&fd),
                    errno,
                })
            }
        }
        tracing::info!(dir = %dir.display(), "turned project quota enforcement on");
    }
    let top = sys::fs_get_xattr(fd.as_fd()).map_err(sys_err("read the project id of", dir))?;
    // A tree whose top has the id and the inherit flag got it everywhere: whatever was made
    // since inherited it, and the kernel refuses to move in (or link) a file of another
    // project (EXDEV).
    if top.projid != project || top.xflags & FS_XFLAG_PROJINHERIT == 0 {
        tag_tree(fd.try_clone().map_err(|e| io_err(e, dir))?, dir, project)?;
    }
    sys::quota_set(
        fd.as_fd(),
        project,
        &block_limit(bytes.div_ceil(QUOTA_BLOCK)),
    )
    .map_err(sys_err("set the project quota of", dir))
}

/// A Q_SETQUOTA request that changes only the hard block limit (in [`QUOTA_BLOCK`]s; 0: none).
fn block_limit(blocks: u64) -> libc::dqblk {
    libc::dqblk {
        dqb_bhardlimit: blocks,
        dqb_bsoftlimit: 0,
        dqb_curspace: 0,
        dqb_ihardlimit: 0,
        dqb_isoftlimit: 0,
        dqb_curinodes: 0,
        dqb_btime: 0,
        dqb_itime: 0,
        dqb_valid: libc::QIF_BLIMITS,
    }
}

/// Lift the block limit of the project `dir` carries, if it carries one (the agent's `disk`
/// was removed): its files keep the id, which costs nothing. Returns the project lifted.
pub fn clear_limit(dir: &Path) -> Result<Option<u32>, QuotaError> {
    let fd = open_dir(dir)?;
    let project = match sys::fs_get_xattr(fd.as_fd()) {
        Ok(x) if x.projid != 0 => x.projid,
        // No id, or a filesystem without project ids: nothing to lift.
        _ => return Ok(None),
    };
    match sys::quota_get(fd.as_fd(), project) {
        Ok(q) if q.dqb_bhardlimit == 0 => return Ok(None),
        Ok(_) => {}
        Err(_) => return Ok(None),
    }
    sys::quota_set(fd.as_fd(), project, &block_limit(0))
        .map_err(sys_err("lift the project quota of", dir))?;
    Ok(Some(project))
}

/// Bytes used and the limit (0: none) of project `project` on the filesystem of `dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes charged to the project.
    pub used: u64,
    /// Its block limit in bytes, 0 when it has none.
    pub limit: u64,
}

/// What project `project` uses on the filesystem of `dir`, and its limit.
pub fn usage(dir: &Path, project: u32) -> Result<Usage, QuotaError> {
    let fd = open_dir(dir)?;
    let q =
        sys::quota_get(fd.as_fd(), project).map_err(sys_err("read the project quota of", dir))?;
    Ok(Usage {
        used: q.dqb_curspace,
        limit: q.dqb_bhardlimit.saturating_mul(QUOTA_BLOCK),
    })
}

fn io_err(e: std::io::Error, path: &Path) -> QuotaError {
    QuotaError::Sys {
        path: path.to_path_buf(),
        what: "duplicate the descriptor of",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// Give `fd` (a directory or regular file at `path`) the project id, and a directory the
/// inherit flag, unless it has them.
fn tag(fd: &OwnedFd, path: &Path, project: u32, dir: bool) -> Result<(), QuotaError> {
    let x = sys::fs_get_xattr(fd.as_fd()).map_err(sys_err("read the project id of", path))?;
    let xflags = if dir {
        x.xflags | FS_XFLAG_PROJINHERIT
    } else {
        x.xflags
    };
    if x.projid == project && x.xflags == xflags {
        return Ok(());
    }
    let mut want: FsXattr = x;
    want.projid = project;
    want.xflags = xflags;
    sys::fs_set_xattr(fd.as_fd(), &want).map_err(sys_err("set the project id of", path))
}

/// Whether `fd` is still the file `st` described (the name was not swapped in between).
fn same_file(fd: &OwnedFd, st: &FileStat) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|now| now.st_dev == st.st_dev && now.st_ino == st.st_ino)
}

/// Tag `top` (open at `top_path`) and everything under it, depth first with one open
/// directory per level.
fn tag_tree(top: OwnedFd, top_path: &Path, project: u32) -> Result<(), QuotaError> {
    tag(&top, top_path, project, true)?;
    let names = list(&top, top_path)?;
    let mut stack: Vec<(OwnedFd, PathBuf, Vec<OsString>)> =
        vec![(top, top_path.to_path_buf(), names)];
    while let Some((dir, dir_path, names)) = stack.last_mut() {
        let Some(name) = names.pop() else {
            stack.pop();
            continue;
        };
        let path = dir_path.join(&name);
        let st =
            match nix::sys::stat::fstatat(&*dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Gone since the listing.
                Err(Errno::ENOENT) => continue,
                Err(errno) => return Err(sys_err("stat", &path)(errno)),
            };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let is_dir = kind == SFlag::S_IFDIR;
        if !is_dir && kind != SFlag::S_IFREG {
            continue;
        }
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC
            | if is_dir {
                OFlag::O_DIRECTORY
            } else {
                OFlag::empty()
            };
        let fd = match nix::fcntl::openat(&*dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(sys_err("open", &path)(errno)),
        };
        if !same_file(&fd, &st) {
            return Err(sys_err("open (it changed while clawkeep looked)", &path)(
                Errno::EAGAIN,
            ));
        }
        tag(&fd, &path, project, is_dir)?;
        if is_dir {
            if stack.len() >= MAX_DEPTH {
                return Err(QuotaError::TooDeep { path });
            }
            let names = list(&fd, &path)?;
            stack.push((fd, path, names));
        }
    }
    Ok(())
}

/// The names in the directory open at `fd`, without `.` and `..`.
fn list(fd: &OwnedFd, path: &Path) -> Result<Vec<OsString>, QuotaError> {
    let dup = fd.try_clone().map_err(|e| io_err(e, path))?;
    let mut dir = nix::dir::Dir::from_fd(dup).map_err(sys_err("list", path))?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(sys_err("list", path))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tmpfs_says_it_has_no_project_quotas_and_how_to_get_them() {
        // /dev/shm is a tmpfs on every Linux this runs on; tmpfs has user and group
        // quotas at most, never project quotas.
        let dir = Path::new("/dev/shm");
        assert_eq!(fs_name(&open_dir(dir).unwrap()), "tmpfs");
        let err = support(dir).unwrap_err().to_string();
        assert!(err.contains("/dev/shm is on tmpfs"), "{err}");
        assert!(err.contains("put the state dir on ext4 or xfs"), "{err}");
    }

    #[test]
    fn limits_are_set_in_whole_kibibytes_rounded_up() {
        assert_eq!((8u64 << 20).div_ceil(QUOTA_BLOCK), 8192);
        assert_eq!(1u64.div_ceil(QUOTA_BLOCK), 1);
    }
}
