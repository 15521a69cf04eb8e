//! Dependency order at start and the reverse order at shutdown.

use super::scripted::{Script, ScriptedLauncher, What};
use super::{secs, start};
use crate::engine::status::{ProcessRow, State};
use clawkeep_sandbox::status::ExitReason;

/// web needs cache and db, cache needs db; written dependents first, so only the
/// dependencies can put db first.
const CHAIN: &str = r#"
[[service]]
name = "web"
command = "/bin/true"
depends_on = ["cache", "db"]
stop_grace = "5s"

[[service]]
name = "cache"
command = "/bin/true"
depends_on = ["db"]

[[service]]
name = "db"
command = "/bin/true"
backoff = { initial = "1s" }
"#;

#[tokio::test(start_paused = true)]
async fn a_service_starts_only_after_the_services_it_depends_on_are_running() {
    // db cannot start twice (1s, then 2s of backoff) before it runs.
    let fake = ScriptedLauncher::new(|a| match (a.name.as_str(), a.run) {
        ("db", 1 | 2) => Script::fails_to_start("db's data directory is missing"),
        _ => Script::runs(),
    });
    let f = start(CHAIN, fake).await;
    let waiting = |r: &ProcessRow| r.state == State::Waiting && r.message.is_some();
    let web = f.until("web", secs(1), "waiting", waiting).await;
    assert_eq!(web.message.as_deref(), Some("waiting for cache, db"));
    let cache = f.until("cache", secs(1), "waiting", waiting).await;
    assert_eq!(cache.message.as_deref(), Some("waiting for db"));
    f.until("web", secs(10), "running", |r| r.state == State::Running)
        .await;
    assert_eq!(f.fake.starts(), ["db", "cache", "web"]);
    let db_up = f.fake.attempts_of("db")[2];
    assert_eq!(db_up, secs(3), "db ran after two failed starts");
    let cache_up = f.fake.attempts_of("cache")[0];
    assert!(
        cache_up >= db_up,
        "cache started at {cache_up:?}, db at {db_up:?}"
    );
    assert!(f.fake.attempts_of("web")[0] >= cache_up);
    // Waiting is not a start: nothing was restarted.
    assert_eq!(f.row("web").restarts, 0);
    assert_eq!(f.row("cache").restarts, 0);
}

#[tokio::test(start_paused = true)]
async fn an_agent_waits_for_the_service_it_depends_on_and_says_so() {
    let fake = ScriptedLauncher::new(|a| match (a.name.as_str(), a.run) {
        ("store", 1..=3) => Script::fails_to_start("the store's port is taken"),
        _ => Script::runs(),
    });
    let body = r#"
[[agent]]
name = "research"
command = "/bin/agent"
depends_on = ["store"]

[[service]]
name = "store"
command = "/bin/true"
backoff = { initial = "2s" }
"#;
    let f = start(body, fake).await;
    let waiting = f
        .until("research", secs(3), "waiting", |r| {
            r.state == State::Waiting && f.row("store").state == State::Backoff
        })
        .await;
    assert_eq!(waiting.message.as_deref(), Some("waiting for store"));
    f.until("research", secs(30), "running", |r| {
        r.state == State::Running
    })
    .await;
    let store_up = f.fake.attempts_of("store")[3];
    let research_up = f.fake.attempts_of("research");
    assert_eq!(research_up.len(), 1, "it started once");
    assert!(
        research_up[0] >= store_up,
        "research started at {:?}, store ran from {store_up:?}",
        research_up[0]
    );
}

#[tokio::test(start_paused = true)]
async fn an_agent_starts_once_every_service_has_had_a_first_try_even_a_failing_one() {
    let fake = ScriptedLauncher::new(|a| match a.name.as_str() {
        "broken" => Script::fails_to_start("no such program"),
        _ => Script::runs(),
    });
    let body = r#"
[[agent]]
name = "research"
command = "/bin/agent"

[[service]]
name = "broken"
command = "/bin/true"
"#;
    let f = start(body, fake).await;
    f.until("research", secs(5), "running", |r| {
        r.state == State::Running
    })
    .await;
    let first: Vec<(String, What)> = f
        .fake
        .events()
        .into_iter()
        .take(2)
        .map(|e| (e.name, e.what))
        .collect();
    assert_eq!(
        first,
        [
            ("broken".to_string(), What::Failed),
            ("research".to_string(), What::Started(None))
        ]
    );
    assert_eq!(f.row("broken").state, State::Backoff);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_agents_first_then_services_in_reverse_dependency_order() {
    // web ignores SIGTERM: cache is stopped only once web is gone, 5s (its grace) later.
    let fake = ScriptedLauncher::new(|a| match a.name.as_str() {
        "web" => Script::runs().deaf(),
        _ => Script::runs(),
    });
    let body = format!(
        "{CHAIN}\n[[agent]]\nname = \"alpha\"\ncommand = \"/bin/agent\"\n\n[[agent]]\nname = \"beta\"\ncommand = \"/bin/agent\"\n"
    );
    let f = start(&body, fake).await;
    for name in ["alpha", "beta", "web", "cache", "db"] {
        f.until(name, secs(5), "running", |r| r.state == State::Running)
            .await;
    }
    f.engine.shutdown().await;
    let stopped = f.fake.terminated();
    let mut agents = stopped[..2].to_vec();
    agents.sort();
    assert_eq!(agents, ["alpha", "beta"], "agents first: {stopped:?}");
    assert_eq!(stopped[2..], ["web", "cache", "db"]);
    let events = f.fake.events();
    let at = |name: &str, what: What| {
        events
            .iter()
            .find(|e| e.name == name && e.what == what)
            .map(|e| e.at)
            .unwrap_or_else(|| panic!("no {what:?} for {name}: {events:#?}"))
    };
    assert_eq!(
        at("cache", What::Terminated) - at("web", What::Terminated),
        secs(5)
    );
    assert_eq!(
        events.last().map(|e| &e.what),
        Some(&What::CleanedUp),
        "the launcher cleans up after the last stop"
    );
    for name in ["alpha", "beta", "web", "cache", "db"] {
        let row = f.row(name);
        assert_eq!(row.state, State::Stopped, "{name}");
        let last = row.last_exit.expect("a last exit");
        assert_eq!(
            last.detail.as_deref(),
            Some("stopped at shutdown"),
            "{name}"
        );
        let signal = if name == "web" { 9 } else { 15 };
        assert_eq!(last.reason, ExitReason::Signal(signal), "{name}");
    }
}
