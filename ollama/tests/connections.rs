//! What one agent's connections may cost the gateway: a cap per socket, a deadline for a
//! request's head (idle kept-alive connections included) and for its body, a declared body
//! over the limit refused unread, and bodies read only once the agent has a free slot. Each
//! test fails when its bound is taken away. No request here reaches a model.

mod support;

use std::time::{Duration, Instant};

use clawkeep_gateway::listen::Bounds;
use clawkeep_gateway::server::{Caller, Settings};
use support::{caller, config, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No upstream is ever called: a closed loopback port will do.
fn no_upstream() -> clawkeep_gateway::config::GatewayConfig {
    config(&["http://127.0.0.1:9/v1".to_string()])
}

async fn gateway(settings: Settings, callers: Vec<Caller>) -> TestGateway {
    TestGateway::start(no_upstream(), settings, callers).await
}

fn addr(gw: &TestGateway, agent: &str) -> String {
    gw.base[agent].trim_start_matches("http://").to_string()
}

/// Read what the gateway sends until it closes the connection or `within` passes; `None`
/// when it neither closed nor finished a response head in time.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) if got.windows(4).any(|w| w == b"\r\n\r\n") => {
                return Some(String::from_utf8_lossy(&got).into())
            }
            Err(_) => return None,
        }
    }
}

fn chat_head(content_length: u64) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: {content_length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_an_agents_cap_are_closed_at_once_and_its_neighbour_is_not_touched() {
    let settings = Settings {
        connections: Bounds {
            max_connections: 4,
            ..Bounds::AGENT
        },
        ..Settings::default()
    };
    let gw = gateway(settings, vec![caller("a"), caller("b")]).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr(&gw, "a")).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = TcpStream::connect(addr(&gw, "a")).await.unwrap();
    fifth
        .write_all(b"GET /api/version HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .ok();
    let got = read_until_closed(&mut fifth, Duration::from_secs(3)).await;
    assert_eq!(
        got.as_deref(),
        Some(""),
        "a fifth connection over the cap of 4 was served or kept open"
    );
    let version = |agent: &str| reqwest::get(gw.url(agent, "/api/version"));
    assert_eq!(version("b").await.unwrap().status(), 200, "the neighbour");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        version("a").await.unwrap().status(),
        200,
        "a freed connection is the agent's again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_sends_no_request_is_closed_at_the_request_timeout_even_after_one() {
    let settings = Settings {
        connections: Bounds {
            head_timeout: Duration::from_millis(300),
            ..Bounds::AGENT
        },
        ..Settings::default()
    };
    let gw = gateway(settings, vec![caller("a")]).await;
    let mut silent = TcpStream::connect(addr(&gw, "a")).await.unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(3))
            .await
            .is_some_and(|g| !g.contains("200 OK")),
        "a connection that never sent a request head is still open"
    );
    // A kept-alive connection after its answer: the next head gets the same deadline.
    let mut kept = TcpStream::connect(addr(&gw, "a")).await.unwrap();
    kept.write_all(b"GET /api/version HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let rest = read_until_closed(&mut kept, Duration::from_secs(3)).await;
    assert_eq!(
        rest.as_deref(),
        Some(""),
        "an idle kept-alive connection stayed open"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_declared_over_max_body_is_refused_before_a_byte_of_it_is_sent() {
    let settings = Settings {
        max_body: 1 << 10,
        ..Settings::default()
    };
    let gw = gateway(settings, vec![caller("a")]).await;
    let mut s = TcpStream::connect(addr(&gw, "a")).await.unwrap();
    s.write_all(chat_head(1 << 30).as_bytes()).await.unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(3))
        .await
        .expect("the gateway waited for a 1 GiB body it would refuse");
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(got.contains("max_body"), "{got}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_trickles_is_cut_at_the_request_timeout() {
    let settings = Settings {
        body_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let gw = gateway(settings, vec![caller("a")]).await;
    let mut s = TcpStream::connect(addr(&gw, "a")).await.unwrap();
    s.write_all(chat_head(100).as_bytes()).await.unwrap();
    s.write_all(b"{\"model\":").await.unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(3))
        .await
        .expect("a body that stopped arriving was waited for");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("did not arrive"), "{got}");
    let records = gw.wait_records(1).await;
    assert_eq!(records[0].status, 408, "the refusal is billed (no tokens)");
}

/// Two requests whose bodies never finish, where only one may be read at a time: the
/// second body is not even read until the first request gives its room back, so its
/// timeout ends a timeout later.
async fn second_body_waits_for_the_first(settings: Settings, caller: Caller, length: u64) {
    let gw = gateway(settings, vec![caller]).await;
    let started = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..2 {
        let a = addr(&gw, "a");
        waits.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(a).await.unwrap();
            s.write_all(chat_head(length).as_bytes()).await.unwrap();
            s.write_all(b"{").await.unwrap();
            let got = read_until_closed(&mut s, Duration::from_secs(5)).await;
            (got, started.elapsed())
        }));
    }
    let mut ends = Vec::new();
    for w in waits {
        let (got, at) = w.await.unwrap();
        let got = got.expect("no answer within 5 s");
        assert!(got.starts_with("HTTP/1.1 408"), "{got}");
        ends.push(at);
    }
    ends.sort();
    assert!(
        ends[1] >= Duration::from_millis(1100),
        "both bodies were being read at once: timeouts at {ends:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agents_bodies_are_read_only_once_it_has_a_free_slot() {
    let settings = Settings {
        body_timeout: Duration::from_millis(600),
        ..Settings::default()
    };
    let one_slot = Caller {
        max_concurrent: 1,
        ..caller("a")
    };
    second_body_waits_for_the_first(settings, one_slot, 100).await;
}

/// Four slots, but two bodies of 600 bytes do not fit a `max_body` of 1 KiB together.
#[tokio::test(flavor = "multi_thread")]
async fn an_agents_bodies_in_memory_together_stay_within_max_body() {
    let settings = Settings {
        body_timeout: Duration::from_millis(600),
        max_body: 1 << 10,
        ..Settings::default()
    };
    second_body_waits_for_the_first(settings, caller("a"), 600).await;
}
