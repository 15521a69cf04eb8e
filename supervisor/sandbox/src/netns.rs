//! Reaching into an agent's network namespace from the supervisor: a socket created by a
//! thread that has entered that namespace stays in it for its whole life, whoever uses it
//! afterwards. The operator port forwarders and the model gateway's sockets use this.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::{setns, CloneFlags};

/// Open the network namespace of process `pid` (under `proc_root`, normally `/proc`).
pub fn open(proc_root: &Path, pid: i32) -> std::io::Result<OwnedFd> {
    let f = std::fs::File::open(proc_root.join(pid.to_string()).join("ns/net"))?;
    Ok(f.into())
}

/// Run `f` on a short-lived thread that has joined `netns`; sockets it creates belong to
/// that namespace. The supervisor's own threads never change namespace.
pub fn within<T: Send + 'static>(
    netns: &OwnedFd,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let ns = netns.try_clone()?;
    std::thread::Builder::new()
        .name("clawkeep-netns".into())
        .spawn(move || {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            f()
        })?
        .join()
        .map_err(|_| std::io::Error::other("netns thread panicked"))?
}

/// A TCP socket (not yet connected) inside `netns`, ready for tokio.
pub fn tcp_socket(netns: &OwnedFd) -> std::io::Result<tokio::net::TcpSocket> {
    let std_sock = within(netns, || {
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC | nix::sys::socket::SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(std::io::Error::from)
    })?;
    Ok(tokio::net::TcpSocket::from_std_stream(
        std::net::TcpStream::from(std_sock),
    ))
}

/// A thread that has joined one network namespace for good and makes TCP sockets there on
/// request: however many connections are forwarded into an agent, one thread.
pub struct Dialer {
    ns: std::sync::Arc<OwnedFd>,
    asks: std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<std::io::Result<OwnedFd>>>,
}

impl Dialer {
    /// Start the thread for `ns`; it ends when the dialer is dropped.
    pub fn new(ns: std::sync::Arc<OwnedFd>) -> std::io::Result<Self> {
        let joined = ns.try_clone()?;
        let (asks, asked) =
            std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<std::io::Result<OwnedFd>>>();
        std::thread::Builder::new()
            .name("clawkeep-dialer".into())
            .spawn(move || {
                let entered =
                    setns(joined.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from);
                drop(joined);
                for reply in asked {
                    let made = match &entered {
                        Ok(()) => nix::sys::socket::socket(
                            nix::sys::socket::AddressFamily::Inet,
                            nix::sys::socket::SockType::Stream,
                            nix::sys::socket::SockFlag::SOCK_CLOEXEC
                                | nix::sys::socket::SockFlag::SOCK_NONBLOCK,
                            None,
                        )
                        .map_err(std::io::Error::from),
                        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                    };
                    let _ = reply.send(made);
                }
            })?;
        Ok(Self { ns, asks })
    }

    /// Whether this dialer is in `ns` (the same run of the same agent).
    pub fn serves(&self, ns: &std::sync::Arc<OwnedFd>) -> bool {
        std::sync::Arc::ptr_eq(&self.ns, ns)
    }

    /// A TCP socket (not yet connected) inside the namespace, ready for tokio.
    pub async fn socket(&self) -> std::io::Result<tokio::net::TcpSocket> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.asks
            .send(tx)
            .map_err(|_| std::io::Error::other("the namespace's dialer thread has ended"))?;
        let fd = rx
            .await
            .map_err(|_| std::io::Error::other("the namespace's dialer thread has ended"))??;
        Ok(tokio::net::TcpSocket::from_std_stream(
            std::net::TcpStream::from(fd),
        ))
    }
}
