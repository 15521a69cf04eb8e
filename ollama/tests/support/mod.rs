//! A real inference server for the gateway's tests: llama.cpp's llama-server (built once and
//! cached by scripts/install-llama-server) with a tiny designed model written at test time by
//! scripts/make-tiny-gguf.py (the tool-calling one, or its answering 64k-context variant).
//! Nothing is downloaded from a model hub.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory holding the cached llama-server (the script prints it; it builds on the
/// first run, which takes 10-25 minutes).
pub fn llm_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new(repo().join("scripts/install-llama-server"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/install-llama-server");
        assert!(out.status.success(), "scripts/install-llama-server failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// The venv with gguf and numpy, beside the cached server.
fn venv_python() -> PathBuf {
    llm_dir().parent().unwrap().join("llm-venv/bin/python")
}

/// The tiny model, written once per test binary: without tools it never ends its turn, so
/// an answer runs to its token limit; with tools it makes one call.
pub fn tiny_model() -> PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL
        .get_or_init(|| make_tiny_gguf("tiny-random.gguf", &[]))
        .clone()
}

/// The tiny model's answering variant (`make-tiny-gguf.py --answer`), written once per test
/// binary: a chat answer is "paris" and the end of the turn; its context length is 65536.
pub fn tiny_answer_model() -> PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL
        .get_or_init(|| make_tiny_gguf("tiny-answer.gguf", &["--answer"]))
        .clone()
}

fn make_tiny_gguf(name: &str, args: &[&str]) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let st = Command::new(venv_python())
        .arg(repo().join("scripts/make-tiny-gguf.py"))
        .arg(&out)
        .args(args)
        .status()
        .expect("run make-tiny-gguf.py");
    assert!(st.success(), "make-tiny-gguf.py {args:?} failed");
    out
}

/// A free port on the loopback (bound and released: good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running llama-server with the tiny model, served as "tiny-random"; killed on drop.
pub struct LlamaServer {
    pub child: Child,
    pub port: u16,
}

impl LlamaServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[&str]) -> Self {
        Self::start_model(&tiny_model(), &["-c", "4096", "-np", "4"], extra).await
    }

    /// The answering model with its whole 64k context in one slot (one slot keeps the KV
    /// cache at one context's worth: 2 layers x 65536 x 64 x K and V in f16, 32 MiB).
    pub async fn start_answer() -> Self {
        Self::start_model(&tiny_answer_model(), &["-c", "65536", "-np", "1"], &[]).await
    }

    async fn start_model(model: &Path, slots: &[&str], extra: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new(llm_dir().join("llama-server"))
            .arg("-m")
            .arg(model)
            .args(["--alias", "tiny-random", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(slots)
            .args(["-t", "1", "--no-webui"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server");
        let s = LlamaServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{port}/health");
        loop {
            if let Ok(r) = reqwest::get(&url).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "llama-server did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s
    }

    /// Its OpenAI base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The URL of `path` at its root (`/props`, `/health`).
    pub fn root_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use std::collections::HashMap;
use std::sync::Arc;

use clawkeep_gateway::clock::{Clock, SystemClock};
use clawkeep_gateway::config::{Api, GatewayConfig, UpstreamConfig};
use clawkeep_gateway::server::{Caller, Gateway, Settings};

/// `[models]` with one OpenAI upstream per URL, all serving "tiny-random".
pub fn config(urls: &[String]) -> GatewayConfig {
    GatewayConfig {
        upstream: Some(
            urls.iter()
                .enumerate()
                .map(|(i, u)| UpstreamConfig {
                    name: Some(format!("llama{i}")),
                    url: Some(u.clone()),
                    api: Some(Api::Openai),
                    models: Some(vec!["tiny-random".into()]),
                    concurrency: Some(4),
                    health: None,
                })
                .collect(),
        ),
        aliases: Some([("default".to_string(), "tiny-random".to_string())].into()),
        ..Default::default()
    }
}

/// A caller with defaults for tests.
pub fn caller(agent: &str) -> Caller {
    Caller {
        agent: agent.into(),
        team: None,
        default_model: Some("default".into()),
        allowed: None,
        tokens_per_day: None,
        max_concurrent: 4,
    }
}

/// The gateway in this process, each agent served on its own loopback port (as the
/// supervisor serves each agent's socket in its namespace).
pub struct TestGateway {
    pub gw: Arc<Gateway>,
    pub ledger: tempfile::TempDir,
    pub base: HashMap<String, String>,
}

impl TestGateway {
    pub async fn start(cfg: GatewayConfig, settings: Settings, callers: Vec<Caller>) -> Self {
        Self::start_with_clock(cfg, settings, callers, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(
        cfg: GatewayConfig,
        settings: Settings,
        callers: Vec<Caller>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let ledger = tempfile::tempdir().unwrap();
        let gw = Gateway::new(&cfg, settings, ledger.path(), clock).unwrap();
        gw.start_background(Duration::from_millis(200));
        let mut base = HashMap::new();
        for c in callers {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            base.insert(
                c.agent.clone(),
                format!("http://{}", l.local_addr().unwrap()),
            );
            tokio::spawn(gw.clone().serve(l, Arc::new(c)));
        }
        TestGateway { gw, ledger, base }
    }

    /// The URL of `path` on `agent`'s socket.
    pub fn url(&self, agent: &str, path: &str) -> String {
        format!("{}{path}", self.base[agent])
    }

    /// Every ledger record so far.
    pub fn records(&self) -> Vec<clawkeep_gateway::ledger::Record> {
        clawkeep_gateway::ledger::read(self.ledger.path(), std::time::UNIX_EPOCH)
            .unwrap()
            .records
    }

    /// Wait until the ledger holds `n` records (streams are billed when they end).
    pub async fn wait_records(&self, n: usize) -> Vec<clawkeep_gateway::ledger::Record> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.records();
            if r.len() >= n {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "ledger has {} records, want {n}",
                r.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Split an SSE body into its JSON events (and whether `[DONE]` ended it).
pub fn sse_events(body: &str) -> (Vec<serde_json::Value>, bool) {
    let mut events = Vec::new();
    let mut done = false;
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
        } else {
            events.push(serde_json::from_str(data).unwrap());
        }
    }
    (events, done)
}

/// The answer text of OpenAI stream events (their deltas' content, joined).
pub fn delta_text(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Split an NDJSON body into its objects.
pub fn ndjson(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
