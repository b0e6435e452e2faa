//! Which hosts and addresses a URL from an MCP server may not reach when no
//! `allowedDomains` is set: LibreChat's `isSSRFTarget` (names) and `isPrivateIP`
//! (addresses), read as address ranges rather than text prefixes, so every spelling of
//! an address (`::ffff:127.0.0.1`, `::ffff:7f00:1`, `0x7f.1`) gets the same answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Docker and Kubernetes service names LibreChat refuses as hosts (`isSSRFTarget`).
const INTERNAL_NAMES: [&str; 25] = [
    "rag_api",
    "rag-api",
    "api",
    "redis",
    "mongodb",
    "mongo",
    "postgres",
    "postgresql",
    "mysql",
    "database",
    "db",
    "elasticsearch",
    "kibana",
    "grafana",
    "prometheus",
    "rabbitmq",
    "kafka",
    "zookeeper",
    "consul",
    "vault",
    "etcd",
    "minio",
    "internal",
    "backend",
    "metadata",
];

/// Whether a host name (not an address) is an internal one: `localhost` and names under
/// it, the service names above, and names under `.internal` (`metadata.google.internal`)
/// or `.local`. A trailing dot is ignored, so `localhost.` is `localhost`.
pub fn blocked_name(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    name == "localhost"
        || name == "localhost.localdomain"
        || INTERNAL_NAMES.contains(&name)
        || [".localhost", ".internal", ".local"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// Whether an address is private, loopback, link-local (169.254.169.254, the cloud
/// metadata address, among them), shared (CGNAT), unspecified, multicast, reserved or
/// broadcast, or an IPv6 address that carries such an IPv4 one.
pub fn blocked_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => blocked_v4(ip),
        IpAddr::V6(ip) => blocked_v6(ip),
    }
}

/// LibreChat's `isPrivateIPv4` ranges.
fn blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..=127).contains(&b)) // shared address space (CGNAT), RFC 6598
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (Oracle's metadata)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

/// `::1` and `::` need no rule of their own: as IPv4-compatible forms they carry 0.0.0.1
/// and 0.0.0.0, which 0/8 blocks.
fn blocked_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    first & 0xfe00 == 0xfc00 // unique local fc00::/7 (fd00:ec2::254, AWS metadata)
        || first & 0xffc0 == 0xfe80 // link-local fe80::/10
        || first & 0xff00 == 0xff00 // multicast ff00::/8
        || embedded_v4(ip).is_some_and(blocked_v4)
}

/// The IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible
/// (`::/96`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`, bits 16 to 48) or Teredo
/// (`2001::/32`, the client address inverted in the last 32 bits).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let zero_to = |n: usize| s[..n].iter().all(|&x| x == 0);
    if (zero_to(5) && s[5] == 0xffff) || zero_to(6) {
        return Some(last);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return Some(last);
    }
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(Ipv4Addr::from(!u32::from(last)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> bool {
        blocked_ip(text.parse().unwrap())
    }

    #[test]
    fn private_and_reserved_ipv4_ranges_are_blocked_at_their_edges() {
        for blocked in [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.1.2.3",
            "10.255.255.255",
            "127.0.0.1",
            "127.255.0.9",
            "100.64.0.0",
            "100.127.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.0",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.0.192",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(ip(blocked), "{blocked} should be blocked");
        }
        for open in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.1.1",
            "169.255.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.1.1",
            "192.169.0.1",
            "192.0.1.1",
            "192.1.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert!(!ip(open), "{open} should be open");
        }
    }

    #[test]
    fn ipv6_local_ranges_are_blocked() {
        for blocked in [
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "ff00::",
        ] {
            assert!(ip(blocked), "{blocked} should be blocked");
        }
        for open in [
            "2606:4700::1111",
            "fbff::1",
            "fe00::1",
            "fec0::1",
            "feff::1",
            "fe7f::1",
            "2001:db8::1",
        ] {
            assert!(!ip(open), "{open} should be open");
        }
    }

    #[test]
    fn ipv6_forms_carrying_a_blocked_ipv4_are_blocked() {
        for blocked in [
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "::a01:203",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client !0x80fffffe = 127.0.0.1
        ] {
            assert!(ip(blocked), "{blocked} should be blocked");
        }
        for open in [
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::127.0.0.1",
            "2002:808:808::",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo, client 8.8.8.8
            "2001:1::7f00:1",
            "1:ffff::7f00:1",
            "0:0:0:0:1:ffff:7f00:1",
        ] {
            assert!(!ip(open), "{open} should be open");
        }
    }

    #[test]
    fn embedded_addresses_are_read_from_the_right_bits() {
        let v4 = |text: &str| embedded_v4(text.parse().unwrap());
        assert_eq!(v4("::ffff:1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(v4("::1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(v4("64:ff9b::1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(v4("2002:102:304:5::6"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(
            v4("2001:0:1:2:3:4:fefd:fcfb"),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(v4("64:ff9b:0:0:0:1:1.2.3.4"), None);
        assert_eq!(v4("64:ff9a::1.2.3.4"), None);
        assert_eq!(v4("65:ff9b::1.2.3.4"), None);
        assert_eq!(v4("2003:102:304::"), None);
        assert_eq!(v4("2001:1:1:2:3:4:fefd:fcfb"), None);
        assert_eq!(v4("2000:0:1:2:3:4:fefd:fcfb"), None);
        assert_eq!(v4("0:0:0:0:0:fffe:1.2.3.4"), None);
        assert_eq!(v4("0:0:0:0:1:ffff:1.2.3.4"), None);
        assert_eq!(v4("0:0:0:1:0:0:1.2.3.4"), None);
    }

    #[test]
    fn internal_names_are_blocked_and_others_are_not() {
        for blocked in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "localhost.localdomain",
            "mcp.localhost",
            "metadata.google.internal",
            "printer.local",
            "metadata",
            "redis",
            "rag_api",
            "backend",
            "internal",
        ] {
            assert!(blocked_name(blocked), "{blocked} should be blocked");
        }
        for open in [
            "example.com",
            "localhost.example.com",
            "mylocalhost",
            "internal.example.com",
            "redis.example.com",
            "local",
            "vm",
        ] {
            assert!(!blocked_name(open), "{open} should be open");
        }
    }
}
