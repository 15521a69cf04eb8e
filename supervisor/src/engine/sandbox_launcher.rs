//! The real [`Launcher`]: agents in sandboxes, services in cgroups, with sockets served into them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::launcher::{BoxFuture, Finished, Launched, Launcher, RunControl};
use super::logs::LogSink;
use super::process::{Def, Process};
use super::start;
use super::Shared;
use clawkeep_sandbox::cgroup::ProcCgroup;
use clawkeep_sandbox::status::{parse_report, Report};

/// Where agents reach the model gateway inside their sandbox (Ollama's usual address).
pub const MODEL_PORT: u16 = 11434;

/// Starts each run for real, through [`super::start`] and the reaper.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxLauncher;

impl Launcher for SandboxLauncher {
    fn launch<'a>(
        &'a self,
        shared: &'a Arc<Shared>,
        me: &'a Arc<Process>,
    ) -> BoxFuture<'a, Result<Launched, String>> {
        Box::pin(launch(shared, me))
    }

    fn request<'a>(
        &'a self,
        me: &'a Process,
        port: u16,
        req: hyper::Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> BoxFuture<'a, Result<(hyper::StatusCode, Bytes), String>> {
        Box::pin(super::sandbox_http::send(me, port, req, timeout, max_body))
    }

    fn kill_leftovers<'a>(
        &'a self,
        shared: &'a Arc<Shared>,
        me: &'a Process,
    ) -> BoxFuture<'a, Result<usize, String>> {
        let path = start::cgroup_path(&shared.fleet, me.def.name());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || start::clear_leftovers(&path))
                .await
                .map_err(|e| format!("leftover task failed: {e}"))?
                .map_err(|e| e.to_string())
        })
    }

    fn clean_up<'a>(&'a self, shared: &'a Shared) -> BoxFuture<'a, ()> {
        let parent = shared.fleet.node.cgroup.clone();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(cg) = ProcCgroup::new(&parent) {
                    if let Err(e) = cg.destroy() {
                        tracing::warn!("{e}");
                    }
                }
            })
            .await;
        })
    }
}

/// One run of a real process.
struct RealRun {
    /// Sockets served inside the agent's sandbox while it runs (model gateway, egress proxy).
    sockets: Vec<tokio::task::JoinHandle<()>>,
    pid: Pid,
    /// Who SIGTERM goes to: a service's whole process group, or a sandbox's init (which
    /// forwards it to the agent's group itself).
    term: Pid,
    cgroup: Option<Arc<ProcCgroup>>,
    reports: Option<tokio::task::JoinHandle<Vec<Report>>>,
}

impl RunControl for RealRun {
    fn terminate(&mut self) {
        let _ = kill(self.term, Signal::SIGTERM);
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        let (cg, pid) = (self.cgroup.clone(), self.pid);
        Box::pin(async move {
            let _ = kill(pid, Signal::SIGKILL);
            if let Some(cg) = cg {
                let _ =
                    tokio::task::spawn_blocking(move || cg.kill_all(Duration::from_secs(5))).await;
            }
        })
    }

    fn finish<'a>(&'a mut self, me: &'a Process) -> BoxFuture<'a, Finished> {
        Box::pin(async move {
            for s in self.sockets.drain(..) {
                s.abort();
            }
            let reports = match self.reports.take() {
                Some(h) => tokio::time::timeout(Duration::from_secs(2), h)
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let mut oom = false;
            if let Some(cg) = self.cgroup.take() {
                oom = cg.oom_kills() > 0;
                let cg2 = cg.clone();
                let cleaned = tokio::task::spawn_blocking(move || {
                    cg2.kill_all(Duration::from_secs(5))?;
                    cg2.destroy()
                })
                .await;
                if let Ok(Err(e)) = cleaned {
                    me.logs.event(&format!("cgroup cleanup: {e}"));
                    tracing::warn!(process = me.def.name(), "cgroup cleanup: {e}");
                }
            }
            Finished { reports, oom }
        })
    }
}

/// Prepare the sandbox (or the service), open the sockets it is served, and let it run.
async fn launch(shared: &Arc<Shared>, me: &Arc<Process>) -> Result<Launched, String> {
    let sh = shared.clone();
    let def = me.def.clone();
    let runtime = me.runtime(&shared.fleet);
    let prepared = tokio::task::spawn_blocking(move || match &def {
        Def::Agent(a) => start::agent(&sh.fleet, a, &sh.paths, &sh.host, runtime.as_ref()),
        Def::Service(s) => {
            start::service(&sh.fleet, s, &sh.paths, &sh.host).map_err(start::StartError::from)
        }
    })
    .await
    .map_err(|e| format!("start task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    if prepared.killed_leftovers > 0 {
        me.logs.event(&format!(
            "killed {} leftover processes of a previous supervisor in this cgroup",
            prepared.killed_leftovers
        ));
    }
    let exited = shared.reaper.watch(prepared.starting.pid());
    pump_log(me.logs.clone(), prepared.log);
    let starting = prepared.starting;
    // The agent's model socket exists before the agent does, so its first request finds it.
    let gateway = match (&me.def, &shared.gateway) {
        (Def::Agent(a), Some(gw)) => match gateway_socket(shared, starting.pid()).await {
            Ok(listener) => Some(tokio::spawn(
                gw.clone().serve(listener, Arc::new(a.gateway_caller())),
            )),
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || starting.abort()).await;
                return Err(format!(
                    "cannot open the model gateway socket 127.0.0.1:{MODEL_PORT} in the sandbox: {e}"
                ));
            }
        },
        _ => None,
    };
    let mut sockets: Vec<tokio::task::JoinHandle<()>> = gateway.into_iter().collect();
    if let Def::Agent(a) = &me.def {
        if !a.egress.is_empty() {
            match netns_listener(shared, starting.pid(), super::egress::EGRESS_PORT).await {
                Ok(l) => sockets.push(tokio::spawn(super::egress::serve(
                    l,
                    a.egress.clone(),
                    me.logs.clone(),
                ))),
                Err(e) => {
                    sockets.iter().for_each(|s| s.abort());
                    let _ = tokio::task::spawn_blocking(move || starting.abort()).await;
                    return Err(format!(
                        "cannot open the egress proxy 127.0.0.1:{} in the sandbox: {e}",
                        super::egress::EGRESS_PORT
                    ));
                }
            }
        }
    }
    let started = tokio::task::spawn_blocking(move || starting.start())
        .await
        .map_err(|e| format!("start task failed: {e}"))?
        .map_err(|e| {
            sockets.iter().for_each(|s| s.abort());
            e.to_string()
        })?;
    let reports = started.status.map(|fd| tokio::spawn(read_reports(fd)));
    let cgroup = started.cgroup.map(Arc::new);
    let sandboxed = match &me.def {
        Def::Agent(_) => true,
        Def::Service(s) => s.sandbox.is_some(),
    };
    let mut netns = None;
    if sandboxed {
        match clawkeep_sandbox::netns::open(&shared.host.proc_root, started.pid.as_raw()) {
            Ok(ns) => netns = Some(Arc::new(ns)),
            Err(e) => tracing::warn!(
                process = me.def.name(),
                "cannot open its network namespace: {e}"
            ),
        }
    }
    // A host service leads its own session: SIGTERM goes to the whole group. A sandbox's
    // init forwards it to its own.
    let term = if sandboxed {
        started.pid
    } else {
        Pid::from_raw(-started.pid.as_raw())
    };
    Ok(Launched {
        pid: started.pid,
        exited,
        cgroup: cgroup.clone(),
        netns,
        control: Box::new(RealRun {
            sockets,
            pid: started.pid,
            term,
            cgroup,
            reports,
        }),
    })
}

/// Bring up lo in the paused sandbox's network namespace and listen on 127.0.0.1:11434
/// there; the supervisor serves it, so whoever connects is that agent.
async fn gateway_socket(shared: &Shared, pid: Pid) -> std::io::Result<tokio::net::TcpListener> {
    netns_listener(shared, pid, MODEL_PORT).await
}

/// Listen on 127.0.0.1:`port` inside the paused sandbox's network namespace (bringing up lo).
async fn netns_listener(
    shared: &Shared,
    pid: Pid,
    port: u16,
) -> std::io::Result<tokio::net::TcpListener> {
    let ns = clawkeep_sandbox::netns::open(&shared.host.proc_root, pid.as_raw())?;
    let std_listener = tokio::task::spawn_blocking(move || {
        clawkeep_sandbox::netns::within(&ns, move || {
            clawkeep_sandbox::sys::loopback_up().map_err(std::io::Error::from)?;
            let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
    })
    .await
    .map_err(std::io::Error::other)??;
    tokio::net::TcpListener::from_std(std_listener)
}

/// Copy the process's output into its log until every writer is gone.
fn pump_log(sink: Arc<LogSink>, fd: std::os::fd::OwnedFd) {
    tokio::spawn(async move {
        let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
            return;
        };
        let mut buf = vec![0u8; 16 * 1024];
        // The agent's bytes reach the log as safe text that cannot pass for an event.
        let mut text = super::log_text::OutputFilter::default();
        loop {
            let (chunk, ended) = match rx.read(&mut buf).await {
                Ok(0) | Err(_) => (text.finish(), true),
                Ok(n) => (text.filter(&buf[..n]), false),
            };
            if !chunk.is_empty() {
                if let Err(e) = sink.append(&chunk) {
                    tracing::warn!("{e}");
                }
            }
            if ended {
                break;
            }
        }
    });
}

/// Collect the sandbox init's status lines until it exits.
async fn read_reports(fd: std::os::fd::OwnedFd) -> Vec<Report> {
    let Ok(rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return Vec::new();
    };
    let mut lines = BufReader::new(rx).lines();
    let mut out = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(r) = parse_report(&line) {
            out.push(r);
        }
    }
    out
}
