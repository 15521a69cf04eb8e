//! The bundle clawkeep generates runs unchanged under runc, with the same isolation.

mod support;

use std::net::TcpListener;
use std::process::Command;

use support::FleetDir;

#[test]
fn generated_bundle_runs_under_runc_with_the_same_isolation() {
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let f = FleetDir::new("runc", &support::inspector(port));
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
    // runc has no init of its own: the agent is PID 1 there.
    support::assert_isolated(&stdout, "sh");
    drop(host);
}
