//! Reaching into an agent's network namespace from the supervisor: a socket created by a
//! thread that has entered that namespace stays in it for its whole life, whoever uses it
//! afterwards. The operator port forwarder uses this, and so will the model gateway.

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
