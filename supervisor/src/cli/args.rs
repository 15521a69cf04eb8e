//! The command line: every command, its arguments and its help text (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run a fleet of sandboxed AI agents on hardware you own, with nothing leaving the node.
///
/// One fleet file describes the node, its agents and its services. `clawkeep up` runs them:
/// each agent in its own sandbox (namespaces, cgroup limits, read-only runtime, no
/// capabilities, seccomp, only loopback), restarted when it crashes. The other commands talk
/// to the running supervisor through the Unix socket in its state dir.
///
/// Start with: clawkeep check fleet.toml && clawkeep up fleet.toml
///
/// Exit codes: 0 done; 1 failed (the message says why); 2 invalid input (the fleet file, an
/// argument); 3 findings (doctor, audit, sync status, image verify found problems); 4 no
/// supervisor to talk to (none runs with this state dir, or this user may not connect).
#[derive(Parser)]
#[command(name = "clawkeep", version = crate::cli::about::VERSION, long_version = crate::cli::about::LONG_VERSION, propagate_version = true)]
pub(crate) struct Cli {
    /// State dir of the supervisor to talk to (for `up`: overrides [node] state_dir).
    /// Default: the [node] state_dir of --fleet, else of /etc/clawkeep/fleet.toml (a node
    /// image's), else /var/lib/clawkeep.
    #[arg(long, global = true, env = "CLAWKEEP_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// The fleet file whose supervisor to talk to: its [node] state_dir says where.
    #[arg(long, global = true, env = "CLAWKEEP_FLEET", value_name = "FLEET")]
    pub(crate) fleet: Option<PathBuf>,
    /// How log lines are written: text (colours on a terminal unless NO_COLOR is set), json
    /// (one object a line), or journal (text without time stamps or colours: journald adds
    /// its own).
    #[arg(
        long,
        global = true,
        env = "CLAWKEEP_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

/// How log lines are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// For people.
    Text,
    /// One JSON object a line.
    Json,
    /// For journald: no time stamps, no colours.
    Journal,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    // check, schema, up, ps, logs, stop, start, restart, down.
    #[command(flatten)]
    Fleet(FleetCmd),
    /// Show tokens spent per agent, team or model, from the gateway's ledger.
    ///
    /// Reads STATE_DIR/ledger directly, so it works while the supervisor is down too. ERRORS
    /// counts requests that did not complete (refused, upstream failures, streams the agent
    /// cut; those are billed for what was produced).
    ///
    /// Example: clawkeep spend --by team --since 7d
    Spend(SpendArgs),
    /// The knowledge store: status of every brain and shared collection, push or pull by hand.
    ///
    /// Brains are pulled before each agent starts, pushed within seconds of every change and
    /// at stop; `sync` shows how far behind each is and does a pass on demand. A home that is
    /// new, replaced or put back from a backup, or a store that moved on without this node,
    /// is merged without deleting anything; a pass that would delete more than
    /// `[store] hold_deletes_over` (default 50 %) of a brain waits for `sync push NAME
    /// --allow-deletes`; every deletion made is in `sync status` and the agent's log with the
    /// `clawkeep restore` that undoes it. Files larger than `[store] max_file_size` (default
    /// 1GiB) are not synced either way, and never deleted for it. One supervisor syncs a brain at a time (a lease in
    /// its bucket); `sync takeover` moves it here.
    ///
    /// Example: clawkeep sync status      clawkeep sync push research
    Sync {
        #[command(subcommand)]
        command: SyncCmd,
    },
    // upgrade, rollback.
    #[command(flatten)]
    Upgrade(UpgradeCmd),
    // clone, restore.
    #[command(flatten)]
    Brain(BrainCmd),
    // doctor, audit.
    #[command(flatten)]
    Checks(ChecksCmd),
    /// Agents' secrets: an age-encrypted file under the state dir, opened by the node key.
    ///
    /// STATE_DIR/secrets/secrets.age holds every agent's secrets, encrypted to
    /// STATE_DIR/secrets/node.key (made at first use, 0600: back it up). Works whether or not
    /// the supervisor runs; an agent gets the secrets its fleet entry lists (`secrets = [..]`)
    /// when it next starts. Values are never printed, logged, synced or put in config.json.
    ///
    /// Example: printf %s "$TOKEN" | clawkeep secrets set customer matrix_token
    Secrets {
        #[command(subcommand)]
        command: SecretsCmd,
    },
    /// An OpenClaw agent's gateway token: what the operator sends as `Authorization: Bearer`
    /// to the agent's gateway through its forwarded port (fleets that pin OpenClaw).
    ///
    /// The token lives root-only in STATE_DIR/agents/NAME/gateway.token and reaches the agent
    /// as OPENCLAW_GATEWAY_TOKEN, never through a file in its home. `show` prints it; `rotate`
    /// writes a new one and restarts the agent (as `clawkeep restart`) so its gateway takes it.
    ///
    /// Example: curl -H "Authorization: Bearer $(clawkeep token show research)" http://127.0.0.1:18789/v1/models
    Token {
        #[command(subcommand)]
        command: TokenCmd,
    },
    /// The knowledge store itself.
    Store {
        #[command(subcommand)]
        command: StoreCmd,
    },
    // bundle, run.
    #[command(flatten)]
    Sandbox(SandboxCmd),
    /// The pinned agent runtime (Node + OpenClaw): prepare an offline bundle on a connected
    /// machine, install it without network on the node.
    ///
    /// Example: clawkeep runtime prepare --openclaw 2026.9.6 --node 24 --out bundle/    clawkeep runtime install bundle/
    Runtime {
        #[command(subcommand)]
        command: RuntimeCmd,
    },
    /// The appliance image: build it from an image bundle and a fleet, verify it, inspect it.
    ///
    /// Example: clawkeep image build fleet.toml --bundle bundle/ --out out/    clawkeep image verify out/
    Image {
        #[command(subcommand)]
        command: ImageCmd,
    },
    /// The model gateway on its own, for a Kubernetes cluster: one listener for every agent
    /// of the fleet, each request naming its agent by credential.
    ///
    /// In a cluster the network cannot say who is calling (addresses and pod labels can be
    /// forged), so each agent's requests carry `Authorization: Bearer <credential>` (its pod's
    /// shim adds it); a request without one, or with one no agent has, gets 401 before its
    /// body is read. Credentials are read from CREDENTIALS/<agent> (a Secret mounted with one
    /// key per agent), at least 32 printable characters, one per agent. Budgets, routing,
    /// metering and the ledger are the node's gateway's own; `clawkeep spend --state-dir`
    /// reads the ledger. The fleet is checked as for `render k8s`.
    ///
    /// Example: clawkeep gateway fleet.toml --credentials /run/secrets/agents --ledger /var/lib/clawkeep/ledger
    Gateway {
        /// The fleet file ([models] and the agents).
        fleet: PathBuf,
        /// Directory with one file per agent, named after it, holding its credential.
        #[arg(long, value_name = "DIR")]
        credentials: PathBuf,
        /// Directory of the token ledger (made if missing; keep it on a volume).
        #[arg(long, value_name = "DIR")]
        ledger: PathBuf,
        /// Address to serve agents on.
        #[arg(long, default_value = "0.0.0.0:11434")]
        listen: std::net::SocketAddr,
        /// Address to serve Prometheus `/metrics` on, if any.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// What runs inside an agent's pod on Kubernetes (the manifests `render k8s` writes
    /// start these).
    Pod {
        #[command(subcommand)]
        command: PodCmd,
    },
    /// Print a systemd unit that runs `clawkeep up FLEET` (Type=notify: ready once every
    /// agent runs; a watchdog; Delegate=yes; stop timeout from the fleet's stop graces).
    ///
    /// Example: clawkeep unit /etc/clawkeep/fleet.toml > /etc/systemd/system/clawkeep.service
    Unit {
        /// The fleet file (its absolute path goes into the unit).
        fleet: PathBuf,
        /// The clawkeep binary the unit runs (default: this one).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Print the shell completion script for bash, zsh or fish.
    ///
    /// Example (bash): source <(clawkeep completions bash)
    ///   or for every shell: clawkeep completions bash > /etc/bash_completion.d/clawkeep
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (clawkeep(1) and one per command, from this --help) into DIR,
    /// or print clawkeep(1) when no DIR is given.
    ///
    /// Example: clawkeep man /usr/local/share/man/man1 && man clawkeep-render-k8s
    Man {
        /// Directory to write clawkeep.1 and clawkeep-COMMAND.1 into.
        dir: Option<PathBuf>,
    },
    /// Render the fleet for somewhere other than this node: Kubernetes.
    ///
    /// Example: clawkeep render k8s examples/lab/fleet.toml --out k8s/
    Render {
        #[command(subcommand)]
        command: RenderCmd,
    },
    /// The sandbox init (started by clawkeep itself inside each sandbox).
    #[command(name = "__sandbox-init", hide = true)]
    SandboxInit {
        /// Bundle directory.
        bundle: PathBuf,
    },
}

impl Cmd {
    /// Whether the command was asked for JSON: `--json`, where the command takes it.
    pub(crate) fn json(&self) -> bool {
        match self {
            Cmd::Fleet(
                FleetCmd::Ps { json } | FleetCmd::Logs { json, .. } | FleetCmd::Check { json, .. },
            )
            | Cmd::Spend(SpendArgs { json, .. })
            | Cmd::Sync {
                command:
                    SyncCmd::Status { json }
                    | SyncCmd::History { json, .. }
                    | SyncCmd::Push { json, .. }
                    | SyncCmd::Pull { json, .. },
            }
            | Cmd::Brain(BrainCmd::Restore { json, .. })
            | Cmd::Upgrade(UpgradeCmd::Upgrade { json, .. } | UpgradeCmd::Rollback { json })
            | Cmd::Checks(ChecksCmd::Doctor { json } | ChecksCmd::Audit { json })
            | Cmd::Secrets {
                command: SecretsCmd::List { json, .. },
            }
            | Cmd::Image {
                command:
                    ImageCmd::Inspect { json, .. }
                    | ImageCmd::Build { json, .. }
                    | ImageCmd::Verify { json, .. },
            }
            | Cmd::Runtime {
                command: RuntimeCmd::Prepare { json, .. } | RuntimeCmd::Install { json, .. },
            }
            | Cmd::Store {
                command: StoreCmd::Migrate { json, .. },
            } => *json,
            _ => false,
        }
    }
}

// `clawkeep spend`. (Comments on these types are not doc comments: clap would show them.)
#[derive(Args)]
pub(crate) struct SpendArgs {
    /// Group rows by agent, team or model.
    #[arg(long, value_enum, default_value = "agent")]
    pub(crate) by: supervisor::spend::By,
    /// How far back to count, e.g. 1h, 24h, 7d.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub(crate) since: std::time::Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

// The fleet file, and the running fleet's agents and services.
#[derive(Subcommand)]
pub(crate) enum FleetCmd {
    /// Validate a fleet file and report every problem at once.
    ///
    /// Prints each problem as `file:line:col: what is wrong (hint)`. Exits 0 when the file is
    /// good, 2 when it has errors. Nothing is started.
    ///
    /// Example: clawkeep check examples/lab/fleet.toml
    Check {
        /// The fleet file.
        fleet: PathBuf,
        /// One JSON object: {"file", "ok", "agents", "services", "problems": [{"line",
        /// "col", "message", "hint"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the fleet file, for editors.
    ///
    /// Example: clawkeep schema > fleet.schema.json
    Schema,
    /// Run the fleet: the supervisor, in the foreground (or as PID 1 of a node).
    ///
    /// Validates the fleet file first (a bad file starts nothing), then starts services in
    /// dependency order and every agent in its sandbox, restarts what crashes, and serves the
    /// control API on STATE_DIR/clawkeep.sock. Ctrl-C, SIGTERM or `clawkeep down` stop the
    /// agents, then the services in reverse order. As PID 1 it also mounts /proc, /sys, /dev
    /// and /run, brings up lo, and powers off at the end.
    ///
    /// Example: clawkeep up examples/lab/fleet.toml
    Up {
        /// The fleet file.
        fleet: PathBuf,
    },
    /// List agents and services: state, pid, restarts, last exit, CPU, memory, uptime.
    ///
    /// Example: clawkeep ps        clawkeep ps --json | jq '.processes[].state'
    Ps {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the output of an agent or service (stdout and stderr, plus clawkeep's events).
    ///
    /// Example: clawkeep logs research -n 50 -f
    Logs {
        /// Agent or service name.
        name: String,
        /// Follow: keep printing new output until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
        /// Number of lines from the end to show first.
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: usize,
        /// Only clawkeep's own events about it (restarts, health, sync), kept apart from
        /// its output so that no amount of output rotates them away.
        #[arg(long)]
        events: bool,
        /// One JSON object per line: {"source": "clawkeep" | "output", "line": "..."}. A
        /// line is clawkeep's only when clawkeep wrote it: output that imitates an event
        /// is marked "(output) " in the log.
        #[arg(long)]
        json: bool,
    },
    /// Stop an agent or service (SIGTERM, grace period, then kill its cgroup); it stays
    /// stopped until `clawkeep start`.
    ///
    /// Example: clawkeep stop research
    Stop {
        /// Agent or service name.
        name: String,
    },
    /// Start a stopped, exited or crash-looping agent or service now.
    ///
    /// Example: clawkeep start research
    Start {
        /// Agent or service name.
        name: String,
    },
    /// Stop and start an agent or service.
    ///
    /// Example: clawkeep restart research
    Restart {
        /// Agent or service name.
        name: String,
    },
    /// Run a command inside a running agent's sandbox, as `docker exec` does.
    ///
    /// The command runs in the agent's namespaces and cgroup, as its user with its groups,
    /// working directory and environment (from its config.json: secrets delivered as
    /// variables are left out; those delivered as files are in /run/secrets), with no
    /// capabilities, no_new_privs and its seccomp filter. The request is written to the
    /// agent's log first (`clawkeep logs NAME --events`). Needs root on the node.
    ///
    /// Exits with the command's code; 125 when the sandbox could not be entered, 126 when
    /// the program cannot be run, 127 when there is no such program; 1 when the supervisor
    /// refuses (the agent is stopped) and 4 when no supervisor answers.
    ///
    /// Example: clawkeep exec research -- ls -la      clawkeep exec -it research -- sh
    Exec {
        /// Pass this terminal's input to the command (otherwise it reads nothing).
        #[arg(short, long)]
        interactive: bool,
        /// Give the command a terminal (a shell: use -it together).
        #[arg(short, long)]
        tty: bool,
        /// Agent name.
        agent: String,
        /// The command and its arguments, after `--` (PATH is the agent's).
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Shut the running supervisor down in order (agents, then services) and wait for it.
    ///
    /// Example: clawkeep down
    Down {
        /// Give up waiting after this long (the shutdown itself goes on).
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

// Moving the fleet to another OpenClaw runtime, and back.
#[derive(Subcommand)]
pub(crate) enum UpgradeCmd {
    /// Move the running fleet to another installed OpenClaw runtime, one agent at a time.
    ///
    /// The canary goes first; each agent is restarted on the new runtime and must pass a gate:
    /// its gateway's /readyz, then one real message answered. Any failure puts every agent
    /// moved so far back on its previous runtime, automatically. Install the runtime first
    /// (`clawkeep runtime install`); afterwards set [runtime] openclaw in the fleet file to
    /// keep it across restarts of clawkeep.
    ///
    /// Example: clawkeep upgrade --openclaw 2026.9.6 --canary research
    Upgrade {
        /// OpenClaw version to move to.
        #[arg(long, value_name = "VERSION")]
        openclaw: String,
        /// Node version the runtime must carry ("24", "24.21.0").
        #[arg(long, value_name = "VERSION")]
        node: Option<String>,
        /// Agent upgraded first; the others follow only if it passes the gate.
        #[arg(long, value_name = "AGENT")]
        canary: Option<String>,
        /// The test message each agent must answer.
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put every agent back on the runtime it ran before the last `clawkeep upgrade`.
    ///
    /// Example: clawkeep rollback
    Rollback {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

// An agent's brain, copied from another or put back as it was.
#[derive(Subcommand)]
pub(crate) enum BrainCmd {
    /// Give a new agent all the knowledge of another: its newest brain copied inside the
    /// store (no data through the node) into the new agent's bucket.
    ///
    /// FROM is pushed first. Then add an agent named TO to the fleet file; it starts with the
    /// copy.
    ///
    /// Example: clawkeep clone research research-2
    Clone {
        /// Agent whose brain is copied.
        from: String,
        /// Name of the new agent.
        to: String,
    },
    /// Put an agent's brain back exactly as it was at a push: files written, files it did not
    /// have then removed. The agent is stopped meanwhile and started again.
    ///
    /// The current brain is pushed first, so a restore can itself be undone with another
    /// restore. Times are RFC 3339, UTC unless they carry a zone (2026-11-20T12:00+02:00), or
    /// a time ago (2h ago).
    ///
    /// Example: clawkeep restore research --at 2026-11-20T10:00 --dry-run
    ///          clawkeep restore research --at "2h ago"
    Restore {
        /// Agent name.
        agent: String,
        /// The moment to go back to (the newest push at or before it is used).
        #[arg(long)]
        at: String,
        /// Only list what would change.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan (written, removed, unchanged) as JSON.
        #[arg(long)]
        json: bool,
    },
}

// The node's checks.
#[derive(Subcommand)]
pub(crate) enum ChecksCmd {
    /// Check that the node works: processes up and healthy, brains in step with the store,
    /// room on the disk; exit 1 on any finding.
    ///
    /// Checks have stable IDs (CK-DOC-*); each finding says what it concerns and what to do.
    ///
    /// Example: clawkeep doctor        clawkeep doctor --json
    Doctor {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check that the node is locked down as the fleet says; exit 1 on any finding.
    ///
    /// Every check has a stable ID (CK-STATE-*, CK-STORE-*); each finding says what it
    /// concerns and how to fix it. Includes whether the store itself enforces each agent's
    /// grants, key and secret file modes, and that no bucket holds secrets or sessions.
    ///
    /// Example: clawkeep audit        clawkeep audit --json | jq '.findings[].id'
    Audit {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

// One agent's sandbox outside the supervisor.
#[derive(Subcommand)]
pub(crate) enum SandboxCmd {
    /// Write an agent's OCI bundle (config.json) as `clawkeep up` would, e.g. to run it under
    /// runc. The bundle uses the agent's home and cgroup: do not run it while the supervisor
    /// runs that agent.
    ///
    /// Example: clawkeep bundle examples/lab/fleet.toml research --out /tmp/research && runc run -b /tmp/research research
    Bundle {
        /// The fleet file.
        fleet: PathBuf,
        /// Agent name.
        agent: String,
        /// Directory to write config.json into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one OCI bundle in the foreground with clawkeep's launcher, like `runc run`.
    ///
    /// Output goes to this terminal; the exit code is the process's (128+N for a signal, 137
    /// for an OOM kill, 125 when the sandbox could not be set up).
    ///
    /// Example: clawkeep run /tmp/research
    Run {
        /// Bundle directory.
        bundle: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum RuntimeCmd {
    /// Write an offline bundle of Node and OpenClaw (needs npm and the npm registry).
    ///
    /// Resolves --node to an exact version and refuses it, before downloading anything big,
    /// when it does not satisfy OpenClaw's engines.node. Then writes into --out: Node's and
    /// npm's tarballs, app/package.json and app/package-lock.json (with resolved URLs), the
    /// npm cache holding every locked package (about 300 MB in all), and bundle.json with
    /// every file's sha256. Copy the directory to the node as it is. Prints the bundle's id
    /// (the sha256 of bundle.json), for `install --expect-id`.
    ///
    /// Example: clawkeep runtime prepare --openclaw 2026.9.6 --node 24 --out bundle/
    Prepare {
        /// Exact OpenClaw version.
        #[arg(long, value_name = "VERSION")]
        openclaw: String,
        /// Node major (newest release of it is taken) or exact version.
        #[arg(long, value_name = "MAJOR|VERSION")]
        node: String,
        /// Directory to write the bundle into (new or empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Print one JSON object on stdout instead of text (progress stays on stderr).
        #[arg(long)]
        json: bool,
    },
    /// Install a bundle without network into a read-only, content-addressed runtime.
    ///
    /// Checks every file's sha256 first (a mismatch names the file and installs nothing),
    /// runs `npm ci --offline` with the bundled Node and cache, and renames the result into
    /// DEST/<sha256 of bundle.json>/ (files 0444/0555, dirs 0555), then points DEST/current
    /// at it. Installing the same bundle again does nothing (but point DEST/current at it). Prints the runtime's path; its
    /// bin/openclaw runs OpenClaw on the bundled Node.
    ///
    /// Example: clawkeep runtime install bundle/ && /var/lib/clawkeep/runtimes/current/bin/openclaw --version
    Install {
        /// The bundle directory written by `clawkeep runtime prepare`.
        bundle: PathBuf,
        /// Directory of installed runtimes.
        #[arg(long, value_name = "DIR", default_value = clawkeep_image::runtime::DEFAULT_RUNTIMES_DIR)]
        dest: PathBuf,
        /// The id `prepare` printed (sha256 of bundle.json): refuse any other bundle.
        #[arg(long, value_name = "SHA256")]
        expect_id: Option<String>,
        /// Print one JSON object on stdout instead of text (progress stays on stderr).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum PodCmd {
    /// The agent container's entrypoint: at every start of the container, write the
    /// enforced openclaw.json from the agent's ConfigMap into $HOME/.openclaw and seed the
    /// workspace files the home lacks (SOUL.md, ...), then exec the agent's command. A
    /// restart in place runs it again, so the fleet's settings always win over the volume's.
    ///
    /// Example: clawkeep pod run --config /etc/clawkeep/agent -- /opt/openclaw/node/bin/node ...
    Run {
        /// The agent's ConfigMap, mounted (openclaw.json and the workspace seeds).
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// File holding the agent's OpenClaw gateway token (its token Secret, mounted into
        /// this container only): the agent gets it as OPENCLAW_GATEWAY_TOKEN.
        #[arg(long, value_name = "FILE")]
        token: Option<PathBuf>,
        /// The agent's secrets Secret, mounted: each file becomes an environment variable of
        /// its name (`secrets_as = "env"`; otherwise the agent reads them at /run/secrets).
        #[arg(long, value_name = "DIR")]
        env_secrets: Option<PathBuf>,
        /// The agent is granted shared collections, mounted at /knowledge/NAME: make
        /// $HOME/knowledge lead there (what is in the way is moved aside, never deleted).
        #[arg(long)]
        knowledge: bool,
        /// The agent's command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The agent's model endpoint in its pod: listens on the pod's loopback, as on a node
    /// (127.0.0.1:11434, Ollama's and OpenAI's APIs), and passes each request to the
    /// cluster's `clawkeep gateway` with the agent's credential added (an Authorization
    /// header the agent sends is dropped), the answer back as it streams. The credential is
    /// mounted into the shim's container only.
    ///
    /// Example: clawkeep pod shim --gateway http://10.96.0.20:11434 --credential /run/clawkeep/credential
    Shim {
        /// The gateway's base URL.
        #[arg(long, value_name = "URL")]
        gateway: String,
        /// File holding the agent's credential.
        #[arg(long, value_name = "FILE")]
        credential: PathBuf,
        /// Where the agent reaches it.
        #[arg(long, default_value = "127.0.0.1:11434")]
        listen: std::net::SocketAddr,
    },
    /// The agent's init container: pull its brain from its bucket into VOLUME/home before the
    /// agent starts (a new home is staged and renamed into place). If the store cannot be
    /// reached it exits 0 only when the volume holds the brain last agreed with the store and
    /// no one else holds its lease, as a node would start it; otherwise it fails and
    /// Kubernetes tries again.
    ///
    /// Example: clawkeep pod init --settings /etc/clawkeep/brain --key /run/clawkeep/store/key --volume /var/lib/clawkeep/brain
    Init {
        #[command(flatten)]
        brain: PodBrainArgs,
    },
    /// The agent's brain sidecar (a native sidecar, stopped after the agent): push each change
    /// to its bucket within seconds, and on SIGTERM make the last push and give the brain's
    /// lease back. Exits 1 if the last push did not finish.
    ///
    /// Example: clawkeep pod sync --settings /etc/clawkeep/brain --key /run/clawkeep/store/key --volume /var/lib/clawkeep/brain
    Sync {
        #[command(flatten)]
        brain: PodBrainArgs,
    },
    /// The agent container's startup and readiness probe: exits 0 when OpenClaw's /readyz
    /// answers with JSON that says `"ready": true` (any 200 page is not enough: OpenClaw's
    /// control UI answers every path), else prints why and exits 1.
    ///
    /// Example: clawkeep pod ready --url http://127.0.0.1:18789/readyz
    Ready {
        /// OpenClaw's readiness URL.
        #[arg(long, default_value = "http://127.0.0.1:18789/readyz")]
        url: String,
        /// How long to wait for the answer.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// Where the pod's brain pieces find their settings, key and volume.
#[derive(clap::Args)]
pub(crate) struct PodBrainArgs {
    /// The agent's brain ConfigMap, mounted (brain.json: endpoint, bucket, timing).
    #[arg(long, value_name = "DIR")]
    pub settings: PathBuf,
    /// File holding the agent's store key, ACCESS_KEY:SECRET_KEY (its store Secret).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The home volume's mount: the brain is VOLUME/home, the sync state beside it.
    #[arg(long, value_name = "DIR")]
    pub volume: PathBuf,
    /// Where the shared collections' volumes are mounted (DIR/NAME), when the agent is
    /// granted any.
    #[arg(long, value_name = "DIR")]
    pub knowledge: Option<PathBuf>,
}

/// What each agent runs as in the cluster.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RenderTarget {
    /// A StatefulSet of one pod.
    Statefulset,
    /// agent-sandbox's Sandbox and SandboxTemplate.
    AgentSandbox,
}

/// What `clawkeep render k8s` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RenderFormat {
    /// One YAML file per object and a kustomization.yaml (`kubectl apply -k DIR`).
    Manifests,
    /// A Helm chart (`helm install NAME DIR`).
    Helm,
}

#[derive(Subcommand)]
pub(crate) enum RenderCmd {
    /// The fleet as Kubernetes manifests: per team a namespace at the restricted Pod Security
    /// level with a quota, a limit range, a default-deny network policy and a read-only
    /// operator role; per agent a token-less service account, a StatefulSet of one pod (or
    /// agent-sandbox's Sandbox) with its brain's init step and sync sidecar, its model shim
    /// and its OpenClaw config, and a network policy that lets it reach only the model
    /// gateway, the store and its egress addresses; the model gateway and managed model
    /// servers in clawkeep-system; with [cluster] monitoring, a PodMonitor, alerts and the
    /// Grafana dashboard.
    ///
    /// What the cluster is comes from the fleet's [cluster] section, the flags over it. The
    /// fleet must pass `clawkeep check` except for what only a node has (its rootfs,
    /// installed runtime, programs, models and state dir: a cluster gets those from images
    /// and volumes). Egress entries must be IP addresses (a NetworkPolicy cannot name hosts)
    /// unless [cluster] network = "cilium". Writes one YAML file per object under
    /// OUT/<namespace>/ and OUT/kustomization.yaml (or a Helm chart), and prints the Secrets
    /// to make; the same fleet gives the same bytes (`kubectl apply -k OUT`).
    ///
    /// Example: clawkeep render k8s examples/lab/fleet.toml --out k8s/
    ///          clawkeep render k8s fleet.toml --out chart/ --format helm --image registry.lab/clawkeep@sha256:…
    K8s {
        /// The fleet file.
        fleet: PathBuf,
        /// Directory to write into (made if missing).
        #[arg(long)]
        out: PathBuf,
        /// What to write: plain manifests with a kustomization.yaml, or a Helm chart whose
        /// values.yaml is the fleet (with default values it renders the same bytes; only the
        /// images may be changed through values).
        #[arg(long, value_enum, default_value = "manifests")]
        format: RenderFormat,
        /// What each agent runs as: a StatefulSet, or kubernetes-sigs/agent-sandbox's Sandbox
        /// with a SandboxTemplate (its controller and CRDs installed; clawkeep keeps managing
        /// the network policies).
        #[arg(long, value_enum, default_value = "statefulset")]
        target: RenderTarget,
        /// The Kubernetes version the objects are for (the API structs are 1.37's).
        #[arg(long, default_value = "1.37", value_parser = ["1.37"])]
        kube_version: String,
        /// The image every clawkeep container runs (clawkeep and the agents' root
        /// filesystem), by digest: REGISTRY/NAME@sha256:<64 hex digits>. Default: [cluster]
        /// image.
        #[arg(long)]
        image: Option<String>,
        /// The OpenClaw runtime image (the `oci/` layout `clawkeep image build` writes,
        /// pushed), by digest, mounted read-only at /opt/openclaw as an image volume.
        /// Default: [cluster] runtime_image; without either the runtime must be in --image.
        #[arg(long, value_name = "IMAGE")]
        runtime_image: Option<String>,
        /// The knowledge store's S3 endpoint in the cluster, http://ADDRESS:PORT (needed
        /// when the fleet has [store]). Default: [cluster] store.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// Run every pod in a user namespace (`hostUsers: false`; Kubernetes 1.33+ with a
        /// runtime that supports it), as agents run on a clawkeep node.
        #[arg(long)]
        user_namespaces: bool,
        /// The pods' RuntimeClass (for example gVisor's or Kata's).
        #[arg(long, value_name = "NAME")]
        runtime_class: Option<String>,
        /// Run agent containers under clawkeep's own seccomp filter as a Localhost profile at
        /// PATH under the kubelet's seccomp directory; the profile is written to
        /// OUT/nodes/seccomp/PATH for the nodes. Default: [cluster] seccomp_profile.
        #[arg(long, value_name = "PATH")]
        seccomp_profile: Option<String>,
        /// The namespace Prometheus runs in: also render a PodMonitor and a PrometheusRule
        /// (the Prometheus operator's CRDs must be installed) and the Grafana dashboard, and
        /// let Prometheus scrape the gateway. Default: [cluster] monitoring.
        #[arg(long, value_name = "NAMESPACE")]
        monitoring: Option<String>,
        /// The model gateway's Service address, an unused one in the cluster's Service range
        /// (needed when the fleet has [models]): each agent's shim reaches it without DNS.
        /// Default: [cluster] gateway_ip.
        #[arg(long, value_name = "IP")]
        gateway_ip: Option<std::net::IpAddr>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ImageCmd {
    /// Put the pinned inputs of an image into a new bundle directory (image-bundle.json).
    ///
    /// Copies each input under its role's folder (kernel/, rootfs/, runtime/, clawkeep/,
    /// stage1/, models/, backends/) and pins it by sha256 and size; the runtime bundle is checked
    /// against its own bundle.json first and pinned by its id. Copy the directory to the build
    /// machine as it is. Prints the bundle directory.
    ///
    /// Example: clawkeep image prepare --kernel linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb --base-rootfs base.tar --runtime runtime-bundle/ --out bundle/
    Prepare {
        /// The kernel package, named as `apt-get download` names it (NAME_VERSION_ARCH.deb).
        #[arg(long, value_name = "DEB")]
        kernel: PathBuf,
        /// The base root filesystem tarball (plain, gzip, xz or zstd).
        #[arg(long, value_name = "TAR")]
        base_rootfs: PathBuf,
        /// The agent runtime bundle (`clawkeep runtime prepare`).
        #[arg(long, value_name = "DIR")]
        runtime: PathBuf,
        /// The clawkeep binary the node runs (default: this one, with its version).
        #[arg(long, value_name = "PATH")]
        clawkeep: Option<PathBuf>,
        /// The stage-1 init, the initramfs's /init: a static binary (default: clawkeep-stage1
        /// beside this clawkeep). Build it with `cargo build --release -p clawkeep-stage1
        /// --target x86_64-unknown-linux-musl`.
        #[arg(long, value_name = "PATH")]
        stage1: Option<PathBuf>,
        /// A model blob (repeatable).
        #[arg(long, value_name = "FILE")]
        model: Vec<PathBuf>,
        /// A backend binary (repeatable).
        #[arg(long, value_name = "FILE")]
        backend: Vec<PathBuf>,
        /// Hard-link inputs instead of copying them (same filesystem only).
        #[arg(long)]
        link: bool,
        /// The bundle directory to write (new or empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Build a node image from an image bundle and a fleet, reproducibly and without network.
    ///
    /// Checks the fleet like `clawkeep check` (a bad fleet builds nothing) and re-hashes every
    /// input of the bundle (a changed file is named with the expected and the actual sha256).
    /// Then writes into --out: the agent runtime as an OCI image layout (oci/), the node's
    /// disk (node.raw, GPT with one ext4 root; node.qcow2), vmlinuz and vmlinux, the stage-1
    /// initramfs.img (/init is clawkeep-stage1), sbom.spdx.json, image.json and
    /// clawkeep.lock. The root filesystem is the bundle's base rootfs with clawkeep as
    /// /sbin/init, the fleet file and the files it names (souls, workspace files, a relative
    /// rootfs tree; at their paths relative to it) under /etc/clawkeep/, and the agent runtime
    /// installed under /var/lib/clawkeep/runtimes/; the fleet is checked again inside it, as
    /// the node will read it. The same bundle, fleet and epoch give the same bytes. Boot it
    /// with root=PARTUUID=<image.json's root_partuuid> rw.
    /// Needs root (the root filesystem keeps the base tarball's owners), mke2fs >= 1.47.1,
    /// qemu-img and depmod (scripts/install-image-tools).
    ///
    /// Example: clawkeep image build examples/lab/fleet.toml --bundle bundle/ --out out/
    Build {
        /// The fleet file the node runs.
        fleet: PathBuf,
        /// The image bundle (image-bundle.json and the inputs it pins).
        #[arg(long, value_name = "DIR")]
        bundle: PathBuf,
        /// The output directory (new or empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace an earlier build's outputs in --out (anything else there is refused).
        #[arg(long)]
        force: bool,
        /// Every time in the outputs, in seconds since 1970.
        #[arg(
            long,
            value_name = "SECONDS",
            env = "SOURCE_DATE_EPOCH",
            default_value_t = 0
        )]
        epoch: u64,
        /// mke2fs >= 1.47.1 (default: the one scripts/install-image-tools caches, else /usr/sbin/mke2fs).
        #[arg(long, value_name = "PATH", env = "CLAWKEEP_MKE2FS")]
        mke2fs: Option<PathBuf>,
        /// qemu-img (default: /usr/bin/qemu-img).
        #[arg(long, value_name = "PATH", env = "CLAWKEEP_QEMU_IMG")]
        qemu_img: Option<PathBuf>,
        /// depmod (default: /usr/sbin/depmod).
        #[arg(long, value_name = "PATH", env = "CLAWKEEP_DEPMOD")]
        depmod: Option<PathBuf>,
        /// Print one JSON object on stdout instead of text (progress stays on stderr).
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every output of a build against its clawkeep.lock.
    ///
    /// Names each changed, missing or unlisted file with the expected and the actual sha256;
    /// exits 1 when anything differs.
    ///
    /// Example: clawkeep image verify out/
    Verify {
        /// The build's output directory.
        out: PathBuf,
        /// Print {"out", "ok", "outputs", "problem"} instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What an image holds: versions (clawkeep, OpenClaw, Node, kernel), the fleet's agents,
    /// every input and output digest, and the size of each output.
    ///
    /// Example: clawkeep image inspect out/ --json | jq .info.agents
    Inspect {
        /// The build's output directory.
        out: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenCmd {
    /// Print the agent's gateway token (only the token, on stdout).
    ///
    /// Example: clawkeep token show research
    Show {
        /// Agent name.
        agent: String,
    },
    /// Write a new gateway token, restart the agent so it takes it, print the new token.
    ///
    /// An agent that is stopped is not started: it takes the new token at its next start.
    /// Whoever held the old token is locked out once the agent is back.
    ///
    /// Example: clawkeep token rotate research
    Rotate {
        /// Agent name.
        agent: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum StoreCmd {
    /// Copy every brain and shared collection, with its history, to another S3 store.
    ///
    /// Every brain is pushed first; then each bucket is copied through this node (contents
    /// checked against their hashes). The URL's path, if any, is the new bucket prefix. An
    /// interrupted migration resumes when run again. Afterwards point [store] at the new
    /// endpoint and credentials, and restart (clawkeep down, clawkeep up).
    ///
    /// Example: clawkeep store migrate --to http://10.0.0.5:9000/knowledge --credentials /etc/clawkeep/new-store.key
    Migrate {
        /// The target store, e.g. http://10.0.0.5:9000/knowledge.
        #[arg(long)]
        to: String,
        /// File with the target's access_key:secret_key (0600).
        #[arg(long)]
        credentials: PathBuf,
        /// The target's region.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Print {"buckets": [{"from", "to", "objects", "bytes", "skipped"}]} instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum SecretsCmd {
    /// Set a secret of an agent; the value is read from stdin (one trailing newline dropped).
    ///
    /// On a terminal the value is read without echo. It takes effect when the agent next
    /// starts (clawkeep restart AGENT).
    ///
    /// Example: printf %s "$TOKEN" | clawkeep secrets set customer matrix_token
    Set {
        /// Agent name.
        agent: String,
        /// Secret name: letters, digits and '_' (a file under /run/secrets, or a variable).
        name: String,
    },
    /// List the names of the secrets that are set (never their values).
    ///
    /// Example: clawkeep secrets list customer --json
    List {
        /// Only this agent's.
        agent: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret of an agent.
    ///
    /// Example: clawkeep secrets rm customer matrix_token
    Rm {
        /// Agent name.
        agent: String,
        /// Secret name.
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum SyncCmd {
    /// Per brain and collection: last push, pending changes, lag, errors; and store health.
    ///
    /// Example: clawkeep sync status --json | jq '.rows[] | select(.pending > 0)'
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Push now (an agent, or shared:COLLECTION); waits for the pass and prints its report.
    ///
    /// Example: clawkeep sync push research
    /// Example: clawkeep sync push research --allow-deletes   (after `sync status` showed held deletions)
    Push {
        /// Agent name, or shared:COLLECTION.
        name: String,
        /// Also make deletions a pass holds back because they would remove a large share of
        /// the brain (the files stay in the store's history either way).
        #[arg(long)]
        allow_deletes: bool,
        /// Print the pass's report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pull now, including files put in the bucket by other tools.
    ///
    /// Example: clawkeep sync pull shared:docs
    Pull {
        /// Agent name, or shared:COLLECTION.
        name: String,
        /// Print the pass's report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The newest pushes of a brain or shared:COLLECTION, with the time `restore --at` takes
    /// for each (the history's own timeline, which never goes back even when a clock did).
    ///
    /// Example: clawkeep sync history research -n 5
    History {
        /// Agent name, or shared:COLLECTION.
        name: String,
        /// How many of the newest pushes.
        #[arg(short = 'n', long, default_value_t = 20)]
        last: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sync an agent's brain from this node from now on, taking its lease from the supervisor
    /// that holds it (use when that node is gone, or after stopping the agent there); starts
    /// the agent here if it was refused.
    ///
    /// Example: clawkeep sync takeover research
    Takeover {
        /// Agent name.
        name: String,
    },
}
