//! Unit tests of the engine through a scripted launcher: no root, no processes, paused time.

mod order;
mod restart;
mod scripted;
mod upgrade;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::process::{Command, Process};
use super::reaper::Reaper;
use super::start::Paths;
use super::status::ProcessRow;
use super::Engine;
use clawkeep_sandbox::launch::Host;
use scripted::ScriptedLauncher;

/// A running engine on a fleet of its own, its runs scripted.
struct Fixture {
    engine: Engine,
    fake: ScriptedLauncher,
    // Last: the engine's logs live in it.
    _dir: tempfile::TempDir,
}

/// A scratch directory with a state dir and an agents' rootfs holding `/bin/agent`.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("create rootfs/bin");
    std::fs::write(bin.join("agent"), b"").expect("write rootfs/bin/agent");
    dir
}

/// The fleet file's head for `dir`: its state dir and rootfs, a cgroup no real run uses,
/// and `runtime` (more `[runtime]` lines).
fn head(dir: &Path, runtime: &str) -> String {
    format!(
        "[node]\nstate_dir = \"{}\"\ncgroup = \"clawkeep-engine-unit-tests\"\n\n[runtime]\nrootfs = \"{}\"\n{runtime}\n",
        dir.join("state").display(),
        dir.join("rootfs").display()
    )
}

/// Start an engine in `dir` on a fleet of `runtime` (more `[runtime]` lines) and `body`, its
/// runs following `fake`.
async fn start_in(
    dir: tempfile::TempDir,
    runtime: &str,
    body: &str,
    fake: ScriptedLauncher,
) -> Fixture {
    let text = format!("{}\n{body}", head(dir.path(), runtime));
    let fleet = crate::fleet::parse("fleet.toml", &text, dir.path())
        .unwrap_or_else(|d| panic!("the test's fleet is invalid: {d}\n{text}"));
    for a in &fleet.agents {
        // What the real launcher prepares before the first start: the agent's home.
        let home = dir.path().join("state/agents").join(&a.name).join("home");
        std::fs::create_dir_all(&home).expect("create the agent's home");
    }
    let paths = Paths {
        state_dir: fleet.node.state_dir.clone(),
    };
    let engine = Engine::start_with(
        fleet,
        paths,
        Host::default(),
        Reaper::default(),
        Arc::new(fake.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("the engine did not start: {e}"));
    Fixture {
        engine,
        fake,
        _dir: dir,
    }
}

/// Start an engine on a fleet of `body` (agents run `/bin/agent`).
async fn start(body: &str, fake: ScriptedLauncher) -> Fixture {
    start_in(scratch(), "", body, fake).await
}

impl Fixture {
    fn process(&self, name: &str) -> &Arc<Process> {
        self.engine
            .shared
            .process(name)
            .unwrap_or_else(|| panic!("no process {name:?} in the test's fleet"))
    }

    /// What `clawkeep ps` shows of `name`.
    fn row(&self, name: &str) -> ProcessRow {
        self.process(name).row()
    }

    /// The supervisor's events in `name`'s log (what `clawkeep logs` shows), one per line.
    fn log(&self, name: &str) -> String {
        let bytes = self
            .process(name)
            .logs
            .tail(1000)
            .unwrap_or_else(|e| panic!("read the log of {name}: {e}"));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Wait (in the test's paused time) until `what` holds of `name`'s row; fail after `within`.
    async fn until(
        &self,
        name: &str,
        within: Duration,
        what: &str,
        ok: impl Fn(&ProcessRow) -> bool,
    ) -> ProcessRow {
        let deadline = Instant::now() + within;
        loop {
            let row = self.row(name);
            if ok(&row) {
                return row;
            }
            if Instant::now() > deadline {
                panic!("{name} is not {what} within {within:?}: {row:#?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Send an operator's command to `name` and wait for its answer.
    async fn command(
        &self,
        name: &str,
        make: fn(oneshot::Sender<Result<(), String>>) -> Command,
    ) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.process(name)
            .commands
            .send(make(tx))
            .await
            .expect("the process task is running");
        rx.await.expect("the process task answers")
    }
}

/// Seconds, for scripts and assertions.
fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Milliseconds, for scripts and assertions.
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Gaps between consecutive instants.
fn gaps(at: &[Duration]) -> Vec<Duration> {
    at.windows(2).map(|w| w[1] - w[0]).collect()
}
