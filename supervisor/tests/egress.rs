//! The egress allow-list, for real: from inside a sandbox that has only loopback, an agent
//! reaches exactly the destinations its fleet entry lists, through the CONNECT proxy clawkeep
//! serves in its namespace; everything else is refused with 403 and logged. An agent without
//! a list has no proxy at all. A listed name that resolves to the node itself, a metadata or
//! a private address is refused at CONNECT time. "Outside" is a network namespace the test
//! makes, joined to the host by a veth pair in 198.51.100.0/24 (TEST-NET-2).

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use support::{facts, FleetDir, Supervisor};

/// Echo every connection on `l` back to its sender, from threads of the listener's thread.
fn echo(l: TcpListener) {
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
}

/// A TCP echo server on the host's loopback.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || echo(l));
    port
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace made by the test, the host's side of its veth pair at
/// 198.51.100.(4n+1) and its own at 198.51.100.(4n+2), with echo servers in it.
struct Outside {
    ns: String,
    host_side: String,
    /// The namespace's address.
    addr: Ipv4Addr,
}

impl Outside {
    fn new(n: u8) -> Self {
        let id = format!("{}{n}", std::process::id() % 100_000);
        let (ns, host_side, peer) = (
            format!("ck-out-{id}"),
            format!("ckh{id}"),
            format!("ckp{id}"),
        );
        let (mine, theirs) = (
            Ipv4Addr::new(198, 51, 100, 4 * n + 1),
            Ipv4Addr::new(198, 51, 100, 4 * n + 2),
        );
        ip(&["netns", "add", &ns]);
        let out = Outside {
            ns: ns.clone(),
            host_side: host_side.clone(),
            addr: theirs,
        };
        ip(&[
            "link", "add", &host_side, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &ns]);
        ip(&["addr", "add", &format!("{mine}/30"), "dev", &host_side]);
        ip(&["link", "set", &host_side, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{theirs}/30"),
            "dev",
            &peer,
        ]);
        ip(&["-n", &ns, "link", "set", &peer, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        out
    }

    /// An echo server listening in the namespace; its port.
    fn echo_server(&self) -> u16 {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.ns)).unwrap();
        let addr = self.addr;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // This thread (and the threads it starts) live in the namespace.
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let l = TcpListener::bind((addr, 0)).unwrap();
            tx.send(l.local_addr().unwrap().port()).unwrap();
            echo(l);
        });
        rx.recv().unwrap()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_side])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A shell line that CONNECTs to `target` through the agent's proxy and sends `payload`.
fn connect(target: &str, payload: &str) -> String {
    format!(
        r#"(printf 'CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n{payload}'; sleep 1) | nc 127.0.0.1 3128; echo"#
    )
}

#[test]
fn an_agent_reaches_exactly_its_egress_list_and_nothing_else() {
    let outside = Outside::new(0);
    let (open, closed) = (outside.echo_server(), outside.echo_server());
    let on_host = echo_server();
    let addr = outside.addr;
    let lines = [
        connect(&format!("{addr}:{open}"), "by-address\\n"),
        connect(&format!("good.test:{open}"), "by-name\\n"),
        connect(&format!("{addr}:{closed}"), ""),
        connect(&format!("evil.test:{on_host}"), "leaked\\n"),
        connect(&format!("meta.test:{on_host}"), ""),
        connect(&format!("private.test:{on_host}"), ""),
    ]
    .join("; ");
    let body = format!(
        r#"
[[agent]]
name = "out"
command = "/bin/sh"
args = ["-c", '''echo proxy=$HTTPS_PROXY; {lines}; ckprobe connect 127.0.0.1 {on_host}; echo done=yes; sleep 600''']
egress = ["{addr}:{open}", "good.test:{open}", "evil.test:{on_host}", "meta.test:{on_host}", "private.test:{on_host}"]

[[agent]]
name = "sealed"
command = "/bin/sh"
args = ["-c", '''echo proxy=$HTTPS_PROXY; ckprobe connect 127.0.0.1 3128; echo done=yes; sleep 600''']
"#
    );
    // The supervisor's resolver sees these names; evil.test is a name rebound to the node.
    let hosts = format!(
        "127.0.0.1 localhost\n{addr} good.test\n127.0.0.1 evil.test\n\
         169.254.169.254 meta.test\n10.0.0.7 private.test\n"
    );
    let mut sup = Supervisor::start_with_hosts(FleetDir::new("egress", &body), Some(&hosts));
    let out = support::wait_for(Duration::from_secs(40), "the agent's probes", || {
        let l = sup.logs("out");
        l.contains("done=yes").then_some(l)
    });
    // Allowed, by address and by name: a tunnel each, and bytes go both ways through it.
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("by-address"), "{out}");
    assert!(out.contains("by-name"), "{out}");
    // Not on the list: refused with a reason, and logged.
    assert!(
        out.contains(&format!("egress to {addr}:{closed} is not allowed")),
        "{out}"
    );
    assert!(
        out.contains(&format!("egress denied: {addr}:{closed}")),
        "{out}"
    );
    // On the list, but the name leads to the node, a metadata service or a private address.
    assert!(
        !out.contains("leaked"),
        "the host's loopback answered: {out}"
    );
    for (name, class) in [
        ("evil.test", "127.0.0.1 (the node's own loopback)"),
        (
            "meta.test",
            "169.254.169.254 (a cloud instance-metadata address)",
        ),
        ("private.test", "10.0.0.7 (a private address)"),
    ] {
        let why = format!("egress to {name}:{on_host} refused: it resolves to {class}");
        assert!(out.contains(&why), "{why}: {out}");
    }
    assert_eq!(out.matches("HTTP/1.1 403 Forbidden").count(), 4, "{out}");
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
    sup.down();
}

#[test]
fn an_agent_holds_at_most_its_share_of_tunnels() {
    let outside = Outside::new(1);
    let open = outside.echo_server();
    let target = format!("{}:{open}", outside.addr);
    let max = supervisor::engine::egress::MAX_TUNNELS;
    let hold = format!(
        r#"(printf 'CONNECT {target} HTTP/1.1\r\nHost: x\r\n\r\n'; sleep 30) | nc 127.0.0.1 3128 >/dev/null"#
    );
    let one_more = connect(&target, "");
    let body = format!(
        r#"
[[agent]]
name = "many"
command = "/bin/sh"
args = ["-c", '''i=0; while [ $i -lt {max} ]; do ({hold}) & i=$((i+1)); done; sleep 3; {one_more}; echo done=yes; sleep 600''']
egress = ["{target}"]
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
