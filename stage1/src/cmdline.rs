//! The kernel command line, as stage 1 reads it: where the root is, how to mount it, what
//! to run next.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use crate::error::Stage1Error;

/// Which block device holds the root filesystem (`root=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSpec {
    /// `root=/dev/vda1`: a device node.
    Path(PathBuf),
    /// `root=PARTUUID=…`: a GPT partition by its unique GUID (what `clawkeep image build`
    /// records in image.json).
    PartUuid(Uuid),
    /// `root=PARTLABEL=…`: a GPT partition by its name.
    PartLabel(String),
}

/// What stage 1 does, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The root device.
    pub root: RootSpec,
    /// `rootfstype=` (default ext4).
    pub fstype: String,
    /// `ro` mounts the root read-only; the default (and `rw`) read-write: clawkeep keeps
    /// its state on it.
    pub read_only: bool,
    /// `init=` (default /sbin/init): run in the root once it is mounted.
    pub init: String,
    /// `clawkeep.rootwait=SECONDS` (default 30): how long to wait for the root device.
    pub root_wait: Duration,
}

/// The default `clawkeep.rootwait`.
pub const DEFAULT_ROOT_WAIT: Duration = Duration::from_secs(30);

impl Options {
    /// Parses a kernel command line (`/proc/cmdline`).
    pub fn parse(cmdline: &str) -> Result<Self, Stage1Error> {
        let mut root = None;
        let mut fstype = "ext4".to_string();
        let mut read_only = false;
        let mut init = "/sbin/init".to_string();
        let mut root_wait = DEFAULT_ROOT_WAIT;
        for word in words(cmdline) {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word.as_str(), None),
            };
            match (key, value) {
                ("root", Some(v)) => root = Some(parse_root(v)?),
                ("rootfstype", Some(v)) if !v.is_empty() => fstype = v.to_string(),
                ("ro", None) => read_only = true,
                ("rw", None) => read_only = false,
                ("init", Some(v)) if v.starts_with('/') => init = v.to_string(),
                ("init", Some(v)) => {
                    return Err(Stage1Error::Cmdline {
                        word: format!("init={v}"),
                        hint: "init= must be an absolute path in the root filesystem, like init=/sbin/init",
                    })
                }
                ("clawkeep.rootwait", Some(v)) => {
                    root_wait = v.parse().map(Duration::from_secs).map_err(|_| {
                        Stage1Error::Cmdline {
                            word: word.clone(),
                            hint: "clawkeep.rootwait= takes whole seconds, like clawkeep.rootwait=30",
                        }
                    })?
                }
                _ => {}
            }
        }
        let root = root.ok_or(Stage1Error::Cmdline {
            word: "(no root=)".into(),
            hint: "boot with root=PARTUUID=<uuid> (image.json's root_partuuid), root=PARTLABEL=root or root=/dev/vda1",
        })?;
        Ok(Options {
            root,
            fstype,
            read_only,
            init,
            root_wait,
        })
    }
}

fn parse_root(v: &str) -> Result<RootSpec, Stage1Error> {
    if let Some(u) = v.strip_prefix("PARTUUID=") {
        return Uuid::parse_str(u)
            .map(RootSpec::PartUuid)
            .map_err(|_| Stage1Error::Cmdline {
                word: format!("root={v}"),
                hint: "PARTUUID= takes a GUID like 0b2f…-…; `clawkeep image inspect` shows the image's",
            });
    }
    if let Some(l) = v.strip_prefix("PARTLABEL=") {
        if !l.is_empty() {
            return Ok(RootSpec::PartLabel(l.to_string()));
        }
    }
    if v.starts_with("/dev/") && !v.contains("/../") {
        return Ok(RootSpec::Path(PathBuf::from(v)));
    }
    Err(Stage1Error::Cmdline {
        word: format!("root={v}"),
        hint: "give root=PARTUUID=<uuid>, root=PARTLABEL=<name> or root=/dev/<device>",
    })
}

/// The command line's words: split at spaces, double quotes group (as the kernel does).
fn words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typical_appliance_command_line() {
        let o = Options::parse(
            "console=ttyS0 panic=-1 root=PARTUUID=0b2f1c3e-1d2f-4e3a-8b4c-5d6e7f809102 rw quiet\n",
        )
        .unwrap();
        assert_eq!(
            o.root,
            RootSpec::PartUuid(Uuid::parse_str("0b2f1c3e-1d2f-4e3a-8b4c-5d6e7f809102").unwrap())
        );
        assert_eq!(o.fstype, "ext4");
        assert!(!o.read_only);
        assert_eq!(o.init, "/sbin/init");
        assert_eq!(o.root_wait, DEFAULT_ROOT_WAIT);
    }

    #[test]
    fn every_option() {
        let o = Options::parse(
            "root=PARTLABEL=root rootfstype=erofs ro init=/usr/bin/clawkeep clawkeep.rootwait=5 x=\"a b\"",
        )
        .unwrap();
        assert_eq!(o.root, RootSpec::PartLabel("root".into()));
        assert_eq!(o.fstype, "erofs");
        assert!(o.read_only);
        assert_eq!(o.init, "/usr/bin/clawkeep");
        assert_eq!(o.root_wait, Duration::from_secs(5));
        assert_eq!(
            Options::parse("root=/dev/vda1").unwrap().root,
            RootSpec::Path("/dev/vda1".into())
        );
    }

    #[test]
    fn mistakes_name_the_word_and_the_fix() {
        for (line, word) in [
            ("console=ttyS0", "(no root=)"),
            ("root=PARTUUID=nope", "root=PARTUUID=nope"),
            ("root=vda1", "root=vda1"),
            ("root=/dev/vda1 init=sbin/init", "init=sbin/init"),
            (
                "root=/dev/vda1 clawkeep.rootwait=soon",
                "clawkeep.rootwait=soon",
            ),
        ] {
            let e = Options::parse(line).unwrap_err().to_string();
            assert!(e.contains(word), "{line}: {e}");
            assert!(e.contains("hint"), "{line}: {e}");
        }
    }

    #[test]
    fn quotes_group_words() {
        assert_eq!(
            words(" a \"b c\"  d=\"e f\" "),
            vec!["a".to_string(), "b c".into(), "d=e f".into()]
        );
    }
}
