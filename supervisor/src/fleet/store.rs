//! `[store]` and the agents' `knowledge` grants: the knowledge store's part of the fleet
//! file. The rules of `[store]` live in the `minio` crate; here they get their positions,
//! and a managed Garage becomes the `store` service every agent waits for.

use minio::config::{StoreKind, StoreSettings};

use super::file::FleetFile;
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
                // it again in other words.
                m.binary = Some(if found.is_empty() { "/".into() } else { found });
            }
            if let Some(d) = m.data_dir.clone() {
                m.data_dir = Some(self.absolute(&d).to_string_lossy().into_owned());
            }
        }
        if let Some(c) = cfg.credentials.clone() {
            cfg.credentials = Some(self.absolute(&c).to_string_lossy().into_owned());
        }
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

/// The managed Garage described by resolved settings (its RPC port is the S3 port + 1).
pub fn garage(s: &StoreSettings) -> minio::garage::ManagedGarage {
    let m = s.managed.clone().unwrap_or(minio::config::ManagedSettings {
        kind: StoreKind::Garage,
        binary: Default::default(),
        data_dir: Default::default(),
        port: 3900,
        admin_port: 3903,
    });
    minio::garage::ManagedGarage {
        binary: m.binary,
        data_dir: m.data_dir,
        port: m.port,
        admin_port: m.admin_port,
        rpc_port: m.port.wrapping_add(1),
    }
}

/// The managed MinIO described by resolved settings (`admin_port` is its console's).
pub fn minio_of(s: &StoreSettings) -> minio::managed_minio::ManagedMinio {
    let g = garage(s);
    minio::managed_minio::ManagedMinio {
        binary: g.binary,
        data_dir: g.data_dir,
        port: g.port,
        console_port: g.admin_port,
    }
}
