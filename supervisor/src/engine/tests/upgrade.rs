//! `clawkeep upgrade` and `rollback` on three OpenClaw agents whose runtimes are scripted.

use std::path::Path;

use super::scripted::{Script, ScriptedLauncher, What};
use super::{scratch, secs, start_in, Fixture};
use crate::engine::status::{Health, State};
use crate::engine::upgrade::{rollback, upgrade, Before, UpgradeReport, UpgradeRequest};

const OLD: &str = "2026.1.0";
const NEW: &str = "2026.2.0";

/// Install a runtime of OpenClaw `openclaw` under `runtimes` as `clawkeep runtime install`
/// leaves it (as far as the fleet and the upgrade look: its manifest and its node).
fn install(runtimes: &Path, openclaw: &str) {
    let manifest = serde_json::json!({
        "format": 1,
        "openclaw": openclaw,
        "engines_node": ">=22",
        "node": "24.1.0",
        "platform": "linux-x64",
        "node_tarball": "node.tgz",
        "npm": "10.9.0",
        "npm_tarball": "npm.tgz",
        "files": {}
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest");
    let dir = runtimes.join(clawkeep_image::runtime::bundle_id(&bytes));
    std::fs::create_dir_all(dir.join("node/bin")).expect("create the runtime");
    std::fs::write(dir.join("node/bin/node"), b"").expect("write its node");
    std::fs::write(dir.join("bundle.json"), &bytes).expect("write its manifest");
}

/// Agents alpha, beta and gamma on OpenClaw [`OLD`], with [`NEW`] installed too; their
/// `/readyz` is checked every second, and a failing one never restarts them during a gate.
async fn fleet(fake: ScriptedLauncher) -> Fixture {
    let dir = scratch();
    let runtimes = dir.path().join("runtimes");
    install(&runtimes, OLD);
    install(&runtimes, NEW);
    let runtime = format!(
        "openclaw = \"{OLD}\"\nruntimes = \"{}\"",
        runtimes.display()
    );
    let body = r#"
[defaults]
health = { http = "http://127.0.0.1:18789/readyz", interval = "1s", start_period = "1h" }

[[agent]]
name = "alpha"

[[agent]]
name = "beta"

[[agent]]
name = "gamma"
"#;
    let f = start_in(dir, &runtime, body, fake).await;
    for name in ["alpha", "beta", "gamma"] {
        f.until(name, secs(5), "healthy", |r| {
            r.state == State::Running && r.health == Some(Health::Healthy)
        })
        .await;
    }
    f
}

async fn upgrade_to_new(f: &Fixture, canary: &str, before: &mut Option<Before>) -> UpgradeReport {
    let req = UpgradeRequest {
        openclaw: NEW.into(),
        node: None,
        canary: Some(canary.into()),
        message: None,
    };
    upgrade(&f.engine.shared, before, &req)
        .await
        .unwrap_or_else(|e| panic!("the upgrade could not begin: {e}"))
}

/// The OpenClaw version `name` starts on next.
fn pinned_for(f: &Fixture, name: &str) -> String {
    f.process(name)
        .runtime(&f.engine.shared.fleet)
        .map(|r| r.openclaw)
        .unwrap_or_default()
}

/// Names of the agents started on OpenClaw `version`, in order.
fn started_on(f: &Fixture, version: &str) -> Vec<String> {
    f.fake
        .events()
        .into_iter()
        .filter(|e| e.what == What::Started(Some(version.to_string())))
        .map(|e| e.name)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_canary_that_never_becomes_ready_is_rolled_back_and_no_other_agent_moves() {
    let fake = ScriptedLauncher::new(|a| match (a.name.as_str(), a.openclaw.as_deref()) {
        ("beta", Some(NEW)) => Script::runs().never_ready(),
        _ => Script::runs(),
    });
    let f = fleet(fake).await;
    let mut before = None;
    let report = upgrade_to_new(&f, "beta", &mut before).await;
    assert!(!report.ok, "{report:#?}");
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("beta failed the gate on openclaw 2026.2.0")
            && error.ends_with("its gateway was not ready within 240s"),
        "{error}"
    );
    assert!(report.upgraded.is_empty(), "{report:#?}");
    assert_eq!(report.rolled_back, ["beta"]);
    assert_eq!(f.fake.runtimes_of("beta"), [OLD, NEW, OLD]);
    assert_eq!(f.fake.runtimes_of("alpha"), [OLD], "alpha never moved");
    assert_eq!(f.fake.runtimes_of("gamma"), [OLD], "gamma never moved");
    assert_eq!(pinned_for(&f, "beta"), OLD);
    f.until("beta", secs(5), "healthy again", |r| {
        r.state == State::Running && r.health == Some(Health::Healthy)
    })
    .await;
    assert!(before.is_none(), "nothing is left for `clawkeep rollback`");
}

#[tokio::test(start_paused = true)]
async fn when_a_later_agent_fails_the_gate_every_agent_moved_so_far_goes_back_in_reverse_order() {
    // alpha (the canary) passes; beta crashes on the new runtime before it is ready; gamma
    // is never reached.
    let fake = ScriptedLauncher::new(|a| match (a.name.as_str(), a.openclaw.as_deref()) {
        ("beta", Some(NEW)) => Script::exits(1, secs(2)).never_ready(),
        _ => Script::runs(),
    });
    let f = fleet(fake).await;
    let mut before = None;
    let report = upgrade_to_new(&f, "alpha", &mut before).await;
    assert!(!report.ok, "{report:#?}");
    let error = report.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("beta failed the gate on openclaw 2026.2.0") && error.contains("exited"),
        "{error}"
    );
    assert!(report.upgraded.is_empty(), "{report:#?}");
    assert_eq!(report.rolled_back, ["beta", "alpha"]);
    assert_eq!(f.fake.runtimes_of("alpha"), [OLD, NEW, OLD]);
    assert_eq!(
        f.fake.runtimes_of("beta").first().map(String::as_str),
        Some(OLD)
    );
    assert_eq!(
        f.fake.runtimes_of("beta").last().map(String::as_str),
        Some(OLD)
    );
    assert_eq!(f.fake.runtimes_of("gamma"), [OLD], "gamma never moved");
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(pinned_for(&f, name), OLD, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_moves_the_canary_first_and_a_rollback_undoes_it_in_reverse() {
    let fake = ScriptedLauncher::new(|_| Script::runs());
    let f = fleet(fake).await;
    let mut before = None;
    let report = upgrade_to_new(&f, "gamma", &mut before).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.upgraded, ["gamma", "alpha", "beta"]);
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.starts_with("gamma: answered the test message")),
        "{:#?}",
        report.steps
    );
    assert_eq!(started_on(&f, NEW), ["gamma", "alpha", "beta"]);
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(pinned_for(&f, name), NEW, "{name}");
    }
    let back = rollback(&f.engine.shared, &mut before)
        .await
        .unwrap_or_else(|e| panic!("the rollback could not begin: {e}"));
    assert!(back.ok, "{back:#?}");
    assert_eq!(back.rolled_back, ["beta", "alpha", "gamma"]);
    // The first three starts on OLD were the fleet's own; then the rollback's.
    assert_eq!(started_on(&f, OLD)[3..], ["beta", "alpha", "gamma"]);
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(pinned_for(&f, name), OLD, "{name}");
    }
}
