//! Semantic validation: from the deserialized [`FleetFile`] to the resolved [`Fleet`], every
//! problem collected and positioned through the parsed document's spans.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::Diagnostic;
use super::file::{AgentFile, FleetFile, HealthFile, NodeFile, ServiceFile};
use super::host;
use super::settings::{builtin, sub, SettingsLayer};
use super::spans::{key_path, Pos, Seg, Spans};
use super::{Agent, Command, Fleet, Health, HealthProbe, Node, Service};

/// The health check an OpenClaw agent gets when the fleet sets none: its gateway's
/// `/readyz`, checked from inside the sandbox, with a minute's grace for a cold start.
/// PATH on a clawkeep node image (where service programs named without a path are found).
const NODE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn openclaw_health() -> Health {
    Health {
        probe: HealthProbe::Http(format!(
            "http://127.0.0.1:{}/readyz",
            crate::fleet::openclaw::GATEWAY_PORT
        )),
        interval: builtin::HEALTH_INTERVAL,
        timeout: builtin::HEALTH_TIMEOUT,
        retries: builtin::HEALTH_RETRIES,
        start_period: Duration::from_secs(60),
    }
}

/// Default state directory.
const STATE_DIR: &str = "/var/lib/clawkeep";
/// Default parent cgroup.
const CGROUP: &str = "clawkeep";
/// Default first host id of the agents' ranges.
const UID_BASE: u32 = 1_000_000_000;
/// Ids per agent: a full 16-bit range.
const IDS_PER_AGENT: u64 = super::IDS_PER_AGENT as u64;

/// What the checks need besides the file: where it is, and the host's PATH.
pub(crate) struct Resolver<'a> {
    /// Positions and names of places.
    pub spans: &'a Spans<'a>,
    /// The fleet file's directory, absolute: relative paths start here.
    base_dir: &'a Path,
    /// The same directory as the user named it, for messages.
    shown_dir: &'a Path,
    /// PATH at check time, for service commands given by name.
    path_var: OsString,
    /// Problems found so far.
    diags: Vec<Diagnostic>,
    /// The pinned OpenClaw runtime on the host, once resolved: programs under
    /// /opt/openclaw are looked up there.
    runtime: Option<PathBuf>,
    /// When checking a fleet for a node image: the image's staged root filesystem, under
    /// which every absolute path (and PATH) is looked up, as the node will see it.
    root: Option<&'a Path>,
    /// The fleet runs on another machine (a node image being built here): what only the
    /// node itself can say (its state dir's filesystem) is not asked of this host.
    elsewhere: bool,
    /// The fleet is rendered for a Kubernetes cluster: nothing it names on a node's disk
    /// (rootfs, installed runtime, programs, models, devices) is looked for here.
    cluster: bool,
    /// Whether the agents' own files (souls, workspace files) are read: not by the cluster's
    /// gateway, which has only the fleet file.
    agent_files: bool,
    /// The cluster's network allows egress to names (`[cluster] network = "cilium"`).
    fqdn_egress: bool,
}

impl<'a> Resolver<'a> {
    /// A resolver for the file indexed by `spans`, whose directory is `base_dir` (absolute)
    /// and `shown_dir` (as the user named it).
    pub(crate) fn new(spans: &'a Spans<'a>, base_dir: &'a Path, shown_dir: &'a Path) -> Self {
        Self {
            spans,
            base_dir,
            shown_dir,
            path_var: std::env::var_os("PATH").unwrap_or_default(),
            diags: Vec::new(),
            runtime: None,
            root: None,
            elsewhere: false,
            cluster: false,
            fqdn_egress: false,
            agent_files: true,
        }
    }

    /// For the cluster's model gateway: a cluster's view, without the agents' own files.
    pub(crate) fn for_cluster_gateway(mut self) -> Self {
        self.agent_files = false;
        self.for_cluster()
    }

    /// For a fleet rendered onto Kubernetes: what only a node has is not asked of this host.
    pub(crate) fn for_cluster(mut self) -> Self {
        self.elsewhere = true;
        self.cluster = true;
        self
    }

    /// Whether the files a node would hold (rootfs, programs, models, devices, the installed
    /// runtime) are checked: not for a cluster, where they come from images.
    pub(crate) fn checks_node_files(&self) -> bool {
        !self.cluster
    }

    /// For a fleet that will run on another machine: this host's state dir is not its.
    pub(crate) fn elsewhere(mut self) -> Self {
        self.elsewhere = true;
        self
    }

    /// Looks every absolute path up under `root` (a node image's root filesystem), and
    /// programs in that root's standard PATH.
    pub(crate) fn in_root(mut self, root: &'a Path) -> Self {
        self.path_var = NODE_PATH.into();
        self.root = Some(root);
        self
    }

    /// Where the node's absolute path `path` is on this machine: itself, or under the
    /// image root being checked, with its symlinks followed inside that root (when nothing
    /// is there: where it would be, so the checks report it missing).
    pub(crate) fn node_path(&self, path: &Path) -> PathBuf {
        match self.root {
            Some(root) if path.is_absolute() => {
                let proc = Path::new(host::PROC);
                host::resolve_in_root(root, path, proc)
                    .unwrap_or_else(|| host::unresolved_in_root(root, path, proc))
            }
            _ => path.to_path_buf(),
        }
    }

    /// The first executable `name` in PATH: this machine's, or the node's inside the image
    /// root (each candidate resolved inside it).
    fn find_program(&self, name: &str) -> Option<PathBuf> {
        match self.root {
            Some(root) => NODE_PATH.split(':').find_map(|dir| {
                let p =
                    host::resolve_in_root(root, &Path::new(dir).join(name), Path::new(host::PROC))?;
                host::is_executable_file(&p).then_some(p)
            }),
            None => host::find_in_path(name, &self.path_var),
        }
    }

    /// Record a problem at `at` with the hint that fixes it.
    fn report(&mut self, at: Pos, message: String, hint: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(at.line, at.col, message, Some(hint.into())));
    }

    /// Report a problem with the value at `path` (a missing one: at its table).
    pub(crate) fn at_value(&mut self, path: &[Seg], message: String, hint: impl Into<String>) {
        self.report(self.spans.value_pos(path), message, hint);
    }

    /// How many problems have been reported so far.
    pub(crate) fn reported(&self) -> usize {
        self.diags.len()
    }

    /// Report a problem with the key at `path`.
    pub(crate) fn at_key(&mut self, path: &[Seg], message: String, hint: impl Into<String>) {
        self.report(self.spans.key_pos(path), message, hint);
    }

    /// The place of `path` for a message: `[[agent]] "research": memory`.
    pub(crate) fn what(&self, path: &[Seg]) -> String {
        self.spans.what(path)
    }

    /// The section of `path` for a message: `[[agent]] "research"`.
    fn section(&self, path: &[Seg]) -> String {
        self.spans.section(path).unwrap_or_default()
    }

    /// Whether the fleet runs on this very machine, whose own state can be asked.
    pub(crate) fn runs_here(&self) -> bool {
        self.root.is_none() && !self.elsewhere
    }

    /// The fleet file's directory (absolute).
    pub(crate) fn base_dir(&self) -> &Path {
        self.base_dir
    }

    /// A path from the file as the user would name it (relative to where they ran clawkeep).
    pub(crate) fn shown(&self, written: &str) -> PathBuf {
        self.shown_dir.join(written)
    }

    /// A path from the file, made absolute against the fleet file's directory.
    pub(crate) fn absolute(&self, written: &str) -> PathBuf {
        if Path::new(written).is_absolute() {
            return self.node_path(Path::new(written));
        }
        self.base_dir.join(written)
    }

    /// "; looked for X" naming where a relative path led, when that is not what was written.
    pub(crate) fn looked_for(&self, written: &str) -> String {
        let shown = self.shown_dir.join(written);
        if shown == Path::new(written) {
            String::new()
        } else {
            format!("; looked for {}", shown.display())
        }
    }

    /// Check everything and build the fleet, or return every problem.
    pub(crate) fn resolve(
        mut self,
        file: &FleetFile,
        fleet_path: PathBuf,
    ) -> Result<Fleet, Vec<Diagnostic>> {
        let backends = file
            .models
            .as_ref()
            .and_then(|m| m.backend.as_ref())
            .map_or(0, Vec::len);
        self.fqdn_egress =
            file.cluster.as_ref().and_then(|c| c.network) == Some(super::NetworkFlavour::Cilium);
        let node = self.node(&file.node, file.agent.len(), backends);
        let rootfs = self.rootfs(file);
        let openclaw = self.openclaw_runtime(file);
        self.runtime = openclaw.as_ref().map(|r| r.path.clone());
        let defaults_at = key_path!["defaults"];
        let defaults = self.settings(&file.defaults, &defaults_at);
        self.check_backoff_order(&defaults.restart, &defaults.restart, &defaults_at);
        if let Some(command) = &defaults.command {
            self.agent_command(command, rootfs.as_deref(), &sub(&defaults_at, &["command"]));
        }
        self.names(file);
        let agents: Vec<Agent> = file
            .agent
            .iter()
            .enumerate()
            .map(|(i, a)| {
                // Pinned, even if not installed: no cascade of "no command" reports.
                let pinned = file.runtime.openclaw.is_some();
                self.agent(i, a, &defaults, rootfs.as_deref(), pinned)
            })
            .collect();
        self.disk_quotas(file, &defaults, &node.state_dir, &agents);
        let mut services: Vec<Service> = file
            .service
            .iter()
            .enumerate()
            .map(|(i, s)| self.service(i, s))
            .collect();
        let (models, backends) = self.models(file, &agents);
        let mut backend_names: Vec<String> = backends.iter().map(|b| b.name.clone()).collect();
        services.extend(backends);
        let (store, store_service) = self.store(file);
        if let Some(s) = store_service {
            // Brains are pulled before agents start: the store comes first.
            backend_names.insert(0, s.name.clone());
            services.insert(0, s);
        }
        let cluster = self.cluster(file);
        let mut fleet = Fleet {
            path: fleet_path,
            cluster,
            node,
            rootfs: rootfs.unwrap_or_default(),
            openclaw,
            agents,
            services,
            models,
            store,
        };
        self.dependencies(file, &mut fleet);
        // Agents start once the model backends answer (the store and models come first).
        for a in &mut fleet.agents {
            for b in &backend_names {
                if !a.depends_on.contains(b) {
                    a.depends_on.push(b.clone());
                }
            }
        }
        self.ports(file);
        if self.diags.is_empty() {
            Ok(fleet)
        } else {
            Err(self.diags)
        }
    }

    /// `[node]`, with defaults; `uid_base` must leave room for `agents` id ranges above it
    /// and `backends` below it.
    fn node(&mut self, node: &NodeFile, agents: usize, backends: usize) -> Node {
        let name = match &node.name {
            Some(n) if n.trim().is_empty() => {
                self.at_value(
                    &key_path!["node", "name"],
                    "[node]: name is empty".to_string(),
                    "give the node a name, or leave name out to use the host name",
                );
                String::new()
            }
            Some(n) => n.clone(),
            None => host_name(),
        };
        let state_dir = match node.state_dir.as_deref() {
            Some("") => {
                self.at_value(
                    &key_path!["node", "state_dir"],
                    "[node]: state_dir is empty".to_string(),
                    format!("give a directory, or leave state_dir out for {STATE_DIR}"),
                );
                PathBuf::new()
            }
            Some(dir) => self.absolute(dir),
            None => PathBuf::from(STATE_DIR),
        };
        let cgroup = node.cgroup.clone().unwrap_or_else(|| CGROUP.to_string());
        if let Some(problem) = cgroup_problem(&cgroup) {
            self.at_value(
                &key_path!["node", "cgroup"],
                format!("[node]: cgroup {cgroup:?} {problem}"),
                "use a relative path of parts made of letters, digits, '_', '.' and '-', e.g. \"clawkeep\" or \"services/clawkeep\"",
            );
        }
        let uid_base = node.uid_base.unwrap_or(UID_BASE);
        let uid_path = key_path!["node", "uid_base"];
        if uid_base < 65_536 {
            self.at_value(
                &uid_path,
                format!("[node]: uid_base {uid_base} is below 65536"),
                "host system users and groups live below 65536; use e.g. 1000000000",
            );
        } else if u64::from(uid_base) < (backends as u64 + 1) * IDS_PER_AGENT {
            self.at_value(
                &uid_path,
                format!(
                    "[node]: uid_base {uid_base} leaves no room below it for {backends} model backend(s)"
                ),
                format!(
                    "each managed model backend runs as the 65536 host ids just below uid_base, above the host's own users: raise uid_base to at least {}",
                    (backends as u64 + 1) * IDS_PER_AGENT
                ),
            );
        } else {
            let top = u64::from(super::COLLECTION_GIDS);
            let room = top.saturating_sub(u64::from(uid_base)) / IDS_PER_AGENT;
            if agents as u64 > room {
                self.at_value(
                    &uid_path,
                    format!(
                        "[node]: uid_base {uid_base} leaves room for {room} {}, but the fleet has {agents}",
                        if room == 1 { "agent" } else { "agents" }
                    ),
                    format!(
                        "each agent takes 65536 host ids below {top} (the ids above are the shared collections' groups): lower uid_base to at most {}",
                        top.saturating_sub(agents as u64 * IDS_PER_AGENT)
                    ),
                );
            }
        }
        let control_group = node.control_group.clone();
        if let Some(g) = control_group
            .as_deref()
            .filter(|g| !super::names::is_group_name(g))
        {
            self.at_value(
                &key_path!["node", "control_group"],
                format!("[node]: control_group {g:?} is not a group name"),
                "give a host group's name made of letters, digits, '_' and '-', e.g. \"clawkeep\"; or leave it out, and only root may use the control socket",
            );
        }
        Node {
            name,
            state_dir,
            cgroup,
            uid_base,
            control_group,
        }
    }

    /// `[runtime] rootfs`: required with agents, an existing directory.
    fn rootfs(&mut self, file: &FleetFile) -> Option<PathBuf> {
        let at = key_path!["runtime", "rootfs"];
        let Some(written) = file.runtime.rootfs.as_deref() else {
            // The gateway's fleet has agents, to know them, and nothing to run them in.
            if !file.agent.is_empty() && self.agent_files {
                let at = if self.spans.node(&key_path!["runtime"]).is_some() {
                    key_path!["runtime"].to_vec()
                } else {
                    key_path!["agent", 0usize].to_vec()
                };
                self.at_value(
                    &at,
                    "the fleet has agents but no [runtime] rootfs".to_string(),
                    "add rootfs = \"<directory>\" under [runtime]: the root filesystem agents run in",
                );
            }
            return None;
        };
        let rootfs = self.absolute(written);
        if !self.checks_node_files() {
            return Some(rootfs);
        }
        let looked = self.looked_for(written);
        let problem = match std::fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => return Some(rootfs),
            Ok(_) => "is not a directory",
            Err(_) => "does not exist",
        };
        self.at_value(
            &at,
            format!("[runtime]: rootfs {written:?} {problem}{looked}"),
            "build or unpack the agent runtime there, or fix the path; relative paths start at the fleet file's directory",
        );
        None
    }

    /// Check an agent's program: an absolute path that exists inside the rootfs.
    fn agent_command(&mut self, command: &str, rootfs: Option<&Path>, path: &[Seg]) {
        let what = self.what(path);
        if !command.starts_with('/') {
            let found = rootfs.and_then(|root| {
                host::ROOTFS_BIN_DIRS.iter().find_map(|dir| {
                    let candidate = format!("{dir}/{command}");
                    host::in_rootfs(root, &candidate)
                        .filter(|p| !command.is_empty() && host::exists_no_follow(p))
                        .map(|_| candidate)
                })
            });
            let hint = match found {
                Some(candidate) => format!("did you mean {candidate:?}?"),
                None => "give its absolute path inside the runtime rootfs, e.g. \"/usr/local/bin/openclaw\"".to_string(),
            };
            self.at_value(
                path,
                format!("{what} {command:?} is not an absolute path"),
                hint,
            );
            return;
        }
        let runtime_prefix = format!("{}/", super::runtime::MOUNT);
        let (root, command_in, key) = match (&self.runtime, command.strip_prefix(&runtime_prefix)) {
            (Some(rt), Some(rest)) => (rt.clone(), format!("/{rest}"), "runtime"),
            _ => match rootfs {
                Some(r) => (r.to_path_buf(), command.to_string(), "rootfs"),
                None => return,
            },
        };
        let command_shown = command;
        let command = command_in.as_str();
        if !self.checks_node_files() {
            return;
        }
        match host::in_rootfs(&root, command) {
            None => self.at_value(
                path,
                format!("{what} {command_shown:?} leaves the runtime {key}"),
                "remove the '..' parts",
            ),
            Some(p) if !host::exists_no_follow(&p) => {
                let shown = if key == "runtime" {
                    p.clone()
                } else {
                    let written = self
                        .spans
                        .str_at(&key_path!["runtime", "rootfs"])
                        .unwrap_or_default();
                    self.shown_dir
                        .join(written)
                        .join(command.trim_start_matches('/'))
                };
                self.at_value(
                    path,
                    format!(
                        "{what} {command_shown:?} is not in the runtime {key}: {} does not exist",
                        shown.display()
                    ),
                    "install it into the rootfs, or fix the path",
                );
            }
            Some(_) => {}
        }
    }

    /// An agent's `workspace` files: known OpenClaw workspace names, existing files, and only
    /// in a fleet that pins OpenClaw.
    fn workspace_files(
        &mut self,
        file: &AgentFile,
        at: &[Seg],
        openclaw: bool,
    ) -> Vec<(String, PathBuf)> {
        const NAMES: &[&str] = &super::openclaw::WORKSPACE_FILES;
        let Some(files) = &file.workspace else {
            return Vec::new();
        };
        let ws_at = sub(at, &["workspace"]);
        if !openclaw {
            let what = self.what(&ws_at);
            self.at_key(
                &ws_at,
                format!(
                    "{what} seeds an OpenClaw workspace, but the fleet pins no OpenClaw runtime"
                ),
                "add openclaw = \"<version>\" under [runtime], or remove workspace",
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for (name, written) in files {
            let key_at = sub(&ws_at, &[name.as_str()]);
            let what = self.what(&ws_at);
            if name == "SOUL.md" {
                self.at_key(
                    &key_at,
                    format!("{what}: SOUL.md comes from the agent's soul key"),
                    "move it to soul = \"<file>\" in this [[agent]]",
                );
                continue;
            }
            if !NAMES.contains(&name.as_str()) {
                self.at_key(
                    &key_at,
                    format!("{what}: {name:?} is not an OpenClaw workspace file clawkeep seeds"),
                    format!("use one of {}", NAMES.join(", ")),
                );
                continue;
            }
            let path = self.absolute(written);
            let problem = match std::fs::metadata(&path) {
                _ if !self.agent_files => {
                    out.push((name.clone(), path));
                    continue;
                }
                Ok(m) if m.is_file() => {
                    out.push((name.clone(), path));
                    continue;
                }
                Ok(_) => "is not a file",
                Err(_) => "does not exist",
            };
            let looked = self.looked_for(written);
            self.at_value(
                &key_at,
                format!("{what}: {name} source {written:?} {problem}{looked}"),
                "create the file or fix the path; relative paths start at the fleet file's directory",
            );
        }
        out
    }

    /// Names of agents and services: present, DNS labels, unique across both kinds (the later
    /// one in the file is reported).
    fn names(&mut self, file: &FleetFile) {
        let agents = file.agent.iter().map(|a| a.name.as_deref());
        let services = file.service.iter().map(|s| s.name.as_deref());
        let mut entries: Vec<(Pos, &str, usize, Option<&str>)> = Vec::new();
        for (kind, names) in [
            ("agent", agents.collect::<Vec<_>>()),
            ("service", services.collect()),
        ] {
            for (i, name) in names.into_iter().enumerate() {
                let pos = self.spans.value_pos(&key_path![kind, i, "name"]);
                entries.push((pos, kind, i, name));
            }
        }
        entries.sort_by_key(|e| e.0);
        let mut seen: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
        for (pos, kind, i, name) in entries {
            let at = key_path![kind, i];
            let name_at = sub(&at, &["name"]);
            let Some(name) = name else {
                let section = self.section(&at);
                self.at_value(
                    &at,
                    format!("{section} has no name"),
                    format!(
                        "add name = \"...\": lowercase letters, digits and '-', e.g. \"{}\"",
                        example_name(kind)
                    ),
                );
                continue;
            };
            let section = self.section(&at);
            if !super::names::is_dns_label(name) {
                let rule = "use 1 to 63 lowercase letters, digits and '-', not starting or ending with '-'";
                let hint = match super::names::dns_label_suggestion(name) {
                    Some(s) => format!("{rule}, e.g. {s:?}"),
                    None => rule.to_string(),
                };
                let problem = if name.len() > 63 {
                    "is longer than 63 characters"
                } else {
                    "is not a DNS label"
                };
                self.at_value(&name_at, format!("{section}: name {problem}"), hint);
            }
            match seen.get(name) {
                Some(&(first_kind, line)) => self.at_value(
                    &name_at,
                    format!(
                        "{section}: name is already used by the [[{first_kind}]] on line {line}"
                    ),
                    "names must be unique across agents and services: rename one",
                ),
                None => {
                    seen.insert(name, (kind, pos.line));
                }
            }
        }
    }

    /// The `i`-th `[[agent]]` over `defaults`: its command, limits and soul file.
    fn agent(
        &mut self,
        i: usize,
        file: &AgentFile,
        defaults: &SettingsLayer,
        rootfs: Option<&Path>,
        openclaw: bool,
    ) -> Agent {
        let at = key_path!["agent", i];
        let own = self.settings(&file.settings, &at);
        match &own.command {
            Some(command) => self.agent_command(command, rootfs, &sub(&at, &["command"])),
            None if defaults.command.is_none() && !openclaw && self.agent_files => {
                let section = self.section(&at);
                self.at_value(
                    &at,
                    format!("{section} has no command"),
                    "set command = \"/path/in/rootfs\" in [defaults] or in this [[agent]], or pin OpenClaw with [runtime] openclaw = \"<version>\" to run its gateway",
                );
            }
            None => {}
        }
        let own_restart = own.restart;
        let own_team = own.team.is_some();
        let merged = own.over(defaults);
        self.check_backoff_order(&own_restart, &merged.restart, &at);
        if self.cluster {
            self.cluster_team(merged.team.as_deref(), own_team, i);
        }
        let soul = file.soul.as_deref().and_then(|written| {
            let soul_at = sub(&at, &["soul"]);
            let soul = self.absolute(written);
            let problem = match std::fs::metadata(&soul) {
                _ if !self.agent_files => return Some(soul),
                Ok(m) if m.is_file() => return Some(soul),
                Ok(_) => "is not a file",
                Err(_) => "does not exist",
            };
            let what = self.what(&soul_at);
            let looked = self.looked_for(written);
            self.at_value(
                &soul_at,
                format!("{what} {written:?} {problem}{looked}"),
                "create the file or fix the path; relative paths start at the fleet file's directory",
            );
            None
        });
        let workspace = self.workspace_files(file, &at, openclaw);
        let (program, args) = match (&merged.command, openclaw) {
            (Some(p), _) => (p.clone(), merged.args.clone().unwrap_or_default()),
            (None, true) => {
                let (p, a) = super::runtime::OpenclawRuntime::gateway_command();
                (p, merged.args.clone().unwrap_or(a))
            }
            (None, false) => (String::new(), merged.args.clone().unwrap_or_default()),
        };
        Agent {
            name: file.name.clone().unwrap_or_default(),
            index: u32::try_from(i).unwrap_or(u32::MAX),
            team: merged.team.clone(),
            soul,
            workspace,
            gateway_port: file.gateway_port,
            command: Command {
                program,
                args,
                env: merged.env.clone(),
            },
            resources: merged.resources(),
            restart: merged.restart.finish(),
            stop_grace: merged.stop_grace.unwrap_or(builtin::STOP_GRACE),
            log: merged.log.finish(),
            // Filled in by `dependencies` once every name is known.
            depends_on: Vec::new(),
            model: merged.model.clone(),
            models: merged.models.clone(),
            tokens_per_day: merged.tokens_per_day,
            max_concurrent: merged.max_concurrent.unwrap_or(4),
            health: merged
                .health
                .clone()
                .or_else(|| openclaw.then(openclaw_health)),
            openclaw: merged.openclaw.clone(),
            egress: self.egress(file.egress.as_deref(), &at),
            knowledge: file
                .knowledge
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            secrets: self.secrets(i, file, &merged.env),
            secrets_as: file.secrets_as.unwrap_or_default(),
        }
    }

    /// The `i`-th `[[service]]`: its program, cwd, restart policy and health check.
    fn service(&mut self, i: usize, file: &ServiceFile) -> Service {
        let at = key_path!["service", i];
        let program = match file.command.as_deref() {
            Some(command) => self.service_command(command, &sub(&at, &["command"])),
            None => {
                let section = self.section(&at);
                self.at_value(
                    &at,
                    format!("{section} has no command"),
                    "add command = \"/absolute/path\" or the name of a program in PATH",
                );
                String::new()
            }
        };
        let cwd = match file.cwd.as_deref() {
            None => self.base_dir.to_path_buf(),
            Some(written) => {
                let cwd = self.absolute(written);
                let problem = match std::fs::metadata(&cwd) {
                    _ if !self.checks_node_files() => None,
                    Ok(m) if m.is_dir() => None,
                    Ok(_) => Some("is not a directory"),
                    Err(_) => Some("does not exist"),
                };
                if let Some(problem) = problem {
                    let cwd_at = sub(&at, &["cwd"]);
                    let what = self.what(&cwd_at);
                    let looked = self.looked_for(written);
                    self.at_value(
                        &cwd_at,
                        format!("{what} {written:?} {problem}{looked}"),
                        "create the directory or fix the path; relative paths start at the fleet file's directory",
                    );
                }
                cwd
            }
        };
        let restart = self.restart_layer(
            file.restart,
            file.backoff.as_ref(),
            file.crash_loop.as_ref(),
            &at,
        );
        self.check_backoff_order(&restart, &restart, &at);
        let log = self.log_layer(file.log.as_ref(), &at);
        let health = file
            .health
            .as_ref()
            .and_then(|h| self.health(h, &sub(&at, &["health"])));
        Service {
            name: file.name.clone().unwrap_or_default(),
            command: Command {
                program,
                args: file.args.clone().unwrap_or_default(),
                env: self.env(file.env.as_ref(), &at),
            },
            cwd,
            restart: restart.finish(),
            // Filled in by `dependencies` once every name is known.
            depends_on: Vec::new(),
            health,
            ports: file.ports.clone().unwrap_or_default(),
            stop_grace: self
                .duration(file.stop_grace.as_deref(), &sub(&at, &["stop_grace"]))
                .unwrap_or(builtin::STOP_GRACE),
            log: log.finish(),
            sandbox: None,
        }
    }

    /// A service's program: an absolute path to an executable, or a name found in PATH.
    /// Returns the absolute path.
    pub(crate) fn service_command(&mut self, command: &str, path: &[Seg]) -> String {
        let what = self.what(path);
        let (problem, hint) = if command.is_empty() {
            (
                "is empty".to_string(),
                "give an absolute path or the name of a program in PATH".to_string(),
            )
        } else if !self.checks_node_files() {
            return command.to_string();
        } else if command.starts_with('/') {
            let on_host = self.node_path(Path::new(command));
            let p = on_host.as_path();
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => (
                    "is a directory".to_string(),
                    "point at the program itself".to_string(),
                ),
                Ok(_) if host::is_executable_file(p) => return command.to_string(),
                Ok(_) => (
                    "is not executable".to_string(),
                    format!("make it executable with chmod +x {command}, or fix the path"),
                ),
                Err(_) => (
                    "does not exist".to_string(),
                    "install it or fix the path".to_string(),
                ),
            }
        } else if command.contains('/') {
            (
                "is a relative path".to_string(),
                "give an absolute path, or a bare name to look up in PATH".to_string(),
            )
        } else {
            match self.find_program(command) {
                Some(found) => return found.to_string_lossy().into_owned(),
                None => (
                    "was not found in PATH".to_string(),
                    format!(
                        "install it or give its absolute path; PATH is {}",
                        self.path_var.to_string_lossy()
                    ),
                ),
            }
        };
        self.at_value(path, format!("{what} {command:?} {problem}"), hint);
        String::new()
    }

    /// For a cluster: the agent's team names its namespace, `clawkeep-<team>`, which must be a
    /// DNS label (reported where the team is written: the agent, or `[defaults]`).
    fn cluster_team(&mut self, team: Option<&str>, own: bool, i: usize) {
        let Some(team) = team else { return };
        let namespace = format!("{}{team}", super::TEAM_NAMESPACE_PREFIX);
        let (problem, hint) = if super::TEAM_NAMES_RESERVED.contains(&team) {
            (
                format!("is the name of clawkeep's own namespace {namespace:?}, not a team's"),
                format!(
                    "name the team otherwise: {} are clawkeep's (its gateway, its operators)",
                    super::TEAM_NAMES_RESERVED.join(" and ")
                ),
            )
        } else if !super::is_dns_label(&namespace) {
            (
                format!("cannot name a Kubernetes namespace ({namespace:?})"),
                "use at most 54 lowercase letters, digits and '-', starting and ending with a letter or digit".to_string(),
            )
        } else {
            return;
        };
        let at = if own {
            sub(&key_path!["agent", i], &["team"])
        } else {
            key_path!["defaults", "team"].to_vec()
        };
        let what = self.what(&at);
        self.at_value(&at, format!("{what} {team:?} {problem}"), hint);
    }

    /// An agent's egress list: each entry "host:port" (IPv6 hosts in brackets), never an
    /// address of the node itself, its link or a cloud's metadata ([`super::egress`]).
    fn egress(&mut self, list: Option<&[String]>, at: &[Seg]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, e) in list.unwrap_or_default().iter().enumerate() {
            let mut path = sub(at, &["egress"]);
            path.push(Seg::from(i));
            let problem = match super::egress::entry(e) {
                Ok(d)
                    if self.cluster
                        && !self.fqdn_egress
                        && matches!(d.host, super::egress::Host::Name(_)) =>
                {
                    let what = self.what(&path);
                    self.at_value(
                        &path,
                        format!("{what} {e:?} names a host: a Kubernetes NetworkPolicy allows addresses, not names"),
                        "give the address and port (\"192.0.2.10:443\"), set [cluster] network = \"cilium\" on a Cilium cluster, or leave the agent without egress in the cluster",
                    );
                    continue;
                }
                Ok(_) => {
                    out.push(e.to_ascii_lowercase());
                    continue;
                }
                Err(problem) => problem,
            };
            let what = self.what(&path);
            match problem {
                super::egress::EntryError::Shape => self.at_value(
                    &path,
                    format!("{what} {e:?} is not host:port"),
                    "write a destination like \"matrix.internal:8448\" (no scheme, no path)",
                ),
                super::egress::EntryError::Refused { class, shown } => {
                    let shown = shown.map(|ip| format!(" ({ip})")).unwrap_or_default();
                    self.at_value(
                        &path,
                        format!("{what} {e:?} is {}{shown}: the agent would reach what only the node should", class.describe()),
                        "remove it: agents reach models through the gateway and knowledge through their mounts; name a host on the network instead",
                    )
                }
            }
        }
        out
    }

    /// An agent's health check at `at`: HTTP only (it runs inside the sandbox, on the
    /// agent's own loopback), otherwise as a service's.
    pub(crate) fn agent_health(&mut self, h: &HealthFile, at: &[Seg]) -> Option<Health> {
        if h.command.is_some() {
            let path = sub(at, &["command"]);
            let what = self.what(&path);
            self.at_key(
                &path,
                format!("{what}: an agent's health check cannot run a command on the host"),
                "use http = \"http://127.0.0.1:PORT/path\", which clawkeep checks from inside the agent's sandbox",
            );
            return None;
        }
        self.health(h, at)
    }

    /// A service's health check at `at`: exactly one probe, loopback-only HTTP, sane timing.
    fn health(&mut self, h: &HealthFile, at: &[Seg]) -> Option<Health> {
        let section = self.section(at);
        let probe = match (&h.command, &h.http) {
            (Some(_), Some(_)) => {
                self.at_key(
                    &sub(at, &["http"]),
                    format!("{section}: health has both command and http"),
                    "keep one of them",
                );
                None
            }
            (None, None) => {
                self.at_value(
                    at,
                    format!("{section}: health has neither command nor http"),
                    "add command = [\"program\", \"arg\"] or http = \"http://127.0.0.1:PORT/path\"",
                );
                None
            }
            (Some(argv), None) => {
                if argv.first().is_none_or(|p| p.is_empty()) {
                    let path = sub(at, &["command"]);
                    let what = self.what(&path);
                    self.at_value(
                        &path,
                        format!("{what} has no program"),
                        "give the program and its arguments, e.g. command = [\"curl\", \"-fsS\", \"http://127.0.0.1:9000/\"]",
                    );
                    None
                } else {
                    Some(HealthProbe::Command(argv.clone()))
                }
            }
            (None, Some(url)) => match host::check_loopback_http(url) {
                Ok(()) => Some(HealthProbe::Http(url.clone())),
                Err(e) => {
                    let path = sub(at, &["http"]);
                    let what = self.what(&path);
                    let hint = match e {
                        host::UrlError::NotHttp => "health checks use plain http on the loopback, e.g. \"http://127.0.0.1:9000/health\"",
                        host::UrlError::NotLoopback => "use 127.0.0.1, localhost or [::1]: clawkeep never reaches off the node",
                        host::UrlError::BadPort => "use a port from 1 to 65535, e.g. \"http://127.0.0.1:9000/health\"",
                    };
                    self.at_value(&path, format!("{what} {url:?} {e}"), hint);
                    None
                }
            },
        };
        let interval = self.positive_duration(h.interval.as_deref(), &sub(at, &["interval"]));
        let timeout = self.positive_duration(h.timeout.as_deref(), &sub(at, &["timeout"]));
        let retries = self
            .at_least(
                h.retries.map(u64::from),
                1,
                &sub(at, &["retries"]),
                "a check must be allowed to fail at least once",
            )
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(builtin::HEALTH_RETRIES);
        let start_period = self
            .duration(h.start_period.as_deref(), &sub(at, &["start_period"]))
            .unwrap_or(builtin::HEALTH_START_PERIOD);
        Some(Health {
            probe: probe?,
            interval: interval.unwrap_or(builtin::HEALTH_INTERVAL),
            timeout: timeout.unwrap_or(builtin::HEALTH_TIMEOUT),
            retries,
            start_period,
        })
    }

    /// A duration at `path` that must be above zero.
    fn positive_duration(&mut self, text: Option<&str>, path: &[Seg]) -> Option<Duration> {
        let value = self.duration(text, path)?;
        if value.is_zero() {
            let what = self.what(path);
            self.at_value(
                path,
                format!("{what} must be longer than 0s"),
                "give a duration above zero, e.g. \"5s\"",
            );
            return None;
        }
        Some(value)
    }

    /// `depends_on`: agents wait for services, services for other services; no unknown
    /// names, no self dependencies, no cycles. Fills in the fleet's `depends_on` lists.
    fn dependencies(&mut self, file: &FleetFile, fleet: &mut Fleet) {
        let targets = Targets {
            // Reversed so that a duplicated name maps to its first service.
            services: file
                .service
                .iter()
                .enumerate()
                .rev()
                .filter_map(|(i, s)| Some((s.name.as_deref()?, i)))
                .collect(),
            agents: file
                .agent
                .iter()
                .filter_map(|a| a.name.as_deref())
                .collect(),
        };
        let mut edges = vec![Vec::new(); file.service.len()];
        for (i, a) in file.agent.iter().enumerate() {
            let list = a.depends_on.as_deref().unwrap_or_default();
            let resolved =
                self.dependency_list("agent", i, a.name.as_deref(), list, &targets, &mut edges);
            if let Some(agent) = fleet.agents.get_mut(i) {
                agent.depends_on = resolved;
            }
        }
        for (i, s) in file.service.iter().enumerate() {
            let list = s.depends_on.as_deref().unwrap_or_default();
            let resolved =
                self.dependency_list("service", i, s.name.as_deref(), list, &targets, &mut edges);
            if let Some(service) = fleet.services.get_mut(i) {
                service.depends_on = resolved;
            }
        }
        let name_of = |i: usize| file.service.get(i).and_then(|s| s.name.as_deref());
        for cycle in super::cycles::find_cycles(&edges) {
            let (Some(&first), Some(&next)) = (cycle.first(), cycle.get(1)) else {
                continue;
            };
            let names: Vec<&str> = cycle
                .iter()
                .chain([&first])
                .map(|&i| name_of(i).unwrap_or("?"))
                .collect();
            // Point at the entry of the cycle's first service that leads to the next one.
            let j = file
                .service
                .get(first)
                .and_then(|s| s.depends_on.as_ref())
                .and_then(|list| list.iter().position(|d| Some(d.as_str()) == name_of(next)))
                .unwrap_or(0);
            let section = self.section(&key_path!["service", first]);
            self.at_value(
                &key_path!["service", first, "depends_on", j],
                format!("{section}: dependency cycle {}", names.join(" -> ")),
                "services cannot wait for each other in a circle: remove one of these dependencies",
            );
        }
    }

    /// Check one `depends_on` list of the `kind` at index `i`; returns the valid names, once
    /// each, and adds service-to-service edges to `edges`.
    fn dependency_list(
        &mut self,
        kind: &str,
        i: usize,
        own_name: Option<&str>,
        list: &[String],
        targets: &Targets<'_>,
        edges: &mut [Vec<usize>],
    ) -> Vec<String> {
        let mut resolved: Vec<String> = Vec::new();
        for (j, dep) in list.iter().enumerate() {
            let path = key_path![kind, i, "depends_on", j];
            let what = self.what(&path);
            if Some(dep.as_str()) == own_name {
                self.at_value(
                    &path,
                    format!("{what} {dep:?} is the {kind} itself"),
                    format!("{} cannot wait for itself: remove it", a_kind(kind)),
                );
            } else if let Some(&target) = targets.services.get(dep.as_str()) {
                if kind == "service" {
                    if let Some(out) = edges.get_mut(i) {
                        out.push(target);
                    }
                }
                if !resolved.contains(dep) {
                    resolved.push(dep.clone());
                }
            } else if targets.agents.contains(&dep.as_str()) {
                self.at_value(
                    &path,
                    format!("{what} {dep:?} is an agent"),
                    format!("{} can only depend on services", a_kind(kind)),
                );
            } else {
                let services = targets.services.keys().copied();
                let hint = match super::names::did_you_mean(dep, services) {
                    Some(close) => format!("did you mean {close:?}?"),
                    None if targets.services.is_empty() => "the fleet has no services".to_string(),
                    None => format!(
                        "services are: {}",
                        targets
                            .services
                            .keys()
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.at_value(
                    &path,
                    format!("{what} {dep:?} is not a service in this fleet"),
                    hint,
                );
            }
        }
        resolved
    }

    /// Host ports: every agent's gateway_port and every service port distinct, none 0.
    fn ports(&mut self, file: &FleetFile) {
        // (position, path, port, owner for messages, what for messages)
        let mut uses: Vec<(Pos, Vec<Seg>, u16, String, String)> = Vec::new();
        for (i, a) in file.agent.iter().enumerate() {
            if let Some(port) = a.gateway_port {
                let path = key_path!["agent", i, "gateway_port"].to_vec();
                let owner = self.section(&path);
                uses.push((
                    self.spans.value_pos(&path),
                    path,
                    port,
                    owner.clone(),
                    format!("{owner}: gateway_port"),
                ));
            }
        }
        for (i, s) in file.service.iter().enumerate() {
            for (j, &port) in s.ports.iter().flatten().enumerate() {
                let path = key_path!["service", i, "ports", j].to_vec();
                let owner = self.section(&path);
                uses.push((
                    self.spans.value_pos(&path),
                    path,
                    port,
                    owner.clone(),
                    format!("{owner}: port"),
                ));
            }
        }
        if let Some(m) = &file.models {
            for (i, b) in m.backend.iter().flatten().enumerate() {
                if let Some(port) = b.port {
                    let path = key_path!["models", "backend", i, "port"].to_vec();
                    let owner =
                        format!("[models] backend {:?}", b.name.clone().unwrap_or_default());
                    uses.push((
                        self.spans.value_pos(&path),
                        path,
                        port,
                        owner.clone(),
                        format!("{owner}: port"),
                    ));
                }
            }
            let metrics = m
                .metrics
                .as_deref()
                .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
            if let Some(addr) = metrics {
                let path = key_path!["models", "metrics"].to_vec();
                let owner = "[models] metrics".to_string();
                uses.push((
                    self.spans.value_pos(&path),
                    path,
                    addr.port(),
                    owner.clone(),
                    format!("{owner} port"),
                ));
            }
        }
        uses.sort_by_key(|u| u.0);
        let mut seen: BTreeMap<u16, (String, usize)> = BTreeMap::new();
        for (pos, path, port, section, what) in uses {
            if port == 0 {
                self.at_value(
                    &path,
                    format!("{what} 0 is not a usable port"),
                    "port 0 means \"any free port\": pick a fixed one from 1 to 65535",
                );
                continue;
            }
            match seen.get(&port) {
                Some((first, _)) if *first == section => {
                    let message = format!("{section}: ports lists {port} twice");
                    self.at_value(&path, message, "remove the duplicate");
                }
                Some((first, line)) => {
                    let message =
                        format!("{what} {port} is already used by {first} on line {line}");
                    self.at_value(
                        &path,
                        message,
                        "give every agent and service its own host port",
                    );
                }
                None => {
                    seen.insert(port, (section, pos.line));
                }
            }
        }
    }
}

/// What `depends_on` entries may name.
struct Targets<'f> {
    /// Service names and their index (the first one for a duplicated name).
    services: BTreeMap<&'f str, usize>,
    /// Agent names, to explain that they cannot be depended on.
    agents: Vec<&'f str>,
}

/// "an agent" or "a service".
fn a_kind(kind: &str) -> &'static str {
    if kind == "agent" {
        "an agent"
    } else {
        "a service"
    }
}

/// Example name for a missing one.
fn example_name(kind: &str) -> &'static str {
    if kind == "agent" {
        "research"
    } else {
        "minio"
    }
}

/// What is wrong with a cgroup path, if anything.
fn cgroup_problem(cgroup: &str) -> Option<String> {
    if cgroup.is_empty() {
        return Some("is empty".to_string());
    }
    if cgroup.starts_with('/') {
        return Some("must be a relative path".to_string());
    }
    cgroup.split('/').find_map(|part| {
        let ok = !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        (!ok).then(|| format!("has a bad part {part:?}"))
    })
}

/// The host name, for a node that does not name itself.
fn host_name() -> String {
    match nix::unistd::gethostname() {
        Ok(name) => name.to_string_lossy().into_owned(),
        // gethostname cannot fail on Linux with nix's buffer handling; keep a usable name anyway.
        Err(_) => "localhost".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths() {
        assert_eq!(cgroup_problem("clawkeep"), None);
        assert_eq!(cgroup_problem("system.slice/clawkeep-1_x"), None);
        assert_eq!(cgroup_problem("").as_deref(), Some("is empty"));
        assert_eq!(
            cgroup_problem("/clawkeep").as_deref(),
            Some("must be a relative path")
        );
        assert_eq!(
            cgroup_problem("a/../b").as_deref(),
            Some("has a bad part \"..\"")
        );
        assert_eq!(
            cgroup_problem("a/./b").as_deref(),
            Some("has a bad part \".\"")
        );
        assert_eq!(
            cgroup_problem("a//b").as_deref(),
            Some("has a bad part \"\"")
        );
        assert_eq!(
            cgroup_problem("a b").as_deref(),
            Some("has a bad part \"a b\"")
        );
    }
}
