//! A Garage server run by clawkeep: single node on 127.0.0.1, its secrets generated at first
//! start into a 0600 file and never logged, its root key imported through the admin API.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::remote::Credential;

/// What a managed Garage needs to start, and the secrets it was given.
#[derive(Debug, Clone)]
pub struct ManagedGarage {
    /// The `garage` binary.
    pub binary: PathBuf,
    /// Data, metadata, config and secrets live here.
    pub data_dir: PathBuf,
    /// S3 port on 127.0.0.1.
    pub port: u16,
    /// Admin API port on 127.0.0.1.
    pub admin_port: u16,
    /// Cluster RPC port on 127.0.0.1 (nothing else connects to it on a single node).
    pub rpc_port: u16,
}

/// The generated secrets (file `secrets.json`, mode 0600, in the data dir).
#[derive(Clone, Serialize, Deserialize)]
pub struct GarageSecrets {
    /// Cluster RPC secret.
    pub rpc_secret: String,
    /// Bearer token of the admin API.
    pub admin_token: String,
    /// clawkeep's own S3 key, granted on every bucket it creates.
    pub root: Credential,
}

impl std::fmt::Debug for GarageSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GarageSecrets")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// How to start the server and how to know it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Program.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment added to the service's.
    pub env: BTreeMap<String, String>,
    /// Readiness URL: 200 once the node serves.
    pub health_url: String,
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

impl ManagedGarage {
    /// The S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The admin API's base URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    fn config_path(&self) -> PathBuf {
        self.data_dir.join("garage.toml")
    }

    /// Create the data dir (0700), the secrets at first start (0600) and the config file
    /// (0600: it holds the RPC secret and admin token). Later starts keep the secrets.
    pub fn prepare(&self) -> Result<GarageSecrets, StoreError> {
        let d = &self.data_dir;
        for sub in ["meta", "data"] {
            std::fs::create_dir_all(d.join(sub))
                .map_err(|e| StoreError::io("create", d.join(sub), e))?;
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::io("chmod", d, e))?;
        let secrets_path = d.join("secrets.json");
        let secrets = match std::fs::read(&secrets_path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                what: "store secrets",
                place: secrets_path.display().to_string(),
                message: e.to_string(),
                hint: "restore it from a backup; without it the store's data cannot be reached",
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = GarageSecrets {
                    rpc_secret: random_hex(32),
                    admin_token: random_hex(32),
                    root: Credential {
                        access_key: format!("GK{}", random_hex(12)),
                        secret_key: random_hex(32),
                    },
                };
                write_private(
                    &secrets_path,
                    &serde_json::to_vec_pretty(&s).unwrap_or_default(),
                )?;
                s
            }
            Err(e) => return Err(StoreError::io("read", &secrets_path, e)),
        };
        let config = format!(
            "metadata_dir = {meta:?}\ndata_dir = {data:?}\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
             [s3_api]\ns3_region = \"us-east-1\"\napi_bind_addr = \"127.0.0.1:{port}\"\nroot_domain = \".s3.garage.localhost\"\n\n\
             [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"{token}\"\n",
            meta = d.join("meta"),
            data = d.join("data"),
            rpc = self.rpc_port,
            secret = secrets.rpc_secret,
            port = self.port,
            admin = self.admin_port,
            token = secrets.admin_token,
        );
        write_private(&self.config_path(), config.as_bytes())?;
        Ok(secrets)
    }

    /// Its command line: one node, layout made by `--single-node`.
    pub fn launch(&self) -> Launch {
        Launch {
            program: self.binary.display().to_string(),
            args: vec![
                "-c".into(),
                self.config_path().display().to_string(),
                "server".into(),
                "--single-node".into(),
            ],
            env: BTreeMap::from([("RUST_LOG".into(), "garage=warn".into())]),
            health_url: format!("{}/health", self.admin_url()),
        }
    }
}

/// Write a file only its owner can read, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::manifest::write_atomic(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::io("chmod", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn secrets_are_made_once_and_private() {
        let d = tempfile::tempdir().unwrap();
        let g = ManagedGarage {
            binary: "/bin/garage".into(),
            data_dir: d.path().join("store"),
            port: 3900,
            admin_port: 3903,
            rpc_port: 3901,
        };
        let a = g.prepare().unwrap();
        let b = g.prepare().unwrap();
        assert_eq!(a.admin_token, b.admin_token);
        assert_eq!(a.root, b.root);
        for f in ["secrets.json", "garage.toml"] {
            assert_eq!(
                std::fs::metadata(d.path().join("store").join(f))
                    .unwrap()
                    .mode()
                    & 0o777,
                0o600,
                "{f}"
            );
        }
        assert_eq!(
            std::fs::metadata(d.path().join("store")).unwrap().mode() & 0o777,
            0o700
        );
        assert!(!format!("{a:?}").contains(&a.root.secret_key));
        let l = g.launch();
        assert_eq!(l.args[3], "--single-node");
        assert_eq!(l.health_url, "http://127.0.0.1:3903/health");
    }
}
