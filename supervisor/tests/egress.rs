//! The egress allow-list, for real: from inside a sandbox that has only loopback, an agent
//! reaches exactly the destinations its fleet entry lists, through the CONNECT proxy clawkeep
//! serves in its namespace; everything else is refused with 403 and logged. An agent without
//! a list has no proxy at all.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use support::{facts, Supervisor};

/// A TCP echo server on the host's loopback (the "outside world" the allow-list opens).
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn an_agent_reaches_exactly_its_egress_list_and_nothing_else() {
    let open = echo_server();
    let closed = echo_server();
    let connect = |port: u16, payload: &str| {
        format!(
            r#"(printf 'CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n{payload}'; sleep 1) | nc 127.0.0.1 3128"#
        )
    };
    let body = format!(
        r#"
[[agent]]
name = "out"
command = "/bin/sh"
args = ["-c", '''echo proxy=$HTTPS_PROXY; {allowed}; echo; {denied}; echo; ckprobe connect 127.0.0.1 {open}; echo done=yes; sleep 600''']
egress = ["127.0.0.1:{open}"]

[[agent]]
name = "sealed"
command = "/bin/sh"
args = ["-c", '''echo proxy=$HTTPS_PROXY; ckprobe connect 127.0.0.1 3128; echo done=yes; sleep 600''']
"#,
        allowed = connect(open, "ping-through\\n"),
        denied = connect(closed, ""),
    );
    let mut sup = Supervisor::start("egress", &body);
    let out = support::wait_for(Duration::from_secs(30), "the agent's probes", || {
        let l = sup.logs("out");
        l.contains("done=yes").then_some(l)
    });
    // Allowed: a tunnel, and bytes go both ways through it.
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");
    assert!(
        out.contains("ping-through"),
        "the echo came back through the tunnel: {out}"
    );
    // Not on the list: refused with a reason, and logged.
    assert!(out.contains("HTTP/1.1 403 Forbidden"), "{out}");
    assert!(
        out.contains(&format!("egress to 127.0.0.1:{closed} is not allowed")),
        "{out}"
    );
    assert!(
        out.contains(&format!("egress denied: 127.0.0.1:{closed}")),
        "{out}"
    );
    // No way around the proxy: the sandbox's own loopback has nothing at that port.
    let f = facts(&out);
    assert_eq!(f["connect"], "ECONNREFUSED", "{out}");
    assert_eq!(f["proxy"], "http://127.0.0.1:3128");
    // No list, no proxy.
    let sealed = support::wait_for(Duration::from_secs(30), "the sealed agent's probe", || {
        let l = sup.logs("sealed");
        l.contains("done=yes").then_some(l)
    });
    let f = facts(&sealed);
    assert_eq!(f["connect"], "ECONNREFUSED", "{sealed}");
    assert_eq!(f.get("proxy").map(String::as_str), Some(""), "{sealed}");
    // The audit points out that this list leads back to the node's loopback.
    let out = sup.cli(&["audit", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!out.status.success(), "{report}");
    let egr: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "CK-EGR-001")
        .collect();
    assert_eq!(egr.len(), 1, "{report}");
    assert_eq!(egr[0]["subject"], "out");
    sup.down();
}

#[test]
fn an_agent_holds_at_most_its_share_of_tunnels() {
    let open = echo_server();
    let max = supervisor::engine::egress::MAX_TUNNELS;
    let hold = format!(
        r#"(printf 'CONNECT 127.0.0.1:{open} HTTP/1.1\r\nHost: x\r\n\r\n'; sleep 30) | nc 127.0.0.1 3128 >/dev/null"#
    );
    let one_more = format!(
        r#"(printf 'CONNECT 127.0.0.1:{open} HTTP/1.1\r\nHost: x\r\n\r\n'; sleep 1) | nc 127.0.0.1 3128"#
    );
    let body = format!(
        r#"
[[agent]]
name = "many"
command = "/bin/sh"
args = ["-c", '''i=0; while [ $i -lt {max} ]; do ({hold}) & i=$((i+1)); done; sleep 3; {one_more}; echo; echo done=yes; sleep 600''']
egress = ["127.0.0.1:{open}"]
"#
    );
    let mut sup = Supervisor::start("tunnels", &body);
    let out = support::wait_for(Duration::from_secs(40), "the agent's tunnels", || {
        let l = sup.logs("many");
        l.contains("done=yes").then_some(l)
    });
    assert!(
        out.contains("HTTP/1.1 429"),
        "tunnel {} was opened: {out}",
        max + 1
    );
    assert!(
        out.contains(&format!("already has {max} tunnels open")),
        "{out}"
    );
    sup.down();
}
