//! One supervised process: its lifecycle task (start, watch, restart with backoff, stop) and
//! the status `clawkeep ps` shows.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
// The engine's clock is tokio's, so its unit tests can run with time paused.
use tokio::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::{Decision, Tracker};
use super::launcher::RunControl;
use super::logs::LogSink;
use super::status::{Health, Kind, LastExit, ProcessRow, State};
use super::Shared;
use crate::fleet::{Agent, Restart, Service};
use clawkeep_sandbox::cgroup::{ProcCgroup, Usage};
use clawkeep_sandbox::status::{ExitReason, Report};

/// What a process is, from the fleet file.
#[derive(Debug, Clone)]
// One per supervised process, made once at start: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Def {
    /// An agent in its sandbox.
    Agent(Agent),
    /// A host service.
    Service(Service),
}

impl Def {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Def::Agent(a) => &a.name,
            Def::Service(s) => &s.name,
        }
    }
    fn kind(&self) -> Kind {
        match self {
            Def::Agent(_) => Kind::Agent,
            Def::Service(_) => Kind::Service,
        }
    }
    fn restart(&self) -> &Restart {
        match self {
            Def::Agent(a) => &a.restart,
            Def::Service(s) => &s.restart,
        }
    }
    fn stop_grace(&self) -> Duration {
        match self {
            Def::Agent(a) => a.stop_grace,
            Def::Service(s) => s.stop_grace,
        }
    }
    /// Names it waits for before starting.
    pub fn depends_on(&self) -> &[String] {
        match self {
            Def::Agent(a) => &a.depends_on,
            Def::Service(s) => &s.depends_on,
        }
    }
}

pub use super::sandbox_launcher::MODEL_PORT;

/// A request from the control API.
#[derive(Debug)]
pub enum Command {
    /// Start if not running; answer once running (or failed).
    Start(oneshot::Sender<Result<(), String>>),
    /// Stop and keep stopped; answer once stopped.
    Stop(oneshot::Sender<Result<(), String>>),
    /// Stop if running, start again now; answer once running (or failed).
    Restart(oneshot::Sender<Result<(), String>>),
    /// Stop for good (supervisor shutdown); answer once stopped.
    Shutdown(oneshot::Sender<()>),
}

/// Live status of one process.
#[derive(Debug, Clone)]
pub struct Status {
    /// Lifecycle state.
    pub state: State,
    /// Host pid while running.
    pub pid: Option<Pid>,
    /// Restarts so far.
    pub restarts: u32,
    /// Last exit.
    pub last_exit: Option<LastExit>,
    /// When the current run started.
    pub started_at: Option<Instant>,
    /// Health-check result.
    pub health: Option<Health>,
    /// Human-readable note.
    pub message: Option<String>,
    /// Latest cgroup usage.
    pub usage: Option<Usage>,
    /// CPU % over the last sample interval.
    pub cpu_percent: Option<f64>,
    last_sample: Option<(Instant, u64)>,
}

/// A supervised process as the engine and the API see it.
pub struct Process {
    /// Its definition.
    pub def: Def,
    /// Its log.
    pub logs: Arc<LogSink>,
    status: Mutex<Status>,
    cgroup: Mutex<Option<Arc<ProcCgroup>>>,
    netns: Mutex<Option<Arc<std::os::fd::OwnedFd>>>,
    /// True while running (and healthy, if it has a health check): dependents wait for it.
    pub ready: watch::Sender<bool>,
    /// True once the first start attempt is over (agents start after every service's).
    pub attempted: watch::Sender<bool>,
    /// Requests to the lifecycle task.
    pub commands: mpsc::Sender<Command>,
    /// The OpenClaw runtime this agent runs when it is not the fleet's pin (during and after
    /// an upgrade); read at each start.
    runtime: Mutex<Option<crate::fleet::runtime::OpenclawRuntime>>,
}

impl Process {
    /// A process and the receiving end of its command channel.
    pub fn new(def: Def, logs: Arc<LogSink>) -> (Arc<Self>, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(16);
        let health = match &def {
            Def::Service(s) if s.health.is_some() => Some(Health::Starting),
            _ => None,
        };
        let p = Arc::new(Self {
            def,
            logs,
            status: Mutex::new(Status {
                state: State::Waiting,
                pid: None,
                restarts: 0,
                last_exit: None,
                started_at: None,
                health,
                message: None,
                usage: None,
                cpu_percent: None,
                last_sample: None,
            }),
            cgroup: Mutex::new(None),
            netns: Mutex::new(None),
            ready: watch::Sender::new(false),
            attempted: watch::Sender::new(false),
            commands: tx,
            runtime: Mutex::new(None),
        });
        (p, rx)
    }

    /// The OpenClaw runtime this agent's next start mounts: an upgrade's choice, else the
    /// fleet's pin.
    pub fn runtime(
        &self,
        fleet: &crate::fleet::Fleet,
    ) -> Option<crate::fleet::runtime::OpenclawRuntime> {
        let own = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        own.or_else(|| fleet.openclaw.clone())
    }

    /// Make the next start mount `rt` (None: the fleet's pin again).
    pub fn set_runtime(&self, rt: Option<crate::fleet::runtime::OpenclawRuntime>) {
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = rt;
    }

    /// Lock the status (a panic elsewhere cannot leave it half-written: fields are replaced
    /// whole).
    pub fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_cgroup(&self, cg: Option<Arc<ProcCgroup>>) {
        *self.cgroup.lock().unwrap_or_else(|p| p.into_inner()) = cg;
    }

    /// The network namespace of the running sandbox (agents only).
    pub fn netns(&self) -> Option<Arc<std::os::fd::OwnedFd>> {
        self.netns.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_netns(&self, ns: Option<Arc<std::os::fd::OwnedFd>>) {
        *self.netns.lock().unwrap_or_else(|p| p.into_inner()) = ns;
    }

    fn set_state(&self, state: State, message: Option<String>) {
        let mut st = self.status();
        st.state = state;
        st.message = message;
        drop(st);
        self.update_ready();
    }

    /// Record a health-check result.
    pub fn set_health(&self, h: Health) {
        self.status().health = Some(h);
        self.update_ready();
    }

    fn update_ready(&self) {
        let st = self.status();
        let ready = st.state == State::Running && st.health.is_none_or(|h| h == Health::Healthy);
        drop(st);
        self.ready
            .send_if_modified(|r| std::mem::replace(r, ready) != ready);
    }

    /// Sample cgroup usage and update the CPU percentage.
    pub fn sample(&self) {
        let cg = self
            .cgroup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(cg) = cg else { return };
        let usage = cg.usage();
        let now = Instant::now();
        let mut st = self.status();
        if let Some((t, ns)) = st.last_sample {
            let dt = now.duration_since(t).as_nanos() as f64;
            if dt > 0.0 {
                st.cpu_percent = Some(usage.cpu_ns.saturating_sub(ns) as f64 * 100.0 / dt);
            }
        }
        st.last_sample = Some((now, usage.cpu_ns));
        st.usage = Some(usage);
    }

    /// Refresh the usage counters (CPU time, memory) without touching the CPU % sampling,
    /// so `clawkeep ps` shows current numbers.
    pub fn refresh(&self) {
        let cg = self
            .cgroup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(cg) = cg {
            let usage = cg.usage();
            self.status().usage = Some(usage);
        }
    }

    /// The `clawkeep ps` row.
    pub fn row(&self) -> ProcessRow {
        let st = self.status();
        let running = st.pid.is_some();
        let usage = st.usage.filter(|_| running);
        ProcessRow {
            name: self.def.name().to_string(),
            kind: self.def.kind(),
            team: match &self.def {
                Def::Agent(a) => a.team.clone(),
                Def::Service(_) => None,
            },
            state: st.state,
            pid: st.pid.map(|p| p.as_raw()),
            restarts: st.restarts,
            last_exit: st.last_exit.clone(),
            cpu_percent: st.cpu_percent.filter(|_| running),
            cpu_ns: usage.map_or(0, |u| u.cpu_ns),
            memory_bytes: usage.map(|u| u.memory),
            memory_limit: match &self.def {
                Def::Agent(a) => Some(a.resources.memory),
                Def::Service(_) => None,
            },
            oom_kills: usage.map_or(0, |u| u.oom_kills),
            uptime_secs: st
                .started_at
                .filter(|_| running)
                .map(|t| t.elapsed().as_secs()),
            health: st.health,
            message: st.message.clone(),
            url: None,
            model: None,
            tokens_today: None,
            runtime: None,
        }
    }
}

/// One run in progress.
struct Run {
    started: Instant,
    exited: oneshot::Receiver<WaitStatus>,
    control: Box<dyn RunControl>,
}

/// How a run ended.
struct Ended {
    reason: ExitReason,
    detail: Option<String>,
    ran: Duration,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// What the lifecycle loop does next.
enum Next {
    /// Start (again) now.
    Go,
    /// Stay down until the operator starts it.
    Idle,
    /// The supervisor is shutting down: end the task.
    Exit,
}

/// Lifecycle bookkeeping across runs.
struct Life {
    tracker: Tracker,
    /// Answer owed to a start/restart request, sent once the start succeeds or fails.
    ack: Option<oneshot::Sender<Result<(), String>>>,
}

impl Life {
    fn answer(&mut self, r: Result<(), String>) {
        if let Some(a) = self.ack.take() {
            let _ = a.send(r);
        }
    }
}

/// The lifecycle task of one process; ends at [`Command::Shutdown`].
pub async fn run(shared: Arc<Shared>, me: Arc<Process>, mut commands: mpsc::Receiver<Command>) {
    let mut life = Life {
        tracker: Tracker::new(me.def.restart().clone()),
        ack: None,
    };
    let mut next = Next::Go;
    loop {
        if let Next::Idle = next {
            me.ready.send_replace(false);
            match commands.recv().await {
                Some(Command::Start(a)) | Some(Command::Restart(a)) => {
                    life.tracker.reset();
                    life.ack = Some(a);
                }
                Some(Command::Stop(a)) => {
                    let _ = a.send(Ok(()));
                    continue;
                }
                Some(Command::Shutdown(a)) => {
                    let _ = a.send(());
                    return;
                }
                None => return,
            }
        }
        if let Next::Exit = next {
            return;
        }
        match wait_dependencies(&shared, &me, &mut commands).await {
            Next::Go => {}
            other => {
                next = other;
                continue;
            }
        }
        me.set_state(State::Starting, None);
        let started = start_run(&shared, &me).await;
        me.attempted.send_replace(true);
        let run = match started {
            Ok(run) => {
                life.answer(Ok(()));
                run
            }
            Err(msg) => {
                me.logs.event(&format!("failed to start: {msg}"));
                tracing::error!(process = me.def.name(), "failed to start: {msg}");
                me.status().last_exit = Some(LastExit {
                    reason: ExitReason::StartFailed,
                    at: now_rfc3339(),
                    detail: Some(msg.clone()),
                });
                life.answer(Err(msg));
                next = after_exit(
                    &me,
                    &mut life,
                    ExitReason::StartFailed,
                    Duration::ZERO,
                    &mut commands,
                )
                .await;
                continue;
            }
        };
        next = watch_run(&me, run, &mut commands, &mut life).await;
        // Stopped by the operator: its brain goes up a last time.
        if let (Next::Idle, Def::Agent(a), Some(brains)) = (&next, &me.def, &shared.brains) {
            brains.after_stop(&a.name).await;
        }
    }
}

/// Wait until every dependency is ready (and, for an agent, every service has had its first
/// start attempt), answering commands meanwhile.
async fn wait_dependencies(
    shared: &Shared,
    me: &Process,
    commands: &mut mpsc::Receiver<Command>,
) -> Next {
    loop {
        let mut missing: Vec<&str> = me
            .def
            .depends_on()
            .iter()
            .filter(|d| shared.process(d).is_some_and(|p| !*p.ready.borrow()))
            .map(|d| d.as_str())
            .collect();
        if let Def::Agent(_) = me.def {
            missing.extend(
                shared
                    .processes
                    .iter()
                    .filter(|p| matches!(p.def, Def::Service(_)) && !*p.attempted.borrow())
                    .map(|p| p.def.name()),
            );
        }
        let mut seen = std::collections::HashSet::new();
        missing.retain(|n| seen.insert(*n));
        if missing.is_empty() {
            return Next::Go;
        }
        me.set_state(
            State::Waiting,
            Some(format!("waiting for {}", missing.join(", "))),
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            cmd = commands.recv() => match cmd {
                Some(Command::Start(a)) | Some(Command::Restart(a)) => {
                    let _ = a.send(Err(format!("{} is waiting for {}", me.def.name(), missing.join(", "))));
                }
                Some(Command::Stop(a)) => {
                    me.set_state(State::Stopped, None);
                    let _ = a.send(Ok(()));
                    return Next::Idle;
                }
                Some(Command::Shutdown(a)) => {
                    me.set_state(State::Stopped, None);
                    let _ = a.send(());
                    return Next::Exit;
                }
                None => return Next::Exit,
            }
        }
    }
}

/// Prepare, launch and register one run.
async fn start_run(shared: &Arc<Shared>, me: &Arc<Process>) -> Result<Run, String> {
    let killed = shared.launcher.kill_leftovers(shared, me).await?;
    if killed > 0 {
        me.logs.event(&format!(
            "killed {killed} leftover processes of a previous supervisor in this cgroup"
        ));
    }
    if let (Def::Agent(a), Some(brains)) = (&me.def, &shared.brains) {
        me.set_state(State::Starting, Some("pulling its brain".into()));
        let (logs, name) = (me.logs.clone(), a.name.clone());
        let notes: clawkeep_store::follow::Notes = Arc::new(move |n| {
            logs.event(&crate::brains::note_text(&name, &n));
        });
        brains
            .before_start(a, super::start::host_id(&shared.fleet, a), Some(notes))
            .await?;
    }
    let launched = shared.launcher.launch(shared, me).await?;
    me.set_cgroup(launched.cgroup);
    me.set_netns(launched.netns);
    let now = Instant::now();
    {
        let mut st = me.status();
        st.pid = Some(launched.pid);
        st.started_at = Some(now);
        st.last_sample = None;
        st.cpu_percent = None;
        st.usage = None;
        if st.health.is_some() {
            st.health = Some(Health::Starting);
        }
    }
    me.set_state(State::Running, None);
    me.logs.event(&format!("started, pid {}", launched.pid));
    Ok(Run {
        started: now,
        exited: launched.exited,
        control: launched.control,
    })
}

/// Watch a running process until it exits or a command ends the run.
async fn watch_run(
    me: &Arc<Process>,
    mut run: Run,
    commands: &mut mpsc::Receiver<Command>,
    life: &mut Life,
) -> Next {
    loop {
        tokio::select! {
            st = &mut run.exited => {
                let ended = conclude(me, &mut run, st.ok()).await;
                record_exit(me, &ended, None);
                return after_exit(me, life, ended.reason, ended.ran, commands).await;
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Start(a)) => {
                    let _ = a.send(Ok(()));
                }
                Some(Command::Stop(a)) => {
                    let ended = stop(me, &mut run).await;
                    record_exit(me, &ended, Some("stopped by the operator"));
                    me.set_state(State::Stopped, None);
                    let _ = a.send(Ok(()));
                    return Next::Idle;
                }
                Some(Command::Restart(a)) => {
                    let ended = stop(me, &mut run).await;
                    record_exit(me, &ended, Some("restarted by the operator"));
                    me.status().restarts += 1;
                    life.tracker.reset();
                    life.ack = Some(a);
                    return Next::Go;
                }
                Some(Command::Shutdown(a)) => {
                    let ended = stop(me, &mut run).await;
                    record_exit(me, &ended, Some("stopped at shutdown"));
                    me.set_state(State::Stopped, None);
                    let _ = a.send(());
                    return Next::Exit;
                }
                None => {
                    let _ = stop(me, &mut run).await;
                    return Next::Exit;
                }
            }
        }
    }
}

/// Stop a run: SIGTERM, the grace period, then kill everything in its cgroup.
async fn stop(me: &Arc<Process>, run: &mut Run) -> Ended {
    me.set_state(State::Stopping, None);
    let grace = me.def.stop_grace();
    me.logs.event(&format!(
        "stopping (SIGTERM, then kill after {})",
        humantime::format_duration(grace)
    ));
    run.control.terminate();
    let st = match tokio::time::timeout(grace, &mut run.exited).await {
        Ok(st) => st.ok(),
        Err(_) => {
            me.logs
                .event("still running after the grace period: killing its cgroup");
            run.control.kill().await;
            tokio::time::timeout(Duration::from_secs(10), &mut run.exited)
                .await
                .ok()
                .and_then(|r| r.ok())
        }
    };
    conclude(me, run, st).await
}

/// Work out how a run ended, and clean up its cgroup.
async fn conclude(me: &Arc<Process>, run: &mut Run, st: Option<WaitStatus>) -> Ended {
    let ran = run.started.elapsed();
    let finished = run.control.finish(me).await;
    let mut detail = None;
    let mut reason = None;
    for r in finished.reports {
        match r {
            Report::Exit(e) => reason = Some(e),
            Report::Error(msg) => {
                reason = Some(ExitReason::StartFailed);
                detail = Some(msg);
            }
            Report::Started(_) => {}
        }
    }
    let reason = reason.unwrap_or(match st {
        Some(WaitStatus::Exited(_, code)) => ExitReason::Code(code),
        Some(WaitStatus::Signaled(_, sig, _)) => ExitReason::Signal(sig as i32),
        _ => ExitReason::Signal(Signal::SIGKILL as i32),
    });
    me.set_cgroup(None);
    me.set_netns(None);
    let reason = if finished.oom && reason.is_failure() && reason != ExitReason::StartFailed {
        ExitReason::Oom
    } else {
        reason
    };
    {
        let mut st = me.status();
        st.pid = None;
    }
    Ended {
        reason,
        detail,
        ran,
    }
}

fn record_exit(me: &Process, e: &Ended, why: Option<&str>) {
    let detail = match (&e.detail, why) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(w)) => Some(w.to_string()),
        (None, None) => None,
    };
    let text = match &detail {
        Some(d) => format!("exited: {} ({d})", e.reason),
        None => format!("exited: {}", e.reason),
    };
    me.logs.event(&text);
    tracing::info!(process = me.def.name(), "{text}");
    me.status().last_exit = Some(LastExit {
        reason: e.reason,
        at: now_rfc3339(),
        detail,
    });
}

/// Apply the restart policy after an exit: stay down, back off, or hold in crash-loop.
async fn after_exit(
    me: &Arc<Process>,
    life: &mut Life,
    reason: ExitReason,
    ran: Duration,
    commands: &mut mpsc::Receiver<Command>,
) -> Next {
    let (state, delay, note) = match life.tracker.on_exit(reason, ran, Instant::now().into_std()) {
        Decision::Stay => {
            me.set_state(State::Exited, None);
            return Next::Idle;
        }
        Decision::Backoff(d) => (State::Backoff, d, "restarting in"),
        Decision::CrashLoop(d) => {
            let r = me.def.restart();
            me.logs.event(&format!(
                "crash loop: {} restarts within {}; holding for {}",
                r.crash_failures,
                humantime::format_duration(r.crash_window),
                humantime::format_duration(d)
            ));
            (State::CrashLoop, d, "crash loop; next try in")
        }
    };
    let until = Instant::now() + delay;
    me.set_state(
        state,
        Some(format!(
            "{note} {}",
            humantime::format_duration(round_secs(delay))
        )),
    );
    tokio::select! {
        _ = tokio::time::sleep_until(until) => {
            me.status().restarts += 1;
            Next::Go
        }
        cmd = commands.recv() => match cmd {
            Some(Command::Start(a)) | Some(Command::Restart(a)) => {
                life.tracker.reset();
                life.ack = Some(a);
                me.status().restarts += 1;
                Next::Go
            }
            Some(Command::Stop(a)) => {
                me.set_state(State::Stopped, None);
                let _ = a.send(Ok(()));
                Next::Idle
            }
            Some(Command::Shutdown(a)) => {
                me.set_state(State::Stopped, None);
                let _ = a.send(());
                Next::Exit
            }
            None => Next::Exit,
        }
    }
}

/// Durations shown to people: whole seconds from one second up.
fn round_secs(d: Duration) -> Duration {
    if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.as_millis() as u64)
    }
}
