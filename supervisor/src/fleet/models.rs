//! `[models]`, `[teams]` and the agents' model settings: the model gateway's part of the
//! fleet file. The rules of `[models]` itself live in the `ollama` crate; here they get
//! their positions, and the agents' choices are checked against what `[models]` serves.

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clawkeep_gateway::config::PathPart;

use super::file::{FleetFile, SizeFile};
use super::resolve::Resolver;
use super::settings::sub;
use super::spans::{key_path, Seg};
use super::{Agent, Command, Models, Service, ServiceSandbox};

/// Smallest request body limit: 1KiB.
const MIN_BODY: u64 = 1 << 10;

fn seg(p: &PathPart) -> Seg {
    match p {
        PathPart::Key(k) => Seg::from(k.as_str()),
        PathPart::Index(i) => Seg::from(*i),
    }
}

/// `[defaults]` and every `[[agent]]`, where agents' model settings can be written.
fn settings_tables(file: &FleetFile) -> Vec<(Vec<Seg>, &super::file::AgentSettings)> {
    let mut tables = vec![(key_path!["defaults"].to_vec(), &file.defaults)];
    for (i, a) in file.agent.iter().enumerate() {
        tables.push((key_path!["agent", i].to_vec(), &a.settings));
    }
    tables
}

impl Resolver<'_> {
    /// Check `[models]`, `[teams]` and every agent's model settings; the managed backends
    /// come back as services to run.
    pub(crate) fn models(
        &mut self,
        file: &FleetFile,
        agents: &[Agent],
    ) -> (Option<Models>, Vec<Service>) {
        let Some(cfg) = &file.models else {
            self.no_models(file);
            return (None, Vec::new());
        };
        let (cfg, backends) = self.backends(cfg, file);
        let cfg = &cfg;
        for p in cfg.problems() {
            let path: Vec<Seg> = std::iter::once(Seg::from("models"))
                .chain(p.path.iter().map(seg))
                .collect();
            self.at_value(&path, format!("[models]: {}", p.message), p.hint);
        }
        let max_body = match &cfg.max_body {
            Some(t) => self.size(
                Some(&SizeFile::Text(t.clone())),
                &key_path!["models", "max_body"],
                MIN_BODY,
            ),
            None => Some(8 << 20),
        };
        let timeout = self.duration(cfg.timeout.as_deref(), &key_path!["models", "timeout"]);
        let cooldown = self.duration(cfg.cooldown.as_deref(), &key_path!["models", "cooldown"]);
        let request_timeout = self.duration(
            cfg.request_timeout.as_deref(),
            &key_path!["models", "request_timeout"],
        );
        if request_timeout == Some(Duration::ZERO) {
            self.at_value(
                &key_path!["models", "request_timeout"],
                "[models]: request_timeout 0 would close every connection at once".into(),
                "give the time an agent has to send a request, e.g. \"30s\", or leave it out for that default",
            );
        }
        let max_connections = self.at_least(
            cfg.max_connections,
            1,
            &key_path!["models", "max_connections"],
            "an agent with no connection could not reach its models",
        );
        let known = cfg.known_models();
        self.agent_models(file, &known);
        let mut team_budgets = HashMap::new();
        for (name, team) in file.teams.iter().flatten() {
            let at = key_path!["teams", name.as_str(), "budget", "tokens_per_day"];
            let limit = team.budget.and_then(|b| b.tokens_per_day);
            if let Some(n) = self.at_least(
                limit,
                1,
                &at,
                "a budget of 0 tokens would refuse every request",
            ) {
                team_budgets.insert(name.clone(), n);
            }
            if !agents.iter().any(|a| a.team.as_deref() == Some(name)) {
                self.at_key(
                    &key_path!["teams", name.as_str()],
                    format!("[teams]: no agent is in team {name:?}"),
                    "set team = \"...\" on the agents it is for, or remove the table",
                );
            }
        }
        let models = Some(Models {
            config: cfg.clone(),
            settings: clawkeep_gateway::server::Settings {
                max_body: max_body.unwrap_or(8 << 20) as usize,
                timeout: timeout.unwrap_or(Duration::from_secs(600)),
                cooldown: cooldown.unwrap_or(Duration::from_secs(10)),
                team_budgets,
                connections: clawkeep_gateway::listen::Bounds {
                    max_connections: max_connections.map_or(
                        clawkeep_gateway::listen::Bounds::AGENT.max_connections,
                        |n| n as usize,
                    ),
                    head_timeout: request_timeout
                        .unwrap_or(clawkeep_gateway::listen::Bounds::AGENT.head_timeout),
                },
                body_timeout: request_timeout.unwrap_or(Duration::from_secs(30)),
            },
            metrics: cfg.metrics.as_deref().and_then(|m| m.parse().ok()),
        });
        (models, backends)
    }

    /// `[[models.backend]]`: each becomes a supervised service (with its binary and model
    /// paths resolved and checked) whose health check is its readiness.
    fn backends(
        &mut self,
        cfg: &clawkeep_gateway::config::GatewayConfig,
        file: &FleetFile,
    ) -> (clawkeep_gateway::config::GatewayConfig, Vec<Service>) {
        let mut cfg = cfg.clone();
        let mut services = Vec::new();
        let taken: Vec<&str> = file
            .agent
            .iter()
            .filter_map(|a| a.name.as_deref())
            .chain(file.service.iter().filter_map(|s| s.name.as_deref()))
            .collect();
        for (i, b) in cfg.backend.iter_mut().flatten().enumerate() {
            let at = key_path!["models", "backend", i];
            if let Some(name) = &b.name {
                if !super::names::is_dns_label(name) {
                    self.at_value(
                        &sub(&at, &["name"]),
                        format!("[models]: backend name {name:?} is not a DNS label"),
                        "use 1 to 63 lowercase letters, digits and '-': it names a service and its cgroup",
                    );
                }
                if taken.contains(&name.as_str()) {
                    let path = sub(&at, &["name"]);
                    self.at_value(
                        &path,
                        format!("[models]: backend name {name:?} is already an agent's or service's name"),
                        "the backend runs as a service of that name: give it its own",
                    );
                }
            }
            if let Some(binary) = b.binary.clone() {
                b.binary = Some(self.service_command(&binary, &sub(&at, &["binary"])));
            }
            if let Some(model) = b.model.clone() {
                let path = self.absolute(&model);
                if path.exists() || !self.checks_node_files() {
                    b.model = Some(path.to_string_lossy().into_owned());
                } else {
                    let looked = self.looked_for(&model);
                    self.at_value(
                        &sub(&at, &["model"]),
                        format!("[models]: backend model {model:?} does not exist{looked}"),
                        "put the model file (or directory) there, or fix the path; relative paths start at the fleet file's directory",
                    );
                }
            }
            let sandbox = self.backend_sandbox(i, b, &at);
            let launch = b.launch();
            let mut service = Service::launched(
                b.name.clone().unwrap_or_default(),
                Command {
                    program: launch.program,
                    args: launch.args,
                    env: launch.env,
                },
                launch.health_url,
                self.base_dir().to_path_buf(),
                b.port.into_iter().collect(),
            );
            service.sandbox = Some(sandbox);
            services.push(service);
        }
        (cfg, services)
    }

    /// What a backend's sandbox is given: its program's directory, its model and its
    /// `read_only` paths (resolved, read-only), and its `devices` (each a device node).
    fn backend_sandbox(
        &mut self,
        i: usize,
        b: &clawkeep_gateway::backend::BackendConfig,
        at: &[Seg],
    ) -> ServiceSandbox {
        if !self.checks_node_files() {
            // In a cluster a backend is a pod: its devices are resource limits there.
            return ServiceSandbox {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                binds: Vec::new(),
                devices: b.devices.iter().flatten().map(PathBuf::from).collect(),
            };
        }
        let mut binds = Vec::new();
        // Bound by its real path: a link on the way would not exist inside.
        let real = |p: &str| std::fs::canonicalize(p).ok();
        if let Some(dir) = b
            .binary
            .as_deref()
            .and_then(real)
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            binds.push(dir);
        }
        if let Some(model) = b.model.as_deref().and_then(real) {
            binds.push(model);
        }
        for (j, written) in b.read_only.iter().flatten().enumerate() {
            let path = self.absolute(written);
            match std::fs::canonicalize(&path) {
                Ok(p) => binds.push(p),
                Err(e) => {
                    let mut at = sub(at, &["read_only"]);
                    at.push(Seg::from(j));
                    self.at_value(
                        &at,
                        format!("[models]: backend path {written:?} cannot be used: {e}"),
                        "list files or directories that exist on this host; relative paths start at the fleet file's directory",
                    );
                }
            }
        }
        let mut devices = Vec::new();
        for (j, written) in b.devices.iter().flatten().enumerate() {
            let mut at = sub(at, &["devices"]);
            at.push(Seg::from(j));
            let path = PathBuf::from(written);
            let problem = if !path.starts_with("/dev/") {
                Some("is not under /dev".to_string())
            } else {
                match path.metadata() {
                    Err(e) => Some(format!("cannot be used: {e}")),
                    Ok(md)
                        if !md.file_type().is_char_device()
                            && !md.file_type().is_block_device() =>
                    {
                        Some("is not a device node".to_string())
                    }
                    Ok(_) => None,
                }
            };
            match problem {
                Some(p) => self.at_value(
                    &at,
                    format!("[models]: backend device {written:?} {p}"),
                    "list the device files the backend needs, e.g. \"/dev/nvidia0\"; check the driver is loaded (ls -l /dev)",
                ),
                None => devices.push(path),
            }
        }
        // The sandbox's init, an unprivileged host uid, binds them by path.
        for path in &binds {
            if let Err(e) = clawkeep_sandbox::bundle::reachable_by_others(path) {
                self.at_value(
                    at,
                    format!(
                        "[models]: backend {:?} runs in a sandbox as an unprivileged user: {e}",
                        b.name.as_deref().unwrap_or("")
                    ),
                    "keep its program and model where every directory on the way lets others search it",
                );
            }
        }
        ServiceSandbox {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            binds,
            devices,
        }
    }

    /// Model settings are checked where they are written: `[defaults]` and each `[[agent]]`.
    fn agent_models(&mut self, file: &FleetFile, known: &[String]) {
        let tables = settings_tables(file);
        let hint = format!("use a model or alias from [models]: {}", known.join(", "));
        for (at, s) in tables {
            if let Some(m) = &s.model {
                if !known.contains(m) {
                    let path = sub(&at, &["model"]);
                    let what = self.what(&path);
                    self.at_value(
                        &path,
                        format!("{what} {m:?} is not served by [models]"),
                        hint.clone(),
                    );
                }
            }
            for (j, m) in s.models.iter().flatten().enumerate() {
                if !known.contains(m) {
                    let mut path = sub(&at, &["models"]);
                    path.push(Seg::from(j));
                    let what = self.what(&path);
                    self.at_value(
                        &path,
                        format!("{what} {m:?} is not served by [models]"),
                        hint.clone(),
                    );
                }
            }
            if let (Some(m), Some(list)) = (&s.model, &s.models) {
                if known.contains(m) && !list.contains(m) {
                    let path = sub(&at, &["model"]);
                    let what = self.what(&path);
                    self.at_value(
                        &path,
                        format!("{what} {m:?} is not in its own models list"),
                        "add it to models, or pick a default from that list",
                    );
                }
            }
        }
    }

    /// Without `[models]`, agents have no model gateway: model settings would do nothing.
    fn no_models(&mut self, file: &FleetFile) {
        let hint = "add a [models] section with the upstreams (see `clawkeep schema`), or remove this setting";
        let tables = settings_tables(file);
        for (at, s) in tables {
            for (set, key) in [
                (s.model.is_some(), "model"),
                (s.models.is_some(), "models"),
                (s.budget.is_some(), "budget"),
            ] {
                if set {
                    let path = sub(&at, &[key]);
                    let what = self.what(&path);
                    self.at_key(
                        &path,
                        format!("{what} is set but the fleet has no [models]"),
                        hint,
                    );
                }
            }
        }
        if file.teams.as_ref().is_some_and(|t| !t.is_empty()) {
            self.at_key(
                &key_path!["teams"],
                "[teams] budgets are set but the fleet has no [models]".to_string(),
                hint,
            );
        }
    }
}
