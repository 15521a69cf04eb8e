//! Secrets end to end on the real kernel: `clawkeep secrets` writes the encrypted file, `up`
//! hands each agent its secrets (files on a read-only tmpfs, or env) and nothing else ever
//! shows a value; a secret declared but never set makes that agent's start fail clearly
//! while the supervisor and the other agents go on.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{clawkeep, facts, FleetDir, Supervisor};

/// The value set in the tests: long and unusual, so a leak cannot match by chance.
const VALUE: &str = "mx-tok-7f3a9c1e5b2d4680-QZPLW";

/// `clawkeep secrets ARGS` on `state`, with `stdin` as its input.
fn secrets(state: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(clawkeep())
        .arg("secrets")
        .args(args)
        .env("CLAWKEEP_STATE_DIR", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// sha256 of `s` with the host's sha256sum.
fn sha256(s: &str) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(md) = p.symlink_metadata() else {
            continue;
        };
        if md.is_dir() {
            out.extend(files_containing(&p, needle));
        } else if md.is_file() {
            if let Ok(b) = std::fs::read(&p) {
                if b.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    out.push(p.display().to_string());
                }
            }
        }
    }
    out
}

const FILES_AGENT: &str = r#"
[[agent]]
name = "customer"
command = "/bin/sh"
args = ["-c", '''
f=/run/secrets/matrix_token
[ -f $f ] && echo exists=yes
echo "mode=$(stat -c %a $f)"
echo "owner=$(stat -c %u $f)"
echo "dirmode=$(stat -c %a /run/secrets)"
echo "sha=$(sha256sum $f | cut -d' ' -f1)"
echo "others=$(ls /run/secrets | wc -l)"
touch /run/secrets/x 2>/dev/null && echo secrets=writable || echo secrets=read-only
echo "in_home=$(find /home/agent -name 'matrix_token*' | wc -l)"
echo "in_env=$(env | grep -c matrix_token)"
echo done=yes
exec sleep 1000
''']
secrets = ["matrix_token"]
restart = "never"

[[agent]]
name = "envy"
command = "/bin/sh"
args = ["-c", '''
echo "sha=$(printf %s "$matrix_token" | sha256sum | cut -d' ' -f1)"
echo "run_secrets=$(ls /run/secrets 2>/dev/null | wc -l)"
echo done=yes
exec sleep 1000
''']
secrets = ["matrix_token"]
secrets_as = "env"
restart = "never"
"#;

#[test]
fn secrets_reach_the_sandbox_and_nothing_else() {
    let dir = FleetDir::new("secrets", FILES_AGENT);
    let state = dir.state.clone();

    // The CLI: refusals first, then the values (with the trailing newline a shell adds).
    let o = secrets(&state, &["set", "customer", "bad-name"], "v\n");
    assert!(!o.status.success());
    assert!(text(&o).contains("is not valid"), "{}", text(&o));
    let o = secrets(&state, &["set", "customer", "matrix_token"], "\n");
    assert!(!o.status.success());
    assert!(text(&o).contains("is empty"), "{}", text(&o));
    for agent in ["customer", "envy"] {
        let o = secrets(
            &state,
            &["set", agent, "matrix_token"],
            &format!("{VALUE}\n"),
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = secrets(&state, &["set", "customer", "old_one"], "x");
    assert!(o.status.success(), "{}", text(&o));
    let o = secrets(&state, &["rm", "customer", "old_one"], "");
    assert!(o.status.success(), "{}", text(&o));
    let o = secrets(&state, &["rm", "customer", "old_one"], "");
    assert!(!o.status.success(), "removing twice must fail");
    let o = secrets(&state, &["list", "--json"], "");
    assert!(o.status.success(), "{}", text(&o));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!({"agents": {"customer": ["matrix_token"], "envy": ["matrix_token"]}})
    );
    assert!(!text(&o).contains(VALUE));
    let o = secrets(&state, &["list", "envy"], "");
    assert!(
        o.status.success() && !text(&o).contains("customer"),
        "{}",
        text(&o)
    );

    let sdir = state.join("secrets");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&sdir), 0o700);
    assert_eq!(mode(&sdir.join("node.key")), 0o600);
    assert_eq!(mode(&sdir.join("secrets.age")), 0o600);

    let sup = Supervisor::start_in(dir);
    let want = sha256(VALUE);
    let out = support::wait_for(Duration::from_secs(20), "customer's report", || {
        let l = sup.logs("customer");
        l.contains("done=yes").then_some(l)
    });
    let f = facts(&out);
    assert_eq!(f["exists"], "yes", "{out}");
    assert_eq!(f["mode"], "600", "{out}");
    assert_eq!(f["owner"], "0", "owned by the agent's root:\n{out}");
    assert_eq!(f["dirmode"], "700", "{out}");
    assert_eq!(f["sha"], want, "the file holds the value, newline trimmed");
    assert_eq!(f["others"], "1", "only the declared secret:\n{out}");
    assert_eq!(f["secrets"], "read-only", "{out}");
    assert_eq!(f["in_home"], "0", "secrets stay out of the (synced) home");
    assert_eq!(f["in_env"], "0", "as files, not env");

    let out = support::wait_for(Duration::from_secs(20), "envy's report", || {
        let l = sup.logs("envy");
        l.contains("done=yes").then_some(l)
    });
    let f = facts(&out);
    assert_eq!(f["sha"], want, "{out}");
    // The shared rootfs has the (empty) mount point the files agent needs: no files in it.
    assert_eq!(f["run_secrets"], "0", "{out}");

    sup.wait_state("customer", "running", Duration::from_secs(10));
    sup.wait_state("envy", "running", Duration::from_secs(10));
    // Nowhere outside the sandboxes: not in ps, logs, config.json, the homes or the state dir.
    let ps = sup.cli(&["ps", "--json"]);
    assert!(!text(&ps).contains(VALUE));
    let ps = sup.cli(&["ps"]);
    assert!(!text(&ps).contains(VALUE));
    for name in ["customer", "envy"] {
        assert!(
            !sup.logs(name).contains(VALUE),
            "{name}'s log shows the value"
        );
    }
    assert!(
        !sup.log().contains(VALUE),
        "the supervisor's log shows the value"
    );
    let leaks = files_containing(&sup.state, VALUE);
    assert!(leaks.is_empty(), "the value is on disk in {leaks:?}");
    let host_ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&host_ps.stdout).contains(VALUE));
    let mut sup = sup;
    sup.down();
    let leaks = files_containing(&sup.state, VALUE);
    assert!(
        leaks.is_empty(),
        "after shutdown the value is on disk in {leaks:?}"
    );
}

#[test]
fn unset_secret_fails_that_start_clearly() {
    let body = r#"
[[agent]]
name = "lonely"
command = "/bin/sh"
args = ["-c", "echo started; exec sleep 1000"]
secrets = ["matrix_token"]
restart = "never"

[[agent]]
name = "fine"
command = "/bin/sh"
args = ["-c", "exec sleep 1000"]
"#;
    let dir = FleetDir::new("secrets-unset", body);
    // Another agent's secret exists: the key and file are there, this one's is not.
    let o = secrets(&dir.state, &["set", "fine", "other"], "v");
    assert!(o.status.success(), "{}", text(&o));
    let mut sup = Supervisor::start_in(dir);
    let logs = support::wait_for(Duration::from_secs(20), "lonely's start error", || {
        let l = sup.logs("lonely");
        l.contains("failed to start").then_some(l)
    });
    assert!(
        logs.contains("secret matrix_token declared in the fleet file but not set"),
        "{logs}"
    );
    assert!(
        logs.contains("clawkeep secrets set lonely matrix_token"),
        "{logs}"
    );
    assert!(
        !logs.contains("started\n"),
        "the agent must not have run:\n{logs}"
    );
    let row = sup.wait_state("lonely", "exited", Duration::from_secs(10));
    assert!(
        row.to_string()
            .contains("clawkeep secrets set lonely matrix_token"),
        "{row}"
    );
    // The supervisor and the other agent go on.
    sup.wait_state("fine", "running", Duration::from_secs(10));

    // Once set, a start works.
    let o = secrets(&sup.state, &["set", "lonely", "matrix_token"], VALUE);
    assert!(o.status.success(), "{}", text(&o));
    let o = sup.cli(&["start", "lonely"]);
    assert!(o.status.success(), "{}", text(&o));
    sup.wait_state("lonely", "running", Duration::from_secs(10));
    sup.down();
}
