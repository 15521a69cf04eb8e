//! Restart policies, backoff, crash loops and stops, as `clawkeep ps` shows them.

use super::scripted::{Script, ScriptedLauncher, What};
use super::{gaps, ms, secs, start};
use crate::engine::process::Command;
use crate::engine::status::State;
use clawkeep_sandbox::status::ExitReason;

/// One service `web` with `policy` lines (restart, backoff, crash_loop, stop_grace).
fn web(policy: &str) -> String {
    format!("[[service]]\nname = \"web\"\ncommand = \"/bin/true\"\n{policy}\n")
}

#[tokio::test(start_paused = true)]
async fn a_service_that_exits_cleanly_is_not_restarted_under_on_failure() {
    let fake = ScriptedLauncher::new(|_| Script::exits(0, secs(1)));
    let f = start(&web("restart = \"on-failure\""), fake).await;
    let row = f
        .until("web", secs(5), "exited", |r| r.state == State::Exited)
        .await;
    tokio::time::sleep(secs(600)).await;
    assert_eq!(f.row("web").state, State::Exited);
    assert_eq!(row.restarts, 0);
    assert_eq!(
        row.last_exit.map(|e| e.reason),
        Some(ExitReason::Code(0)),
        "ps shows how it ended"
    );
    assert_eq!(f.fake.attempts_of("web").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_service_that_fails_is_restarted_under_on_failure() {
    let fake = ScriptedLauncher::new(|a| match a.run {
        1 => Script::exits(2, secs(1)),
        _ => Script::runs(),
    });
    let f = start(
        &web("restart = \"on-failure\"\nbackoff = { initial = \"3s\" }"),
        fake,
    )
    .await;
    let waiting = f
        .until("web", secs(5), "backing off", |r| r.state == State::Backoff)
        .await;
    assert_eq!(waiting.message.as_deref(), Some("restarting in 3s"));
    assert_eq!(
        waiting.last_exit.map(|e| e.reason),
        Some(ExitReason::Code(2))
    );
    let row = f
        .until("web", secs(10), "running again", |r| {
            r.state == State::Running
        })
        .await;
    assert_eq!(row.restarts, 1);
    assert_eq!(gaps(&f.fake.attempts_of("web")), vec![secs(4)]);
}

#[tokio::test(start_paused = true)]
async fn a_service_that_exits_cleanly_is_restarted_under_always() {
    let fake = ScriptedLauncher::new(|a| match a.run {
        1 => Script::exits(0, secs(1)),
        _ => Script::runs(),
    });
    let f = start(
        &web("restart = \"always\"\nbackoff = { initial = \"2s\" }"),
        fake,
    )
    .await;
    let row = f
        .until("web", secs(10), "restarted", |r| {
            r.state == State::Running && r.restarts == 1
        })
        .await;
    assert_eq!(row.last_exit.map(|e| e.reason), Some(ExitReason::Code(0)));
    assert_eq!(gaps(&f.fake.attempts_of("web")), vec![secs(3)]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_service_is_never_restarted_under_never() {
    let fake = ScriptedLauncher::new(|_| Script::exits(3, ms(500)));
    let f = start(&web("restart = \"never\""), fake).await;
    f.until("web", secs(5), "exited", |r| r.state == State::Exited)
        .await;
    tokio::time::sleep(secs(600)).await;
    let row = f.row("web");
    assert_eq!(row.state, State::Exited);
    assert_eq!(row.restarts, 0);
    assert_eq!(row.last_exit.map(|e| e.reason), Some(ExitReason::Code(3)));
    assert_eq!(f.fake.attempts_of("web").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_between_quick_failures_up_to_its_cap() {
    let fake = ScriptedLauncher::new(|_| Script::exits(1, ms(100)));
    let f = start(
        &web("backoff = { initial = \"1s\", max = \"4s\" }\ncrash_loop = { failures = 100 }"),
        fake,
    )
    .await;
    f.until("web", secs(60), "restarted five times", |r| r.restarts >= 5)
        .await;
    let every = gaps(&f.fake.attempts_of("web"));
    // Each gap is the run (100 ms) and then the backoff: 1s, 2s, 4s, then the cap.
    assert_eq!(
        every[..5],
        [ms(1100), ms(2100), ms(4100), ms(4100), ms(4100)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_that_lasts_a_whole_crash_window_starts_the_backoff_over() {
    // Three quick failures (backoff 1s, 2s, 4s), one run of 61s, then a quick failure again.
    let fake = ScriptedLauncher::new(|a| match a.run {
        4 => Script::exits(1, secs(61)),
        _ => Script::exits(1, ms(100)),
    });
    let f = start(
        &web(
            "backoff = { initial = \"1s\", max = \"60s\" }\ncrash_loop = { failures = 100, window = \"60s\" }",
        ),
        fake,
    )
    .await;
    f.until("web", secs(200), "restarted five times", |r| {
        r.restarts >= 5
    })
    .await;
    let every = gaps(&f.fake.attempts_of("web"));
    // After the long run the delay is 1s again, not the 8s the streak would give; the
    // next quick failure doubles it as usual.
    assert_eq!(
        every[..5],
        [ms(1100), ms(2100), ms(4100), secs(62), ms(2100)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_that_keeps_failing_is_held_in_crash_loop_then_tried_again() {
    let fake = ScriptedLauncher::new(|_| Script::exits(1, ms(100)));
    let f = start(
        &web(
            "backoff = { initial = \"1s\" }\ncrash_loop = { failures = 3, window = \"60s\", hold = \"5m\" }",
        ),
        fake,
    )
    .await;
    let held = f
        .until("web", secs(60), "in crash loop", |r| {
            r.state == State::CrashLoop
        })
        .await;
    assert_eq!(held.message.as_deref(), Some("crash loop; next try in 5m"));
    assert_eq!(
        held.restarts, 2,
        "two restarts, then the third failure holds it"
    );
    assert_eq!(held.last_exit.map(|e| e.reason), Some(ExitReason::Code(1)));
    assert!(
        f.log("web")
            .contains("crash loop: 3 restarts within 1m; holding for 5m"),
        "{}",
        f.log("web")
    );
    f.until("web", secs(400), "tried again", |r| r.restarts == 3)
        .await;
    let every = gaps(&f.fake.attempts_of("web"));
    assert_eq!(every, [ms(1100), ms(2100), secs(300) + ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn a_service_that_cannot_start_is_retried_and_ps_says_why() {
    let fake = ScriptedLauncher::new(|a| match a.run {
        1 | 2 => Script::fails_to_start("secret API_KEY of web is not set"),
        _ => Script::runs(),
    });
    let f = start(&web("backoff = { initial = \"1s\" }"), fake).await;
    let failed = f
        .until("web", secs(5), "backing off", |r| r.state == State::Backoff)
        .await;
    let last = failed.last_exit.expect("a failed start is a last exit");
    assert_eq!(last.reason, ExitReason::StartFailed);
    assert_eq!(
        last.detail.as_deref(),
        Some("secret API_KEY of web is not set")
    );
    let row = f
        .until("web", secs(10), "running", |r| r.state == State::Running)
        .await;
    assert_eq!(row.restarts, 2);
    assert_eq!(gaps(&f.fake.attempts_of("web")), [secs(1), secs(2)]);
    assert!(f
        .log("web")
        .contains("failed to start: secret API_KEY of web is not set"));
}

#[tokio::test(start_paused = true)]
async fn a_stop_the_process_ignores_ends_in_a_kill_after_the_grace_period() {
    let fake = ScriptedLauncher::new(|_| Script::runs().deaf());
    let f = start(&web("stop_grace = \"7s\""), fake).await;
    f.until("web", secs(5), "running", |r| r.state == State::Running)
        .await;
    let asked = tokio::time::Instant::now();
    f.command("web", Command::Stop)
        .await
        .expect("the stop succeeds");
    assert_eq!(asked.elapsed(), secs(7), "the stop waits out the grace");
    let row = f.row("web");
    assert_eq!(row.state, State::Stopped);
    assert_eq!(row.pid, None);
    let last = row.last_exit.expect("the stop is its last exit");
    assert_eq!(last.reason, ExitReason::Signal(9));
    assert_eq!(last.detail.as_deref(), Some("stopped by the operator"));
    let what: Vec<What> = f
        .fake
        .events()
        .into_iter()
        .filter(|e| e.name == "web")
        .map(|e| e.what)
        .collect();
    assert_eq!(what, [What::Started(None), What::Terminated, What::Killed]);
    tokio::time::sleep(secs(600)).await;
    assert_eq!(f.row("web").state, State::Stopped, "a stop is kept");
}

#[tokio::test(start_paused = true)]
async fn an_operator_restart_starts_at_once_and_forgets_the_backoff() {
    let fake = ScriptedLauncher::new(|a| match a.run {
        1..=3 => Script::exits(1, ms(100)),
        _ => Script::runs(),
    });
    let f = start(
        &web("backoff = { initial = \"10s\" }\ncrash_loop = { failures = 100 }"),
        fake,
    )
    .await;
    // Third failure: the next try would be in 40s.
    let waiting = f
        .until("web", secs(60), "backing off 40s", |r| {
            r.message.as_deref() == Some("restarting in 40s")
        })
        .await;
    assert_eq!(waiting.state, State::Backoff);
    let asked = tokio::time::Instant::now();
    f.command("web", Command::Restart)
        .await
        .expect("the restart succeeds");
    assert!(asked.elapsed() < secs(1), "started at once");
    let row = f.row("web");
    assert_eq!(row.state, State::Running);
    assert_eq!(row.restarts, 3);
}
