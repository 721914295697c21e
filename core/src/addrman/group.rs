//! Network groups: what one operator can cheaply hold many of, so the address manager
//! buckets by it. IPv4 addresses group by /16, IPv6 by /32 (embedded IPv4 by the IPv4
//! /16), DNS names by their last two labels (anyone can mint `*.attacker.example`).

use alloc::format;
use alloc::string::String;
use core::net::{IpAddr, Ipv6Addr};

use crate::dial::{Host, parse_relay_url};

/// The group of an IP address.
pub fn ip_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.0.0/16", o[0], o[1])
        }
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => ip_group(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}::/32", s[0], s[1])
            }
        },
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<core::net::Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| core::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// The group of a DNS name: its last two labels.
fn name_group(name: &str) -> String {
    let mut labels = name.rsplit('.');
    match (labels.next(), labels.next()) {
        (Some(tld), Some(second)) => format!("{second}.{tld}"),
        _ => String::from(name),
    }
}

/// The group of a relay URL's host (`None` for a URL that does not parse).
pub fn url_group(url: &str) -> Option<String> {
    let parsed = parse_relay_url(url).ok()?;
    Some(match parsed.host {
        Host::Ip(ip) => ip_group(ip),
        Host::Name(name) => name_group(&name),
    })
}

/// The group of a record's source: a connection's remote address (an IP, a bracketed
/// IPv6, or an IPv6 `/64` ban key) or a dialed URL. Anything else is its own group.
pub fn source_group(source: &str) -> String {
    let bare = source
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(source);
    let bare = bare.strip_suffix("/64").unwrap_or(bare);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip_group(ip);
    }
    // host:port
    if let Some((host, port)) = source.rsplit_once(':') {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if let Ok(ip) = host.parse::<IpAddr>() {
                return ip_group(ip);
            }
        }
    }
    url_group(source).unwrap_or_else(|| String::from(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_slash_16_slash_32_and_two_labels() {
        assert_eq!(source_group("203.0.113.7"), "203.0.0.0/16");
        assert_eq!(source_group("203.0.200.9:4000"), "203.0.0.0/16");
        assert_eq!(source_group("[2001:db8:1:2::9]"), "2001:db8::/32");
        assert_eq!(source_group("2001:db8:1:2::/64"), "2001:db8::/32");
        assert_eq!(source_group("[2001:db8:ff::1]:80"), "2001:db8::/32");
        assert_eq!(source_group("::ffff:203.0.1.1"), "203.0.0.0/16");
        assert_eq!(source_group("ws://a.b.example.com:9/ws"), "example.com");
        assert_eq!(source_group("ws://[2a00:1:2::1]/"), "2a00:1::/32");
        assert_eq!(source_group("bootstrap"), "bootstrap");
        assert_eq!(
            url_group("wss://x.y.attacker.example/"),
            Some("attacker.example".into())
        );
        assert_eq!(url_group("ws://9.9.1.1/"), Some("9.9.0.0/16".into()));
        assert_eq!(
            url_group("ws://[2002:909:101::]/"),
            Some("9.9.0.0/16".into())
        );
        assert_eq!(url_group("http://x/"), None);
    }
}
