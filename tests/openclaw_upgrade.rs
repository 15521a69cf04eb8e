//! `clawkeep upgrade --canary` and `clawkeep rollback` on a running fleet of two real OpenClaw
//! agents: from 2026.9.5 to 2026.9.6 (both real releases, installed offline), a broken
//! runtime refused by the canary's gate and rolled back without touching the other agent, and
//! a rollback by hand.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

#[path = "../ollama/tests/support/mod.rs"]
mod llm;

use std::path::Path;
use std::time::Duration;

use support::{rt, wait_for, FleetDir, Scratch, Supervisor};

/// A deliberately broken runtime, content-addressed like a real one: its "node" is busybox,
/// so the gateway cannot start (what a bad release looks like to the supervisor).
fn broken_runtime(runtimes: &Path, good: &Path) -> String {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(good.join("bundle.json")).unwrap()).unwrap();
    manifest["openclaw"] = "2026.9.6-broken".into();
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let id = clawkeep_image::runtime::bundle_id(&bytes);
    let dir = runtimes.join(&id);
    std::fs::create_dir_all(dir.join("node/bin")).unwrap();
    std::fs::write(dir.join("bundle.json"), &bytes).unwrap();
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(bb, dir.join("node/bin/node")).unwrap();
    id
}

fn healthy(sup: &Supervisor, agent: &str) -> serde_json::Value {
    wait_for(Duration::from_secs(240), &format!("{agent} ready"), || {
        let r = sup.row(agent);
        (r["health"] == "healthy" && r["state"] == "running").then_some(r)
    })
}

fn upgrade(sup: &Supervisor, args: &[&str]) -> (bool, serde_json::Value) {
    let out = sup.cli(args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

#[test]
fn canary_upgrade_gates_rolls_back_a_bad_runtime_and_rollback_by_hand() {
    let rt = rt();
    let llama = rt.block_on(llm::LlamaServer::start_answer());
    let rts = Scratch::new("upgrade-runtimes");
    let runtimes = rts.dir.join("runtimes");
    let old = support::install_bundle(&support::openclaw_bundle_of("2026.9.5"), &runtimes);
    let new = support::install_bundle(&support::openclaw_bundle_of("2026.9.6"), &runtimes);
    broken_runtime(&runtimes, &new);
    let body = format!(
        r#"
[defaults]
memory = "2GiB"
pids = 1024
nofile = 16384
restart = "on-failure"
stop_grace = "15s"
model = "tiny-random"
openclaw = {{ tools = {{ deny = ["*"] }} }}

[[agent]]
name = "alpha"

[[agent]]
name = "beta"

[models]
default = "tiny-random"
context_window = 65536
max_output_tokens = 16
upstream = [{{ name = "llama", url = "{llama}", api = "openai", models = ["tiny-random"] }}]
"#,
        llama = llama.url(),
    );
    let lines = format!(
        "openclaw = \"2026.9.5\"\nruntimes = \"{}\"",
        runtimes.display()
    );
    let dir = FleetDir::with_runtime("upgrade", &lines, &body);
    support::add_libs_for(&dir.scratch.dir.join("rootfs"), &old.join("node/bin/node"));
    let sup = Supervisor::start_in(dir);
    let alpha = healthy(&sup, "alpha");
    healthy(&sup, "beta");
    for r in [&alpha, &sup.row("beta")] {
        assert!(
            r["runtime"]
                .as_str()
                .unwrap()
                .starts_with("openclaw 2026.9.5 "),
            "{r}"
        );
    }

    // A bad runtime: the canary fails its gate, goes back to 2026.9.5, and alpha is never
    // touched.
    let (ok, report) = upgrade(
        &sup,
        &[
            "upgrade",
            "--openclaw",
            "2026.9.6-broken",
            "--canary",
            "beta",
            "--json",
        ],
    );
    assert!(!ok, "{report}");
    assert_eq!(report["ok"], false);
    assert!(
        report["error"].as_str().unwrap().contains("beta"),
        "{report}"
    );
    assert_eq!(
        report["rolled_back"],
        serde_json::json!(["beta"]),
        "{report}"
    );
    let beta = healthy(&sup, "beta");
    assert!(
        beta["runtime"]
            .as_str()
            .unwrap()
            .starts_with("openclaw 2026.9.5 "),
        "{beta}"
    );
    let a = sup.row("alpha");
    assert_eq!(a["pid"], alpha["pid"], "alpha must not be restarted: {a}");

    // The real next release: canary first, each agent answers a real message on it.
    let (ok, report) = upgrade(
        &sup,
        &[
            "upgrade",
            "--openclaw",
            "2026.9.6",
            "--canary",
            "beta",
            "--json",
        ],
    );
    assert!(ok, "{report}");
    assert_eq!(
        report["upgraded"],
        serde_json::json!(["beta", "alpha"]),
        "{report}"
    );
    let steps = report["steps"].to_string();
    assert_eq!(
        steps.matches("answered the test message").count(),
        2,
        "{report}"
    );
    for agent in ["alpha", "beta"] {
        let r = healthy(&sup, agent);
        assert!(
            r["runtime"]
                .as_str()
                .unwrap()
                .starts_with("openclaw 2026.9.6 "),
            "{r}"
        );
    }
    // The new runtime is what the sandbox mounts.
    let version = support::in_sandbox(
        sup.row("alpha")["pid"].as_i64().unwrap(),
        "cat /opt/openclaw/app/node_modules/openclaw/package.json",
    );
    assert!(version.contains("\"version\": \"2026.9.6\""), "{version}");

    // Rollback by hand: both back on 2026.9.5.
    let (ok, report) = upgrade(&sup, &["rollback", "--json"]);
    assert!(ok, "{report}");
    for agent in ["alpha", "beta"] {
        let r = healthy(&sup, agent);
        assert!(
            r["runtime"]
                .as_str()
                .unwrap()
                .starts_with("openclaw 2026.9.5 "),
            "{r}"
        );
    }
    // Nothing left to roll back.
    let out = sup.cli(&["rollback"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no upgrade to roll back"));
}
