//! Finding the root device without udev: `/sys/class/block` lists disks and partitions,
//! a partition's `uevent` carries its GPT name, and a disk's GPT (read with `gptman`)
//! carries the partitions' GUIDs.

use std::fs::{self, File};
use std::path::PathBuf;

use uuid::Uuid;

use crate::cmdline::RootSpec;

/// Where stage 1 looks (passed in, so tests can use a scratch tree).
#[derive(Debug, Clone)]
pub struct Host {
    /// `/sys/class/block`.
    pub sys_block: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            sys_block: "/sys/class/block".into(),
            dev: "/dev".into(),
        }
    }
}

impl Host {
    /// The device node for `spec`, if it is there yet.
    pub fn find(&self, spec: &RootSpec) -> Option<PathBuf> {
        match spec {
            RootSpec::Path(p) => {
                let rel = p.strip_prefix("/dev").ok()?;
                let node = self.dev.join(rel);
                node.exists().then_some(node)
            }
            RootSpec::PartLabel(label) => self
                .partitions()
                .into_iter()
                .find(|p| self.uevent(p, "PARTNAME").as_deref() == Some(label.as_str()))
                .map(|p| self.dev.join(p)),
            RootSpec::PartUuid(uuid) => self.by_partuuid(uuid),
        }
    }

    /// Names of the block devices there are (for an error message).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.sys_block)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn partitions(&self) -> Vec<String> {
        self.names()
            .into_iter()
            .filter(|n| self.sys_block.join(n).join("partition").exists())
            .collect()
    }

    fn uevent(&self, name: &str, key: &str) -> Option<String> {
        let text = fs::read_to_string(self.sys_block.join(name).join("uevent")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    }

    /// Reads the GPT of every whole disk; the partition whose unique GUID is `uuid`.
    fn by_partuuid(&self, uuid: &Uuid) -> Option<PathBuf> {
        let want = uuid.to_bytes_le();
        for disk in self.names() {
            if self.sys_block.join(&disk).join("partition").exists() {
                continue;
            }
            let Ok(mut f) = File::open(self.dev.join(&disk)) else {
                continue;
            };
            let Ok(gpt) = gptman::GPT::find_from(&mut f) else {
                continue;
            };
            let Some((number, _)) = gpt
                .iter()
                .find(|(_, p)| p.is_used() && p.unique_partition_guid == want)
            else {
                continue;
            };
            // The partition's directory sits inside its disk's: /sys/class/block/vda/vda1.
            let part = fs::read_dir(self.sys_block.join(&disk))
                .into_iter()
                .flatten()
                .flatten()
                .find(|e| {
                    fs::read_to_string(e.path().join("partition"))
                        .is_ok_and(|n| n.trim() == number.to_string())
                })?;
            return Some(self.dev.join(part.file_name()));
        }
        None
    }
}

/// `spec` as the command line gave it.
pub fn describe(spec: &RootSpec) -> String {
    match spec {
        RootSpec::Path(p) => p.display().to_string(),
        RootSpec::PartUuid(u) => format!("PARTUUID={u}"),
        RootSpec::PartLabel(l) => format!("PARTLABEL={l}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A sysfs-like tree with disk `vda` (partitions 1 "esp" and 2 "root") and `vdb`
    /// (no GPT), and a real GPT written into dev/vda.
    fn host(dir: &Path, root_guid: Uuid) -> Host {
        let sys = dir.join("sys");
        let dev = dir.join("dev");
        fs::create_dir_all(&dev).unwrap();
        for (disk, parts) in [("vda", vec![(1, "esp"), (2, "root")]), ("vdb", vec![])] {
            fs::create_dir_all(sys.join(disk)).unwrap();
            fs::write(sys.join(disk).join("uevent"), "DEVTYPE=disk\n").unwrap();
            for (n, name) in parts {
                let p = format!("{disk}{n}");
                // As in sysfs: the partition under its disk, and a link beside the disks.
                fs::create_dir_all(sys.join(disk).join(&p)).unwrap();
                fs::write(sys.join(disk).join(&p).join("partition"), format!("{n}\n")).unwrap();
                fs::write(
                    sys.join(disk).join(&p).join("uevent"),
                    format!("DEVTYPE=partition\nPARTN={n}\nPARTNAME={name}\n"),
                )
                .unwrap();
                std::os::unix::fs::symlink(format!("{disk}/{p}"), sys.join(&p)).unwrap();
                fs::write(dev.join(&p), "").unwrap();
            }
        }
        fs::write(dev.join("vdb"), vec![0u8; 64 << 10]).unwrap();
        // dev/vda: a 4 MiB disk with a real GPT of two partitions.
        let mut f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dev.join("vda"))
            .unwrap();
        f.set_len(4 << 20).unwrap();
        let mut gpt = gptman::GPT::new_from(&mut f, 512, [7; 16]).unwrap();
        for (i, guid, start) in [(1u32, Uuid::from_u128(1), 2048u64), (2, root_guid, 4096)] {
            gpt[i] = gptman::GPTPartitionEntry {
                partition_type_guid: [1; 16],
                unique_partition_guid: guid.to_bytes_le(),
                starting_lba: start,
                ending_lba: start + 1023,
                attribute_bits: 0,
                partition_name: "x".into(),
            };
        }
        gpt.write_into(&mut f).unwrap();
        Host {
            sys_block: sys,
            dev,
        }
    }

    #[test]
    fn finds_the_root_by_partuuid_label_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let guid = Uuid::parse_str("0b2f1c3e-1d2f-4e3a-8b4c-5d6e7f809102").unwrap();
        let h = host(dir.path(), guid);
        assert_eq!(h.find(&RootSpec::PartUuid(guid)), Some(h.dev.join("vda2")));
        assert_eq!(h.find(&RootSpec::PartUuid(Uuid::from_u128(9))), None);
        assert_eq!(
            h.find(&RootSpec::PartLabel("root".into())),
            Some(h.dev.join("vda2"))
        );
        assert_eq!(h.find(&RootSpec::PartLabel("data".into())), None);
        assert_eq!(
            h.find(&RootSpec::Path("/dev/vda1".into())),
            Some(h.dev.join("vda1"))
        );
        assert_eq!(h.find(&RootSpec::Path("/dev/vdc1".into())), None);
        assert_eq!(h.names(), ["vda", "vda1", "vda2", "vdb"]);
    }
}
