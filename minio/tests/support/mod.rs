//! A real Garage 2.5.0 on loopback for the knowledge-store tests (built and cached by
//! scripts/install-garage), plus helpers to build and compare directory trees.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clawkeep_store::boundary::Boundary;
use clawkeep_store::garage::{GarageSecrets, ManagedGarage};
use clawkeep_store::grants::GarageAdmin;
use clawkeep_store::remote::{Credential, Remote, Store};
use clawkeep_store::{SyncLimits, Syncer};

/// The garage binary: $CLAWKEEP_GARAGE or scripts/install-garage's cache.
pub fn garage_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CLAWKEEP_GARAGE") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache =
        std::env::var("CLAWKEEP_CACHE").unwrap_or_else(|_| format!("{home}/.cache/clawkeep"));
    let p = PathBuf::from(cache).join("garage-2.5.0/bin/garage");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-garage (the tests need a real S3 server)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Garage; killed when dropped.
pub struct Garage {
    pub managed: ManagedGarage,
    pub secrets: GarageSecrets,
    pub admin: GarageAdmin,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Garage {
    /// A Garage on free ports. The ports are picked before Garage binds them, so another
    /// process may take one meanwhile: a start that fails is tried again on new ports.
    pub async fn start() -> Garage {
        let mut last = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let managed = ManagedGarage {
                binary: garage_bin(),
                data_dir: dir.path().join("store"),
                port: free_port(),
                admin_port: free_port(),
                rpc_port: free_port(),
            };
            let secrets = managed.prepare().unwrap();
            let admin = GarageAdmin::new(&managed.admin_url(), &secrets.admin_token);
            let mut g = Garage {
                managed,
                secrets,
                admin,
                child: None,
                _dir: dir,
            };
            match g.try_resume(&[]).await {
                Ok(()) => return g,
                Err(e) => {
                    eprintln!("garage did not start, trying new ports: {e}");
                    last = e;
                }
            }
        }
        panic!("garage did not start three times: {last}");
    }

    /// Start (again) on the same data.
    pub async fn resume(&mut self) {
        self.resume_with(&[]).await
    }

    /// Start (again) on the same data, with more environment variables (a clock set back
    /// with libfaketime, say).
    pub async fn resume_with(&mut self, env: &[(&str, &str)]) {
        if let Err(e) = self.try_resume(env).await {
            panic!("{e}");
        }
    }

    async fn try_resume(&mut self, env: &[(&str, &str)]) -> Result<(), String> {
        let l = self.managed.launch();
        let log_path = self.managed.data_dir.join("garage.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(&l.program)
            .args(&l.args)
            .envs(&l.env)
            .env("RUST_LOG", "garage=info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        while !self.admin.healthy().await {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || t0.elapsed() > Duration::from_secs(60) {
                self.kill();
                return Err(format!(
                    "garage {} ({exited:?} after {:?}): {}",
                    if exited.is_some() {
                        "exited"
                    } else {
                        "did not become healthy"
                    },
                    t0.elapsed(),
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.admin.import_root(&self.secrets.root).await.unwrap();
        Ok(())
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// kill -9 the server.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn store(&self, cred: &Credential) -> Store {
        Store::connect(&self.managed.endpoint(), "us-east-1", cred)
    }

    pub fn root(&self) -> Store {
        self.store(&self.secrets.root)
    }

    /// A new bucket, with root allowed on it.
    pub async fn bucket(&self, name: &str) -> Remote {
        self.admin
            .ensure_bucket(name, &self.secrets.root)
            .await
            .unwrap();
        self.root().bucket(name)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A syncer for `root` with its state beside it.
pub fn syncer(remote: Remote, root: &Path, origin: &str) -> Syncer {
    syncer_with(remote, root, origin, SyncLimits::default())
}

/// [`syncer`] with limits of its own (deletion caps, file size).
pub fn syncer_with(remote: Remote, root: &Path, origin: &str, limits: SyncLimits) -> Syncer {
    let state = root.with_extension("state.json");
    Syncer::new(
        remote,
        root.to_path_buf(),
        state,
        Boundary::new(&[], &["knowledge"]).unwrap(),
        limits,
        origin,
    )
}

/// Every regular file under `root` (not following symlinks) with its content, skipping the
/// sync's own scratch directory.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if rel.starts_with(".clawkeep-sync") {
                continue;
            }
            if ft.is_dir() {
                walk(root, &e.path(), out);
            } else if ft.is_file() {
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    walk(root, root, &mut out);
    out
}

pub fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Every key in the bucket.
pub async fn keys(remote: &Remote) -> Vec<String> {
    remote
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

/// The newest snapshot's files with their contents, read from the blobs; empty when the
/// bucket has no history.
pub async fn newest(bucket: &Remote) -> BTreeMap<String, Vec<u8>> {
    let Some(id) = bucket.snapshot_ids().await.unwrap().pop() else {
        return BTreeMap::new();
    };
    let snap = bucket.snapshot(&id).await.unwrap();
    let mut out = BTreeMap::new();
    for (p, f) in snap.files {
        let b = bucket
            .get_bytes(&clawkeep_store::keys::blob_key(&f.sha256))
            .await
            .unwrap();
        out.insert(p, b.to_vec());
    }
    out
}

/// inotify watches this process holds now.
pub fn watches() -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc/self/fdinfo").unwrap().flatten() {
        if let Ok(text) = std::fs::read_to_string(e.path()) {
            n += text
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count();
        }
    }
    n
}
