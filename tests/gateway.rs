//! The model gateway wired into the supervisor: agents reach a real llama-server only
//! through their own socket at 127.0.0.1:11434, are billed as themselves, and the ledger
//! survives a kill -9 of the supervisor.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

#[path = "../ollama/tests/support/mod.rs"]
mod llm;

use std::time::Duration;

use support::{facts, Supervisor};

/// An agent that asks the gateway from inside its sandbox, then probes the upstream.
fn asker(name: &str, team: &str, requests: usize, llama_port: u16) -> String {
    let ask = r#"wget -q -O - --header 'Content-Type: application/json' --post-data '{"model":"tiny-random","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":4}}' http://127.0.0.1:11434/api/chat; echo"#;
    let asks = vec![ask; requests].join("; ");
    format!(
        r#"
[[agent]]
name = "{name}"
team = "{team}"
command = "/bin/sh"
args = ["-c", '''{asks}; ckprobe connect 127.0.0.1 {llama_port}; echo done=yes''']
restart = "never"
"#
    )
}

fn spend(sup: &Supervisor, by: &str) -> serde_json::Value {
    let out = sup.cli(&["spend", "--by", by, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn row<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_are_billed_as_themselves_and_the_ledger_survives_kill_9() {
    let llama = llm::LlamaServer::start().await;
    let body = format!(
        r#"
[models]
upstream = [{{ name = "llama", url = "{url}", api = "openai", models = ["tiny-random"] }}]

{a}
{b}
"#,
        url = llama.url(),
        a = asker("alpha", "lab", 1, llama.port),
        b = asker("beta", "support", 2, llama.port),
    );
    let mut sup = Supervisor::start("gateway", &body);
    for name in ["alpha", "beta"] {
        sup.wait_state(name, "exited", Duration::from_secs(60));
    }
    // From inside: answers came back, and the upstream itself is out of reach.
    let alpha = sup.logs("alpha");
    assert_eq!(alpha.matches(r#""done":true"#).count(), 1, "{alpha}");
    assert!(alpha.contains(r#""eval_count":4"#), "{alpha}");
    let f = facts(&alpha);
    assert_eq!(
        f["connect"], "ECONNREFUSED",
        "the agent must not reach the upstream directly"
    );
    assert_eq!(f["done"], "yes");
    assert_eq!(sup.logs("beta").matches(r#""done":true"#).count(), 2);

    // Each agent is billed for exactly its own requests.
    let by_agent = spend(&sup, "agent");
    let (a, b) = (row(&by_agent, "alpha"), row(&by_agent, "beta"));
    assert_eq!(a["requests"], 1);
    assert_eq!(b["requests"], 2);
    assert_eq!(a["completion_tokens"], 4);
    assert_eq!(b["completion_tokens"], 8);
    assert_eq!(a["errors"], 0);
    // `ps` shows each agent's tokens today, the same numbers.
    assert_eq!(sup.row("alpha")["tokens_today"], a["total_tokens"]);
    assert_eq!(sup.row("beta")["tokens_today"], b["total_tokens"]);
    let by_team = spend(&sup, "team");
    assert_eq!(row(&by_team, "lab")["total_tokens"], a["total_tokens"]);
    assert_eq!(row(&by_team, "support")["total_tokens"], b["total_tokens"]);
    let table = String::from_utf8(sup.cli(&["spend"]).stdout).unwrap();
    assert!(
        table.starts_with("AGENT  REQUESTS  PROMPT  COMPLETION  TOTAL  ERRORS\n"),
        "{table}"
    );

    // kill -9 of the supervisor: the ledger is intact and still adds up.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    sup.child.wait().unwrap();
    let after = spend(&sup, "agent");
    assert_eq!(after, by_agent);

    // A new supervisor on the same state dir runs the agents again and appends.
    let again = std::process::Command::new(support::clawkeep())
        .arg("up")
        .arg(&sup.dir.fleet)
        .stderr(std::fs::File::create(sup.dir.scratch.dir.join("again.log")).unwrap())
        .spawn()
        .unwrap();
    sup.child = again;
    support::wait_for(Duration::from_secs(60), "the second run's requests", || {
        let r = sup.cli(&["spend", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).ok()?;
        let total: u64 = v["rows"]
            .as_array()?
            .iter()
            .map(|r| r["requests"].as_u64().unwrap_or(0))
            .sum();
        (total == 6).then_some(())
    });
    let twice = spend(&sup, "agent");
    assert_eq!(
        row(&twice, "alpha")["total_tokens"],
        a["total_tokens"].as_u64().unwrap() * 2
    );
    sup.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn managed_backend_runs_first_and_serves_the_agents() {
    let port = llm::free_port();
    let server = llm::llm_dir().join("llama-server");
    let model = llm::tiny_model();
    let body = format!(
        r#"
[models]
default = "tiny-random"

[[models.backend]]
name = "llama"
kind = "llama-server"
binary = "{server}"
model = "{model}"
models = ["tiny-random"]
port = {port}
args = ["-np", "2", "-t", "1", "-c", "2048"]

[[agent]]
name = "asker"
command = "/bin/sh"
args = ["-c", '''wget -q -O - --header 'Content-Type: application/json' --post-data '{{"messages":[{{"role":"user","content":"hi"}}],"max_tokens":3}}' http://127.0.0.1:11434/v1/chat/completions; echo; echo "devices=$(ls /dev | tr '\n' ' ')"; exec sleep 1000''']
"#,
        server = server.display(),
        model = model.display(),
    );
    let mut sup = Supervisor::start("backend", &body);
    let agent = sup.wait_state("asker", "running", Duration::from_secs(60));
    // The agent started only once the backend answered its health check.
    let backend = sup.row("llama");
    assert_eq!(backend["kind"], "service");
    assert_eq!(backend["health"], "healthy");
    assert_eq!(agent["restarts"], 0);
    let log = support::wait_for(Duration::from_secs(30), "the agent's answer", || {
        let l = sup.logs("asker");
        l.contains("devices=").then_some(l)
    });
    assert!(log.contains(r#""object":"chat.completion""#), "{log}");
    assert!(log.contains(r#""completion_tokens":3"#), "{log}");
    // The sandbox has the minimal /dev only: no GPU (or any other host) device reaches it.
    let devices = facts(&log)["devices"].clone();
    assert_eq!(
        devices,
        "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero",
        "{log}"
    );
    sup.down();
}
