//! The openclaw.json clawkeep generates, checked by the real OpenClaw 2026.9.6 (`openclaw
//! config validate`, from the pinned runtime, with no network).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use supervisor::openclaw::config::{render, Inputs};

fn bundle() -> PathBuf {
    let root = std::env::var_os("CLAWKEEP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/clawkeep")
        });
    let dir = std::env::var_os("CLAWKEEP_OPENCLAW_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("openclaw-bundle-2026.9.6-node24"));
    assert!(
        dir.join("bundle.json").is_file(),
        "no runtime bundle at {} (run scripts/install-openclaw-bundle)",
        dir.display()
    );
    dir
}

/// The runtime installed once under the cache (a second install is a no-op).
fn runtime() -> PathBuf {
    let dest = bundle().parent().unwrap().join("runtimes");
    let out = Command::new(env!("CARGO_BIN_EXE_clawkeep"))
        .args(["runtime", "install"])
        .arg(bundle())
        .arg("--dest")
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .lines()
            .last()
            .unwrap(),
    )
}

fn validate(rt: &Path, config: &serde_json::Value) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openclaw.json");
    std::fs::write(&file, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let out = Command::new("unshare")
        .args(["--net", "--"])
        .arg(rt.join("bin/openclaw"))
        .args(["config", "validate"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("OPENCLAW_STATE_DIR", dir.path().join("state"))
        .env("OPENCLAW_CONFIG_PATH", &file)
        .env("OPENCLAW_GATEWAY_TOKEN", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_generated_config_is_valid_for_openclaw_and_a_broken_override_is_not() {
    let rt = runtime();
    let defaults = json!({"agents": {"defaults": {"timeoutSeconds": 600}}, "plugins": {"allow": ["memory-core"]}});
    let own = json!({"agents": {"defaults": {"heartbeat": {"every": "30m"}}}});
    let good = render(&Inputs {
        model: "tiny-random",
        context_window: 32768,
        max_tokens: 4096,
        defaults: Some(&defaults),
        own: Some(&own),
    });
    let (ok, text) = validate(&rt, &good);
    assert!(ok, "{text}\n{good:#}");
    let bad = render(&Inputs {
        model: "tiny-random",
        context_window: 32768,
        max_tokens: 4096,
        defaults: None,
        own: Some(&json!({"agents": {"defaults": {"timeoutSeconds": "soon"}}})),
    });
    let (ok, text) = validate(&rt, &bad);
    assert!(!ok, "a wrong type must not validate: {text}");
}
