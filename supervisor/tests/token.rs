//! `clawkeep token show|rotate` against a running supervisor. The agents of the OpenClaw
//! fleet run a shell instead of OpenClaw's gateway (an agent with a command of its own gets
//! its token the same way, as OPENCLAW_GATEWAY_TOKEN) and print the token they got, so the
//! test sees a rotation reach the agent through its restart.

mod support;

use std::time::Duration;

use support::{wait_for, FleetDir, Scratch, Supervisor};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn show_prints_the_agents_token_and_rotate_restarts_it_with_a_new_one() {
    let rts = Scratch::new("token-runtimes");
    support::install_runtime(&rts.dir.join("runtimes"));
    let runtime_lines = format!(
        "openclaw = \"2026.9.6\"\nruntimes = \"{}\"",
        rts.dir.join("runtimes").display()
    );
    let body = r#"
[[agent]]
name = "shell"
command = "/bin/sh"
args = ["-c", "echo token=$OPENCLAW_GATEWAY_TOKEN; exec sleep 1000"]

[[agent]]
name = "idle"
command = "/bin/sh"
args = ["-c", "exec sleep 1000"]
"#;
    let sup = Supervisor::start_in(FleetDir::with_runtime("token", &runtime_lines, body));
    sup.wait_state("shell", "running", Duration::from_secs(30));
    sup.wait_state("idle", "running", Duration::from_secs(30));

    let out = sup.cli(&["token", "show", "shell"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let old = text(&out.stdout).trim().to_string();
    assert_eq!(old.len(), 64, "only the token on stdout: {old:?}");
    wait_for(Duration::from_secs(10), "the agent's first token", || {
        sup.logs("shell")
            .contains(&format!("token={old}"))
            .then_some(())
    });

    let out = sup.cli(&["token", "rotate", "shell"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new = text(&out.stdout).trim().to_string();
    assert_eq!(new.len(), 64);
    assert_ne!(new, old);
    assert!(
        text(&out.stderr).contains("restarted"),
        "{}",
        text(&out.stderr)
    );
    wait_for(
        Duration::from_secs(10),
        "the agent to get the new token",
        || {
            sup.logs("shell")
                .contains(&format!("token={new}"))
                .then_some(())
        },
    );
    assert_eq!(sup.row("shell")["restarts"], 1);
    let shown = sup.cli(&["token", "show", "shell"]);
    assert_eq!(text(&shown.stdout).trim(), new);

    // A stopped agent stays stopped; it takes the token at its next start.
    assert!(sup.cli(&["stop", "idle"]).status.success());
    let out = sup.cli(&["token", "rotate", "idle"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("next start"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(sup.row("idle")["state"], "stopped");

    let out = sup.cli(&["token", "show", "nobody"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no agent named \"nobody\" (agents: shell, idle)"),
        "{err}"
    );

    let help = sup.cli(&["token", "--help"]);
    assert!(
        text(&help.stdout).contains("Example: "),
        "{}",
        text(&help.stdout)
    );
}

#[test]
fn a_fleet_without_openclaw_has_no_tokens() {
    let sup = Supervisor::start(
        "token-plain",
        "[[agent]]\nname = \"plain\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"exec sleep 1000\"]\n",
    );
    for cmd in ["show", "rotate"] {
        let out = sup.cli(&["token", cmd, "plain"]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains("does not pin OpenClaw"), "{err}");
        assert!(
            err.contains("openclaw = \"2026.9.6\" under [runtime]"),
            "{err}"
        );
    }
}
