//! The one table of addresses a user-chosen URL may not reach: loopback, private, link-local,
//! shared (CGNAT), multicast, documentation, benchmarking, reserved, and the IPv6 transition
//! forms that carry an IPv4 address inside (mapped, compatible, NAT64, 6to4, Teredo).
//!
//! IPv6 is judged by allow-list: only global unicast (`2000::/3`) can be public, so a range
//! IANA assigns later for special use outside it is refused without an update here.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a public unicast address on the internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 special-purpose ranges (RFC 6890 and successors) as (network, prefix length).
const V4_BLOCKED: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation
    ([192, 31, 196, 0], 24), // AS112
    ([192, 52, 193, 0], 24), // AMT
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([192, 175, 48, 0], 24), // AS112 direct delegation
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation
    ([203, 0, 113, 0], 24),  // documentation
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !V4_BLOCKED.iter().any(|(net, len)| {
        let mask = u32::MAX << (32 - u32::from(*len));
        bits & mask == u32::from_be_bytes(*net)
    })
}

/// IPv6 ranges inside `2000::/3` that are not public, as (network, prefix length).
const V6_BLOCKED: &[(u128, u8)] = &[
    (0x2001_0000 << 96, 23), // IETF protocol assignments (Teredo, ORCHID, benchmarking)
    (0x2001_0db8 << 96, 32), // documentation
    (0x3fff_0000 << 96, 20), // documentation (RFC 9637)
];

fn in_v6(bits: u128, net: u128, len: u8) -> bool {
    let mask = u128::MAX << (128 - u32::from(len));
    bits & mask == net
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // ::ffff:a.b.c.d reaches a.b.c.d on a dual-stack host.
    if in_v6(bits, 0xffff << 32, 96) {
        return is_public_v4(low_v4);
    }
    // 64:ff9b::/96 (NAT64) is translated to the embedded IPv4 address by the network's gateway.
    if in_v6(bits, 0x0064_ff9b << 96, 96) {
        return is_public_v4(low_v4);
    }
    // 2002::/16 (6to4) is routed to the IPv4 address in bits 16..48.
    if in_v6(bits, 0x2002 << 112, 16) {
        return is_public_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    // Everything else outside global unicast: ::/96 (IPv4-compatible), ::1, ::, 64:ff9b:1::/48
    // (local NAT64), 100::/64 (discard), fc00::/7, fe80::/10, fec0::/10, ff00::/8, ...
    if !in_v6(bits, 0x2 << 124, 3) {
        return false;
    }
    !V6_BLOCKED.iter().any(|(net, len)| in_v6(bits, *net, *len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_reserved_addresses_are_not_public() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }
}
