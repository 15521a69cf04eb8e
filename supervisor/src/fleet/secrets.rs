//! An agent's `secrets` and `secrets_as`: names that can be environment variables and file
//! names, each once, and (as env) not shadowing a variable the agent already has; the names
//! and the ways a secret can reach an agent, which `crate::secrets` uses.

use std::collections::{BTreeMap, BTreeSet};

use super::file::AgentFile;
use super::resolve::Resolver;
use super::spans::{key_path, Seg};

pub use clawkeep_sandbox::secrets::is_secret_name;

/// How an agent receives its secrets.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SecretsAs {
    /// One file per secret, mode 0600, on a read-only tmpfs at /run/secrets.
    #[default]
    Files,
    /// Environment variables of the agent's process (visible in its /proc/PID/environ).
    Env,
}

/// Variables clawkeep sets in every sandbox.
const RESERVED: [&str; 3] = ["PATH", "HOME", "HOSTNAME"];

impl Resolver<'_> {
    /// The `i`-th agent's secret names, checked; `env` is its merged environment.
    pub(crate) fn secrets(
        &mut self,
        i: usize,
        file: &AgentFile,
        env: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let Some(names) = &file.secrets else {
            return Vec::new();
        };
        let as_env = file.secrets_as == Some(SecretsAs::Env);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (j, name) in names.iter().enumerate() {
            let at: Vec<Seg> = key_path!["agent", i, "secrets", j].to_vec();
            let what = self.what(&key_path!["agent", i, "secrets"]);
            if !is_secret_name(name) {
                self.at_value(
                    &at,
                    format!("{what}: {name:?} cannot name a secret"),
                    "use letters, digits and '_', not starting with a digit, e.g. \"matrix_token\": it becomes a file name under /run/secrets or an environment variable",
                );
                continue;
            }
            if !seen.insert(name.as_str()) {
                self.at_value(
                    &at,
                    format!("{what}: {name:?} is listed twice"),
                    "list each secret once",
                );
                continue;
            }
            if as_env && (RESERVED.contains(&name.as_str()) || env.contains_key(name)) {
                self.at_value(
                    &at,
                    format!("{what}: {name:?} would replace an environment variable the agent already has"),
                    "rename the secret, or the variable in env; PATH, HOME and HOSTNAME are set by clawkeep",
                );
                continue;
            }
            out.push(name.clone());
        }
        out
    }
}
