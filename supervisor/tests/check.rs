//! `clawkeep check` and `clawkeep schema`, run as the real binary on fixture fleets.
//!
//! The fixtures live in `tests/fleets/` and are named relative to it, so the snapshots hold
//! no machine-specific paths. PATH is pinned so that service programs are looked up the same
//! way everywhere.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fleets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fleets")
}

fn clawkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawkeep"))
        .args(args)
        .current_dir(fleets_dir())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run clawkeep")
}

/// Run `clawkeep check FIXTURE`, assert it fails with exit code 2 and nothing on stdout, and
/// return what it printed on stderr.
fn check_fails(fixture: &str) -> String {
    let out = clawkeep(&["check", fixture]);
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(out.status.code(), Some(2), "{fixture}: {stderr}");
    assert!(out.stdout.is_empty(), "{fixture}: stdout {:?}", out.stdout);
    assert!(
        stderr.ends_with("; nothing was started\n"),
        "{fixture}: no summary line in {stderr}"
    );
    stderr
}

#[test]
fn good_fleet_passes() {
    let out = clawkeep(&["check", "good.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "good.toml: ok (2 agents, 2 services)\n"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn unreadable_file() {
    insta::assert_snapshot!("missing", check_fails("does-not-exist.toml"));
}

#[test]
fn syntax_error_stops_there() {
    insta::assert_snapshot!("syntax", check_fails("syntax.toml"));
}

#[test]
fn unknown_keys_and_wrong_types() {
    insta::assert_snapshot!("schema", check_fails("schema.toml"));
}

#[test]
fn names() {
    insta::assert_snapshot!("names", check_fails("names.toml"));
}

#[test]
fn sizes_durations_limits_and_env() {
    insta::assert_snapshot!("limits", check_fails("limits.toml"));
}

#[test]
fn host_paths_relative_to_the_fleet_file() {
    insta::assert_snapshot!("paths", check_fails("nested/paths.toml"));
}

#[test]
fn agent_commands_inside_the_rootfs() {
    insta::assert_snapshot!("commands", check_fails("commands.toml"));
}

#[test]
fn agents_need_a_runtime_and_a_command() {
    insta::assert_snapshot!("no_runtime", check_fails("no-runtime.toml"));
}

#[test]
fn dependencies() {
    insta::assert_snapshot!("deps", check_fails("deps.toml"));
}

#[test]
fn port_collisions() {
    insta::assert_snapshot!("ports", check_fails("ports.toml"));
}

#[test]
fn health_checks() {
    insta::assert_snapshot!("health", check_fails("health.toml"));
}

#[test]
fn node_settings() {
    insta::assert_snapshot!("node", check_fails("node.toml"));
}

#[test]
fn node_cgroup_and_id_range() {
    insta::assert_snapshot!("node_cgroup", check_fails("node-cgroup.toml"));
}

#[test]
fn many_problems_at_once() {
    let stderr = check_fails("many.toml");
    // One line per problem plus the summary: every problem is reported, not just the first.
    assert!(stderr.lines().count() > 20, "{stderr}");
    insta::assert_snapshot!("many", stderr);
}

#[test]
fn schema_is_json_for_editors() {
    let out = clawkeep(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    for key in ["node", "runtime", "defaults", "agent", "service"] {
        assert!(schema["properties"][key].is_object(), "no properties.{key}");
    }
    assert_eq!(schema["additionalProperties"], false);
    let agent = &schema["$defs"]["AgentFile"];
    assert_eq!(
        agent["additionalProperties"], false,
        "unknown agent keys must be errors"
    );
    // The flattened settings are merged into the agent's properties.
    for key in ["name", "soul", "memory", "backoff"] {
        assert!(
            agent["properties"][key].is_object(),
            "no AgentFile property {key}"
        );
    }
    let description = agent["description"].as_str().unwrap_or_default();
    assert!(
        !description.contains("deny_unknown_fields"),
        "{description}"
    );
    // `[models]` keys are documented too, the output-token cap among them.
    let models = &schema["$defs"]["GatewayConfig"]["properties"];
    for key in ["context_window", "max_output_tokens"] {
        let description = models[key]["description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "no documented [models] key {key}");
    }
}

#[test]
fn model_gateway_settings() {
    insta::assert_snapshot!("models", check_fails("models.toml"));
}

#[test]
fn model_settings_without_models_section() {
    insta::assert_snapshot!("no_models", check_fails("no-models.toml"));
}

#[test]
fn managed_backends() {
    insta::assert_snapshot!("backend", check_fails("backend.toml"));
}

#[test]
fn secret_names() {
    insta::assert_snapshot!("secrets", check_fails("secrets.toml"));
    insta::assert_snapshot!("secrets_as", check_fails("secrets-as.toml"));
}

#[test]
fn store_and_knowledge_grants() {
    insta::assert_snapshot!("store", check_fails("store.toml"));
    insta::assert_snapshot!("no_store", check_fails("no-store.toml"));
}

#[test]
fn agent_health_checks() {
    insta::assert_snapshot!("agent_health", check_fails("agent-health.toml"));
}

#[test]
fn openclaw_settings_cannot_change_what_clawkeep_enforces() {
    insta::assert_snapshot!("openclaw", check_fails("openclaw.toml"));
}

#[test]
fn openclaw_runtime_pins_and_workspace_seeds() {
    insta::assert_snapshot!("openclaw_runtime", check_fails("openclaw-runtime.toml"));
    insta::assert_snapshot!(
        "openclaw_not_installed",
        check_fails("openclaw-not-installed.toml")
    );
    insta::assert_snapshot!("openclaw_unpinned", check_fails("openclaw-unpinned.toml"));
}

#[test]
fn egress_entries_are_host_and_port() {
    insta::assert_snapshot!("egress", check_fails("egress.toml"));
}

/// A fleet checked for a node image (`clawkeep image build`) looks its programs up inside
/// the staged image root, following absolute symlinks there (Debian's alternatives are
/// such links), never out to this machine's files.
#[test]
fn in_image_check_follows_symlinks_inside_the_image() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "etc/clawkeep",
        "etc/alternatives",
        "usr/bin",
        "opt/model/bin",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let server = root.join("opt/model/bin/server");
    std::fs::write(&server, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&server, std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink("/opt/model/bin/server", root.join("etc/alternatives/model")).unwrap();
    symlink("/etc/alternatives/model", root.join("usr/bin/model-server")).unwrap();
    // Present on this machine, absent from the image.
    symlink("/bin/sh", root.join("usr/bin/host-shell")).unwrap();
    let on_node = std::path::Path::new("/etc/clawkeep/fleet.toml");
    let fleet = root.join("etc/clawkeep/fleet.toml");
    let write = |command: &str| {
        std::fs::write(
            &fleet,
            format!("[[service]]\nname = \"models\"\ncommand = \"{command}\"\n"),
        )
        .unwrap()
    };

    for command in ["/usr/bin/model-server", "model-server"] {
        write(command);
        let loaded = supervisor::fleet::load_in_root(root, on_node);
        assert!(loaded.is_ok(), "{command}: {}", loaded.unwrap_err());
    }

    write("/usr/bin/host-shell");
    let err = supervisor::fleet::load_in_root(root, on_node)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fleet.toml:3:"), "{err}");
    assert!(
        err.contains("\"/usr/bin/host-shell\" does not exist"),
        "{err}"
    );
    // The same file on this machine, where /bin/sh is real, passes.
    assert!(supervisor::fleet::load_file(&fleet).is_ok());
}

#[test]
fn check_json_lists_every_problem_with_its_place_and_fix() {
    let out = clawkeep(&["check", "--json", "schema.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let problems = v["problems"].as_array().unwrap();
    // The same problems the text shows, one object each.
    let text = check_fails("schema.toml");
    assert_eq!(problems.len(), text.lines().count() - 1, "{text}");
    let first = &problems[0];
    assert_eq!(
        (first["line"].as_u64(), first["col"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(first["message"], "[node]: unknown key \"nmae\"");
    assert_eq!(first["hint"], "did you mean \"name\"?");
}
