//! `[store]` and the agents' `knowledge` grants: the knowledge store's part of the fleet
//! file. The rules of `[store]` live in the `minio` crate; here they get their positions,
//! its sizes are read with the fleet file's units, and a managed Garage becomes the `store`
//! service every agent waits for.

use clawkeep_store::config::{Size, StoreKind, StoreSettings};

use super::file::{FleetFile, SizeFile};
use super::resolve::Resolver;
use super::spans::{key_path, Seg};
use super::{Command, Service};

/// Name of the service that runs a managed store.
pub const STORE_SERVICE: &str = "store";

/// Whether `name` can name a shared collection (it becomes part of a bucket name).
fn collection_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl Resolver<'_> {
    /// Check `[store]` and every agent's `knowledge`; a managed store comes back as a service.
    pub(crate) fn store(&mut self, file: &FleetFile) -> (Option<StoreSettings>, Option<Service>) {
        for (i, a) in file.agent.iter().enumerate() {
            for name in a.knowledge.iter().flatten().map(|(k, _)| k) {
                if !collection_name_ok(name) {
                    let at = key_path!["agent", i, "knowledge", name.as_str()];
                    let what = self.what(&key_path!["agent", i, "knowledge"]);
                    self.at_key(
                        &at,
                        format!("{what}: collection name {name:?} cannot name a bucket"),
                        "use 1-40 lowercase letters, digits and '-'",
                    );
                }
                if file.store.is_none() {
                    let at = key_path!["agent", i, "knowledge"];
                    let what = self.what(&at);
                    self.at_key(
                        &at,
                        format!("{what} is granted but the fleet has no [store]"),
                        "add a [store] section (see `clawkeep schema`), or remove the grant",
                    );
                    break;
                }
            }
        }
        let Some(cfg) = &file.store else {
            return (None, None);
        };
        let mut cfg = cfg.clone();
        if let Some(m) = cfg.managed.as_mut() {
            if let Some(b) = m.binary.clone() {
                let found = self.service_command(&b, &key_path!["store", "managed", "binary"]);
                // Not found is reported above; "/" keeps the store's own check from saying
                // it again in other words (and stands for a name not looked up at all, for
                // a cluster, where the store is not run by clawkeep's node).
                m.binary = Some(if found.starts_with('/') {
                    found
                } else {
                    "/".into()
                });
            }
            if let Some(d) = m.data_dir.clone() {
                m.data_dir = Some(self.absolute(&d).to_string_lossy().into_owned());
            }
        }
        if let Some(c) = cfg.credentials.clone() {
            cfg.credentials = Some(self.absolute(&c).to_string_lossy().into_owned());
        }
        // In bytes for the store's own rules; a bad size is reported here, once.
        cfg.max_file_size = cfg
            .max_file_size
            .take()
            .and_then(|s| self.max_file_size(&s))
            .map(Size::Bytes);
        let settings = match cfg.resolve() {
            Ok(s) => s,
            Err(problems) => {
                for p in problems {
                    let path: Vec<Seg> = std::iter::once(Seg::from("store"))
                        .chain(p.path.iter().map(|k| match k.parse::<usize>() {
                            Ok(i) => Seg::from(i),
                            Err(_) => Seg::from(k.as_str()),
                        }))
                        .collect();
                    self.at_value(&path, format!("[store]: {}", p.message), p.hint);
                }
                return (None, None);
            }
        };
        let service = match &settings.managed {
            None => None,
            Some(m) => {
                let taken = file
                    .agent
                    .iter()
                    .filter_map(|a| a.name.as_deref())
                    .chain(file.service.iter().filter_map(|s| s.name.as_deref()))
                    .any(|n| n == STORE_SERVICE);
                if taken {
                    self.at_key(
                        &key_path!["store", "managed"],
                        format!("the managed store runs as service {STORE_SERVICE:?}, which is already an agent's or service's name"),
                        "rename that agent or service",
                    );
                }
                let (launch, ports) = match m.kind {
                    StoreKind::Minio => (minio_of(&settings).launch(), vec![m.port, m.admin_port]),
                    _ => (
                        garage(&settings).launch(),
                        vec![m.port, m.admin_port, m.port.wrapping_add(1)],
                    ),
                };
                Some(Service::launched(
                    STORE_SERVICE.into(),
                    Command {
                        program: launch.program,
                        args: launch.args,
                        env: launch.env,
                    },
                    launch.health_url,
                    m.data_dir.clone(),
                    ports,
                ))
            }
        };
        (Some(settings), service)
    }
}

impl Resolver<'_> {
    /// `[store] max_file_size` in bytes, or `None` with the problem reported: a size in the
    /// fleet file's units, and not zero (which would keep every file out of the store).
    fn max_file_size(&mut self, size: &Size) -> Option<u64> {
        let at = key_path!["store", "max_file_size"];
        let size = match size {
            Size::Bytes(n) => SizeFile::Bytes(*n),
            Size::Text(t) => SizeFile::Text(t.clone()),
        };
        match self.size(Some(&size), &at, 0)? {
            0 => {
                let what = self.what(&at);
                self.at_value(
                    &at,
                    format!("{what} 0 would keep every file out of the store"),
                    "files larger than max_file_size are not synced; use e.g. \"1GiB\"",
                );
                None
            }
            n => Some(n),
        }
    }
}

/// The managed Garage described by resolved settings (its RPC port is the S3 port + 1).
pub fn garage(s: &StoreSettings) -> clawkeep_store::garage::ManagedGarage {
    let m = s
        .managed
        .clone()
        .unwrap_or(clawkeep_store::config::ManagedSettings {
            kind: StoreKind::Garage,
            binary: Default::default(),
            data_dir: Default::default(),
            port: 3900,
            admin_port: 3903,
        });
    clawkeep_store::garage::ManagedGarage {
        binary: m.binary,
        data_dir: m.data_dir,
        port: m.port,
        admin_port: m.admin_port,
        rpc_port: m.port.wrapping_add(1),
    }
}

/// The managed MinIO described by resolved settings (`admin_port` is its console's).
pub fn minio_of(s: &StoreSettings) -> clawkeep_store::managed_minio::ManagedMinio {
    let g = garage(s);
    clawkeep_store::managed_minio::ManagedMinio {
        binary: g.binary,
        data_dir: g.data_dir,
        port: g.port,
        console_port: g.admin_port,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::fleet::{parse, Diagnostic};

    /// The problems `[store]` with `line` added has, by line and column.
    fn max_file_size(line: &str) -> Result<u64, Vec<Diagnostic>> {
        let text = format!(
            "[store]\nendpoint = \"http://127.0.0.1:9000\"\ncredentials = \"/k\"\n{line}\n"
        );
        let fleet = parse("fleet.toml", &text, Path::new("/nonexistent"));
        let store = |d: &Diagnostic| d.message.contains("[store]");
        match fleet {
            Ok(f) => Ok(f.store.expect("a store").max_file_size),
            Err(d) => Err(d.items.into_iter().filter(store).collect()),
        }
    }

    #[test]
    fn max_file_size_is_read_in_the_fleet_files_units_and_defaults_to_one_gib() {
        assert_eq!(max_file_size(""), Ok(1 << 30));
        assert_eq!(max_file_size("max_file_size = \"64MiB\""), Ok(64 << 20));
        assert_eq!(max_file_size("max_file_size = \"2GB\""), Ok(2_000_000_000));
        assert_eq!(max_file_size("max_file_size = 4096"), Ok(4096));
    }

    #[test]
    fn a_bad_or_zero_max_file_size_is_an_error_at_its_value_with_a_hint() {
        for (line, says, hint) in [
            (
                "max_file_size = \"lots\"",
                "[store]: max_file_size \"lots\" is not a size",
                "512MiB",
            ),
            (
                "max_file_size = \"2 gigs\"",
                "[store]: max_file_size \"2 gigs\" has an unknown unit \"gigs\"",
                "GiB",
            ),
            (
                "max_file_size = \"512\"",
                "[store]: max_file_size \"512\" has no unit",
                "add a unit",
            ),
            (
                "max_file_size = 1.5",
                "[store]: max_file_size: expected an integer or a string, found a float",
                "\"1GiB\"",
            ),
            (
                "max_file_size = 0",
                "[store]: max_file_size 0 would keep every file out of the store",
                "1GiB",
            ),
            (
                "max_file_size = \"0GiB\"",
                "[store]: max_file_size 0 would keep every file out of the store",
                "1GiB",
            ),
        ] {
            let found = max_file_size(line).expect_err(line);
            assert_eq!(found.len(), 1, "{line}: {found:?}");
            assert_eq!((found[0].line, found[0].col), (4, 17), "{line}: {found:?}");
            assert_eq!(found[0].message, says, "{line}");
            let h = found[0].hint.as_deref().unwrap_or_default();
            assert!(h.contains(hint), "{line}: {h}");
        }
    }
}
