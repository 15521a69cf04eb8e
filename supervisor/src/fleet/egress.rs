//! Which destinations an egress allow-list may open: never the node itself, link-local or
//! metadata addresses, CGNAT or multicast, in any spelling (`127.1`, `2130706433`,
//! `0x7f000001`, `[::ffff:127.0.0.1]`, `[64:ff9b::7f00:1]`); private ranges only when the
//! entry names that exact address. `check` applies [`entry`] to every entry, CK-EGR-001
//! the same rule, and the egress proxy [`refusal`] to every address a name resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One allow-list entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The host as written, lowercase (a name, or an address in its canonical form).
    pub host: Host,
    /// The port.
    pub port: u16,
}

/// The host of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, resolved by the proxy at each CONNECT.
    Name(String),
    /// An address (written in any form `inet_aton` or IPv6 accepts).
    Ip(IpAddr),
}

/// Why a destination or an address is refused: a class of address and what it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// 127.0.0.0/8, ::1, `localhost`: the node's own services, around clawkeep.
    Loopback,
    /// 0.0.0.0/8, `::`: reaches the node itself.
    Unspecified,
    /// 169.254.169.254, fd00:ec2::254, 100.100.100.200: a cloud's instance metadata.
    Metadata,
    /// 169.254.0.0/16, fe80::/10: the local link.
    LinkLocal,
    /// 100.64.0.0/10: carrier-grade NAT, a provider's internal network.
    Cgnat,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 240.0.0.0/4 and 255.255.255.255.
    Reserved,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7: allowed only when the entry names the address.
    Private,
}

impl Refused {
    /// What the class is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Refused::Loopback => "the node's own loopback",
            Refused::Unspecified => "the unspecified address (the node itself)",
            Refused::Metadata => "a cloud instance-metadata address",
            Refused::LinkLocal => "a link-local address",
            Refused::Cgnat => "a carrier-grade NAT address (100.64.0.0/10)",
            Refused::Multicast => "a multicast address",
            Refused::Reserved => "a reserved or broadcast address",
            Refused::Private => "a private address",
        }
    }
}

/// Why `ip` may not be reached through the egress proxy, whatever the entry says, or
/// `Some(Private)` for a private address (allowed only when the entry names it).
pub fn refusal(ip: IpAddr) -> Option<Refused> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<Refused> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        (127, _) => Refused::Loopback,
        (0, _) => Refused::Unspecified,
        (169, 254) if (c, d) == (169, 254) => Refused::Metadata,
        (169, 254) => Refused::LinkLocal,
        (100, 100) if (c, d) == (100, 200) => Refused::Metadata,
        (100, 64..=127) => Refused::Cgnat,
        (224..=239, _) => Refused::Multicast,
        (240..=255, _) => Refused::Reserved,
        (10, _) | (172, 16..=31) | (192, 168) => Refused::Private,
        _ => return None,
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<Refused> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some(Refused::Loopback);
    }
    if ip.is_unspecified() {
        return Some(Refused::Unspecified);
    }
    // An IPv4 address inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::) all reach the IPv4 address.
    let embedded = match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => Some((hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some((hi, lo)),
        [0x2002, hi, lo, ..] => Some((hi, lo)),
        _ => None,
    };
    if let Some((hi, lo)) = embedded {
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return refusal_v4(v4);
    }
    Some(match s[0] {
        0xfd00 if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254] => Refused::Metadata,
        0xfe80..=0xfebf => Refused::LinkLocal,
        0xff00..=0xffff => Refused::Multicast,
        0xfc00..=0xfdff | 0xfec0..=0xfeff => Refused::Private,
        _ => return None,
    })
}

/// An IPv4 address in any form `inet_aton` (and so the resolver) accepts: one to four
/// parts, each decimal, `0x` hex or `0` octal, the last filling the remaining bytes
/// (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`).
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for p in &parts {
        let v = if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u32>().ok()?
        };
        values.push(v);
    }
    let (last, head) = values.split_last()?;
    let mut addr: u32 = 0;
    for (i, v) in head.iter().enumerate() {
        if *v > 255 {
            return None;
        }
        addr |= v << (24 - 8 * i);
    }
    let room = 32 - 8 * head.len();
    if room < 32 && *last >= 1 << room {
        return None;
    }
    Some(Ipv4Addr::from(addr | last))
}

/// What is wrong with an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// Not `host:port`.
    Shape,
    /// It names an address of a refused class (`shown` is the address it is).
    Refused {
        /// The class.
        class: Refused,
        /// The address the host is, when written in another form (e.g. `127.1`).
        shown: Option<IpAddr>,
    },
}

/// Parse and vet an allow-list entry `host:port` (IPv6 hosts in brackets).
pub fn entry(e: &str) -> Result<Destination, EntryError> {
    let (host, port) = e.rsplit_once(':').ok_or(EntryError::Shape)?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or(EntryError::Shape)?;
    let host = host.to_ascii_lowercase();
    if host.is_empty() || host.contains('/') {
        return Err(EntryError::Shape);
    }
    if let Some(inner) = host.strip_prefix('[') {
        let v6: Ipv6Addr = inner
            .strip_suffix(']')
            .and_then(|i| i.parse().ok())
            .ok_or(EntryError::Shape)?;
        return vet_ip(IpAddr::V6(v6), None, port);
    }
    if host.contains(':') {
        return Err(EntryError::Shape);
    }
    // Digits, dots and hex: an address, in whatever form the resolver would read it.
    let numeric = host.split('.').all(|p| {
        !p.is_empty()
            && (p.bytes().all(|b| b.is_ascii_digit())
                || (p.starts_with("0x") && p[2..].bytes().all(|b| b.is_ascii_hexdigit())))
    });
    if numeric {
        let ip = inet_aton(&host).ok_or(EntryError::Shape)?;
        let written: Option<Ipv4Addr> = host.parse().ok();
        let shown = (written != Some(ip)).then_some(IpAddr::V4(ip));
        return vet_ip(IpAddr::V4(ip), shown, port);
    }
    let name = host.trim_end_matches('.');
    if name == "localhost" || name.ends_with(".localhost") {
        return Err(EntryError::Refused {
            class: Refused::Loopback,
            shown: None,
        });
    }
    Ok(Destination {
        host: Host::Name(host),
        port,
    })
}

fn vet_ip(ip: IpAddr, shown: Option<IpAddr>, port: u16) -> Result<Destination, EntryError> {
    match refusal(ip) {
        None | Some(Refused::Private) => Ok(Destination {
            host: Host::Ip(ip),
            port,
        }),
        Some(class) => Err(EntryError::Refused { class, shown }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(e: &str) -> Refused {
        match entry(e) {
            Err(EntryError::Refused { class, .. }) => class,
            other => panic!("{e}: {other:?}"),
        }
    }

    #[test]
    fn the_node_itself_is_refused_in_every_spelling() {
        for e in [
            "127.0.0.1:22",
            "127.1:22",
            "2130706433:22",
            "0x7f000001:22",
            "0x7f.0.0.1:22",
            "0177.0.0.1:22",
            "127.0.1:22",
            "[::1]:22",
            "[::ffff:127.0.0.1]:22",
            "[::ffff:7f00:1]:22",
            "[::127.0.0.1]:22",
            "[0:0:0:0:0:ffff:7f00:1]:22",
            "[64:ff9b::127.0.0.1]:22",
            "[2002:7f00:1::]:22",
            "localhost:22",
            "LOCALHOST.:22",
            "db.localhost:22",
        ] {
            assert_eq!(refused(e), Refused::Loopback, "{e}");
        }
        for e in ["0.0.0.0:80", "0:80", "[::]:80"] {
            assert_eq!(refused(e), Refused::Unspecified, "{e}");
        }
    }

    #[test]
    fn metadata_link_local_cgnat_and_multicast_are_refused_even_when_named() {
        assert_eq!(refused("169.254.169.254:80"), Refused::Metadata);
        assert_eq!(refused("2852039166:80"), Refused::Metadata);
        assert_eq!(refused("[fd00:ec2::254]:80"), Refused::Metadata);
        assert_eq!(refused("100.100.100.200:80"), Refused::Metadata);
        assert_eq!(refused("[::ffff:169.254.169.254]:80"), Refused::Metadata);
        assert_eq!(refused("169.254.1.1:80"), Refused::LinkLocal);
        assert_eq!(refused("[fe80::1]:80"), Refused::LinkLocal);
        assert_eq!(refused("100.64.0.1:80"), Refused::Cgnat);
        assert_eq!(refused("100.127.255.254:80"), Refused::Cgnat);
        assert_eq!(refused("224.0.0.1:80"), Refused::Multicast);
        assert_eq!(refused("[ff02::1]:80"), Refused::Multicast);
        assert_eq!(refused("255.255.255.255:80"), Refused::Reserved);
    }

    #[test]
    fn a_private_address_is_allowed_only_when_the_entry_names_it() {
        for e in [
            "10.1.2.3:443",
            "172.16.0.9:443",
            "192.168.1.1:443",
            "[fd12::1]:443",
        ] {
            let d = entry(e).unwrap();
            assert!(matches!(d.host, Host::Ip(ip) if refusal(ip) == Some(Refused::Private)));
        }
        assert_eq!(
            refusal("10.0.0.1".parse().unwrap()),
            Some(Refused::Private),
            "a name resolving here is refused by the proxy"
        );
    }

    #[test]
    fn public_addresses_and_names_pass() {
        assert_eq!(
            entry("Matrix.Internal:8448").unwrap(),
            Destination {
                host: Host::Name("matrix.internal".into()),
                port: 8448
            }
        );
        for e in [
            "198.51.100.2:443",
            "8.8.8.8:53",
            "[2001:db8::1]:443",
            "100.63.0.1:1",
        ] {
            assert!(matches!(entry(e).unwrap().host, Host::Ip(_)), "{e}");
        }
    }

    #[test]
    fn other_spellings_say_which_address_they_are() {
        assert_eq!(
            entry("127.1:22"),
            Err(EntryError::Refused {
                class: Refused::Loopback,
                shown: Some("127.0.0.1".parse().unwrap())
            })
        );
        assert_eq!(
            entry("127.0.0.1:22"),
            Err(EntryError::Refused {
                class: Refused::Loopback,
                shown: None
            })
        );
    }

    #[test]
    fn malformed_entries_are_not_host_port() {
        for e in [
            "matrix.internal",
            "https://matrix.internal",
            "matrix.internal:0",
            "matrix.internal:65536",
            "::1:443",
            "[::1:443",
            ":443",
            "1.2.3.4.5:80",
            "256.1.1.1:80",
            "4294967296:80",
            "08.0.0.1:80",
        ] {
            assert_eq!(entry(e), Err(EntryError::Shape), "{e}");
        }
    }
}
