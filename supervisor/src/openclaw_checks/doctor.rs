//! The OpenClaw part of `clawkeep doctor` (CK-DOC-005), for a fleet that pins OpenClaw: the
//! pinned runtime is still installed (and whether the node's `current` moved on: an upgrade
//! in progress), and every running agent with a `gateway_port` answers `/readyz` through the
//! port clawkeep forwards on the host's loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clawkeep_image::runtime::{Manifest, CURRENT};

use crate::engine::process::Def;
use crate::engine::status::State;
use crate::engine::Shared;
use crate::findings::{finding, Finding};
use crate::fleet::runtime::OpenclawRuntime;

/// How long an agent's `/readyz` may take to answer.
const READYZ_TIMEOUT: Duration = Duration::from_secs(5);
/// OpenClaw takes ~25 s to be ready; an agent younger than this is starting, not broken.
const COLD_START: u64 = 60;

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn describe(dir: &Path, id: &str) -> String {
    match Manifest::load(&dir.join(id)) {
        Ok((m, _)) => format!("{} (OpenClaw {} on Node {})", short(id), m.openclaw, m.node),
        Err(_) => short(id).to_string(),
    }
}

/// The pinned runtime is installed; `current` points at it (else a low finding: an upgrade
/// in progress, or a runtime installed for another fleet).
pub fn runtime_findings(rt: &OpenclawRuntime) -> Vec<Finding> {
    let subject = rt.runtimes.display().to_string();
    let pinned = format!(
        "{} (OpenClaw {} on Node {})",
        short(&rt.id),
        rt.openclaw,
        rt.node
    );
    if !rt
        .path
        .join(clawkeep_image::runtime::manifest::MANIFEST)
        .is_file()
    {
        return vec![finding(
            "CK-DOC-005",
            "high",
            subject,
            format!("the runtime the fleet runs, {pinned}, is no longer installed in {}: an agent that restarts cannot start", rt.runtimes.display()),
            format!("install it again without network: clawkeep runtime install BUNDLE --dest {}", rt.runtimes.display()),
        )];
    }
    let current = std::fs::read_link(rt.runtimes.join(CURRENT))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match current {
        Some(c) if c == rt.id => Vec::new(),
        other => {
            let now = other
                .map(|c| describe(&rt.runtimes, &c))
                .unwrap_or_else(|| "missing".into());
            vec![finding(
                "CK-DOC-005",
                "low",
                subject,
                format!("the node's current runtime is {now}, but the agents run {pinned}: an upgrade in progress? Agents keep theirs until the fleet is loaded again"),
                "to move the agents: pin [runtime] openclaw/node to match current, then `clawkeep down` and `clawkeep up`; to stay, `clawkeep runtime install` the pinned bundle again (it points current back)",
            )]
        }
    }
}

/// Whether the agent runs OpenClaw's gateway with a `gateway_port` (its name and port).
fn runs_gateway(def: &Def) -> Option<(&str, u16)> {
    let Def::Agent(a) = def else { return None };
    crate::openclaw::ready::runs_gateway(a).then_some(())?;
    a.gateway_port.map(|p| (a.name.as_str(), p))
}

/// GET `/readyz` on the agent's forwarded port: None when it answers 2xx with OpenClaw's
/// `"ready": true` (the first 64 KiB are read), else why not.
async fn readyz(client: &reqwest::Client, port: u16) -> Option<String> {
    match client
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
    {
        Ok(mut r) if r.status().is_success() => {
            let mut body = Vec::new();
            while body.len() < crate::engine::health::HEALTH_BODY_MAX {
                match r.chunk().await {
                    Ok(Some(c)) => body.extend_from_slice(&c),
                    Ok(None) => break,
                    Err(e) => return Some(format!("its answer broke off: {e}")),
                }
            }
            crate::openclaw::ready::verdict(&body).err()
        }
        Ok(r) => Some(format!("it answered {}", r.status())),
        Err(e) if e.is_timeout() => Some(format!("no answer within {}s", READYZ_TIMEOUT.as_secs())),
        Err(e) => Some(
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.to_string()),
        ),
    }
}

/// Every running OpenClaw agent with a `gateway_port` answers `/readyz` through it.
async fn gateways(shared: &Arc<Shared>) -> Vec<Finding> {
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .timeout(READYZ_TIMEOUT)
        .build()
    else {
        return Vec::new();
    };
    let mut checks = tokio::task::JoinSet::new();
    for (i, p) in shared.processes.iter().enumerate() {
        let Some((name, port)) = runs_gateway(&p.def) else {
            continue;
        };
        let row = p.row();
        if row.state != State::Running {
            continue; // CK-DOC-001 reports it
        }
        let (client, name) = (client.clone(), name.to_string());
        checks.spawn(async move { (i, name, port, row.uptime_secs, readyz(&client, port).await) });
    }
    let mut done = checks.join_all().await;
    done.sort_by_key(|c| c.0);
    done.into_iter()
        .filter_map(|(_, name, port, up, why)| {
            let why = why?;
            let young = up.is_some_and(|s| s < COLD_START);
            let (severity, note) = match up {
                Some(s) if young => ("low", format!(" (it started {s}s ago; OpenClaw needs ~25 s)")),
                _ => ("high", String::new()),
            };
            Some(finding(
                "CK-DOC-005",
                severity,
                &name,
                format!("its OpenClaw gateway does not answer http://127.0.0.1:{port}/readyz (the port clawkeep forwards into its sandbox): {why}{note}"),
                format!("see `clawkeep logs {name}`; if `clawkeep ps` shows it healthy inside its sandbox, the forward is what fails"),
            ))
        })
        .collect()
}

/// CK-DOC-005 (nothing when the fleet does not pin OpenClaw).
pub async fn run(shared: &Arc<Shared>) -> Vec<Finding> {
    let Some(rt) = shared.fleet.openclaw.clone() else {
        return Vec::new();
    };
    let mut out = tokio::task::spawn_blocking(move || runtime_findings(&rt))
        .await
        .unwrap_or_default();
    out.extend(gateways(shared).await);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(dir: &Path, id: &str) -> OpenclawRuntime {
        let path = dir.join(id);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("bundle.json"), "{}").unwrap();
        OpenclawRuntime {
            openclaw: "2026.9.6".into(),
            node: "24.21.0".into(),
            id: id.into(),
            path,
            runtimes: dir.to_path_buf(),
        }
    }

    #[test]
    fn pinned_current_moved_and_gone() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let rt = runtime(d.path(), &a);
        runtime(d.path(), &b);
        std::os::unix::fs::symlink(&a, d.path().join(CURRENT)).unwrap();
        assert!(runtime_findings(&rt).is_empty());

        std::fs::remove_file(d.path().join(CURRENT)).unwrap();
        std::os::unix::fs::symlink(&b, d.path().join(CURRENT)).unwrap();
        let f = runtime_findings(&rt);
        assert_eq!(
            (f[0].id.as_str(), f[0].severity.as_str()),
            ("CK-DOC-005", "low")
        );
        assert!(
            f[0].message.contains("current runtime is bbbbbbbbbbbb"),
            "{f:?}"
        );
        assert!(f[0].message.contains("agents run aaaaaaaaaaaa"), "{f:?}");

        std::fs::remove_dir_all(&rt.path).unwrap();
        let f = runtime_findings(&rt);
        assert_eq!(f[0].severity, "high");
        assert!(f[0].message.contains("no longer installed"), "{f:?}");
    }

    /// An agent's port that answers every path with a 200 page (as OpenClaw's control UI
    /// does for paths it does not know) is not a ready gateway; OpenClaw's JSON is.
    #[tokio::test]
    async fn a_catch_all_200_page_is_not_a_ready_gateway() {
        async fn serve(answer: &'static str) -> u16 {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let app = axum::Router::new().fallback(move || async move { answer });
            tokio::spawn(async move { axum::serve(l, app).await });
            port
        }
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let page = serve("<!doctype html><title>OpenClaw Control</title>").await;
        let why = readyz(&client, page).await.expect("a page passed as ready");
        assert!(why.contains("not OpenClaw's readiness JSON"), "{why}");
        let ready = serve(r#"{"ready":true,"failing":[]}"#).await;
        assert_eq!(readyz(&client, ready).await, None);
    }
}
