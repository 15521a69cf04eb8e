//! Health checks: for services an HTTP GET on the host's loopback or a command, for agents
//! an HTTP GET on the agent's own loopback from inside its network namespace. They feed
//! `clawkeep ps` and the readiness dependents wait for; an agent that stays unhealthy is
//! restarted.

use std::sync::Arc;
use std::time::Duration;

// tokio's clock, so start periods follow paused time in the engine's unit tests.
use tokio::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use tokio::sync::oneshot;

use super::process::{Command, Def, Process};
use super::status::{Health as HealthState, State};
use super::Shared;
use crate::fleet::{Health, HealthProbe};
use clawkeep_sandbox::launch::{self, HostCommand};

/// Until the first success, check this often so dependents start promptly.
const EARLY_INTERVAL: Duration = Duration::from_millis(250);

/// Check `me` for as long as the supervisor runs.
pub async fn run(shared: Arc<Shared>, me: Arc<Process>, h: Health) {
    let client = match reqwest::Client::builder()
        .timeout(h.timeout)
        .no_proxy()
        // No idle connections: a server draining at shutdown must not wait for the probe.
        .pool_max_idle_per_host(0)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(process = me.def.name(), "health check client: {e}");
            return;
        }
    };
    loop {
        // Wait for a run to check.
        let started = loop {
            let running = {
                let st = me.status();
                match (st.state, st.started_at) {
                    (State::Running, Some(t)) => Some(t),
                    _ => None,
                }
            };
            if let Some(t) = running {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let grace_end = started + h.start_period;
        let mut failures = 0u32;
        let mut ever_healthy = false;
        loop {
            let same_run = {
                let st = me.status();
                st.started_at == Some(started) && st.state == State::Running
            };
            if !same_run {
                break;
            }
            let ok = probe(&shared, &me, &h, &client).await;
            if ok {
                failures = 0;
                ever_healthy = true;
                let was = me.status().health;
                if was != Some(HealthState::Healthy) {
                    me.logs.event("health check passes");
                }
                me.set_health(HealthState::Healthy);
            } else if Instant::now() >= grace_end {
                failures += 1;
                let was = me.status().health;
                if failures >= h.retries && was != Some(HealthState::Unhealthy) {
                    me.logs.event(&format!(
                        "unhealthy: {failures} health checks failed in a row"
                    ));
                    me.set_health(HealthState::Unhealthy);
                    if let Def::Agent(_) = me.def {
                        restart_unhealthy(&me).await;
                        break;
                    }
                }
            }
            let wait = if ever_healthy {
                h.interval
            } else {
                h.interval.min(EARLY_INTERVAL)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// An agent that stays unhealthy is restarted (its restart policy and backoff apply to the
/// next failures as usual).
async fn restart_unhealthy(me: &Arc<Process>) {
    me.logs.event("restarting: it stayed unhealthy");
    tracing::warn!(process = me.def.name(), "restarting an unhealthy agent");
    let (tx, rx) = oneshot::channel();
    if me.commands.send(Command::Restart(tx)).await.is_ok() {
        let _ = rx.await;
    }
}

/// The most of a health answer's body read; the rest is left unread.
pub const HEALTH_BODY_MAX: usize = crate::openclaw::ready::ANSWER_MAX;

/// GET `url` (on 127.0.0.1) from inside the agent's network namespace; 2xx/3xx is healthy,
/// except that OpenClaw's gateway's `/readyz` must also say `"ready": true` in its JSON.
async fn probe_in_sandbox(shared: &Shared, me: &Process, url: &str, timeout: Duration) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let (Some(port), path) = (u.port_or_known_default(), u.path().to_string()) else {
        return false;
    };
    let judged = matches!(&me.def, Def::Agent(a) if crate::openclaw::ready::runs_gateway(a))
        && crate::openclaw::ready::judged(&path);
    let Ok(req) = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .body(http_body_util::Full::<bytes::Bytes>::default())
    else {
        return false;
    };
    match shared
        .launcher
        .request(me, port, req, timeout, HEALTH_BODY_MAX)
        .await
    {
        Ok((status, body)) => healthy_answer(judged, status, &body),
        Err(_) => false,
    }
}

/// Whether an answer is healthy: 2xx/3xx, or for a `judged` OpenClaw `/readyz` a 2xx whose
/// JSON says it is ready.
fn healthy_answer(judged: bool, status: hyper::StatusCode, body: &[u8]) -> bool {
    if judged {
        status.is_success() && crate::openclaw::ready::verdict(body).is_ok()
    } else {
        status.is_success() || status.is_redirection()
    }
}

async fn probe(shared: &Arc<Shared>, me: &Process, h: &Health, client: &reqwest::Client) -> bool {
    match &h.probe {
        HealthProbe::Http(url) if matches!(me.def, Def::Agent(_)) => {
            probe_in_sandbox(shared, me, url, h.timeout).await
        }
        HealthProbe::Http(url) => client
            .get(url)
            .send()
            .await
            .map(|r| r.status().is_success() || r.status().is_redirection())
            .unwrap_or(false),
        HealthProbe::Command(argv) => run_command(shared, argv, h.timeout).await,
    }
}

/// Run a check command on the host; true when it exits 0 within `timeout`.
async fn run_command(shared: &Arc<Shared>, argv: &[String], timeout: Duration) -> bool {
    let Some((prog, args)) = argv.split_first() else {
        return false;
    };
    let cmd = HostCommand {
        program: prog.into(),
        args: args.to_vec(),
        env: vec![(
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )],
        cwd: shared
            .fleet
            .path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| "/".into()),
    };
    let reaper = shared.reaper.clone();
    let spawned = tokio::task::spawn_blocking(move || {
        let null = |w: bool| {
            std::fs::OpenOptions::new()
                .read(!w)
                .write(w)
                .open("/dev/null")
                .map(std::os::fd::OwnedFd::from)
        };
        let (Ok(o), Ok(e)) = (null(true), null(true)) else {
            return None;
        };
        let starting = launch::host_process(&cmd, None, o, e).ok()?;
        let exited = reaper.watch(starting.pid());
        let started = starting.start().ok()?;
        Some((started.pid, exited))
    })
    .await
    .ok()
    .flatten();
    let Some((pid, exited)) = spawned else {
        return false;
    };
    match tokio::time::timeout(timeout, exited).await {
        Ok(Ok(nix::sys::wait::WaitStatus::Exited(_, 0))) => true,
        Ok(_) => false,
        Err(_) => {
            let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    #[test]
    fn openclaws_readyz_is_healthy_only_when_its_json_says_ready() {
        let page = b"<!doctype html><title>OpenClaw Control</title>";
        let ready = br#"{"ready":true,"failing":[]}"#;
        assert!(!healthy_answer(true, StatusCode::OK, page));
        assert!(!healthy_answer(true, StatusCode::OK, br#"{"ready":false}"#));
        assert!(!healthy_answer(
            true,
            StatusCode::SERVICE_UNAVAILABLE,
            ready
        ));
        assert!(healthy_answer(true, StatusCode::OK, ready));
        // Any other health URL: the status decides, as before.
        assert!(healthy_answer(false, StatusCode::OK, page));
        assert!(healthy_answer(false, StatusCode::FOUND, b""));
        assert!(!healthy_answer(
            false,
            StatusCode::INTERNAL_SERVER_ERROR,
            b""
        ));
    }
}
