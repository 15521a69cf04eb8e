//! The follower under an agent's hand: a home that grows past the watch cap while it is
//! watched is handed to the reconcile timer at the next reconcile (its inotify watches given
//! back, said once), and its changes still reach the store. A binary of its own: it holds
//! thousands of watches, which the watch tests count.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawkeep_store::follow::{follow, Command, FollowStatus, Note, Timing};
use clawkeep_store::watch::MAX_WATCHED_DIRS;
use support::watches;

/// Wait up to `secs` seconds for `f` to hold.
async fn eventually(secs: u64, what: &str, f: impl Fn() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_home_that_grows_past_the_cap_while_watched_is_handed_to_the_reconcile_timer_once() {
    let g = support::Garage::start().await;
    let bucket = g.bucket("ck-agent-grows").await;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    support::write(&home, "SOUL.md", b"who I am");
    let notes: Arc<Mutex<Vec<Note>>> = Arc::default();
    let heard = notes.clone();
    let (commands, rx) = tokio::sync::mpsc::channel(4);
    let (status, _) = tokio::sync::watch::channel(FollowStatus::default());
    let before = watches();
    let timing = Timing {
        debounce: Duration::from_millis(200),
        reconcile: Duration::from_secs(1),
    };
    let task = tokio::spawn(follow(
        support::syncer(bucket, &home, "grows"),
        timing,
        rx,
        status,
        Some(Arc::new(move |n| heard.lock().unwrap().push(n))),
    ));
    eventually(10, "the watch", || watches() > before).await;
    for i in 0..MAX_WATCHED_DIRS + 5 {
        std::fs::create_dir_all(home.join(format!("many/{}/{i}", i % 7))).unwrap();
    }
    let unwatched = || {
        notes
            .lock()
            .unwrap()
            .iter()
            .filter(|n| matches!(n, Note::Unwatched(_)))
            .count()
    };
    eventually(20, "the follower to stop watching", || unwatched() > 0).await;
    eventually(5, "its watches given back", || watches() <= before).await;
    // Two more reconciles: said once, and changes still go up by the timer.
    support::write(&home, "later.md", b"after the watch stopped");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(unwatched(), 1, "{:?}", notes.lock().unwrap());
    let (tx, done) = tokio::sync::oneshot::channel();
    commands.send(Command::Stop(tx)).await.unwrap();
    let last = done.await.unwrap().unwrap();
    let stored = support::newest(&g.root().bucket("ck-agent-grows")).await;
    assert!(stored.contains_key("later.md"), "{last:?}");
    task.await.unwrap();
}
