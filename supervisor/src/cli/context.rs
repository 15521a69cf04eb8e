//! What every command gets: the state dir, the control-API client, and the output format.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;
use supervisor::api::client::Client;

use super::args::Cli;

/// Default state dir when neither the fleet file, --state-dir nor CLAWKEEP_STATE_DIR says.
const DEFAULT_STATE_DIR: &str = "/var/lib/clawkeep";

/// The fleet file of a node image: its state dir is the one to talk to by default.
const NODE_FLEET: &str = "/etc/clawkeep/fleet.toml";

/// The `[node] state_dir` a fleet file names (relative to the file's directory), read
/// without checking the rest of the file: a client only needs to know where to call.
fn state_dir_named_by(fleet: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(fleet).ok()?;
    let doc: toml::Table = toml::from_str(&text).ok()?;
    let dir = doc.get("node")?.get("state_dir")?.as_str()?;
    Some(fleet.parent().unwrap_or(Path::new("/")).join(dir))
}

/// How a command prints its answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// For people: a table or lines of text.
    Text,
    /// `--json`.
    Json,
}

/// Built once from the command line, before the command runs.
pub(crate) struct Context {
    /// --state-dir or CLAWKEEP_STATE_DIR.
    state_dir: Option<PathBuf>,
    /// The state dir a fleet file names (--fleet, CLAWKEEP_FLEET, a node image's).
    named: Option<PathBuf>,
    pub(crate) format: Format,
    api: OnceCell<Api>,
}

/// The running supervisor's control API, and the runtime its calls wait on.
pub(crate) struct Api {
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    /// Wait for a call: `api.block_on(api.ps())`.
    pub(crate) fn block_on<F: std::future::Future>(&self, call: F) -> F::Output {
        self.runtime.block_on(call)
    }
}

impl std::ops::Deref for Api {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Context {
    pub(crate) fn new(cli: &Cli) -> Self {
        let named = || {
            cli.fleet
                .clone()
                .or_else(|| Path::new(NODE_FLEET).is_file().then(|| NODE_FLEET.into()))
                .and_then(|f| state_dir_named_by(&f))
        };
        Self {
            state_dir: cli.state_dir.clone(),
            named: if cli.state_dir.is_some() {
                None
            } else {
                named()
            },
            format: if cli.command.json() {
                Format::Json
            } else {
                Format::Text
            },
            api: OnceCell::new(),
        }
    }

    /// The state dir of the supervisor to talk to: --state-dir, CLAWKEEP_STATE_DIR, the
    /// fleet's (--fleet, CLAWKEEP_FLEET, a node image's), else /var/lib/clawkeep.
    pub(crate) fn state_dir(&self) -> &Path {
        self.state_dir
            .as_deref()
            .or(self.named.as_deref())
            .unwrap_or(Path::new(DEFAULT_STATE_DIR))
    }

    /// The state dir of a fleet the command runs itself (`up`, `bundle`): --state-dir,
    /// CLAWKEEP_STATE_DIR, else the fleet file's [node] state_dir.
    pub(crate) fn state_dir_of(&self, fleet: &supervisor::fleet::Fleet) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| fleet.node.state_dir.clone())
    }

    /// The control API of the supervisor in [`Context::state_dir`], made at first use.
    pub(crate) fn api(&self) -> Result<&Api> {
        if let Some(api) = self.api.get() {
            return Ok(api);
        }
        let client = Client::new(self.state_dir())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start the client runtime")?;
        Ok(self.api.get_or_init(|| Api { client, runtime }))
    }

    /// Print `value` as JSON, or as the `text` made of it for people.
    pub(crate) fn show<T: Serialize + ?Sized>(
        &self,
        value: &T,
        text: impl FnOnce() -> String,
    ) -> Result<()> {
        match self.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Format::Text => print!("{}", text()),
        }
        Ok(())
    }
}
