//! `clawkeep pod run`, the entrypoint of an agent's container on Kubernetes, run for real as
//! an unprivileged user (as in a pod): at every start it writes the enforced openclaw.json
//! from the agent's ConfigMap (mounted the way the kubelet mounts one, through `..data`
//! symlinks) over whatever the agent left, seeds only the workspace files the home lacks,
//! and becomes the agent's command with OpenClaw's environment.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

const NOBODY: u32 = 65534;

/// The lab agent's ConfigMap as rendered, laid out as the kubelet mounts it.
fn mounted_config_map(dir: &Path) -> serde_json::Value {
    let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab/fleet.toml");
    let f = supervisor::fleet::load_for_cluster(&fleet).unwrap_or_else(|d| panic!("{d}"));
    let opts = supervisor::k8s::Options::of(&f.cluster, Default::default()).unwrap();
    let rendered = supervisor::k8s::render(&f, &opts).unwrap();
    let cm = rendered
        .iter()
        .find(|r| r.path == Path::new("clawkeep-research/configmap-agent-research-openclaw.yaml"))
        .expect("the research agent's ConfigMap");
    let cm: serde_json::Value = serde_norway::from_str(&cm.yaml).unwrap();
    support::kubelet_config_map(dir, cm["data"].as_object().unwrap());
    serde_json::from_str(cm["data"]["openclaw.json"].as_str().unwrap()).unwrap()
}

/// `clawkeep pod run` as nobody with HOME `home`, running `script`; its output.
fn pod_run(config: &Path, home: &Path, script: &str) -> String {
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            &NOBODY.to_string(),
            "--regid",
            &NOBODY.to_string(),
            "--clear-groups",
        ])
        .arg(support::clawkeep())
        .args(["pod", "run", "--config"])
        .arg(config)
        .args(["--", "/bin/sh", "-c", script])
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let text = support::text(&out);
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn a_restart_reapplies_the_enforced_config_and_seeds_only_what_is_missing() {
    let s = support::Scratch::new("pod-run");
    let config = s.dir.join("config");
    let home = s.dir.join("home");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    // The scratch dir is root's 0700 by default; nobody must reach the home and the config.
    std::fs::set_permissions(&s.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let enforced = mounted_config_map(&config);
    assert!(
        enforced["gateway"]["auth"]["token"].is_null(),
        "no token in a ConfigMap"
    );

    // First start: the config and the seeds arrive; the agent then tampers with both.
    let said = pod_run(
        &config,
        &home,
        "echo state=$OPENCLAW_STATE_DIR; echo '{\"gateway\":{\"auth\":{\"mode\":\"none\"}}}' > $HOME/.openclaw/openclaw.json; echo mine > $HOME/.openclaw/workspace/SOUL.md; rm $HOME/.openclaw/workspace/USER.md",
    );
    assert!(said.contains("seeded SOUL.md, USER.md"), "{said}");
    assert!(said.contains("state=/home/agent/.openclaw"), "{said}");
    let read = |rel: &str| std::fs::read_to_string(home.join(rel)).unwrap();
    assert!(read(".openclaw/openclaw.json").contains("\"none\""));

    // A restart in place: the enforced config is back, the agent's SOUL.md kept (its brain
    // wins), the USER.md it removed seeded again.
    let said = pod_run(&config, &home, "true");
    assert!(
        said.contains("seeded USER.md") && !said.contains("SOUL.md"),
        "{said}"
    );
    let now: serde_json::Value = serde_json::from_str(&read(".openclaw/openclaw.json")).unwrap();
    assert_eq!(now, enforced);
    assert_eq!(now["gateway"]["auth"]["mode"], "token");
    assert_eq!(read(".openclaw/workspace/SOUL.md"), "mine\n");
    let meta = std::fs::metadata(home.join(".openclaw/openclaw.json")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NOBODY);
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o600);

    // A symlink the agent planted where the config goes is replaced, not followed.
    let outside = s.dir.join("outside");
    std::fs::write(&outside, "keep").unwrap();
    std::fs::remove_file(home.join(".openclaw/openclaw.json")).unwrap();
    symlink(&outside, home.join(".openclaw/openclaw.json")).unwrap();
    pod_run(&config, &home, "true");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    assert!(
        !std::fs::symlink_metadata(home.join(".openclaw/openclaw.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn the_gateway_token_and_env_secrets_come_from_mounted_files_and_a_bad_one_is_named() {
    let s = support::Scratch::new("pod-secrets");
    std::fs::set_permissions(&s.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = s.dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let token = s.dir.join("token");
    std::fs::create_dir_all(&token).unwrap();
    std::fs::write(token.join("token"), "t0ken-of-alpha\n").unwrap();
    // A Secret volume as the kubelet lays it out: keys are links into `..data`.
    let secrets = s.dir.join("secrets");
    let data = secrets.join("..2026_12_05_12_00_00.000000001");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("API_KEY"), "k3y").unwrap();
    symlink("..data/API_KEY", secrets.join("API_KEY")).unwrap();
    symlink(data.file_name().unwrap(), secrets.join("..data")).unwrap();
    let run = || {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(support::clawkeep())
            .args(["pod", "run", "--config"])
            .arg(&config)
            .arg("--token")
            .arg(token.join("token"))
            .arg("--env-secrets")
            .arg(&secrets)
            .args([
                "--",
                "/bin/sh",
                "-c",
                "echo token=$OPENCLAW_GATEWAY_TOKEN key=$API_KEY",
            ])
            .env_clear()
            .env("HOME", &s.dir)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap()
    };
    let out = run();
    let said = support::text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("token=t0ken-of-alpha key=k3y"), "{said}");
    // A key that cannot be a variable's name: refused before the agent starts, named.
    std::fs::write(data.join("bad-name"), "x").unwrap();
    symlink("..data/bad-name", secrets.join("bad-name")).unwrap();
    let out = run();
    let said = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "secret {}: not a secret name",
            secrets.join("bad-name").display()
        )),
        "{said}"
    );
}

/// `clawkeep pod ready` against a server answering `body` with `status`; its exit code and
/// what it said.
fn ready_against(status: u16, body: &'static str) -> (Option<i32>, String) {
    let rt = support::rt();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(move || async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) });
    rt.spawn(async move { axum::serve(listener, app).await });
    let out = Command::new(support::clawkeep())
        .args(["pod", "ready", "--url", &format!("http://{addr}/readyz")])
        .output()
        .unwrap();
    (out.status.code(), support::text(&out))
}

#[test]
fn the_probe_is_ready_only_when_openclaws_json_says_so() {
    assert_eq!(
        ready_against(200, r#"{"ready":true,"failing":[]}"#).0,
        Some(0)
    );
    // OpenClaw's control UI answers every path with a 200 page: not ready.
    let (code, said) = ready_against(200, "<!doctype html><title>OpenClaw</title>");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("not OpenClaw's readiness JSON"), "{said}");
    let (code, said) = ready_against(503, r#"{"ready":false,"failing":["channels"]}"#);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("503"), "{said}");
    let (code, said) = ready_against(200, r#"{"ready":false,"failing":["channels"]}"#);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("channels"), "{said}");
}
