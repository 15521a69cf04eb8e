//! The headline: a fleet of two real OpenClaw 2026.9.6 gateways (the pinned runtime installed
//! offline, mounted read-only) in clawkeep's sandboxes, answering through clawkeep's model
//! gateway from a real llama-server, with their brains in a real Garage that clawkeep runs.
//! research has `docs` read-write, customer read-only.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

#[path = "../minio/tests/support/mod.rs"]
mod s3;

#[path = "../supervisor/tests/support/garage.rs"]
mod garage;

#[path = "../ollama/tests/support/mod.rs"]
mod llm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clawkeep_store::remote::{Credential, Store};
use support::{in_sandbox, rt, wait_for, FleetDir, Scratch, Supervisor};

/// Keys of `bucket` outside clawkeep's own `.clawkeep/` prefix.
fn keys(rt: &tokio::runtime::Runtime, store: &Store, bucket: &str) -> Vec<String> {
    rt.block_on(store.bucket(bucket).list(""))
        .map(|v| {
            v.into_iter()
                .map(|o| o.key)
                .filter(|k| !k.starts_with(".clawkeep/"))
                .collect()
        })
        .unwrap_or_default()
}

/// Every regular file under `dir`, relative path -> bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(root, &e.path(), out);
            } else if ft.is_file() {
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// POST one chat message to an agent's OpenClaw through its forwarded host port.
fn chat(rt: &tokio::runtime::Runtime, port: u16, token: &str, text: &str) -> serde_json::Value {
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(240))
            .json(&serde_json::json!({
                "model": "openclaw/main",
                "messages": [{ "role": "user", "content": text }]
            }))
            .send()
            .await
            .expect("OpenClaw answers on the forwarded port");
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.is_success(), "chat: HTTP {status}: {body}");
        serde_json::from_str(&body).unwrap()
    })
}

/// The agent's gateway token, as the operator gets it: `clawkeep token show`.
fn token(sup: &Supervisor, agent: &str) -> String {
    let out = sup.cli(&["token", "show", agent]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `clawkeep audit --json`: exit status and the findings as (id, subject).
fn audit(sup: &Supervisor) -> (bool, Vec<(String, String)>, String) {
    let out = sup.cli(&["audit", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    let findings = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (out.status.success(), findings, text)
}

fn pid(sup: &Supervisor, agent: &str) -> i64 {
    sup.row(agent)["pid"]
        .as_i64()
        .expect("a running agent has a pid")
}

fn wait_healthy(sup: &Supervisor, agent: &str) {
    wait_for(
        Duration::from_secs(240),
        &format!("{agent}'s OpenClaw to be ready"),
        || {
            let r = sup.row(agent);
            assert_ne!(r["state"], "exited", "{agent} exited:\n{}", sup.logs(agent));
            (r["health"] == "healthy").then_some(())
        },
    );
}

#[test]
fn two_real_openclaw_agents_answer_sync_share_and_stay_isolated() {
    let rt = rt();
    let llama = rt.block_on(llm::LlamaServer::start_answer());

    // The pinned runtime, installed offline, where the agents' ids can reach it.
    let rts = Scratch::new("oc-runtimes");
    let runtime = support::install_runtime(&rts.dir.join("runtimes"));
    let data = Scratch::new("oc-data");
    let (store, store_port) = garage::store_section(&data.dir.join("store"));
    std::fs::write(
        data.dir.join("research.md"),
        "# research\nAnswer in one word.\n",
    )
    .unwrap();
    std::fs::write(data.dir.join("user.md"), "# USER\nThe lab.\n").unwrap();
    let (p_research, p_customer) = (llm::free_port(), llm::free_port());
    let body = format!(
        r#"
{store}

[defaults]
memory = "2GiB"
pids = 1024
nofile = 16384
cpu = 1.0
restart = "on-failure"
stop_grace = "15s"
model = "tiny-random"
# The tiny model cannot drive tools (it would call them forever): answers only.
openclaw = {{ tools = {{ deny = ["*"] }}, gateway = {{ http = {{ endpoints = {{ chatCompletions = {{ enabled = true }} }} }} }} }}

[[agent]]
name = "research"
team = "research"
soul = "{soul}"
workspace = {{ "USER.md" = "{user}" }}
gateway_port = {p_research}
knowledge = {{ docs = "rw" }}

[[agent]]
name = "customer"
team = "support"
gateway_port = {p_customer}
knowledge = {{ docs = "ro" }}

[models]
default = "tiny-random"
context_window = 65536
max_output_tokens = 16
upstream = [{{ name = "llama", url = "{llama}", api = "openai", models = ["tiny-random"] }}]
"#,
        soul = data.dir.join("research.md").display(),
        user = data.dir.join("user.md").display(),
        llama = llama.url(),
    );
    let runtime_lines = format!(
        "openclaw = \"2026.9.6\"\nnode = \"24\"\nruntimes = \"{}\"",
        rts.dir.join("runtimes").display()
    );
    let dir = FleetDir::with_runtime("openclaw", &runtime_lines, &body);
    support::add_libs_for(
        &dir.scratch.dir.join("rootfs"),
        &runtime.join("node/bin/node"),
    );
    let mut sup = Supervisor::start_in(dir);
    let root = garage::root_store(&data.dir.join("store"), store_port);
    wait_healthy(&sup, "research");
    wait_healthy(&sup, "customer");

    // 1-2. A message to research through its forwarded port comes back answered, and the
    // tokens are billed to research.
    let answer = chat(
        &rt,
        p_research,
        &token(&sup, "research"),
        "What is the capital of France?",
    );
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(content.contains("paris"), "{answer}");
    let prompt = answer["usage"]["prompt_tokens"].as_u64().unwrap();
    let out = sup.cli(&["spend", "--by", "agent", "--json"]);
    let spend: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let rows = spend["rows"].as_array().unwrap();
    let research = rows
        .iter()
        .find(|r| r["name"] == "research")
        .unwrap_or_else(|| panic!("{spend}"));
    assert_eq!(research["prompt_tokens"].as_u64(), Some(prompt), "{spend}");
    assert!(
        research["completion_tokens"].as_u64().unwrap() >= 1,
        "{spend}"
    );
    assert!(!rows.iter().any(|r| r["name"] == "customer"), "{spend}");
    // A wrong token is refused by OpenClaw itself.
    let wrong = rt.block_on(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{p_research}/v1/models"))
            .bearer_auth("not-the-token")
            .send(),
    );
    assert_eq!(wrong.unwrap().status(), 401);

    // 3. What the agent writes in its workspace reaches the store within 5 s; nothing under
    // credentials, the session databases or keys ever does.
    let bucket = "ck-agent-research";
    wait_for(
        Duration::from_secs(30),
        "OpenClaw's workspace files in the store",
        || {
            let k = keys(&rt, &root, bucket);
            (k.iter().any(|k| k == ".openclaw/workspace/AGENTS.md")
                && k.iter().any(|k| k == ".openclaw/workspace/SOUL.md"))
            .then_some(())
        },
    );
    let research_pid = pid(&sup, "research");
    let t0 = Instant::now();
    let wrote = in_sandbox(
        research_pid,
        "mkdir -p /home/agent/.openclaw/workspace/memory && echo 'france: paris' > /home/agent/.openclaw/workspace/memory/facts.md && echo wrote",
    );
    assert!(wrote.contains("wrote"), "{wrote}");
    wait_for(
        Duration::from_secs(5),
        "the new memory file in the store",
        || {
            keys(&rt, &root, bucket)
                .contains(&".openclaw/workspace/memory/facts.md".to_string())
                .then_some(())
        },
    );
    eprintln!("write to store: {:?}", t0.elapsed());
    let all = keys(&rt, &root, bucket);
    for k in &all {
        for bad in [
            "credentials/",
            ".sqlite",
            "sessions/",
            ".key",
            ".openclaw/cache/",
            ".openclaw/tmp/",
        ] {
            assert!(!k.contains(bad), "{k} must never leave the node:\n{all:#?}");
        }
    }
    // The generated config syncs (it is the agent's brain), without the token in it.
    let cfg = rt
        .block_on(root.bucket(bucket).get_bytes(".openclaw/openclaw.json"))
        .expect("openclaw.json is synced");
    assert!(!String::from_utf8_lossy(&cfg).contains(&token(&sup, "research")));

    // 3b. A writer to the bucket cannot change the running agent's enforced openclaw.json:
    // its version never comes down, and research's own goes back up.
    let cfg_path = sup
        .state
        .join("agents/research/home/.openclaw/openclaw.json");
    let enforced = std::fs::read(&cfg_path).unwrap();
    let intruder_dir = Scratch::new("oc-intruder");
    rt.block_on(async {
        let b = root.bucket(bucket);
        let other = s3::syncer(b, &intruder_dir.dir.join("home"), "intruder");
        other.pull_into_place().await.unwrap();
        let path = intruder_dir.dir.join("home/.openclaw/openclaw.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["gateway"]["auth"] = serde_json::json!({ "mode": "none" });
        std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        other.sync(false).await.unwrap();
    });
    // A reconcile (every 3 s here) runs a full pass meanwhile.
    std::thread::sleep(Duration::from_secs(5));
    let out = sup.cli(&["sync", "pull", "research"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&cfg_path).unwrap(),
        enforced,
        "the store rewrote it"
    );
    wait_for(
        Duration::from_secs(10),
        "the enforced config back in the store",
        || {
            let stored = rt.block_on(root.bucket(bucket).get_bytes(".openclaw/openclaw.json"));
            (stored.ok().as_deref() == Some(&enforced[..])).then_some(())
        },
    );

    // 4. Shared knowledge: research writes docs, customer reads them and cannot write, not
    // in its sandbox (EROFS) and not with its store key (AccessDenied).
    let w = in_sandbox(
        research_pid,
        "echo 'the guide' > /home/agent/knowledge/docs/guide.md && echo shared=ok",
    );
    assert!(w.contains("shared=ok"), "{w}");
    let customer_pid = pid(&sup, "customer");
    let r = in_sandbox(
        customer_pid,
        "cat /home/agent/knowledge/docs/guide.md; echo x > /home/agent/knowledge/docs/mine.md || echo write=refused",
    );
    assert!(r.contains("the guide"), "{r}");
    assert!(
        r.contains("write=refused") && r.contains("Read-only file system"),
        "{r}"
    );
    let customer_key = Credential::from_file(&sup.state.join("brains/keys/customer.json")).unwrap();
    let customer_store = Store::connect(root.endpoint(), "us-east-1", &customer_key);
    let err = rt
        .block_on(
            customer_store
                .bucket("ck-shared-docs")
                .put("mine.md", bytes::Bytes::from_static(b"x")),
        )
        .unwrap_err();
    assert_eq!(err.s3_code(), Some("AccessDenied"), "{err}");
    wait_for(
        Duration::from_secs(10),
        "the guide in the shared bucket",
        || {
            keys(&rt, &root, "ck-shared-docs")
                .contains(&"guide.md".to_string())
                .then_some(())
        },
    );

    // 5. From inside each sandbox only the model gateway answers: not the host's loopback
    // (the store's port), not another network, not DNS.
    for (agent, p) in [("research", research_pid), ("customer", customer_pid)] {
        let out = in_sandbox(
            p,
            &format!(
                "ckprobe connect 127.0.0.1 11434; ckprobe connect 127.0.0.1 {store_port}; \
                 ckprobe connect 10.0.0.1 443; ckprobe connect 127.0.0.53 53; \
                 nslookup example.com >/dev/null 2>&1 && echo dns=ok || echo dns=failed"
            ),
        );
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("connect")).collect();
        assert_eq!(
            lines,
            [
                "connect: ok",
                "connect: ECONNREFUSED",
                "connect: ENETUNREACH",
                "connect: ECONNREFUSED"
            ],
            "{agent}:\n{out}"
        );
        assert!(out.contains("dns=failed"), "{agent}:\n{out}");
    }

    // 7. The audit is clean on this fleet, and flags a broken one: research's config made
    // world-readable and its gateway bound to the LAN on disk.
    let (ok, findings, text) = audit(&sup);
    assert!(ok && findings.is_empty(), "{text}");
    let cfg = sup
        .state
        .join("agents/research/home/.openclaw/openclaw.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["gateway"]["bind"] = "lan".into();
    std::fs::write(&cfg, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // ... and research's token printed into its log, as a careless agent or tool might.
    let log = sup.state.join("logs/research.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(
        &mut f,
        format!("debug: token={}\n", token(&sup, "research")).as_bytes(),
    )
    .unwrap();
    let (ok, findings, text) = audit(&sup);
    assert!(!ok, "{text}");
    assert!(
        findings
            .iter()
            .any(|(id, s)| id == "CK-LOG-001" && s.ends_with("research.log")),
        "{text}"
    );
    for id in ["CK-OC-001", "CK-OC-002"] {
        assert!(
            findings.contains(&(id.to_string(), "research".to_string())),
            "{id} for research:\n{text}"
        );
    }
    assert!(!findings.iter().any(|(_, s)| s == "customer"), "{text}");
    assert!(
        !text.contains(&token(&sup, "research")),
        "no token in the audit"
    );

    // 6. Stop, lose research's directory (home and bundle) while the sync state stays (issue
    // 14): the next start pulls the whole brain before OpenClaw's seeds are written, and
    // nothing is deleted in the store.
    let workspace = sup.state.join("agents/research/home/.openclaw/workspace");
    sup.down();
    let before = files(&workspace);
    assert!(
        before.contains_key(Path::new("memory/facts.md")),
        "{:?}",
        before.keys()
    );
    assert!(before.contains_key(Path::new("USER.md")));
    let seeded = |log: &str| {
        log.lines()
            .filter(|l| l.contains("seeded the OpenClaw workspace") && l.contains("research"))
            .count()
    };
    assert_eq!(seeded(&sup.log()), 1, "seeded at the first start");
    std::fs::remove_dir_all(sup.state.join("agents/research")).unwrap();
    assert!(sup.state.join("brains/sync/agent-research.json").exists());
    sup.up_again();
    wait_healthy(&sup, "research");
    let out = sup.cli(&["sync", "push", "research"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        seeded(&sup.log()),
        1,
        "nothing seeded over the pulled brain"
    );
    let after = files(&workspace);
    let stored = keys(&rt, &root, bucket);
    for (path, bytes) in &before {
        assert_eq!(after.get(path), Some(bytes), "{} differs", path.display());
        let key = format!(".openclaw/workspace/{}", path.display());
        assert!(stored.contains(&key), "{key} was deleted from the store");
    }

    // 6b. Stop everything, lose the node's whole state dir, come up again: research's
    // workspace is back from the store, byte for byte.
    sup.down();
    let before = files(&workspace);
    std::fs::remove_dir_all(&sup.state).unwrap();
    sup.up_again();
    wait_healthy(&sup, "research");
    let after = files(&workspace);
    for (path, bytes) in &before {
        assert_eq!(
            after.get(path),
            Some(bytes),
            "{} differs after the restore",
            path.display()
        );
    }
    // The seeds did not overwrite what came back (USER.md is the fleet's, unchanged anyway).
    assert_eq!(after[Path::new("USER.md")], b"# USER\nThe lab.\n");
    sup.down();
}
