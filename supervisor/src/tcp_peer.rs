//! Who is on the other end of a loopback TCP connection: the user owning the peer's
//! socket, asked of the kernel through sock_diag (the way `ss -e` finds it). The operator
//! port forwarders use it to share their connections fairly among local users.

use std::net::SocketAddr;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::Socket;

/// The uid owning the socket at `peer` that is connected to `local` (both as this side
/// sees them), or `None` when the kernel does not say (the peer is gone, or not on this
/// host). Never blocks: the kernel answers a single-socket query while it is sent.
pub fn uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let mut sock = Socket::new(NETLINK_SOCK_DIAG).ok()?;
    sock.bind_auto().ok()?;
    sock.set_non_blocking(true).ok()?;
    let family = if peer.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: peer.port(),
                destination_port: local.port(),
                source_address: peer.ip(),
                destination_address: local.ip(),
                interface_id: 0,
                // All ones: "no cookie", look the socket up by its addresses.
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    packet.finalize();
    let mut out = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut out);
    sock.send_to(&out, &netlink_sys::SocketAddr::new(0, 0), 0)
        .ok()?;
    let mut reply = Vec::with_capacity(8192);
    sock.recv(&mut reply, 0).ok()?;
    match NetlinkMessage::<SockDiagMessage>::deserialize(&reply)
        .ok()?
        .payload
    {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => Some(r.header.uid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_a_loopback_client_socket_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(uid(peer, server.local_addr().unwrap()), Some(me));
        drop(client);
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(uid(gone, server.local_addr().unwrap()), None);
    }
}
