use super::*;
use crate::openclaw::config::{render, Inputs};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn rendered() -> Value {
    render(&Inputs {
        model: "tiny",
        context_window: 32768,
        max_tokens: 4096,
        defaults: None,
        own: Some(&json!({"agents": {"defaults": {"timeoutSeconds": 600}}})),
    })
}

/// A home as provisioning leaves it: ~/.openclaw 0700, openclaw.json 0600.
fn home() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    std::fs::create_dir_all(home.join(STATE_REL)).unwrap();
    chmod(&home.join(STATE_REL), 0o700);
    let cfg = home.join(CONFIG_REL);
    std::fs::write(&cfg, serde_json::to_vec_pretty(&rendered()).unwrap()).unwrap();
    chmod(&cfg, 0o600);
    (d, home)
}

fn ids(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.id.as_str()).collect()
}

#[test]
fn modes_of_the_state_dir_and_config() {
    let (_d, home) = home();
    assert!(state_modes("research", &home).is_empty());
    chmod(&home.join(CONFIG_REL), 0o644);
    let f = state_modes("research", &home);
    assert_eq!(ids(&f), ["CK-OC-001"]);
    assert_eq!(f[0].subject, "research");
    assert!(f[0].message.contains("mode 644"), "{f:?}");
    assert!(f[0].fix.contains("chmod 600"), "{f:?}");
    chmod(&home.join(STATE_REL), 0o755);
    assert_eq!(state_modes("research", &home).len(), 2);
}

#[test]
fn a_symlinked_config_is_a_finding_and_not_followed() {
    let (d, home) = home();
    let outside = d.path().join("elsewhere.json");
    std::fs::write(&outside, "{}").unwrap();
    chmod(&outside, 0o644);
    std::fs::remove_file(home.join(CONFIG_REL)).unwrap();
    std::os::unix::fs::symlink(&outside, home.join(CONFIG_REL)).unwrap();
    let f = state_modes("research", &home);
    assert_eq!(ids(&f), ["CK-OC-001"]);
    assert!(f[0].message.contains("symlink"), "{f:?}");
    let f = config_drift("research", &home, &rendered());
    assert_eq!(ids(&f), ["CK-OC-002"]);
    assert!(f[0].message.contains("symlink"), "{f:?}");
}

#[test]
fn an_agent_that_never_started_has_nothing_to_check() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    assert!(state_modes("research", &home).is_empty());
    assert!(config_drift("research", &home, &rendered()).is_empty());
    assert!(token_file("research", &d.path().join("gateway.token")).is_empty());
}

#[test]
fn drift_names_each_enforced_key_that_changed() {
    let want = rendered();
    assert!(drift(&want, &want).is_empty());
    let mut have = want.clone();
    have["gateway"]["bind"] = json!("lan");
    have["gateway"]["auth"]["token"] = json!("hunter2-hunter2");
    have["update"] = json!({});
    have["models"]["providers"]["clawkeep"]["baseUrl"] = json!("http://10.0.0.9:11434");
    // Keys clawkeep does not enforce may change freely.
    have["agents"]["defaults"]["timeoutSeconds"] = json!(5);
    let lines = drift(&want, &have);
    assert_eq!(
        lines,
        [
            r#"gateway.bind is "lan", clawkeep enforces "loopback""#,
            "gateway.auth.token is set (clawkeep sets no such key)",
            "update.checkOnStart is missing, clawkeep enforces false",
            r#"models.providers.clawkeep.baseUrl is "http://10.0.0.9:11434", clawkeep enforces "http://127.0.0.1:11434""#,
        ]
    );
    assert!(!lines.concat().contains("hunter2"));
}

#[test]
fn config_edited_on_disk_is_flagged() {
    let (_d, home) = home();
    let want = rendered();
    assert!(config_drift("research", &home, &want).is_empty());
    let cfg = home.join(CONFIG_REL);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("\"loopback\"", "\"lan\"")).unwrap();
    let f = config_drift("research", &home, &want);
    assert_eq!(ids(&f), ["CK-OC-002"]);
    assert_eq!(f[0].subject, "research");
    assert!(f[0].message.contains(r#"gateway.bind is "lan""#), "{f:?}");
    assert!(f[0].fix.contains("clawkeep restart research"), "{f:?}");
    std::fs::write(&cfg, "{ not json").unwrap();
    let f = config_drift("research", &home, &want);
    assert!(f[0].message.contains("not valid JSON"), "{f:?}");
}

#[test]
fn token_mode_and_strength() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("gateway.token");
    crate::openclaw::token::rotate(&p).unwrap();
    assert!(token_file("research", &p).is_empty());
    chmod(&p, 0o644);
    let f = token_file("research", &p);
    assert_eq!(ids(&f), ["CK-OC-003"]);
    assert!(f[0].message.contains("mode 644"), "{f:?}");
    let weak = "letmein-letmein";
    crate::openclaw::token::write(&p, weak).unwrap();
    let f = token_file("research", &p);
    assert_eq!(ids(&f), ["CK-OC-003"]);
    assert!(f[0].message.contains("weak (15 characters"), "{f:?}");
    assert!(f[0].fix.contains("clawkeep token rotate research"), "{f:?}");
    assert!(!format!("{f:?}").contains(weak), "the token is never shown");
}

/// An installed runtime as `clawkeep runtime install` leaves it: named by the sha256 of its
/// bundle.json, nothing writable.
fn installed_runtime(under: &Path) -> OpenclawRuntime {
    let staging = under.join("staging");
    std::fs::create_dir_all(staging.join("bin")).unwrap();
    std::fs::write(staging.join("bin/openclaw"), "#!/bin/sh\n").unwrap();
    let m = clawkeep_image::runtime::Manifest {
        format: clawkeep_image::runtime::manifest::FORMAT,
        openclaw: "2026.9.6".into(),
        engines_node: ">=24.16.0 <25".into(),
        node: "24.21.0".into(),
        platform: "linux-x64".into(),
        node_tarball: "node.tgz".into(),
        npm: "11.0.0".into(),
        npm_tarball: "npm.tgz".into(),
        files: Default::default(),
    };
    let id = clawkeep_image::runtime::bundle_id(&m.write(&staging).unwrap());
    let path = under.join(&id);
    std::fs::rename(&staging, &path).unwrap();
    for p in [path.join("bin/openclaw"), path.join("bundle.json")] {
        chmod(&p, 0o444);
    }
    for p in [path.join("bin"), path.clone()] {
        chmod(&p, 0o555);
    }
    OpenclawRuntime {
        openclaw: m.openclaw,
        node: m.node,
        id,
        path,
        runtimes: under.to_path_buf(),
    }
}

#[test]
fn the_runtime_must_be_installed_read_only_and_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let rt = installed_runtime(d.path());
    assert!(runtime(&["a", "b"], &rt).is_empty());

    chmod(&rt.path.join("bin/openclaw"), 0o755);
    let f = runtime(&["a", "b"], &rt);
    assert_eq!(ids(&f), ["CK-OC-004", "CK-OC-004"]);
    assert_eq!((f[0].subject.as_str(), f[1].subject.as_str()), ("a", "b"));
    assert!(f[0].message.contains("1 entries"), "{f:?}");
    assert!(f[0].message.contains("bin/openclaw (755)"), "{f:?}");
    chmod(&rt.path.join("bin/openclaw"), 0o555);

    let manifest = rt.path.join("bundle.json");
    chmod(&rt.path, 0o755);
    chmod(&manifest, 0o644);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("2026.9.6", "2026.9.7")).unwrap();
    chmod(&manifest, 0o444);
    chmod(&rt.path, 0o555);
    let p = runtime_problems(&rt);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("its manifest was changed"), "{p:?}");

    let gone = OpenclawRuntime {
        path: d.path().join("0".repeat(64)),
        ..rt
    };
    let p = runtime_problems(&gone);
    assert!(p[0].contains("is gone"), "{p:?}");
}
