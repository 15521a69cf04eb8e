//! One hostile agent runs every attack of issue 15 at once against the services the
//! supervisor shares with the fleet, while a neighbour serves its health check and writes a
//! file every second: 1,000 requests naming distinct 1 MB models, 3,000 idle connections,
//! 32 concurrent 8 MiB bodies, a regular-file/FIFO swap loop, a symlink to /sys inside a
//! renamed directory, a sparse 1 TiB file, a log flood, and a health endpoint that answers an
//! endless body. Real Garage, real sandboxes, a real `clawkeep up`. What a user would check:
//! the supervisor's memory and descriptors, the neighbour's health and sync, `/metrics` and
//! the ledger stay small, `down` is prompt, and the ledger survives a kill -9.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

#[path = "../minio/tests/support/mod.rs"]
mod s3;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{rt, wait_for, FleetDir, Scratch, Supervisor};

/// Every attack, started together; `~/attacks.started.bak` once they all run (its log is
/// flooded: markers are files).
const HOSTILE: &str = r#"
cd $HOME
mkdir -p www
# A health endpoint whose answer never ends.
(while :; do { printf 'HTTP/1.1 200 OK\r\n\r\n'; cat /dev/zero; } | nc -l -p 18789 127.0.0.1 >/dev/null 2>&1; done) &
# A sparse 1 TiB file.
truncate -s 1T big.bin
# A symlink to /sys inside a directory that is then renamed.
mkdir -p d1/sub && ln -s /sys d1/sub/sys && mv d1 d2
# A regular file swapped for a FIFO, over and over.
(while :; do echo x > swap.tmp; mv swap.tmp swap; rm -f swap; mkfifo swap 2>/dev/null || echo fifo=denied; rm -f swap; done) &
# A log flood.
(while :; do yes 'a line of an agent that will not stop talking about itself' | head -c 5000000; done) &
# 3,000 idle connections, 32 bodies of 8 MiB at once, 1,000 distinct 1 MB model names.
ckprobe hold 127.0.0.1 11434 3000 &
ckprobe post 127.0.0.1 11434 /v1/chat/completions 32 32 8300000 &
touch attacks.started.bak
ckprobe post 127.0.0.1 11434 /v1/chat/completions 1000 8 1000000
touch names.done.bak
sleep 100000
"#;

/// Serves its health check, and writes `beat-<unix seconds>` every second.
const NEIGHBOUR: &str = r#"
mkdir -p $HOME/www; echo ok > $HOME/www/readyz
httpd -p 127.0.0.1:18789 -h $HOME/www
while :; do date +%s > $HOME/beat-$(date +%s); sleep 1; done
"#;

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn soft_nofile(pid: u32) -> usize {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn ledger_bytes(sup: &Supervisor) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(sup.state.join("ledger"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, std::fs::read(e.path()).unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_hostile_agent_cannot_hurt_the_supervisor_or_its_neighbour() {
    let rt = rt();
    let garage = rt.block_on(s3::Garage::start());
    let scratch = Scratch::new("hostile-key");
    let key = scratch.dir.join("store.key");
    let root = &garage.secrets.root;
    std::fs::write(&key, format!("{}:{}", root.access_key, root.secret_key)).unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let body = format!(
        r#"
[store]
endpoint = "{endpoint}"
credentials = "{key}"
admin = {{ kind = "none" }}
debounce = "300ms"
reconcile = "2s"

[models]
metrics = "{metrics}"
request_timeout = "5s"
upstream = [{{ name = "nowhere", url = "http://127.0.0.1:9/v1", api = "openai", models = ["tiny"] }}]

[[agent]]
name = "hostile"
command = "/bin/sh"
args = ["-c", '''{HOSTILE}''']
nofile = 8192
health = {{ http = "http://127.0.0.1:18789/readyz", interval = "1s", timeout = "2s", retries = 1000, start_period = "0s" }}

[[agent]]
name = "neighbour"
command = "/bin/sh"
args = ["-c", '''{NEIGHBOUR}''']
health = {{ http = "http://127.0.0.1:18789/readyz", interval = "500ms", timeout = "2s", retries = 1, start_period = "5s" }}
"#,
        endpoint = garage.managed.endpoint(),
        key = key.display(),
    );
    let mut sup = Supervisor::start_in(FleetDir::new("hostile", &body));
    let pid = sup.child.id();
    wait_for(Duration::from_secs(30), "the neighbour healthy", || {
        (sup.row("neighbour")["health"] == "healthy").then_some(())
    });
    let bucket = garage.root().bucket("ck-agent-neighbour");
    let beats = |rt: &tokio::runtime::Runtime| -> Vec<u64> {
        rt.block_on(s3::keys(&bucket))
            .iter()
            .filter_map(|k| k.strip_prefix("beat-")?.parse().ok())
            .collect()
    };
    wait_for(Duration::from_secs(30), "a first beat in the store", || {
        (!beats(&rt).is_empty()).then_some(())
    });
    let rss_before = status_kib(pid, "VmRSS:");
    let limit = soft_nofile(pid);
    let home = sup.state.join("agents/hostile/home");
    let marker = home.join("attacks.started.bak");
    wait_for(Duration::from_secs(30), "the attacks", || {
        marker.exists().then_some(())
    });
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Under attack: watch the supervisor and the neighbour for 40 s.
    let mut first_seen: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut rss_max, mut fds_max, mut unhealthy) = (rss_before, 0usize, Vec::new());
    let until = Instant::now() + Duration::from_secs(40);
    while Instant::now() < until {
        rss_max = rss_max.max(status_kib(pid, "VmRSS:"));
        fds_max = fds_max.max(open_fds(pid));
        let row = sup.row("neighbour");
        if row["health"] != "healthy" || row["restarts"] != 0 {
            unhealthy.push(row.to_string());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for b in beats(&rt) {
            first_seen.entry(b).or_insert(now);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let grown_mib = rss_max.saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 30,
        "the supervisor's memory grew by {grown_mib} MiB under attack"
    );
    assert!(
        fds_max < limit,
        "the supervisor had {fds_max} descriptors open, its limit is {limit}"
    );
    assert!(
        unhealthy.is_empty(),
        "the neighbour noticed: {unhealthy:#?}"
    );
    let late: Vec<(u64, u64)> = first_seen
        .iter()
        .filter(|(b, _)| **b >= started)
        .filter(|(b, seen)| **seen > **b + 5)
        .map(|(b, s)| (*b, *s))
        .collect();
    let checked = first_seen.keys().filter(|b| **b >= started).count();
    let slowest = first_seen
        .iter()
        .filter(|(b, _)| **b >= started)
        .map(|(b, seen)| seen.saturating_sub(*b))
        .max()
        .unwrap_or(0);
    assert!(checked >= 30, "only {checked} beats reached the store");
    assert!(late.is_empty(), "beats stored more than 5 s late: {late:?}");
    // Every one of the 1,000 made-up names was answered (and billed as a refusal).
    let names_done = home.join("names.done.bak");
    wait_for(Duration::from_secs(90), "the 1,000 model names", || {
        names_done.exists().then_some(())
    });
    // What the operator reads stays small.
    let metrics_text = rt.block_on(async {
        reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        metrics_text.len() < 1 << 20,
        "/metrics is {} bytes",
        metrics_text.len()
    );
    let ledger = ledger_bytes(&sup);
    let ledger_size: usize = ledger.iter().map(|(_, b)| b.len()).sum();
    let refused = ledger
        .iter()
        .flat_map(|(_, b)| b.split(|c| *c == b'\n'))
        .filter(|l| l.windows(10).any(|w| w == b"<refused>\""))
        .count();
    assert!(refused >= 1000, "only {refused} refusals were billed");
    assert!(
        ledger_size < 10_000_000,
        "the ledger is {ledger_size} bytes"
    );
    eprintln!(
        "hostile_agent: supervisor RSS {} -> {} KiB (+{grown_mib} MiB), fds max {fds_max} of {limit}, \
         {checked} neighbour beats, the slowest in the store {slowest} s after it was written \
         (to the second), /metrics {} B, ledger {ledger_size} B \
         ({refused} refusals)",
        rss_before,
        rss_max,
        metrics_text.len()
    );

    // A crash under attack loses no billing: the ledger is append-only and comes back.
    sup.kill_9();
    let _ = std::fs::remove_file(&marker);
    sup.up_again();
    let after = ledger_bytes(&sup);
    for (name, bytes) in &ledger {
        let now = after
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .unwrap_or_default();
        assert!(now.starts_with(bytes), "ledger {name} lost records");
    }
    let spend = sup.cli(&["spend", "--json"]);
    assert!(
        spend.status.success(),
        "{}",
        String::from_utf8_lossy(&spend.stderr)
    );
    // And `down` is prompt with the attacks running again.
    wait_for(Duration::from_secs(30), "the attacks again", || {
        marker.exists().then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let t = Instant::now();
    sup.down();
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "down took {:?} under attack",
        t.elapsed()
    );
}
