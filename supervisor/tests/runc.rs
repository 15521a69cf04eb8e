//! The bundle clawkeep generates runs unchanged under runc, with the same isolation.

mod support;

use std::net::TcpListener;
use std::process::Command;

use support::{facts, FleetDir, CHECKS};

#[test]
fn generated_bundle_runs_under_runc_with_the_same_isolation() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let f = FleetDir::new(
        "runc",
        &format!(
            r#"
[[agent]]
name = "inspector"
command = "/bin/sh"
args = ["-c", '''{CHECKS}''']
env = {{ HOST_PORT = "{port}" }}
"#
        ),
    );
    let bundle = f.scratch.dir.join("bundle");
    let out = Command::new(support::clawkeep())
        .args(["bundle"])
        .arg(&f.fleet)
        .arg("inspector")
        .arg("--out")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = format!("clawkeep-test-{}", std::process::id());
    let out = Command::new("runc")
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .expect("runc not found: run scripts/install-deps");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "runc failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f2 = facts(&stdout);
    assert_eq!(f2.get("done").map(String::as_str), Some("yes"), "{stdout}");
    assert_eq!(f2["hostname"], "inspector");
    assert_eq!(f2["uid"], "0");
    assert_eq!(f2["links"], "lo");
    assert!(f2["procs"].parse::<u32>().unwrap() <= 6, "{stdout}");
    assert_eq!(f2["capeff"], "0000000000000000");
    assert_eq!(f2["runtime"], "read-only");
    assert_eq!(f2["home"], "writable");
    assert_eq!(f2["tmp"], "writable");
    for call in ["mount", "unshare", "ptrace", "clone-ns"] {
        assert_eq!(f2[call], "EPERM", "{call} under runc:\n{stdout}");
    }
    assert_eq!(f2["connect"], "ECONNREFUSED");
    assert_eq!(f2["uidmap"], "0 1000000000 65536");
    // runc has no init of its own: the agent is PID 1 there.
    assert_eq!(f2["pid1"], "sh");
    drop(host);
}
