//! The knowledge store against the usual tools, on one Garage in one run: clawkeep's sync
//! engine (the library `Syncer`), `rclone sync` and `aws s3 sync`, each into a bucket of its
//! own, over the same data:
//!
//! 1. first push of 10,000 small files (1-8 KiB, nested directories) plus one 1 GiB file of
//!    pseudo-random bytes into an empty bucket;
//! 2. two incremental pushes after changing 10 of the small files (clawkeep makes a full
//!    pass the first time, which lists the bucket like the other tools do, and the pass its
//!    follow loop makes after a change event the second time);
//! 3. a pull of the bucket into an empty directory, which must be byte-identical to the source.
//!
//! Then the write-to-store delay: `clawkeep_store::follow::follow` (debounce 1 s) on a brain holding
//! the same small files, while a file is written every 200 ms for 30 s (new notes and
//! appends to logs); for each write, the time until the bucket's plain object shows it.
//!
//! Each phase also reports the CPU seconds of the client and of Garage and the S3 requests
//! Garage served (from its metrics), which is what explains the times. The run fails if a
//! bucket, a pulled tree or the trickle's store does not hold exactly what was written.
//!
//! Run: scripts/bench-sync (installs rclone, awscli and Garage when missing), or
//!   cargo bench -p minio --bench sync_vs_rclone
//! Environment: CLAWKEEP_BENCH_SCALE (default 1; 0.1 = 1,000 files + 100 MiB),
//! CLAWKEEP_BENCH_TRICKLE_SECS (default 30), CLAWKEEP_RCLONE, CLAWKEEP_AWS, CLAWKEEP_GARAGE,
//! CLAWKEEP_BENCH_DIR (where the data goes; default the system temp dir).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawkeep_store::follow::{self, FollowStatus, Timing};
use clawkeep_store::Remote;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot, watch};

/// Small files in the full-size dataset.
const SMALL_FILES: usize = 10_000;
/// The big file in the full-size dataset.
const BIG_BYTES: u64 = 1 << 30;
/// Files changed before each incremental push.
const CHANGED: usize = 10;
/// One write every this often during the delay measurement.
const TRICKLE_EVERY: Duration = Duration::from_millis(200);
/// How often the store is polled for the written files.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Logs the trickle appends to (every other write).
const LOGS: usize = 10;

/// xorshift64*: fast, deterministic pseudo-random data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
    }

    /// `len` bytes of text-like content (letters, spaces, newlines).
    fn text(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz   \n.,";
        let mut raw = vec![0u8; len];
        self.fill(&mut raw);
        raw.iter().map(|b| ALPHABET[(b & 31) as usize]).collect()
    }
}

fn small_path(i: usize) -> String {
    format!("notes/{:02}/{:02}/note-{i:05}.md", i % 20, (i / 20) % 25)
}

fn write_file(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("a file has a parent")).expect("create directories");
    std::fs::write(&p, content).expect("write a dataset file");
}

/// The small files: 1-8 KiB of text each, unique contents, 500 directories three deep.
fn write_small_files(root: &Path, n: usize) -> u64 {
    let mut rng = Rng::new(1);
    let mut total = 0;
    for i in 0..n {
        let len = 1024 + rng.below(7 * 1024) as usize;
        write_file(root, &small_path(i), &rng.text(len));
        total += len as u64;
    }
    total
}

fn write_big_file(path: &Path, len: u64) {
    std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create dir");
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create big file"));
    let mut rng = Rng::new(2);
    let mut buf = vec![0u8; 4 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).expect("write big file");
        left -= n as u64;
    }
    f.flush().expect("flush big file");
}

/// Which small files each round changes: spread over the tree.
fn changed_paths(n: usize) -> Vec<String> {
    (0..CHANGED)
        .map(|k| small_path((k * n / CHANGED + 7) % n))
        .collect()
}

/// Change the round's files: new content of a new size.
fn change_files(root: &Path, n: usize, round: u64) {
    let mut rng = Rng::new(100 + round);
    for p in changed_paths(n) {
        let len = 2048 + rng.below(4096) as usize;
        let mut content = format!("changed in round {round}\n").into_bytes();
        content.extend(rng.text(len));
        write_file(root, &p, &content);
    }
}

/// Every regular file under `root` (symlinks not followed): path -> (size, sha256).
type TreeDigest = BTreeMap<String, (u64, String)>;

fn digest(root: &Path) -> TreeDigest {
    fn walk(root: &Path, dir: &Path, out: &mut TreeDigest) {
        for e in std::fs::read_dir(dir).expect("list directory") {
            let e = e.expect("directory entry");
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                walk(root, &e.path(), out);
            } else if ft.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .expect("inside root")
                    .to_string_lossy()
                    .to_string();
                let mut f = std::fs::File::open(e.path()).expect("open for hashing");
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut size = 0u64;
                loop {
                    let n = f.read(&mut buf).expect("read for hashing");
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    size += n as u64;
                }
                out.insert(rel, (size, hex::encode(h.finalize())));
            } else {
                out.insert(
                    e.path().to_string_lossy().to_string(),
                    (0, "not a regular file".into()),
                );
            }
        }
    }
    let mut out = TreeDigest::new();
    walk(root, root, &mut out);
    out
}

/// How two trees differ, in a few lines; empty when they are identical.
fn differences(want: &TreeDigest, got: &TreeDigest) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => out.push(format!("missing {k}")),
            Some(g) if g != v => out.push(format!("differs {k}: {} vs {} bytes", v.0, g.0)),
            Some(_) => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        out.push(format!("extra {k}"));
    }
    out
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn find_tool(env: &str, candidates: &[PathBuf], name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return p.into();
    }
    for c in candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{name} not found (set {env}, or run scripts/bench-sync, which installs it)")
        })
}

fn version(tool: &Path, arg: &str) -> String {
    Command::new(tool)
        .arg(arg)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).to_string();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or_default().trim().to_string()
        })
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// One external tool run, timed; a failure ends the benchmark with its output.
async fn timed(meter: &Meter, label: &str, cmd: &mut Command) -> (Duration, Cpu) {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let c = meter.now().await;
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{label}: cannot run {shown}: {e}"));
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{label}: `{shown}` failed ({})\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (d, c.used(meter.now().await, false))
}

/// The external tools and how to point them at the Garage.
struct Tools {
    rclone: PathBuf,
    rclone_conf: PathBuf,
    aws: PathBuf,
    aws_conf: PathBuf,
    endpoint: String,
    access_key: String,
    secret_key: String,
}

impl Tools {
    fn rclone(&self, from: &str, to: &str) -> Command {
        let mut c = Command::new(&self.rclone);
        c.args(["--config"])
            .arg(&self.rclone_conf)
            .args(["sync", from, to])
            // The endpoint is plain HTTP on loopback; rclone refuses to start when a CA bundle
            // is configured for the AWS SDK it embeds.
            .env_remove("AWS_CA_BUNDLE");
        c
    }

    fn aws(&self, from: &str, to: &str) -> Command {
        let mut c = Command::new(&self.aws);
        c.args(["s3", "sync", from, to, "--endpoint-url", &self.endpoint])
            .args(["--only-show-errors", "--no-progress"])
            .env("AWS_CONFIG_FILE", &self.aws_conf)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.aws_conf)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        c
    }
}

const TOOLS: [&str; 3] = ["clawkeep", "rclone", "aws"];

/// One measured phase: per tool, the wall time and the CPU seconds of the client and of Garage.
struct Row {
    phase: String,
    times: [Duration; 3],
    cpu: [Cpu; 3],
}

/// CPU seconds used so far (by this process, by its waited-for children, by Garage) and the
/// S3 requests Garage served, by operation.
#[derive(Debug, Clone, Default)]
struct Cpu {
    own: f64,
    children: f64,
    garage: f64,
    requests: BTreeMap<String, u64>,
}

impl Cpu {
    /// What a phase used: the client (this process for clawkeep, the child for the tools)
    /// and the server.
    fn used(self, after: Cpu, in_process: bool) -> Cpu {
        let client = if in_process {
            after.own - self.own
        } else {
            after.children - self.children
        };
        let requests = after
            .requests
            .iter()
            .map(|(op, n)| (op.clone(), n - self.requests.get(op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Cpu {
            own: client,
            children: 0.0,
            garage: after.garage - self.garage,
            requests,
        }
    }

    /// "20002: PutObject 10001, CopyObject 10001": the busiest operations first.
    fn requests_cell(&self) -> String {
        let mut ops: Vec<(&String, &u64)> = self.requests.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let total: u64 = self.requests.values().sum();
        let list: Vec<String> = ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
        format!("{total}: {}", list.join(", "))
    }
}

/// Reads CPU times from /proc and request counters from Garage's metrics.
struct Meter {
    garage_pid: Option<u32>,
    tick: f64,
    metrics_url: String,
    http: reqwest::Client,
}

impl Meter {
    /// Finds the Garage started with `config` among the running processes; `metrics_url` is
    /// its admin API's /metrics.
    fn new(config: &Path, metrics_url: String) -> Meter {
        let config = config.display().to_string();
        let garage_pid = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&config))
                    .unwrap_or(false)
            });
        let tick = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        Meter {
            garage_pid,
            tick,
            metrics_url,
            http: reqwest::Client::new(),
        }
    }

    /// Garage's `api_s3_request_counter` by operation.
    async fn requests(&self) -> BTreeMap<String, u64> {
        let text = match self.http.get(&self.metrics_url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("api_s3_request_counter{")?;
                let (labels, value) = rest.split_once("} ")?;
                let op = labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("api_endpoint=\""))?
                    .trim_end_matches('"');
                Some((op.to_string(), value.trim().parse::<f64>().ok()? as u64))
            })
            .fold(BTreeMap::new(), |mut m, (op, n)| {
                *m.entry(op).or_insert(0) += n;
                m
            })
    }

    /// utime+stime and cutime+cstime of a process, in seconds.
    fn times(&self, pid: &str) -> (f64, f64) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<f64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .map(|f| f.parse().unwrap_or(0.0))
                    .collect()
            })
            .unwrap_or_default();
        let f = |i: usize| fields.get(i).copied().unwrap_or(0.0) / self.tick;
        // After the command name: state is field 3, so utime (14) is index 11.
        (f(11) + f(12), f(13) + f(14))
    }

    async fn now(&self) -> Cpu {
        let requests = self.requests().await;
        let (own, children) = self.times("self");
        let garage = self
            .garage_pid
            .map(|p| self.times(&p.to_string()).0)
            .unwrap_or(0.0);
        Cpu {
            own,
            children,
            garage,
            requests,
        }
    }
}

/// What a bucket holds outside `.clawkeep/`: object count and bytes.
async fn plain_objects(remote: &Remote) -> (usize, u64) {
    let all = remote.list("").await.expect("list bucket");
    let plain: Vec<_> = all
        .iter()
        .filter(|o| !o.key.starts_with(".clawkeep/"))
        .collect();
    (plain.len(), plain.iter().map(|o| o.size).sum())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    println!("load average at start: {}", loadavg());
    let t = Instant::now();
    let failures = rt.block_on(run());
    println!(
        "\nload average at end: {} (whole run {:.0} s)",
        loadavg(),
        secs(t.elapsed())
    );
    if !failures.is_empty() {
        eprintln!("\nCHECKS FAILED, the numbers above are not valid:");
        for f in &failures {
            eprintln!("  - {f}");
        }
        std::process::exit(1);
    }
    println!("\nall checks passed (pushed buckets complete, pulls byte-identical, every trickle write visible)");
}

async fn run() -> Vec<String> {
    let scale: f64 = std::env::var("CLAWKEEP_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let trickle_secs: u64 = std::env::var("CLAWKEEP_BENCH_TRICKLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let n_small = ((SMALL_FILES as f64 * scale).round() as usize).max(CHANGED * 2);
    let big_bytes = ((BIG_BYTES as f64 * scale).round() as u64).max(1 << 20);
    let mut failures = Vec::new();

    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache =
        std::env::var("CLAWKEEP_CACHE").unwrap_or_else(|_| format!("{home}/.cache/clawkeep"));
    let rclone = find_tool("CLAWKEEP_RCLONE", &[], "rclone");
    let aws = find_tool(
        "CLAWKEEP_AWS",
        &[PathBuf::from(&cache).join("awscli-venv/bin/aws")],
        "aws",
    );

    let scratch = match std::env::var("CLAWKEEP_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d),
        Err(_) => tempfile::tempdir(),
    }
    .expect("scratch directory");
    let dir = scratch.path();

    let g = support::Garage::start().await;
    let root_cred = g.secrets.root.clone();
    println!(
        "garage: {} at {}",
        version(&support::garage_bin(), "--version"),
        g.managed.endpoint()
    );
    println!(
        "rclone: {} ({})",
        version(&rclone, "version"),
        rclone.display()
    );
    println!("aws:    {} ({})", version(&aws, "--version"), aws.display());

    // rclone and aws: the root key, path-style, region us-east-1, nothing else changed.
    let rclone_conf = dir.join("rclone.conf");
    std::fs::write(
        &rclone_conf,
        format!(
            "[garage]\ntype = s3\nprovider = Other\nenv_auth = false\naccess_key_id = {}\n\
             secret_access_key = {}\nendpoint = {}\nregion = us-east-1\nforce_path_style = true\n\
             no_check_bucket = true\n",
            root_cred.access_key,
            root_cred.secret_key,
            g.managed.endpoint()
        ),
    )
    .expect("write rclone config");
    let aws_conf = dir.join("aws.conf");
    std::fs::write(
        &aws_conf,
        "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n",
    )
    .expect("write aws config");
    let tools = Tools {
        rclone,
        rclone_conf,
        aws,
        aws_conf,
        endpoint: g.managed.endpoint(),
        access_key: root_cred.access_key.clone(),
        secret_key: root_cred.secret_key.clone(),
    };

    // The dataset.
    let src = dir.join("src");
    let t = Instant::now();
    let small_bytes = write_small_files(&src, n_small);
    write_big_file(&src.join("media/big.bin"), big_bytes);
    let n_files = n_small + 1;
    let total_bytes = small_bytes + big_bytes;
    println!(
        "dataset: {n_small} small files ({:.1} MB) + 1 file of {:.1} MB, written in {:.1} s",
        small_bytes as f64 / 1e6,
        big_bytes as f64 / 1e6,
        secs(t.elapsed())
    );

    let meter = Meter::new(
        &g.managed.data_dir.join("garage.toml"),
        format!("{}/metrics", g.managed.admin_url()),
    );
    assert!(
        meter.garage_pid.is_some(),
        "the Garage process is not in /proc"
    );
    let names = ["ck-bench-clawkeep", "ck-bench-rclone", "ck-bench-aws"];
    let mut buckets = Vec::new();
    for n in names {
        buckets.push(g.bucket(n).await);
    }
    let clawkeep = support::syncer(buckets[0].clone(), &src, "bench");
    let src_s = src.display().to_string();
    let mut rows: Vec<Row> = Vec::new();

    // 1. First push into empty buckets.
    let mut times = [Duration::ZERO; 3];
    let mut cpu = <[Cpu; 3]>::default();
    let c = meter.now().await;
    let t = Instant::now();
    let r = clawkeep.sync(true).await.expect("clawkeep first push");
    times[0] = t.elapsed();
    cpu[0] = c.used(meter.now().await, true);
    if !r.complete() || r.uploaded != n_files {
        failures.push(format!(
            "clawkeep first push uploaded {} of {n_files} files: {:?}",
            r.uploaded, r.failed
        ));
    }
    (times[1], cpu[1]) = timed(
        &meter,
        "rclone first push",
        &mut tools.rclone(&src_s, &format!("garage:{}", names[1])),
    )
    .await;
    (times[2], cpu[2]) = timed(
        &meter,
        "aws first push",
        &mut tools.aws(&src_s, &format!("s3://{}", names[2])),
    )
    .await;
    for (i, b) in buckets.iter().enumerate() {
        let got = plain_objects(b).await;
        if got != (n_files, total_bytes) {
            failures.push(format!(
                "{} after the first push holds {} objects, {} bytes; want {n_files}, {total_bytes}",
                TOOLS[i], got.0, got.1
            ));
        }
    }
    rows.push(Row {
        phase: format!("first push ({n_small} files + {} MiB)", big_bytes >> 20),
        times,
        cpu,
    });

    // 2. Incremental pushes: the same 10 files changed before each round.
    for round in 1..=2u64 {
        // Past the mtime granularity of every tool's comparison.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        change_files(&src, n_small, round);
        let full = round == 1;
        let mut times = [Duration::ZERO; 3];
        let mut cpu = <[Cpu; 3]>::default();
        let c = meter.now().await;
        let t = Instant::now();
        let r = clawkeep
            .sync(full)
            .await
            .expect("clawkeep incremental push");
        times[0] = t.elapsed();
        cpu[0] = c.used(meter.now().await, true);
        if !r.complete() || r.uploaded != CHANGED {
            failures.push(format!(
                "clawkeep incremental {round} uploaded {} files, want {CHANGED}: {:?}",
                r.uploaded, r.failed
            ));
        }
        (times[1], cpu[1]) = timed(
            &meter,
            "rclone incremental push",
            &mut tools.rclone(&src_s, &format!("garage:{}", names[1])),
        )
        .await;
        (times[2], cpu[2]) = timed(
            &meter,
            "aws incremental push",
            &mut tools.aws(&src_s, &format!("s3://{}", names[2])),
        )
        .await;
        // Every tool's bucket now holds the changed files.
        for (i, b) in buckets.iter().enumerate() {
            for p in changed_paths(n_small) {
                let want = std::fs::read(src.join(&p)).expect("read changed file");
                match b.get_bytes(&p).await {
                    Ok(got) if got[..] == want[..] => {}
                    Ok(_) => failures.push(format!(
                        "{} incremental {round}: {p} in the bucket is not the new content",
                        TOOLS[i]
                    )),
                    Err(e) => failures.push(format!("{} incremental {round}: {p}: {e}", TOOLS[i])),
                }
            }
        }
        rows.push(Row {
            phase: format!(
                "incremental #{round}: {CHANGED} files changed (clawkeep: {})",
                if full {
                    "full pass, lists the bucket"
                } else {
                    "change pass, as the follow loop makes"
                }
            ),
            times,
            cpu,
        });
    }

    // 3. Pulls into empty directories, compared with the source byte for byte.
    let want = digest(&src);
    assert_eq!(want.len(), n_files, "the source tree has the dataset");
    let mut times = [Duration::ZERO; 3];
    let mut cpu = <[Cpu; 3]>::default();
    let pulls: Vec<PathBuf> = TOOLS
        .iter()
        .map(|t| dir.join(format!("pull-{t}")))
        .collect();
    let c = meter.now().await;
    let t = Instant::now();
    let r = support::syncer(buckets[0].clone(), &pulls[0], "bench-pull")
        .pull_into_place()
        .await
        .expect("clawkeep pull");
    times[0] = t.elapsed();
    cpu[0] = c.used(meter.now().await, true);
    if !r.complete() || r.downloaded != n_files {
        failures.push(format!(
            "clawkeep pull downloaded {} of {n_files}: {:?}",
            r.downloaded, r.failed
        ));
    }
    for p in &pulls[1..] {
        std::fs::create_dir_all(p).expect("create pull directory");
    }
    (times[1], cpu[1]) = timed(
        &meter,
        "rclone pull",
        &mut tools.rclone(
            &format!("garage:{}", names[1]),
            &pulls[1].display().to_string(),
        ),
    )
    .await;
    (times[2], cpu[2]) = timed(
        &meter,
        "aws pull",
        &mut tools.aws(
            &format!("s3://{}", names[2]),
            &pulls[2].display().to_string(),
        ),
    )
    .await;
    for (i, p) in pulls.iter().enumerate() {
        let diff = differences(&want, &digest(p));
        if !diff.is_empty() {
            failures.push(format!(
                "{} pull differs from the source in {} files, e.g. {}",
                TOOLS[i],
                diff.len(),
                diff[..diff.len().min(3)].join("; ")
            ));
        }
        std::fs::remove_dir_all(p).expect("remove pulled tree");
    }
    rows.push(Row {
        phase: "pull into an empty directory".into(),
        times,
        cpu,
    });

    println!(
        "\n{n_files} files, {:.1} MB; wall time in seconds; ratio = tool / rclone\n",
        total_bytes as f64 / 1e6
    );
    println!("| phase | clawkeep s | rclone s | aws s | clawkeep / rclone | aws / rclone |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let rc = secs(r.times[1]);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.phase,
            secs(r.times[0]),
            rc,
            secs(r.times[2]),
            secs(r.times[0]) / rc,
            secs(r.times[2]) / rc
        );
    }
    println!("\nCPU seconds in each phase: client (clawkeep in-process; rclone, aws as child processes) + Garage\n");
    println!("| phase | clawkeep | rclone | aws |");
    println!("|---|---|---|---|");
    for r in &rows {
        let cell = |c: &Cpu| format!("{:.1} + {:.1}", c.own, c.garage);
        println!(
            "| {} | {} | {} | {} |",
            r.phase,
            cell(&r.cpu[0]),
            cell(&r.cpu[1]),
            cell(&r.cpu[2])
        );
    }
    println!("\nS3 requests Garage served in each phase (its api_s3_request_counter)\n");
    println!("| phase | clawkeep | rclone | aws |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.phase,
            r.cpu[0].requests_cell(),
            r.cpu[1].requests_cell(),
            r.cpu[2].requests_cell()
        );
    }
    println!();
    for r in &rows[1..3] {
        let ratio = secs(r.times[0]) / secs(r.times[1]);
        println!(
            "target incremental <= 0.25x rclone, {}: {:.3} ({})",
            r.phase,
            ratio,
            if ratio <= 0.25 { "met" } else { "NOT met" }
        );
    }

    // The data of the push phases is not needed any more.
    std::fs::remove_dir_all(&src).expect("remove source tree");

    let mut trickle_failures = trickle(&g, dir, n_small, trickle_secs).await;
    failures.append(&mut trickle_failures);
    failures
}

/// One write of the trickle.
struct Written {
    key: String,
    /// The object must be this big (a new file) or at least this big (an appended log).
    size: u64,
    exact: bool,
    at: Instant,
    seen: Option<Duration>,
}

/// The write-to-store delay under a steady trickle of writes.
async fn trickle(g: &support::Garage, dir: &Path, n_small: usize, secs_total: u64) -> Vec<String> {
    let mut failures = Vec::new();
    let bucket = g.bucket("ck-bench-trickle").await;
    let brain = dir.join("brain");
    write_small_files(&brain, n_small);
    for j in 0..LOGS {
        write_file(&brain, &format!("trickle/log-{j}.md"), b"# log\n");
    }
    let s = support::syncer(bucket.clone(), &brain, "bench-follow");
    let r = s.sync(true).await.expect("initial push of the brain");
    assert!(r.complete(), "initial push of the brain: {:?}", r.failed);
    // What one pass costs when nothing changed (scan + snapshot listing).
    let t = Instant::now();
    s.sync(false).await.expect("idle pass");
    let idle_pass = t.elapsed();

    let (cmd_tx, cmd_rx) = mpsc::channel(4);
    let (status_tx, status_rx) = watch::channel(FollowStatus::default());
    let timing = Timing {
        debounce: Duration::from_secs(1),
        // Far away: every pass in the window is one a change event asked for.
        reconcile: Duration::from_secs(3600),
    };
    let follower = tokio::spawn(follow::follow(s, timing, cmd_rx, status_tx, None));
    // Let the watch settle (its inotify watches are added as it starts).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let passes_before = status_rx.borrow().passes;

    let writes: Arc<Mutex<Vec<Written>>> = Arc::new(Mutex::new(Vec::new()));
    let n_writes = (secs_total * 1000 / TRICKLE_EVERY.as_millis() as u64) as usize;
    let writer = {
        let writes = writes.clone();
        let brain = brain.clone();
        std::thread::spawn(move || {
            let mut rng = Rng::new(3);
            let start = Instant::now();
            for i in 0..n_writes {
                let due = start + TRICKLE_EVERY * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (key, size, exact) = if i % 2 == 0 {
                    let key = format!("trickle/new-{i:04}.md");
                    let len = 1024 + rng.below(3 * 1024) as usize;
                    std::fs::write(brain.join(&key), rng.text(len)).expect("write note");
                    (key, len as u64, true)
                } else {
                    let key = format!("trickle/log-{}.md", (i / 2) % LOGS);
                    let mut line = format!("{i:04} ").into_bytes();
                    let len = 40 + rng.below(160) as usize;
                    line.extend(rng.text(len));
                    line.push(b'\n');
                    let p = brain.join(&key);
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&p)
                        .expect("open log");
                    f.write_all(&line).expect("append to log");
                    drop(f);
                    let size = std::fs::metadata(&p).expect("stat log").len();
                    (key, size, false)
                };
                let at = Instant::now();
                writes.lock().expect("writes lock").push(Written {
                    key,
                    size,
                    exact,
                    at,
                    seen: None,
                });
            }
        })
    };

    // Poll the store: one listing of trickle/ every 50 ms; a write is visible once its object
    // has its size (a new note) or at least its size (an append-only log).
    let deadline_after_writes = Duration::from_secs(60);
    let mut writer = Some(writer);
    let mut writes_done_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let listed = match bucket.list("trickle/").await {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("listing trickle/ failed: {e}"));
                continue;
            }
        };
        let now = Instant::now();
        let sizes: BTreeMap<&str, u64> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
        let mut ws = writes.lock().expect("writes lock");
        for w in ws.iter_mut().filter(|w| w.seen.is_none()) {
            if let Some(&size) = sizes.get(w.key.as_str()) {
                if size == w.size || (!w.exact && size > w.size) {
                    w.seen = Some(now.duration_since(w.at));
                }
            }
        }
        let pending = ws.iter().filter(|w| w.seen.is_none()).count();
        drop(ws);
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer
                .take()
                .expect("writer thread")
                .join()
                .expect("writer thread panicked");
            writes_done_at = Some(Instant::now());
        }
        match writes_done_at {
            Some(_) if pending == 0 => break,
            Some(t) if t.elapsed() > deadline_after_writes => {
                failures.push(format!(
                    "{pending} trickle writes were not visible in the store {}s after the last write",
                    deadline_after_writes.as_secs()
                ));
                break;
            }
            _ => {}
        }
    }
    let passes = status_rx.borrow().passes - passes_before;

    // A last pass, then the bucket must hold exactly the brain.
    let (reply_tx, reply_rx) = oneshot::channel();
    cmd_tx
        .send(follow::Command::Stop(reply_tx))
        .await
        .expect("follower alive");
    match reply_rx.await.expect("follower replies") {
        Ok(r) if r.uploaded == 0 => {}
        Ok(r) => failures.push(format!(
            "the last pass still uploaded {} files: the trickle was not fully pushed",
            r.uploaded
        )),
        Err(e) => failures.push(format!("the follower's last pass failed: {e}")),
    }
    follower.await.expect("follower task");
    let pulled = dir.join("brain-pulled");
    support::syncer(bucket.clone(), &pulled, "bench-check")
        .pull_into_place()
        .await
        .expect("pull the brain back");
    let diff = differences(&digest(&brain), &digest(&pulled));
    if !diff.is_empty() {
        failures.push(format!(
            "the brain pulled back differs in {} files, e.g. {}",
            diff.len(),
            diff[..diff.len().min(3)].join("; ")
        ));
    }

    let ws = writes.lock().expect("writes lock");
    let mut delays: Vec<Duration> = ws.iter().filter_map(|w| w.seen).collect();
    delays.sort();
    println!(
        "\nwrite-to-store delay: follow loop (debounce 1 s), brain of {} files, one write every {} ms for {} s ({} writes: new notes and appends to {LOGS} logs), store polled every {} ms",
        n_small + LOGS,
        TRICKLE_EVERY.as_millis(),
        secs_total,
        ws.len(),
        POLL_EVERY.as_millis()
    );
    println!(
        "idle pass (nothing changed) on this brain: {:.3} s; passes during the trickle: {passes}",
        secs(idle_pass)
    );
    if delays.is_empty() {
        failures.push("no trickle write became visible".into());
        return failures;
    }
    let (p50, p95, max) = (
        pct(&delays, 0.50),
        pct(&delays, 0.95),
        delays[delays.len() - 1],
    );
    println!("| writes | visible | p50 s | p95 s | max s | min s |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        ws.len(),
        delays.len(),
        secs(p50),
        secs(p95),
        secs(max),
        secs(delays[0])
    );
    println!(
        "target delay p95 <= 5 s: {:.2} s ({})",
        secs(p95),
        if p95 <= Duration::from_secs(5) && delays.len() == ws.len() {
            "met"
        } else {
            "NOT met"
        }
    );
    failures
}
