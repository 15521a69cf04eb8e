//! Gateway overhead: the same OpenAI-dialect requests straight to a minimal, fast
//! OpenAI-compatible responder, and through clawkeep's gateway in front of it (and through
//! the LiteLLM proxy when one is installed), in one run. Reports p50/p99 latency (time to
//! first byte for streams) and requests/s at concurrency 1, 16 and 64, and what the gateway
//! adds. The responder and each proxy run as their own processes.
//!
//! Run: cargo bench -p ollama --bench gateway_overhead
//! (CLAWKEEP_BENCH_SECS per cell, default 4; LITELLM=/path/to/litellm to include LiteLLM;
//! CLAWKEEP_BENCH_UPSTREAM=127.0.0.1:PORT to put a real OpenAI-compatible server, such as
//! llama-server with a model loaded, in the responder's place; CLAWKEEP_BENCH_CONCURRENCY=1,16
//! for other concurrency levels; CLAWKEEP_BENCH_MODES=whole or stream for one mode only;
//! CLAWKEEP_BENCH_PIN=1 to give the proxies CPUs of their own: the load generator and the
//! responder share CPU 0, the gateway and LiteLLM get the others, as on a node where the
//! model runs on a GPU and the agents' requests do not compete with the gateway for cores.)
//!
//! Besides latency and requests/s, each cell reports the CPU time the upstream and the proxy
//! processes spent per request (from /proc/PID/stat), which does not depend on how the
//! processes share the cores.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;

const ROLE: &str = "CLAWKEEP_BENCH_ROLE";
/// LiteLLM refuses to start without a master key; every runner gets it (the others ignore it).
const LITELLM_KEY: &str = "sk-clawkeep-bench";

/// The child processes, killed however the benchmark ends (and a gateway's ledger removed).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::fs::remove_dir_all(ledger_dir(c.id()));
        }
    }
}

/// Where the gateway of process `pid` keeps its ledger.
fn ledger_dir(pid: u32) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ck-bench-ledger-{pid}"))
}

/// The non-stream answer: what a small chat completion looks like.
const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}"#;

fn stream_frames() -> Vec<Bytes> {
    let mut out = vec![Bytes::from_static(
        b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    )];
    for w in ["Paris", " is", " the", " capital", " of", " France", "."] {
        out.push(Bytes::from(format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}},\"finish_reason\":null}}]}}\n\n"
        )));
    }
    out.push(Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"));
    out.push(Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":8,\"total_tokens\":20}}\n\n"));
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// The minimal responder: fixed answers, no work.
async fn responder(addr: SocketAddr) {
    let frames = Arc::new(stream_frames());
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |body: Bytes| {
            let frames = frames.clone();
            async move {
                let stream = memchr_stream(&body);
                if stream {
                    let s = tokio_stream::iter(
                        frames
                            .iter()
                            .cloned()
                            .map(Ok::<_, std::io::Error>)
                            .collect::<Vec<_>>(),
                    );
                    axum::response::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(s))
                        .unwrap_or_default()
                } else {
                    axum::response::Response::builder()
                        .header("content-type", "application/json")
                        .body(Body::from(ANSWER))
                        .unwrap_or_default()
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind responder");
    axum::serve(l, app).await.expect("serve responder");
}

fn memchr_stream(body: &[u8]) -> bool {
    body.windows(13).any(|w| w == b"\"stream\":true")
}

/// clawkeep's gateway in front of the responder, serving one agent on `addr`.
async fn gateway(addr: SocketAddr, upstream: SocketAddr) {
    let cfg = clawkeep_gateway::config::GatewayConfig {
        upstream: Some(vec![clawkeep_gateway::config::UpstreamConfig {
            name: Some("responder".into()),
            url: Some(format!("http://{upstream}/v1")),
            api: Some(clawkeep_gateway::config::Api::Openai),
            models: Some(vec!["bench".into()]),
            concurrency: Some(1024),
            health: None,
        }]),
        ..Default::default()
    };
    let dir = ledger_dir(std::process::id());
    let gw = clawkeep_gateway::server::Gateway::new(
        &cfg,
        clawkeep_gateway::server::Settings::default(),
        &dir,
        Arc::new(clawkeep_gateway::clock::SystemClock),
    )
    .expect("gateway");
    gw.start_background(Duration::from_secs(5));
    let caller = clawkeep_gateway::server::Caller {
        agent: "bench".into(),
        max_concurrent: 1024,
        ..Default::default()
    };
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind gateway");
    gw.serve(l, Arc::new(caller)).await;
}

/// `CLAWKEEP_BENCH_PIN=1`: the CPUs of the load generator and responder, and of the proxies.
fn pinned_cpus() -> Option<(Vec<usize>, Vec<usize>)> {
    if std::env::var("CLAWKEEP_BENCH_PIN").as_deref() != Ok("1") {
        return None;
    }
    // CPUs online, not this process's affinity (which the pinned children inherit).
    let n = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .unwrap_or(1) as usize;
    assert!(
        n >= 2,
        "CLAWKEEP_BENCH_PIN=1 needs at least 2 CPUs, this machine has {n}"
    );
    Some((vec![0], (1..n).collect()))
}

/// Pin this process (before any thread starts, so every thread inherits it).
fn pin_to(cpus: &[usize]) {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).expect("CPU index in range");
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).expect("sched_setaffinity");
}

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn spawn_role(role: &str, args: &[String]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn role")
}

async fn wait_up(addr: SocketAddr) {
    // LiteLLM takes tens of seconds to import and start.
    for _ in 0..4800 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{addr} did not come up");
}

struct Cell {
    p50: f64,
    p99: f64,
    rps: f64,
    requests: usize,
}

/// Run `conc` clients for `secs` against `url`; latency = whole answer, or first byte of
/// a stream.
async fn load(url: &str, conc: usize, stream: bool, secs: f64) -> Cell {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap();
    let body = Arc::new(serde_json::json!({
        "model": "bench",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "stream": stream,
    }));
    // Warm the connections.
    for _ in 0..conc.min(8) {
        if let Ok(r) = client
            .post(url)
            .bearer_auth(LITELLM_KEY)
            .json(&*body)
            .send()
            .await
        {
            let _ = r.bytes().await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, body, url) = (client.clone(), body.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                // Once more on a connection the server closed while it sat in the pool
                // (llama-server closes after a stream); the time of both tries counts.
                let mut tries = 0;
                let mut r = loop {
                    let req = client.post(&url).bearer_auth(LITELLM_KEY).json(&*body);
                    match req.send().await {
                        Ok(r) if r.status().is_success() => break r,
                        Ok(r) => panic!("HTTP {} from {url}", r.status()),
                        Err(_) if tries == 0 => tries += 1,
                        Err(e) => panic!("{url}: {e}"),
                    }
                };
                if stream {
                    let _ = r.chunk().await;
                    lat.push(t.elapsed());
                    while let Ok(Some(_)) = r.chunk().await {}
                } else {
                    let _ = r.bytes().await;
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    Cell {
        p50: pct(0.50),
        p99: pct(0.99),
        rps: all.len() as f64 / wall,
        requests: all.len(),
    }
}

fn main() {
    let pin = pinned_cpus();
    if let Some((load, proxies)) = &pin {
        match std::env::var(ROLE).as_deref() {
            Ok("gateway") => pin_to(proxies),
            _ => pin_to(load),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let args: Vec<String> = std::env::args().collect();
    match std::env::var(ROLE).as_deref() {
        Ok("responder") => return rt.block_on(responder(args[1].parse().unwrap())),
        Ok("gateway") => {
            return rt.block_on(gateway(args[1].parse().unwrap(), args[2].parse().unwrap()))
        }
        _ => {}
    }
    let secs: f64 = std::env::var("CLAWKEEP_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4.0);
    let concurrency: Vec<usize> = std::env::var("CLAWKEEP_BENCH_CONCURRENCY")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .expect("CLAWKEEP_BENCH_CONCURRENCY is like 1,16,64")
                })
                .collect()
        })
        .unwrap_or_else(|| vec![1, 16, 64]);
    // A real server already running, or the zero-work responder started here.
    let external: Option<SocketAddr> = std::env::var("CLAWKEEP_BENCH_UPSTREAM").ok().map(|a| {
        a.parse()
            .expect("CLAWKEEP_BENCH_UPSTREAM is HOST:PORT, e.g. 127.0.0.1:8081")
    });
    let up = external.unwrap_or_else(free_addr);
    let gw = free_addr();
    let mut children = Children(Vec::new());
    let mut upstream_pid = None;
    if external.is_none() {
        let c = spawn_role("responder", &[up.to_string()]);
        upstream_pid = Some(c.id());
        children.0.push(c);
    }
    let c = spawn_role("gateway", &[gw.to_string(), up.to_string()]);
    // The process whose CPU time is the proxy's, per runner (none for direct).
    let mut proxy_pids: Vec<Option<u32>> = vec![None, Some(c.id())];
    children.0.push(c);
    let mut targets = vec![
        ("direct", format!("http://{up}/v1/chat/completions")),
        ("clawkeep", format!("http://{gw}/v1/chat/completions")),
    ];
    if let Ok(litellm) = std::env::var("LITELLM") {
        let port = free_addr().port();
        let config = std::env::temp_dir().join("ck-bench-litellm.yaml");
        std::fs::write(
            &config,
            format!("model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n      api_base: http://{up}/v1\n      api_key: none\n"),
        )
        .unwrap();
        // Pinned: LiteLLM gets the proxies' CPUs (through taskset, as it is not ours).
        let mut cmd = match &pin {
            Some((_, proxies)) => {
                let list: Vec<String> = proxies.iter().map(|c| c.to_string()).collect();
                let mut c = Command::new("taskset");
                c.args(["-c", &list.join(",")]).arg(litellm);
                c
            }
            None => Command::new(litellm),
        };
        let c = cmd
            .env("LITELLM_MASTER_KEY", LITELLM_KEY)
            .args(["--config"])
            .arg(&config)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--num_workers",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start litellm");
        proxy_pids.push(Some(c.id()));
        children.0.push(c);
        targets.push((
            "litellm",
            format!("http://127.0.0.1:{port}/v1/chat/completions"),
        ));
    }
    rt.block_on(async {
        wait_up(up).await;
        wait_up(gw).await;
        for (_, url) in &targets[2..] {
            let addr: SocketAddr = url[7..].split('/').next().unwrap().parse().unwrap();
            wait_up(addr).await;
        }
        let upstream = match external {
            Some(a) => format!("the server at {a}"),
            None => "minimal responder".to_string(),
        };
        let cpus = match &pin {
            Some((load, proxies)) => format!(
                "load generator and upstream on CPU {load:?}, proxies on CPU {proxies:?}"
            ),
            None => "all processes share every CPU".to_string(),
        };
        println!("gateway overhead, OpenAI dialect, {secs}s per cell, {upstream} upstream, {cpus}");
        println!();
        println!("| mode | concurrency | runner | p50 ms | p99 ms | req/s | added p50 ms | added p99 ms | req/s vs direct | upstream CPU µs/req | proxy CPU µs/req |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        let modes = std::env::var("CLAWKEEP_BENCH_MODES").unwrap_or_default();
        let streams: Vec<bool> = match modes.as_str() {
            "whole" => vec![false],
            "stream" => vec![true],
            _ => vec![false, true],
        };
        for stream in streams {
            for &conc in &concurrency {
                let mut cells = Vec::new();
                for ((name, url), proxy) in targets.iter().zip(&proxy_pids) {
                    let before = (upstream_pid.map(cpu_time), proxy.map(cpu_time));
                    let c = load(url, conc, stream, secs).await;
                    let per_req = |pid: Option<u32>, t0: Option<Duration>| match (pid, t0) {
                        (Some(p), Some(t0)) if c.requests > 0 => format!(
                            "{:.1}",
                            (cpu_time(p) - t0).as_secs_f64() * 1e6 / c.requests as f64
                        ),
                        _ => "-".to_string(),
                    };
                    let cpu = (
                        per_req(upstream_pid, before.0),
                        per_req(*proxy, before.1),
                    );
                    cells.push((name, c, cpu));
                }
                let direct = &cells[0].1;
                let (d50, d99, drps) = (direct.p50, direct.p99, direct.rps);
                for (name, c, (up_cpu, proxy_cpu)) in &cells {
                    println!(
                        "| {} | {conc} | {name} | {:.3} | {:.3} | {:.0} | {:+.3} | {:+.3} | {:.0}% | {up_cpu} | {proxy_cpu} |",
                        if stream { "stream (TTFB)" } else { "whole answer" },
                        c.p50,
                        c.p99,
                        c.rps,
                        c.p50 - d50,
                        c.p99 - d99,
                        100.0 * c.rps / drps
                    );
                }
            }
        }
    });
    drop(children);
}
