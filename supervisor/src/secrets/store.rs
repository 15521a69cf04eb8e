//! The secrets file: `STATE/secrets/secrets.age`, a JSON map agent → name → value encrypted
//! with age to the node key `STATE/secrets/node.key` (an X25519 identity, 0600, made at first
//! use). Writes are atomic (temp file, fsync, rename, fsync of the directory) and serialized
//! with a lock, so `clawkeep secrets` works whether or not the supervisor runs.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{is_secret_name, SecretsError, Value, MAX_VALUE};

/// Directory of the secrets under the state dir.
pub const DIR: &str = "secrets";
/// The node key's file name.
pub const KEY: &str = "node.key";
/// The encrypted secrets' file name.
pub const FILE: &str = "secrets.age";
/// The lock serializing writers.
const LOCK: &str = ".lock";

/// Every agent's secrets, by agent then name.
pub type Map = BTreeMap<String, BTreeMap<String, Value>>;

/// What the encrypted file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Content {
    /// Agent → name → value.
    agents: Map,
}

/// The secrets of one node.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> SecretsError {
    SecretsError::Io {
        path: path.to_path_buf(),
        what: what.into(),
        source: e,
    }
}

fn check_agent(agent: &str) -> Result<(), SecretsError> {
    if crate::fleet::is_dns_label(agent) {
        Ok(())
    } else {
        Err(SecretsError::BadAgent(agent.into()))
    }
}

fn check_name(name: &str) -> Result<(), SecretsError> {
    if is_secret_name(name) {
        Ok(())
    } else {
        Err(SecretsError::BadName(name.into()))
    }
}

impl Store {
    /// The store of the state dir `state_dir` (nothing is read or created yet).
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join(DIR),
        }
    }

    /// Path of the node key.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY)
    }

    /// Path of the encrypted secrets.
    pub fn file_path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Every secret (empty when none was ever set).
    pub fn load(&self) -> Result<Map, SecretsError> {
        let file = self.file_path();
        let ciphertext = match std::fs::read(&file) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(io("read", &file, e)),
        };
        let identity = match self.read_key()? {
            Some(k) => k,
            None => {
                return Err(SecretsError::KeyMissing {
                    key: self.key_path(),
                    file,
                })
            }
        };
        let plain = age::decrypt(&identity, &ciphertext).map_err(|e| SecretsError::Decrypt {
            key: self.key_path(),
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let content: Content =
            serde_json::from_slice(&plain).map_err(|e| SecretsError::Corrupt {
                file,
                reason: e.to_string(),
            })?;
        Ok(content.agents)
    }

    /// The names of the secrets set, per agent (all agents, or only `agent`).
    pub fn names(
        &self,
        agent: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<String>>, SecretsError> {
        Ok(self
            .load()?
            .into_iter()
            .filter(|(a, _)| agent.is_none_or(|want| want == a))
            .map(|(a, m)| (a, m.into_keys().collect()))
            .collect())
    }

    /// Set `agent`'s secret `name` to `value`; returns whether it replaced a value.
    pub fn set(&self, agent: &str, name: &str, value: &str) -> Result<bool, SecretsError> {
        check_agent(agent)?;
        check_name(name)?;
        if value.is_empty() {
            return Err(SecretsError::Empty {
                agent: agent.into(),
                name: name.into(),
            });
        }
        if value.len() > MAX_VALUE {
            return Err(SecretsError::TooLarge {
                agent: agent.into(),
                name: name.into(),
                len: value.len(),
            });
        }
        self.update(|map| {
            map.entry(agent.to_string())
                .or_default()
                .insert(name.to_string(), Value::new(value.to_string()))
                .is_some()
        })
    }

    /// Remove `agent`'s secret `name`; returns whether it existed.
    pub fn remove(&self, agent: &str, name: &str) -> Result<bool, SecretsError> {
        check_agent(agent)?;
        check_name(name)?;
        self.update(|map| {
            let Some(of_agent) = map.get_mut(agent) else {
                return false;
            };
            let had = of_agent.remove(name).is_some();
            if of_agent.is_empty() {
                map.remove(agent);
            }
            had
        })
    }

    /// Load, change and write back, holding the lock.
    fn update<T>(&self, change: impl FnOnce(&mut Map) -> T) -> Result<T, SecretsError> {
        self.make_dir()?;
        let lock_path = self.dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| io("open", &lock_path, e))?;
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io("lock", &lock_path, e.into()))?;
        let mut map = self.load()?;
        let out = change(&mut map);
        let identity = self.key_or_create()?;
        let content = Content { agents: map };
        let plain = serde_json::to_vec(&content).map_err(|e| SecretsError::Encrypt {
            file: self.file_path(),
            reason: e.to_string(),
        })?;
        let ciphertext =
            age::encrypt(&identity.to_public(), &plain).map_err(|e| SecretsError::Encrypt {
                file: self.file_path(),
                reason: e.to_string(),
            })?;
        write_atomic(&self.file_path(), &ciphertext)?;
        Ok(out)
    }

    /// The secrets directory, 0700.
    fn make_dir(&self) -> Result<(), SecretsError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", &self.dir, e))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("chmod 700", &self.dir, e))
    }

    /// The node key, if it exists; refused when others can read it.
    fn read_key(&self) -> Result<Option<age::x25519::Identity>, SecretsError> {
        let key = self.key_path();
        let mut f = match File::open(&key) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", &key, e)),
        };
        let mode = f.metadata().map_err(|e| io("stat", &key, e))?.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::KeyMode { key, mode });
        }
        let mut text = String::new();
        f.read_to_string(&mut text)
            .map_err(|e| io("read", &key, e))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        age::x25519::Identity::from_str(line)
            .map(Some)
            .map_err(|reason| SecretsError::KeyInvalid {
                key,
                reason: reason.to_string(),
            })
    }

    /// The node key, created (0600) when there is none.
    fn key_or_create(&self) -> Result<age::x25519::Identity, SecretsError> {
        if let Some(k) = self.read_key()? {
            return Ok(k);
        }
        let identity = age::x25519::Identity::generate();
        let text = format!(
            "# clawkeep node key: decrypts {FILE}; back it up, never share it\n# public key: {}\n{}\n",
            identity.to_public(),
            identity.to_string().expose_secret()
        );
        write_atomic(&self.key_path(), text.as_bytes())?;
        Ok(identity)
    }
}

/// Write `bytes` to `path` atomically, mode 0600: a temp file beside it, fsync, rename, fsync
/// of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SecretsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| io("write", &tmp, e))?;
    f.sync_all().map_err(|e| io("fsync", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io("rename into place", path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn round_trip_with_private_modes() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        assert!(s.load().unwrap().is_empty());
        assert!(!s.set("customer", "matrix_token", "s3cr3t-value").unwrap());
        assert!(s.set("customer", "matrix_token", "s3cr3t-value-2").unwrap());
        s.set("customer", "other", "x").unwrap();
        s.set("research", "api_key", "y").unwrap();
        let map = s.load().unwrap();
        assert_eq!(map["customer"]["matrix_token"].expose(), "s3cr3t-value-2");
        assert_eq!(map["research"]["api_key"].expose(), "y");
        assert_eq!(mode(&s.key_path()), 0o600);
        assert_eq!(mode(&s.file_path()), 0o600);
        assert_eq!(mode(&d.path().join(DIR)), 0o700);
        // Encrypted: the value is nowhere in the file.
        let raw = std::fs::read(s.file_path()).unwrap();
        assert!(raw.starts_with(b"age-encryption.org/v1"));
        assert!(!raw.windows(6).any(|w| w == b"s3cr3t"));
        let names = s.names(Some("customer")).unwrap();
        assert_eq!(names["customer"], vec!["matrix_token", "other"]);
        assert!(!names.contains_key("research"));
        assert!(s.remove("research", "api_key").unwrap());
        assert!(!s.remove("research", "api_key").unwrap());
        assert!(!s.load().unwrap().contains_key("research"));
        // No temp file left behind.
        let left: Vec<_> = std::fs::read_dir(d.path().join(DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn wrong_or_missing_key_is_explained() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        s.set("customer", "matrix_token", "v").unwrap();
        // Another node's key.
        let other = age::x25519::Identity::generate();
        write_atomic(
            &s.key_path(),
            format!("{}\n", other.to_string().expose_secret()).as_bytes(),
        )
        .unwrap();
        let err = s.load().unwrap_err().to_string();
        assert!(err.contains("node.key cannot decrypt"), "{err}");
        assert!(err.contains("secrets.age"), "{err}");
        assert!(err.contains("restore node.key from backup"), "{err}");
        // A write must not replace the file with one only the new key opens.
        assert!(s.set("customer", "x", "y").is_err());
        std::fs::remove_file(s.key_path()).unwrap();
        let err = s.load().unwrap_err().to_string();
        assert!(err.contains("exists but its key"), "{err}");
        std::fs::write(s.key_path(), "not a key\n").unwrap();
        std::fs::set_permissions(s.key_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = s.load().unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(s.key_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = s.load().unwrap_err().to_string();
        assert!(err.contains("is not an age identity"), "{err}");
    }

    #[test]
    fn bad_input_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        assert!(matches!(
            s.set("customer", "a-b", "v"),
            Err(SecretsError::BadName(_))
        ));
        assert!(matches!(
            s.set("Customer", "ab", "v"),
            Err(SecretsError::BadAgent(_))
        ));
        assert!(matches!(
            s.set("customer", "ab", ""),
            Err(SecretsError::Empty { .. })
        ));
        let big = "x".repeat(MAX_VALUE + 1);
        assert!(matches!(
            s.set("customer", "ab", &big),
            Err(SecretsError::TooLarge { .. })
        ));
        // Nothing was created by refused writes.
        assert!(!s.file_path().exists());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"old content that is long").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(mode(&p), 0o600);
        // A stale temp file from a crash does not stop the next write.
        std::fs::write(d.path().join(".f.tmp"), b"stale").unwrap();
        write_atomic(&p, b"newer").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"newer");
        assert!(!d.path().join(".f.tmp").exists());
    }
}
