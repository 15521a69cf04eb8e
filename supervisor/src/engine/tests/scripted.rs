//! A fake [`Launcher`] whose runs follow a script: no process, no sandbox, no root.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::engine::launcher::{BoxFuture, Finished, Launched, Launcher, RunControl};
use crate::engine::process::Process;
use crate::engine::Shared;

/// How one run behaves.
#[derive(Debug, Clone)]
pub struct Script {
    /// The start fails with this message.
    fails: Option<String>,
    /// It exits by itself with this code after this long; else it runs until stopped.
    exit: Option<(i32, Duration)>,
    /// Its `/readyz` says ready this long after the start; never when None.
    ready_after: Option<Duration>,
    /// It ignores SIGTERM, so a stop has to kill it.
    deaf: bool,
}

impl Script {
    /// Runs until stopped, ready at once.
    pub fn runs() -> Self {
        Self {
            fails: None,
            exit: None,
            ready_after: Some(Duration::ZERO),
            deaf: false,
        }
    }

    /// Exits with `code` after `after`.
    pub fn exits(code: i32, after: Duration) -> Self {
        Self {
            exit: Some((code, after)),
            ..Self::runs()
        }
    }

    /// Cannot be started: the launcher says `why`.
    pub fn fails_to_start(why: &str) -> Self {
        Self {
            fails: Some(why.to_string()),
            ..Self::runs()
        }
    }

    /// Runs, but its `/readyz` never says ready.
    pub fn never_ready(self) -> Self {
        Self {
            ready_after: None,
            ..self
        }
    }

    /// Ignores SIGTERM.
    pub fn deaf(self) -> Self {
        Self { deaf: true, ..self }
    }
}

/// What the script is asked for: which process, its how-manieth start, on which runtime.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The process.
    pub name: String,
    /// 1 for its first start, 2 for the next...
    pub run: u32,
    /// The OpenClaw version its runtime has, if the fleet pins one.
    pub openclaw: Option<String>,
}

/// Something the launcher was asked to do, and when (since the launcher was made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Time since the launcher was made.
    pub at: Duration,
    /// The process.
    pub name: String,
    /// What happened to it.
    pub what: What,
}

/// Kinds of [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A run started (with the OpenClaw version it runs, if any).
    Started(Option<String>),
    /// A start failed.
    Failed,
    /// It was sent SIGTERM.
    Terminated,
    /// It was killed after the grace period.
    Killed,
    /// It exited by itself.
    Exited(i32),
    /// Everything stopped; the launcher cleaned up.
    CleanedUp,
}

type Rule = dyn Fn(&Attempt) -> Script + Send + Sync;

/// The live run of a process, for `/readyz`.
struct Live {
    started: Instant,
    script: Script,
}

#[derive(Default)]
struct State {
    events: Vec<Event>,
    runs: HashMap<String, u32>,
    live: HashMap<String, Live>,
}

/// A [`Launcher`] that starts nothing: each run does what `rule` says.
#[derive(Clone)]
pub struct ScriptedLauncher {
    rule: Arc<Rule>,
    t0: Instant,
    state: Arc<Mutex<State>>,
}

/// Fake pids lie above the kernel's largest (2^22), so none can name a real process.
const FIRST_PID: i32 = 1 << 23;

impl ScriptedLauncher {
    /// A launcher whose every run follows `rule`.
    pub fn new(rule: impl Fn(&Attempt) -> Script + Send + Sync + 'static) -> Self {
        Self {
            rule: Arc::new(rule),
            t0: Instant::now(),
            state: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, name: &str, what: What) {
        let at = self.t0.elapsed();
        self.lock().events.push(Event {
            at,
            name: name.to_string(),
            what,
        });
    }

    /// Everything that happened so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Names of the processes started, in start order.
    pub fn starts(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| matches!(e.what, What::Started(_)))
            .map(|e| e.name)
            .collect()
    }

    /// When each start attempt of `name` (successful or not) happened.
    pub fn attempts_of(&self, name: &str) -> Vec<Duration> {
        self.events()
            .into_iter()
            .filter(|e| e.name == name && matches!(e.what, What::Started(_) | What::Failed))
            .map(|e| e.at)
            .collect()
    }

    /// The OpenClaw version of each run of `name`, in order.
    pub fn runtimes_of(&self, name: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.name == name)
            .filter_map(|e| match e.what {
                What::Started(v) => Some(v.unwrap_or_default()),
                _ => None,
            })
            .collect()
    }

    /// Names of the processes sent SIGTERM, in order.
    pub fn terminated(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.what == What::Terminated)
            .map(|e| e.name)
            .collect()
    }
}

impl Launcher for ScriptedLauncher {
    fn launch<'a>(
        &'a self,
        shared: &'a Arc<Shared>,
        me: &'a Arc<Process>,
    ) -> BoxFuture<'a, Result<Launched, String>> {
        let name = me.def.name().to_string();
        let openclaw = me.runtime(&shared.fleet).map(|r| r.openclaw);
        let run = {
            let mut st = self.lock();
            let n = st.runs.entry(name.clone()).or_default();
            *n += 1;
            *n
        };
        let script = (self.rule)(&Attempt {
            name: name.clone(),
            run,
            openclaw: openclaw.clone(),
        });
        let me = self.clone();
        Box::pin(async move {
            if let Some(why) = script.fails {
                me.note(&name, What::Failed);
                return Err(why);
            }
            let pid = Pid::from_raw(FIRST_PID + me.lock().events.len() as i32);
            let (tx, exited) = oneshot::channel();
            let tx = Arc::new(Mutex::new(Some(tx)));
            let timer = script.exit.map(|(code, after)| {
                let (me, name, tx) = (me.clone(), name.clone(), tx.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    me.note(&name, What::Exited(code));
                    me.lock().live.remove(&name);
                    send(&tx, WaitStatus::Exited(pid, code));
                })
            });
            me.lock().live.insert(
                name.clone(),
                Live {
                    started: Instant::now(),
                    script: script.clone(),
                },
            );
            me.note(&name, What::Started(openclaw));
            Ok(Launched {
                pid,
                exited,
                cgroup: None,
                netns: None,
                control: Box::new(ScriptedRun {
                    launcher: me,
                    name,
                    pid,
                    deaf: script.deaf,
                    tx,
                    timer,
                }),
            })
        })
    }

    fn request<'a>(
        &'a self,
        me: &'a Process,
        _port: u16,
        req: hyper::Request<Full<Bytes>>,
        _timeout: Duration,
        _max_body: usize,
    ) -> BoxFuture<'a, Result<(hyper::StatusCode, Bytes), String>> {
        let ready = self.lock().live.get(me.def.name()).map(|l| {
            l.script
                .ready_after
                .is_some_and(|d| l.started.elapsed() >= d)
        });
        let path = req.uri().path().to_string();
        Box::pin(async move {
            let ready = ready.ok_or("the agent is not running")?;
            let (status, body) = match (path.as_str(), ready) {
                ("/readyz", true) => (200, r#"{"ready":true,"failing":[]}"#),
                ("/readyz", false) => (503, r#"{"ready":false,"failing":["gateway"]}"#),
                ("/v1/chat/completions", true) => {
                    (200, r#"{"choices":[{"message":{"content":"yes"}}]}"#)
                }
                ("/v1/chat/completions", false) => (503, "not ready"),
                _ => (404, "not found"),
            };
            let status = hyper::StatusCode::from_u16(status).map_err(|e| e.to_string())?;
            Ok((status, Bytes::from_static(body.as_bytes())))
        })
    }

    fn clean_up<'a>(&'a self, _shared: &'a Shared) -> BoxFuture<'a, ()> {
        self.note("", What::CleanedUp);
        Box::pin(async {})
    }
}

fn send(tx: &Mutex<Option<oneshot::Sender<WaitStatus>>>, st: WaitStatus) {
    if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = tx.send(st);
    }
}

/// One scripted run.
struct ScriptedRun {
    launcher: ScriptedLauncher,
    name: String,
    pid: Pid,
    deaf: bool,
    tx: Arc<Mutex<Option<oneshot::Sender<WaitStatus>>>>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl ScriptedRun {
    fn end(&mut self, sig: Signal) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        self.launcher.lock().live.remove(&self.name);
        send(&self.tx, WaitStatus::Signaled(self.pid, sig, false));
    }
}

impl RunControl for ScriptedRun {
    fn terminate(&mut self) {
        self.launcher.note(&self.name, What::Terminated);
        if !self.deaf {
            self.end(Signal::SIGTERM);
        }
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        self.launcher.note(&self.name, What::Killed);
        self.end(Signal::SIGKILL);
        Box::pin(async {})
    }

    fn finish<'a>(&'a mut self, _me: &'a Process) -> BoxFuture<'a, Finished> {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        Box::pin(async { Finished::default() })
    }
}
