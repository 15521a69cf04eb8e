//! The model gateway wired into the supervisor: agents reach a real llama-server only
//! through their own socket at 127.0.0.1:11434, are billed as themselves, and the ledger
//! survives a kill -9 of the supervisor; a managed llama-server runs in a sandbox of its own.
//! And on its own, for a cluster (`clawkeep gateway`): one listener, agents known by
//! credential.

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

/// The first host id of the first managed backend's range with the default `uid_base`.
const FIRST_BACKEND_UID: u32 = 1_000_000_000 - 65_536;

/// Pid of the process whose argv[0] is `program`.
fn pid_of(program: &std::path::Path) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv0 = cmd.split(|b| *b == 0).next()?;
        (argv0 == program.as_os_str().as_encoded_bytes()).then_some(pid)
    })
}

/// GET /health on 127.0.0.1:`port` as `uid` (through setpriv and the system's Python): the
/// answer's status line, or "closed" when no byte came back (closed, reset or silent).
fn health_as(uid: u32, port: u16) -> String {
    let script = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except (ConnectionResetError, socket.timeout):
    pass  # closed unread (a reset) or never answered: no answer either way
print(data.split(b"\r\n")[0].decode() if data else "closed")
"#;
    let out = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
            &port.to_string(),
        ])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_managed_backend_runs_sandboxed_as_its_own_user_and_only_the_gateway_reaches_it() {
    use std::os::unix::fs::PermissionsExt;
    let port = llm::free_port();
    let model = llm::tiny_model();
    // The backend's program where an unprivileged uid can reach it (the cached build is under
    // root's 0700 home), behind a wrapper that reports what the backend's sandbox holds.
    let bin = support::Scratch::new("backend-bin");
    let server = bin.dir.join("llama-server");
    std::fs::copy(llm::llm_dir().join("llama-server"), &server).unwrap();
    let wrapper = bin.dir.join("serve");
    std::fs::write(
        &wrapper,
        r#"#!/bin/sh
echo "backend_uid=$(id -u)"
echo "backend_links=$(ls /sys/class/net | tr '\n' ' ')"
echo "backend_root=$(ls / | tr '\n' ' ')"
echo "backend_kmsg=$(ls /dev/kmsg)"
echo "backend_home_write=$(touch /home/agent/x && echo yes)"
echo "backend_model_write=$(touch "$2" 2>/dev/null && echo yes || echo no)"
exec "$(dirname "$0")/llama-server" "$@"
"#,
    )
    .unwrap();
    for f in [&server, &wrapper] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&bin.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let chat = r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":3}"#;
    let stream = r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}"#;
    let body = format!(
        r#"
[models]
default = "tiny-random"

[[models.backend]]
name = "llama"
kind = "llama-server"
binary = "{wrapper}"
model = "{model}"
models = ["tiny-random"]
port = {port}
args = ["-np", "2", "-t", "1", "-c", "2048"]
devices = ["/dev/kmsg"]

[[agent]]
name = "asker"
command = "/bin/sh"
args = ["-c", '''
post() {{ wget -q -O - --header 'Content-Type: application/json' --post-data "$1" http://127.0.0.1:11434/v1/chat/completions; echo; }}
post '{chat}'
post '{stream}'
ckprobe connect 127.0.0.1 {port}
echo "devices=$(ls /dev | tr '\n' ' ')"
exec sleep 1000''']
"#,
        wrapper = wrapper.display(),
        model = model.display(),
    );
    let mut sup = Supervisor::start("backend", &body);
    let agent = sup.wait_state("asker", "running", Duration::from_secs(60));
    // The agent started only once the backend answered its health check.
    let backend = sup.row("llama");
    assert_eq!(backend["kind"], "service");
    assert_eq!(backend["health"], "healthy");
    assert_eq!(agent["restarts"], 0);
    let log = support::wait_for(Duration::from_secs(30), "the agent's answers", || {
        let l = sup.logs("asker");
        l.contains("devices=").then_some(l)
    });
    // The gateway serves, whole answers and streams.
    assert!(log.contains(r#""object":"chat.completion""#), "{log}");
    assert!(log.contains(r#""completion_tokens":3"#), "{log}");
    assert!(log.contains(r#""object":"chat.completion.chunk""#), "{log}");
    assert!(log.contains("data: [DONE]"), "{log}");
    let f = facts(&log);
    // The agent cannot reach the backend but through its gateway socket.
    assert_eq!(f["connect"], "ECONNREFUSED", "{log}");
    // The agent's sandbox has the minimal /dev only: the backend's device is not in it.
    assert_eq!(
        f["devices"],
        "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero",
        "{log}"
    );

    // The backend: an unprivileged host uid, no capabilities, seccomp, no_new_privs, its own
    // network namespace.
    let pid = pid_of(&server).expect("the llama-server process");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let id = FIRST_BACKEND_UID.to_string();
    assert_eq!(field("Uid"), [id.as_str(); 4].join(" "), "{status}");
    assert_eq!(field("Gid"), [id.as_str(); 4].join(" "), "{status}");
    assert_eq!(field("CapEff"), "0000000000000000", "{status}");
    assert_eq!(field("CapBnd"), "0000000000000000", "{status}");
    assert_eq!(field("NoNewPrivs"), "1", "{status}");
    assert_eq!(field("Seccomp"), "2", "{status}");
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "the backend shares the host's network"
    );
    let blog = sup.logs("llama");
    let b = facts(&blog);
    assert_eq!(b["backend_uid"], "0", "{blog}");
    assert_eq!(b["backend_links"], "lo", "{blog}");
    // Its root: the system directories and a small /etc of its own, none of the host's homes.
    let root: Vec<&str> = b["backend_root"].split(' ').collect();
    for absent in ["root", "var", "srv", "boot"] {
        assert!(!root.contains(&absent), "{absent} in {root:?}");
    }
    assert!(root.contains(&"usr"), "{root:?}");
    // The device it was given, a writable home of its own, a read-only model.
    assert_eq!(b["backend_kmsg"], "/dev/kmsg", "{blog}");
    assert_eq!(b["backend_home_write"], "yes", "{blog}");
    assert_eq!(b["backend_model_write"], "no", "{blog}");

    // On the host its port answers root (the gateway, the health checks) and no one else.
    assert_eq!(health_as(0, port), "HTTP/1.1 200 OK");
    assert_eq!(health_as(65534, port), "closed");
    sup.down();
}

/// `clawkeep gateway` started on `fleet` with credentials in `creds`, and where it serves.
fn cluster_gateway(
    fleet: &std::path::Path,
    creds: &std::path::Path,
    ledger: &std::path::Path,
) -> (support::KillOnDrop, String) {
    let mut cmd = std::process::Command::new(support::clawkeep());
    cmd.arg("gateway")
        .arg(fleet)
        .arg("--credentials")
        .arg(creds)
        .arg("--ledger")
        .arg(ledger)
        .args(["--listen", "127.0.0.1:0"]);
    support::started(cmd, "clawkeep gateway: serving 2 agents on ")
}

/// `clawkeep pod shim` to `gateway` with the credential in `cred`, and where it listens.
fn pod_shim(gateway: &str, cred: &std::path::Path) -> (support::KillOnDrop, String) {
    let mut cmd = std::process::Command::new(support::clawkeep());
    cmd.args(["pod", "shim", "--gateway", gateway, "--credential"])
        .arg(cred)
        .args(["--listen", "127.0.0.1:0"]);
    support::started(cmd, "clawkeep pod shim: serving on ")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_listener_serves_every_agent_by_its_credential_and_its_pod_shim_bills_it_as_itself() {
    let llama = llm::LlamaServer::start().await;
    let s = support::Scratch::new("cluster-gateway");
    // Checked as for a cluster: no rootfs or programs need exist here.
    let fleet = s.dir.join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            r#"
[runtime]
rootfs = "rootfs"

[models]
upstream = [{{ name = "llama", url = "{}", api = "openai", models = ["tiny-random"] }}]

[[agent]]
name = "alpha"
team = "lab"
command = "/bin/agent"
# Not in the gateway's pod (nor here): the gateway reads the fleet file alone.
soul = "souls/alpha.md"

[[agent]]
name = "beta"
team = "support"
command = "/bin/agent"
"#,
            llama.url()
        ),
    )
    .unwrap();
    let creds = s.dir.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let (alpha, beta) = ("a1".repeat(20), "b2".repeat(20));
    std::fs::write(creds.join("alpha"), format!("{alpha}\n")).unwrap();
    std::fs::write(creds.join("beta"), &beta).unwrap();
    let state = s.dir.join("state");
    let (gw, addr) = cluster_gateway(&fleet, &creds, &state.join("ledger"));

    let http = reqwest::Client::new();
    let chat = r#"{"model":"tiny-random","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":4}}"#;
    let ask = |cred: Option<&str>| {
        let mut r = http
            .post(format!("http://{addr}/api/chat"))
            .header("Content-Type", "application/json")
            .body(chat);
        if let Some(c) = cred {
            r = r.bearer_auth(c);
        }
        r.send()
    };
    for (cred, times) in [(&alpha, 1), (&beta, 2)] {
        for _ in 0..times {
            let r = ask(Some(cred)).await.unwrap();
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["eval_count"], 4, "{body}");
        }
    }
    // No credential, or one no agent has: refused, and billed to no one.
    for cred in [None, Some("c3".repeat(20).as_str())] {
        let r = ask(cred).await.unwrap();
        assert_eq!(r.status(), 401, "{cred:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("credential"),
            "{body}"
        );
    }

    // Through alpha's in-pod shim: no credential in the agent's hands, a forged one dropped,
    // a stream passed through as it comes.
    let shim_cred = s.dir.join("alpha.credential");
    std::fs::write(&shim_cred, &alpha).unwrap();
    let (shim, shim_addr) = pod_shim(&format!("http://{addr}"), &shim_cred);
    let r = http
        .post(format!("http://{shim_addr}/api/chat"))
        .body(chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["eval_count"], 4, "{body}");
    let streamed = http
        .post(format!("http://{shim_addr}/v1/chat/completions"))
        .bearer_auth(&beta)
        .body(r#"{"model":"tiny-random","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":4}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    assert_eq!(
        streamed.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = streamed.text().await.unwrap();
    let (events, done) = llm::sse_events(&text);
    assert!(done && !events.is_empty(), "{text}");

    // Each agent is billed for exactly its own requests (the ledger syncs every second).
    let spend = || support::spend_by_agent(&state);
    support::wait_for(
        Duration::from_secs(10),
        "five requests in the ledger",
        || {
            let v = spend()?;
            let total: u64 = v["rows"]
                .as_array()?
                .iter()
                .map(|r| r["requests"].as_u64().unwrap_or(0))
                .sum();
            (total == 5).then_some(())
        },
    );
    let by_agent = spend().unwrap();
    assert_eq!(
        row(&by_agent, "alpha")["requests"],
        3,
        "one direct, two through its shim"
    );
    assert_eq!(row(&by_agent, "beta")["requests"], 2);
    assert_eq!(row(&by_agent, "beta")["completion_tokens"], 8);
    assert_eq!(by_agent["rows"].as_array().unwrap().len(), 2, "{by_agent}");
    drop((shim, gw));

    // Two agents with one credential, or one without any: it does not start, and says why.
    let refused = || {
        std::process::Command::new(support::clawkeep())
            .arg("gateway")
            .arg(&fleet)
            .arg("--credentials")
            .arg(&creds)
            .arg("--ledger")
            .arg(state.join("ledger"))
            .output()
            .unwrap()
    };
    std::fs::write(creds.join("beta"), format!("{alpha}\n")).unwrap();
    let shared = refused();
    let said = String::from_utf8_lossy(&shared.stderr);
    assert_eq!(shared.status.code(), Some(2), "{said}");
    assert!(
        said.contains("agent \"beta\": its credential")
            && said.contains("is also agent \"alpha\"'s"),
        "{said}"
    );
    std::fs::remove_file(creds.join("beta")).unwrap();
    let missing = refused();
    let said = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "agent \"beta\": its credential {} cannot be read",
            creds.join("beta").display()
        )),
        "{said}"
    );
    assert!(said.contains("head -c 32 /dev/urandom | base64"), "{said}");
}
