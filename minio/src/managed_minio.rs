//! A MinIO server run by clawkeep: one node on 127.0.0.1, its root credential generated at
//! first start into 0600 files that a tiny shell step reads into MinIO's environment (never
//! on its command line, never logged). MinIO cannot be installed on the build machines, so
//! only the command line and the files are tested here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::StoreError;
use crate::garage::{write_private, Launch};
use crate::remote::Credential;

/// What a managed MinIO needs to start.
#[derive(Debug, Clone)]
pub struct ManagedMinio {
    /// The `minio` binary.
    pub binary: PathBuf,
    /// Data and the generated root credential live here.
    pub data_dir: PathBuf,
    /// S3 (and admin API) port on 127.0.0.1.
    pub port: u16,
    /// Console port on 127.0.0.1 (the console itself is turned off).
    pub console_port: u16,
}

impl ManagedMinio {
    /// The S3 endpoint, which also serves MinIO's admin API.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Create the data dir (0700) and the root credential at first start (0600 files);
    /// later starts keep it.
    pub fn prepare(&self) -> Result<Credential, StoreError> {
        let d = &self.data_dir;
        std::fs::create_dir_all(d.join("data"))
            .map_err(|e| StoreError::io("create", d.join("data"), e))?;
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| StoreError::io("chmod", d, e))?;
        let (user, pass) = (d.join("root-user"), d.join("root-password"));
        if let (Ok(u), Ok(p)) = (
            std::fs::read_to_string(&user),
            std::fs::read_to_string(&pass),
        ) {
            return Ok(Credential {
                access_key: u.trim().into(),
                secret_key: p.trim().into(),
            });
        }
        let random =
            |n: usize| hex::encode((0..n).map(|_| rand::random::<u8>()).collect::<Vec<u8>>());
        let c = Credential {
            access_key: format!("clawkeep{}", random(6)),
            secret_key: random(20),
        };
        write_private(&user, c.access_key.as_bytes())?;
        write_private(&pass, c.secret_key.as_bytes())?;
        Ok(c)
    }

    /// Its command line: the root credential read from the files into the environment, then
    /// `minio server` bound to 127.0.0.1 only.
    pub fn launch(&self) -> Launch {
        let d = &self.data_dir;
        Launch {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                r#"MINIO_ROOT_USER="$(cat "$1")" MINIO_ROOT_PASSWORD="$(cat "$2")" exec "$3" server --address "$4" --console-address "$5" "$6""#.into(),
                "minio-launch".into(),
                d.join("root-user").display().to_string(),
                d.join("root-password").display().to_string(),
                self.binary.display().to_string(),
                format!("127.0.0.1:{}", self.port),
                format!("127.0.0.1:{}", self.console_port),
                d.join("data").display().to_string(),
            ],
            env: BTreeMap::from([("MINIO_BROWSER".into(), "off".into())]),
            health_url: format!("{}/minio/health/ready", self.endpoint()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_root_credential_is_made_once_private_and_kept_off_the_command_line() {
        let d = tempfile::tempdir().unwrap();
        let m = ManagedMinio {
            binary: "/usr/local/bin/minio".into(),
            data_dir: d.path().join("s"),
            port: 9000,
            console_port: 9001,
        };
        let a = m.prepare().unwrap();
        assert_eq!(m.prepare().unwrap(), a);
        assert!(
            a.access_key.len() >= 3 && a.secret_key.len() >= 8,
            "MinIO's minimum lengths"
        );
        for f in ["root-user", "root-password"] {
            assert_eq!(
                std::fs::metadata(d.path().join("s").join(f))
                    .unwrap()
                    .mode()
                    & 0o777,
                0o600
            );
        }
        let l = m.launch();
        assert!(!l.args.iter().any(|x| x.contains(&a.secret_key)), "{l:?}");
        assert!(l.args.contains(&"127.0.0.1:9000".to_string()));
        assert_eq!(l.health_url, "http://127.0.0.1:9000/minio/health/ready");
        // The shell step really passes the files' contents as the environment.
        let out = std::process::Command::new(&l.program)
            .args(l.args.iter().map(|x| {
                x.replace("exec \"$3\" server", "exec env")
                    .replace(r#" --address "$4" --console-address "$5" "$6""#, "")
            }))
            .output()
            .unwrap();
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(
            env.contains(&format!("MINIO_ROOT_PASSWORD={}", a.secret_key)),
            "{env}"
        );
    }
}
