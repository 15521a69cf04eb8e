//! `clawkeep`: run a fleet of sandboxed OpenClaw agents on one node.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use supervisor::api::client::Client;
use supervisor::sandbox::launch::INIT_SUBCOMMAND;

mod cli;

use cli::args::*;
use cli::tables::*;

/// Default state dir when neither the fleet file, --state-dir nor CLAWKEEP_STATE_DIR says.
const DEFAULT_STATE_DIR: &str = "/var/lib/clawkeep";

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

/// A client of the supervisor whose state dir is `--state-dir` (or the default).
fn client(cli_dir: Option<PathBuf>) -> Result<Client> {
    Ok(Client::new(&state_dir(cli_dir))?)
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
            let client = client(cli.state_dir)?;
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
            let client = client(cli.state_dir)?;
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
            let client = client(cli.state_dir)?;
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
                print!("{}", spend_table(&report, by));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sync { command } => {
            let client = client(cli.state_dir)?;
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
            let client = client(cli.state_dir)?;
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
            let client = client(cli.state_dir)?;
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
            let client = client(cli.state_dir)?;
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
            let client = client(cli.state_dir)?;
            let report = client_runtime()?.block_on(client.rollback())?;
            print_upgrade(&report, json)
        }
        Cmd::Clone { from, to } => {
            let client = client(cli.state_dir)?;
            let reply = client_runtime()?.block_on(client.clone_brain(&from, &to))?;
            println!("{}", reply["message"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore { agent, at, dry_run } => {
            let client = client(cli.state_dir)?;
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
            let client = client(cli.state_dir)?;
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
        // Handled in main before logging starts (it is measured against runc).
        Cmd::Run { bundle } => Ok(run_bundle(&bundle)),
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
                print!("{}", secrets_table(&names));
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
    let client = client(dir)?;
    let row = client_runtime()?.block_on(client.action(name, what))?;
    println!("{}: {}", row.name, row.state.as_str());
    Ok(ExitCode::SUCCESS)
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
