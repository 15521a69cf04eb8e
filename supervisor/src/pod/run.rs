//! `clawkeep pod run`: the agent container's entrypoint. At every start of the container (a
//! restart in place runs it again, where an init container would not) it writes the enforced
//! `openclaw.json` from the agent's ConfigMap into the home and seeds the workspace files
//! the home lacks, then becomes the agent (exec). It runs as the agent's own uid: nothing
//! it does needs more, and the home's symlinks are never followed.

use std::path::{Path, PathBuf};

use crate::openclaw::provision::{self, Provision, Provisioned};

/// The file of the agent's ConfigMap holding its enforced openclaw.json.
pub const CONFIG_FILE: &str = "openclaw.json";

/// The scratch directory in the home where files are made before being renamed into place.
const SCRATCH: &str = ".clawkeep-provision";

/// Why the agent could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PodRunError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {message} (it comes from the agent's ConfigMap: render the manifests again)")]
    Config { path: PathBuf, message: String },
    #[error("secret {path}: {why}")]
    Secret { path: PathBuf, why: String },
    #[error(transparent)]
    Provision(#[from] clawkeep_sandbox::SandboxError),
}

/// Write the agent's OpenClaw state into `home` from the ConfigMap mounted at `config_dir`;
/// `None` when the agent is no OpenClaw agent (its ConfigMap has no openclaw.json).
pub fn prepare(home: &Path, config_dir: &Path) -> Result<Option<Provisioned>, PodRunError> {
    let path = config_dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PodRunError::Io { path, source }),
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| PodRunError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
    // The workspace files a ConfigMap may carry: SOUL.md (from `soul`) and OpenClaw's others.
    let seeds: Vec<(String, PathBuf)> = std::iter::once(&"SOUL.md")
        .chain(crate::fleet::openclaw::WORKSPACE_FILES.iter())
        .map(|n| (n.to_string(), config_dir.join(n)))
        .filter(|(_, p)| p.is_file())
        .collect();
    let scratch = home.join(SCRATCH);
    // Made fresh: whatever the agent left there is not trusted.
    let _ = std::fs::remove_dir_all(&scratch);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PodRunError::Io { path, source }
    };
    std::fs::create_dir(&scratch).map_err(io(&scratch))?;
    let uid = nix::unistd::getuid().as_raw();
    let done = provision::provision(&Provision {
        home,
        scratch: &scratch,
        owner: uid,
        config: &config,
        seeds: &seeds,
    });
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(Some(done?))
}

/// Make `home/knowledge` lead to the collections' mounts (/knowledge), as on a node: what is
/// in the way is moved aside, never deleted, and its new name returned.
pub fn link_knowledge(home: &Path) -> Result<Option<String>, PodRunError> {
    let io = |source| PodRunError::Io {
        path: home.join("knowledge"),
        source,
    };
    let within = clawkeep_beneath::Beneath::open(home).map_err(io)?;
    let me = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    crate::brains::link_knowledge(&within, me).map_err(io)
}

/// The environment an OpenClaw agent runs with in its pod (as on a node).
pub fn openclaw_env() -> Vec<(String, String)> {
    provision::env()
}

/// The variables the agent gets from its Secrets, mounted as files into its container only
/// (never in the pod spec, where anyone who may read the StatefulSet would see them): the
/// OpenClaw gateway token from `token` as `OPENCLAW_GATEWAY_TOKEN`, and with `env_dir`
/// (`secrets_as = "env"`) each secret file there as a variable of its name.
pub fn secret_env(
    token: Option<&Path>,
    env_dir: Option<&Path>,
) -> Result<Vec<(String, String)>, PodRunError> {
    let read = |path: &Path| -> Result<String, PodRunError> {
        let bytes = std::fs::read(path).map_err(|source| PodRunError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.len() > crate::secrets::MAX_VALUE {
            return Err(PodRunError::Secret {
                path: path.to_path_buf(),
                why: format!("larger than {} bytes", crate::secrets::MAX_VALUE),
            });
        }
        String::from_utf8(bytes).map_err(|_| PodRunError::Secret {
            path: path.to_path_buf(),
            why: "not UTF-8 text (an environment variable holds text)".into(),
        })
    };
    let mut out = Vec::new();
    if let Some(path) = token {
        let t = read(path)?.trim().to_string();
        if t.is_empty() {
            return Err(PodRunError::Secret {
                path: path.to_path_buf(),
                why: "empty (put the agent's gateway token in its token Secret)".into(),
            });
        }
        out.push((crate::openclaw::token::ENV.to_string(), t));
    }
    if let Some(dir) = env_dir {
        let entries = std::fs::read_dir(dir).map_err(|source| PodRunError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // A Secret volume's own `..data` and `..<timestamp>` entries.
            .filter(|n| !n.starts_with(".."))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            if !crate::secrets::is_secret_name(&name) {
                return Err(PodRunError::Secret {
                    path,
                    why: "not a secret name (letters, digits and _; not starting with a digit)"
                        .into(),
                });
            }
            let value = read(&path)?;
            out.push((name, value));
        }
    }
    Ok(out)
}
