//! `clawkeep`: run a fleet of sandboxed OpenClaw agents on one node.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use supervisor::api::client::Client;
use supervisor::api::types::{ProcessRow, PsReply};
use supervisor::sandbox::launch::INIT_SUBCOMMAND;

/// Default state dir when neither the fleet file, --state-dir nor CLAWKEEP_STATE_DIR says.
const DEFAULT_STATE_DIR: &str = "/var/lib/clawkeep";

/// Run a fleet of sandboxed AI agents on hardware you own, with nothing leaving the node.
///
/// One fleet file describes the node, its agents and its services. `clawkeep up` runs them:
/// each agent in its own sandbox (namespaces, cgroup limits, read-only runtime, no
/// capabilities, seccomp, only loopback), restarted when it crashes. The other commands talk
/// to the running supervisor through the Unix socket in its state dir.
///
/// Start with: clawkeep check fleet.toml && clawkeep up fleet.toml
#[derive(Parser)]
#[command(name = "clawkeep", version, propagate_version = true)]
struct Cli {
    /// State dir of the supervisor to talk to (for `up`: overrides [node] state_dir).
    #[arg(long, global = true, env = "CLAWKEEP_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate a fleet file and report every problem at once.
    ///
    /// Prints each problem as `file:line:col: what is wrong (hint)`. Exits 0 when the file is
    /// good, 2 when it has errors. Nothing is started.
    ///
    /// Example: clawkeep check examples/lab/fleet.toml
    Check {
        /// The fleet file.
        fleet: PathBuf,
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
    /// Shut the running supervisor down in order (agents, then services) and wait for it.
    ///
    /// Example: clawkeep down
    Down {
        /// Give up waiting after this long (the shutdown itself goes on).
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Show tokens spent per agent, team or model, from the gateway's ledger.
    ///
    /// Reads STATE_DIR/ledger directly, so it works while the supervisor is down too. ERRORS
    /// counts requests that did not complete (refused, upstream failures, streams the agent
    /// cut; those are billed for what was produced).
    ///
    /// Example: clawkeep spend --by team --since 7d
    Spend {
        /// Group rows by agent, team or model.
        #[arg(long, value_enum, default_value = "agent")]
        by: supervisor::spend::By,
        /// How far back to count, e.g. 1h, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    /// restore. Times are UTC unless they carry a zone.
    ///
    /// Example: clawkeep restore research --at 2026-11-20T10:00 --dry-run
    Restore {
        /// Agent name.
        agent: String,
        /// The moment to go back to (the newest push at or before it is used).
        #[arg(long)]
        at: String,
        /// Only list what would change.
        #[arg(long)]
        dry_run: bool,
    },
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
    /// The sandbox init (started by clawkeep itself inside each sandbox).
    #[command(name = "__sandbox-init", hide = true)]
    SandboxInit {
        /// Bundle directory.
        bundle: PathBuf,
    },
}

#[derive(Subcommand)]
enum RuntimeCmd {
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
    },
}

#[derive(Subcommand)]
enum ImageCmd {
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
enum TokenCmd {
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
enum StoreCmd {
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
    },
}

#[derive(Subcommand)]
enum SecretsCmd {
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
enum SyncCmd {
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
    },
    /// Pull now, including files put in the bucket by other tools.
    ///
    /// Example: clawkeep sync pull shared:docs
    Pull {
        /// Agent name, or shared:COLLECTION.
        name: String,
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

/// Where the appliance image keeps its fleet file: what PID 1 runs when the kernel starts
/// clawkeep as /sbin/init without arguments (CLAWKEEP_FLEET, e.g. from the kernel command
/// line, names another).
const BOOT_FLEET: &str = "/etc/clawkeep/fleet.toml";

/// The command line, or `clawkeep up FLEET` when clawkeep is PID 1 and was given none.
fn boot_args() -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() > 1 || std::process::id() != 1 {
        return args;
    }
    let fleet = std::env::var_os("CLAWKEEP_FLEET").unwrap_or_else(|| BOOT_FLEET.into());
    // The kernel starts init with HOME and TERM only: programs the fleet names without a
    // path (garage, llama-server) are looked up in the usual PATH. Still one thread here.
    if std::env::var_os("PATH").is_none() {
        #[allow(clippy::disallowed_methods)] // PID 1 before any thread: the one place.
        std::env::set_var(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    let me = args.into_iter().next().unwrap_or_else(|| "clawkeep".into());
    vec![me, "up".into(), fleet]
}

fn main() -> ExitCode {
    // The sandbox init: checked before clap, since every sandbox start pays for this path.
    // Single-threaded on purpose (the init forks): no runtime, no logging setup.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(INIT_SUBCOMMAND)) {
        let bundle = PathBuf::from(args.next().unwrap_or_default());
        let (status, config, secrets) = supervisor::sandbox::init::launcher_fds();
        let _ = nix::sys::prctl::set_name(c"clawkeep-init");
        return ExitCode::from(
            supervisor::sandbox::init::run(&bundle, status, config, secrets) as u8,
        );
    }
    let cli = Cli::parse_from(boot_args());
    if let Cmd::Run { bundle } = &cli.command {
        // No logging setup either: `run` is measured against runc.
        return run_bundle(bundle);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLAWKEEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,notify=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clawkeep: {e:#}");
            ExitCode::FAILURE
        }
    };
    if std::process::id() == 1 {
        // PID 1 must not return (the kernel panics): whatever stopped `up`, end the node.
        eprintln!("clawkeep: PID 1 is done; powering off");
        supervisor::pid1::power_off();
    }
    code
}

fn load_fleet(path: &Path) -> std::result::Result<supervisor::fleet::Fleet, ExitCode> {
    supervisor::fleet::load(path).map_err(|d| {
        eprint!("{d}");
        ExitCode::from(2)
    })
}

fn state_dir(cli_dir: Option<PathBuf>) -> PathBuf {
    cli_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the client runtime")
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Check { fleet } => Ok(match load_fleet(&fleet) {
            Ok(f) => {
                println!(
                    "{}: ok ({} agents, {} services)",
                    fleet.display(),
                    f.agents.len(),
                    f.services.len()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }),
        Cmd::Schema => {
            let schema = supervisor::fleet::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Up { fleet } => {
            let f = match load_fleet(&fleet) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let dir = cli.state_dir.unwrap_or_else(|| f.node.state_dir.clone());
            supervisor::up::run(f, dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ps { json } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let reply = client_runtime()?.block_on(client.ps())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else {
                print!("{}", ps_table(&reply));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Logs {
            name,
            follow,
            lines,
            events,
            json,
        } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let mut out = std::io::stdout();
            let mut partial: Vec<u8> = Vec::new();
            client_runtime()?.block_on(client.logs(&name, lines, follow, events, |chunk| {
                if !json {
                    let _ = out.write_all(chunk);
                    let _ = out.flush();
                    return;
                }
                partial.extend_from_slice(chunk);
                while let Some(i) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=i).collect();
                    let _ = writeln!(out, "{}", log_line_json(&line[..i]));
                }
                let _ = out.flush();
            }))?;
            if json && !partial.is_empty() {
                let _ = writeln!(out, "{}", log_line_json(&partial));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Stop { name } => action(cli.state_dir, &name, "stop"),
        Cmd::Start { name } => action(cli.state_dir, &name, "start"),
        Cmd::Restart { name } => action(cli.state_dir, &name, "restart"),
        Cmd::Down { timeout } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let rt = client_runtime()?;
            rt.block_on(client.shutdown())?;
            eprintln!("clawkeep: shutting down (agents, then services)...");
            let deadline = std::time::Instant::now() + timeout;
            while rt.block_on(client.alive()) {
                if std::time::Instant::now() > deadline {
                    anyhow::bail!(
                        "the supervisor is still shutting down after {}; `clawkeep ps` shows what it waits for",
                        humantime::format_duration(timeout)
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            eprintln!("clawkeep: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Spend { by, since, json } => {
            let dir = state_dir(cli.state_dir).join("ledger");
            let from = std::time::SystemTime::now() - since;
            let report = supervisor::spend::report(&dir, from, by)?;
            for t in &report.torn.first {
                eprintln!(
                    "clawkeep: skipped a torn or overlong ledger record at {}:{} (a crash mid-write; nothing else is affected)",
                    t.file.display(),
                    t.line
                );
            }
            if report.torn.count > report.torn.first.len() {
                eprintln!(
                    "clawkeep: ... and {} more such records",
                    report.torn.count - report.torn.first.len()
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", supervisor::spend::table(&report, by));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sync { command } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let rt = client_runtime()?;
            match command {
                SyncCmd::Status { json } => {
                    let st = rt.block_on(client.sync_status())?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&st)?);
                    } else {
                        print!("{}", sync_table(&st));
                    }
                    let behind = st
                        .rows
                        .iter()
                        .any(|r| r.last_error.is_some() || r.held.is_some());
                    Ok(if st.healthy && !behind {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    })
                }
                SyncCmd::Push { name, .. } | SyncCmd::Pull { name } if name.is_empty() => {
                    anyhow::bail!("name an agent or shared:COLLECTION")
                }
                SyncCmd::Push {
                    name,
                    allow_deletes,
                } => sync_pass(&rt, &client, &name, "push", allow_deletes),
                SyncCmd::Pull { name } => sync_pass(&rt, &client, &name, "pull", false),
                SyncCmd::History { name, last, json } => {
                    let rows = rt.block_on(client.sync_history(&name, last))?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    } else {
                        print!("{}", history_table(&rows));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                SyncCmd::Takeover { name } => {
                    let v = rt.block_on(client.sync_takeover(&name))?;
                    println!("{}", v["message"].as_str().unwrap_or_default());
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Cmd::Store {
            command:
                StoreCmd::Migrate {
                    to,
                    credentials,
                    region,
                },
        } => {
            let credentials = std::path::absolute(&credentials)
                .with_context(|| format!("{}", credentials.display()))?;
            let client = Client::new(&state_dir(cli.state_dir))?;
            eprintln!("clawkeep: pushing every brain, then copying each bucket to {to} ...");
            let copied = client_runtime()?.block_on(client.migrate(
                &to,
                &credentials.to_string_lossy(),
                &region,
            ))?;
            for c in &copied {
                println!(
                    "{} -> {}: {} objects, {} bytes ({} already there)",
                    c.from, c.to, c.objects, c.bytes, c.skipped
                );
            }
            println!("done: now set [store] endpoint and credentials to the new store and restart the fleet");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Audit { json } | Cmd::Doctor { json } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let rt = client_runtime()?;
            let report = if matches!(cli.command, Cmd::Doctor { .. }) {
                rt.block_on(client.doctor())?
            } else {
                rt.block_on(client.audit())?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if report.findings.is_empty() {
                println!("{} checks, no findings", report.checks.len());
            } else {
                for f in &report.findings {
                    println!(
                        "{} {:<6} {}: {} (fix: {})",
                        f.id, f.severity, f.subject, f.message, f.fix
                    );
                }
                println!(
                    "{} finding(s) from {} checks",
                    report.findings.len(),
                    report.checks.len()
                );
            }
            Ok(if report.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Upgrade {
            openclaw,
            node,
            canary,
            message,
            json,
        } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let req = supervisor::engine::upgrade::UpgradeRequest {
                openclaw,
                node,
                canary,
                message,
            };
            eprintln!(
                "clawkeep: upgrading one agent at a time (each must come up ready and answer)..."
            );
            let report = client_runtime()?.block_on(client.upgrade(&req))?;
            print_upgrade(&report, json)
        }
        Cmd::Rollback { json } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let report = client_runtime()?.block_on(client.rollback())?;
            print_upgrade(&report, json)
        }
        Cmd::Clone { from, to } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let reply = client_runtime()?.block_on(client.clone_brain(&from, &to))?;
            println!("{}", reply["message"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore { agent, at, dry_run } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let plan = client_runtime()?.block_on(client.restore(&agent, &at, dry_run))?;
            let verb = if dry_run { "would" } else { "did" };
            println!(
                "{agent}: back to the push of {} (snapshot {})",
                plan.time, plan.snapshot
            );
            for p in &plan.write {
                println!("  {verb} write   {p}");
            }
            for p in &plan.delete {
                println!("  {verb} remove  {p}");
            }
            println!("  {} files already as they were", plan.unchanged);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Secrets { command } => secrets(&state_dir(cli.state_dir), command),
        Cmd::Token { command } => {
            let client = Client::new(&state_dir(cli.state_dir))?;
            let rt = client_runtime()?;
            match command {
                TokenCmd::Show { agent } => {
                    println!("{}", rt.block_on(client.token(&agent))?.token)
                }
                TokenCmd::Rotate { agent } => {
                    let r = rt.block_on(client.rotate_token(&agent))?;
                    eprintln!(
                        "clawkeep: {agent}: new gateway token written; {}",
                        if r.restarted {
                            "the agent was restarted and uses it now"
                        } else {
                            "the agent is stopped and takes it at its next start"
                        }
                    );
                    println!("{}", r.token);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bundle { fleet, agent, out } => {
            let f = match load_fleet(&fleet) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let Some(a) = f.agents.iter().find(|a| a.name == agent) else {
                let names: Vec<&str> = f.agents.iter().map(|a| a.name.as_str()).collect();
                anyhow::bail!(
                    "no agent named {agent:?} in {} (agents: {})",
                    fleet.display(),
                    names.join(", ")
                );
            };
            let dir = cli.state_dir.unwrap_or_else(|| f.node.state_dir.clone());
            let paths = supervisor::engine::start::Paths { state_dir: dir };
            let plan = supervisor::engine::start::agent_plan(&f, a, &paths);
            supervisor::engine::start::write_agent_bundle(&f, a, &paths, None)?;
            let spec = supervisor::sandbox::bundle::spec(&plan)?;
            let path = supervisor::sandbox::bundle::write(&out, &spec)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { bundle } => {
            use supervisor::sandbox::status::ExitReason;
            Ok(
                match supervisor::sandbox::run::run_bundle(&bundle, &Default::default()) {
                    Ok(ExitReason::Code(c)) => ExitCode::from(c as u8),
                    Ok(ExitReason::Signal(s)) => ExitCode::from(128u8.wrapping_add(s as u8)),
                    Ok(ExitReason::Oom) => {
                        eprintln!(
                            "clawkeep: killed by the OOM killer (memory limit of the bundle)"
                        );
                        ExitCode::from(137)
                    }
                    Ok(ExitReason::StartFailed) => ExitCode::from(125),
                    Err(e) => {
                        eprintln!("clawkeep: {e}");
                        ExitCode::from(125)
                    }
                },
            )
        }
        Cmd::Runtime { command } => runtime_cmd(command),
        Cmd::Image { command } => image_cmd(command),
        Cmd::SandboxInit { .. } => Ok(ExitCode::FAILURE),
    }
}

/// An upgrade's or rollback's report: steps, then the outcome; exit 1 unless it is ok.
fn print_upgrade(r: &supervisor::engine::upgrade::UpgradeReport, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        for s in &r.steps {
            println!("  {s}");
        }
        match (&r.error, r.ok) {
            (None, true) if !r.upgraded.is_empty() => {
                println!("upgraded {} to {}", r.upgraded.join(", "), r.to)
            }
            (None, true) => println!("rolled back {} to {}", r.rolled_back.join(", "), r.to),
            (Some(e), _) => {
                println!("FAILED: {e}");
                if !r.rolled_back.is_empty() {
                    println!("rolled back: {}", r.rolled_back.join(", "));
                }
            }
            (None, false) => println!("FAILED"),
        }
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `clawkeep runtime prepare|install`: progress on stderr, the result on stdout.
fn runtime_cmd(command: RuntimeCmd) -> Result<ExitCode> {
    use clawkeep_image::runtime;
    let start = std::time::Instant::now();
    let mut progress = |line: &str| {
        eprintln!("clawkeep: [{:5.1}s] {line}", start.elapsed().as_secs_f64());
    };
    match command {
        RuntimeCmd::Prepare {
            openclaw,
            node,
            out,
        } => {
            let opts = runtime::PrepareOptions {
                openclaw,
                node,
                out: out.clone(),
            };
            let p = runtime::prepare(&opts, &mut progress)?;
            progress(&format!(
                "bundle of openclaw {} on node {}: {} files, {} MB",
                p.manifest.openclaw,
                p.manifest.node,
                p.manifest.files.len(),
                p.bytes / 1_000_000
            ));
            println!("{}", p.id);
        }
        RuntimeCmd::Install {
            bundle,
            dest,
            expect_id,
        } => {
            let opts = runtime::InstallOptions {
                bundle,
                dest,
                expect_id,
            };
            let r = runtime::install(&opts, &mut progress)?;
            if r.already {
                progress(&format!("already installed: {} (nothing to do)", r.id));
            } else {
                progress(&format!(
                    "installed openclaw {} on node {}",
                    r.manifest.openclaw, r.manifest.node
                ));
            }
            println!("{}", r.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `clawkeep image build|verify|inspect`: progress on stderr, results on stdout.
fn image_cmd(command: ImageCmd) -> Result<ExitCode> {
    use clawkeep_image::build;
    use supervisor::node_image;
    match command {
        ImageCmd::Prepare {
            kernel,
            base_rootfs,
            runtime,
            clawkeep,
            model,
            backend,
            link,
            out,
            stage1,
        } => {
            let stage1 = match stage1 {
                Some(p) => p,
                None => {
                    let exe = std::env::current_exe().context("locate this clawkeep binary")?;
                    let beside = exe.with_file_name("clawkeep-stage1");
                    anyhow::ensure!(
                        beside.is_file(),
                        "no stage-1 init given and none at {} (hint: build it with `cargo build --release -p clawkeep-stage1 --target x86_64-unknown-linux-musl` and pass --stage1 target/x86_64-unknown-linux-musl/release/clawkeep-stage1)",
                        beside.display()
                    );
                    beside
                }
            };
            let (clawkeep, clawkeep_version) = match clawkeep {
                Some(path) => (path, None),
                None => (
                    std::env::current_exe().context("locate this clawkeep binary")?,
                    Some(env!("CARGO_PKG_VERSION").to_string()),
                ),
            };
            let inputs = clawkeep_image::bundle::BundleInputs {
                kernel,
                base_rootfs,
                runtime,
                clawkeep,
                clawkeep_version,
                stage1,
                models: model,
                backends: backend,
            };
            let placement = if link {
                clawkeep_image::bundle::Placement::HardLink
            } else {
                clawkeep_image::bundle::Placement::Copy
            };
            let prepared = clawkeep_image::bundle::prepare(&inputs, &out, placement)?;
            eprintln!(
                "clawkeep: {} inputs pinned in {}",
                prepared.manifest.inputs.len(),
                out.join(clawkeep_image::bundle::MANIFEST).display()
            );
            println!("{}", prepared.dir.display());
        }
        ImageCmd::Build {
            fleet,
            bundle,
            out,
            force,
            epoch,
            mke2fs,
            qemu_img,
            depmod,
        } => {
            // `clawkeep check` here (a fleet with errors builds nothing), and again inside
            // the staged image, where the paths the fleet names are the node's.
            if let Err(code) = load_fleet(&fleet) {
                return Ok(code);
            }
            let fleet_path = std::path::absolute(&fleet).context("locate the fleet file")?;
            let (f, base) = match supervisor::fleet::load_file(&fleet) {
                Ok(f) => f,
                Err(d) => {
                    eprint!("{d}");
                    return Ok(ExitCode::from(2));
                }
            };
            let start = std::time::Instant::now();
            let mut progress = |line: &str| {
                eprintln!("clawkeep: [{:5.1}s] {line}", start.elapsed().as_secs_f64());
            };
            progress(&format!(
                "{}: ok ({} agents); building into {}",
                fleet.display(),
                f.agent.len(),
                out.display()
            ));
            let opts = build::BuildOptions {
                bundle,
                out,
                force,
                epoch,
                fleet: node_image::fleet_input(&f, &fleet_path, &base),
                tools: node_image::tools(mke2fs, qemu_img, depmod),
                check_fleet: Some(node_image::check_in_root),
            };
            let report = build::build(&opts, &mut progress)?;
            let size = |name: &str| {
                report
                    .lock
                    .outputs
                    .iter()
                    .find(|o| o.path == name)
                    .map_or(0, |o| o.size)
            };
            progress(&format!(
                "built: openclaw {} on node {}, kernel {}, {} agents; node.raw {}, node.qcow2 {}",
                report.info.openclaw,
                report.info.node,
                report.info.kernel_release,
                report.info.agents.len(),
                human_bytes(size(build::RAW)),
                human_bytes(size(build::QCOW2)),
            ));
            println!("{}", report.out.join(clawkeep_image::lock::LOCK).display());
        }
        ImageCmd::Verify { out } => {
            return Ok(match build::verify(&out) {
                Ok(lock) => {
                    println!(
                        "{}: ok ({} outputs match {})",
                        out.display(),
                        lock.outputs.len(),
                        clawkeep_image::lock::LOCK
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("clawkeep: {e}");
                    ExitCode::FAILURE
                }
            });
        }
        ImageCmd::Inspect { out, json } => {
            let image = build::inspect(&out)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&image)?);
            } else {
                print!("{}", node_image::describe(&image));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_bundle(bundle: &Path) -> ExitCode {
    use supervisor::sandbox::status::ExitReason;
    match supervisor::sandbox::run::run_bundle(bundle, &Default::default()) {
        Ok(ExitReason::Code(c)) => ExitCode::from(c as u8),
        Ok(ExitReason::Signal(s)) => ExitCode::from(128u8.wrapping_add(s as u8)),
        Ok(ExitReason::Oom) => {
            eprintln!("clawkeep: killed by the OOM killer (memory limit of the bundle)");
            ExitCode::from(137)
        }
        Ok(ExitReason::StartFailed) => ExitCode::from(125),
        Err(e) => {
            eprintln!("clawkeep: {e}");
            ExitCode::from(125)
        }
    }
}

/// `clawkeep secrets ...`.
fn secrets(state_dir: &Path, command: SecretsCmd) -> Result<ExitCode> {
    let store = supervisor::secrets::Store::new(state_dir);
    match command {
        SecretsCmd::Set { agent, name } => {
            let value = read_secret_value(&agent, &name)?;
            let replaced = store.set(&agent, &name, &value)?;
            drop(value);
            println!(
                "{agent}/{name}: {} (the agent gets it when it next starts: clawkeep restart {agent})",
                if replaced { "replaced" } else { "set" }
            );
            Ok(ExitCode::SUCCESS)
        }
        SecretsCmd::List { agent, json } => {
            let names = store.names(agent.as_deref())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "agents": names }))?
                );
            } else {
                println!("{:<24} SECRET", "AGENT");
                for (a, list) in &names {
                    for n in list {
                        println!("{a:<24} {n}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SecretsCmd::Rm { agent, name } => {
            if store.remove(&agent, &name)? {
                println!("{agent}/{name}: removed");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "clawkeep: {agent}/{name} is not set in {} (see clawkeep secrets list {agent})",
                    store.file_path().display()
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// A secret's value from stdin: without echo on a terminal, one trailing newline dropped.
fn read_secret_value(agent: &str, name: &str) -> Result<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::io::Read;
    let stdin = std::io::stdin();
    let mut value = String::new();
    match termios::tcgetattr(&stdin) {
        Ok(saved) => {
            eprint!("value of {agent}/{name} (not echoed): ");
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turn off echo")?;
            let read = stdin.read_line(&mut value);
            let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &saved);
            eprintln!();
            read.context("read the value from the terminal")?;
        }
        Err(_) => {
            stdin
                .lock()
                .read_to_string(&mut value)
                .context("read the value from stdin")?;
        }
    }
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

fn action(dir: Option<PathBuf>, name: &str, what: &str) -> Result<ExitCode> {
    let client = Client::new(&state_dir(dir))?;
    let row = client_runtime()?.block_on(client.action(name, what))?;
    println!("{}: {}", row.name, row.state.as_str());
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[i])
    }
}

fn human_secs(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn row_cells(r: &ProcessRow) -> Vec<String> {
    let dash = || "-".to_string();
    let kind = match r.kind {
        supervisor::api::types::Kind::Agent => "agent",
        supervisor::api::types::Kind::Service => "service",
    };
    let health = r.health.map(|h| format!("{h:?}").to_lowercase());
    let state = match (r.state.as_str(), health) {
        (s, Some(h)) if r.pid.is_some() => format!("{s} ({h})"),
        (s, _) => s.to_string(),
    };
    let mem = match (r.memory_bytes, r.memory_limit) {
        (Some(m), Some(l)) => format!("{}/{}", human_bytes(m), human_bytes(l)),
        (Some(m), None) => human_bytes(m),
        _ => dash(),
    };
    vec![
        r.name.clone(),
        kind.to_string(),
        state,
        r.pid.map_or_else(dash, |p| p.to_string()),
        r.restarts.to_string(),
        r.last_exit
            .as_ref()
            .map_or_else(dash, |e| e.reason.to_string()),
        r.cpu_percent.map_or_else(dash, |c| format!("{c:.1}")),
        mem,
        r.uptime_secs.map_or_else(dash, human_secs),
        r.url.clone().unwrap_or_else(dash),
        r.model.clone().unwrap_or_else(dash),
        r.tokens_today.map_or_else(dash, |t| t.to_string()),
        r.message.clone().unwrap_or_default(),
    ]
}

/// One log line as `logs --json` prints it: whose it is, and its text.
fn log_line_json(line: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(line);
    let source = if text.starts_with(supervisor::engine::log_text::EVENT_PREFIX) {
        "clawkeep"
    } else {
        "output"
    };
    serde_json::json!({ "source": source, "line": text })
}

fn ps_table(reply: &PsReply) -> String {
    let header: Vec<String> = [
        "NAME",
        "KIND",
        "STATE",
        "PID",
        "RESTARTS",
        "LAST EXIT",
        "CPU%",
        "MEMORY",
        "UPTIME",
        "URL",
        "MODEL",
        "TOKENS TODAY",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(reply.processes.iter().map(|p| {
            // Agent-controlled text (a model name, an exit message) is shown escaped.
            row_cells(p)
                .into_iter()
                .map(|c| supervisor::text::printable(&c).into_owned())
                .collect()
        }))
        .collect();
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn sync_pass(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    name: &str,
    action: &str,
    allow_deletes: bool,
) -> Result<ExitCode> {
    let r = rt.block_on(client.sync_pass(name, action, allow_deletes))?;
    println!(
        "{name}: {} uploaded ({} bytes), {} downloaded, {} deleted in the store, {} deleted here{}",
        r.uploaded,
        r.uploaded_bytes,
        r.downloaded,
        r.deleted_remote,
        r.deleted_local,
        r.snapshot
            .as_deref()
            .map(|s| format!(", snapshot {s}"))
            .unwrap_or_default()
    );
    for c in &r.conflicts {
        println!("  conflict, both kept: {c}");
    }
    for x in &r.refused {
        println!("  refused key: {x}");
    }
    for x in &r.skipped {
        println!("  not synced: {x}");
    }
    for t in &r.too_big {
        let (side, not) = match t.in_store {
            true => (" in the store", "not downloaded"),
            false => ("", "not uploaded"),
        };
        println!(
            "  larger than [store] max_file_size, {not} (nothing deleted): {} ({}{side})",
            t.path,
            clawkeep_store::report::size(t.size)
        );
    }
    if r.too_big_count > r.too_big.len() {
        println!(
            "  and {} more larger than [store] max_file_size",
            r.too_big_count - r.too_big.len()
        );
    }
    for x in &r.retry {
        println!("  changed meanwhile, goes up next pass: {x}");
    }
    for x in &r.failed {
        println!("  retried later: {x}");
    }
    if r.deferred_deletes > 0 {
        println!(
            "  {} deletions wait for the next pass (per-pass cap)",
            r.deferred_deletes
        );
    }
    if let Some(why) = &r.rebased {
        println!("  merged without deleting anything: {why}");
    }
    let kind = if name.starts_with("shared:") {
        "shared"
    } else {
        "agent"
    };
    let bare = name.trim_start_matches("shared:");
    let deleted = (!r.deleted.is_empty()).then(|| clawkeep_store::report::Deletions {
        at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        count: r.deleted_remote,
        paths: r.deleted.clone(),
        restore_at: r.restore_at.clone(),
    });
    for note in
        supervisor::brains::status_notes(kind, bare, r.held.as_ref(), deleted.as_ref(), None, None)
    {
        println!("  {note}");
    }
    Ok(if r.complete() && r.held.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn history_table(rows: &[clawkeep_store::history::Entry]) -> String {
    let mut out = format!(
        "{:<28} {:<28} {:<24} {:>6} {:>10}\n",
        "AT (for restore --at)", "TAKEN (writer's clock)", "ORIGIN", "FILES", "SIZE"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<28} {:<28} {:<24} {:>6} {:>10}\n",
            r.at,
            r.taken,
            supervisor::text::printable(&r.origin),
            r.files,
            clawkeep_store::report::size(r.bytes)
        ));
    }
    out
}

fn sync_table(st: &supervisor::brains::SyncStatus) -> String {
    let mut out = format!(
        "store {} {}{}\n",
        st.endpoint,
        if st.healthy {
            "healthy"
        } else {
            "NOT ANSWERING"
        },
        if st.grants_enforced {
            ""
        } else {
            " (grants NOT enforced by this store)"
        }
    );
    out.push_str(&format!(
        "{:<8} {:<20} {:<28} {:>7} {:>8} {:<20} {}\n",
        "KIND", "NAME", "BUCKET", "PENDING", "LAG", "LAST PUSH", "ERROR"
    ));
    for r in &st.rows {
        let lag = r
            .lag_seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "-".into());
        let kind = if r.read_only {
            format!("{} ro", r.kind)
        } else {
            r.kind.clone()
        };
        out.push_str(&format!(
            "{:<8} {:<20} {:<28} {:>7} {:>8} {:<20} {}\n",
            kind,
            r.name,
            r.bucket,
            r.pending,
            lag,
            r.last_push.as_deref().unwrap_or("never"),
            r.last_error.as_deref().unwrap_or("")
        ));
        for note in &r.notes {
            out.push_str(&format!("  {}: {note}\n", r.name));
        }
    }
    out
}
