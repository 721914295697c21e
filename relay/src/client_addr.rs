//! Who a request comes from. Directly connected clients are their TCP peer address; behind
//! a reverse proxy the operator names the proxies (`--trusted-proxy CIDR`) and the header
//! they write (`--forwarded-header`), and only a request whose TCP peer is one of them has
//! its client address taken from that header: the rightmost hop that is not itself a
//! trusted proxy. Entries left of it were written by the client and prove nothing.
//!
//! Per-IP limits and bans group addresses: an IPv4 address stands alone (/32), an IPv6
//! address counts as its /64 (one subscriber's allocation), so that one machine cannot
//! escape a per-IP limit by cycling through its addresses.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// Most hops read from a forwarding header (from the right). A longer chain of trusted
/// proxies is not a real deployment; the request is then counted against the last one.
pub const MAX_HOPS: usize = 16;

/// Why a CIDR did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAddrError {
    BadAddress(String),
    BadPrefix(String),
    BadHeaderName(String),
}

impl fmt::Display for ClientAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddrError::BadAddress(s) => write!(f, "not an ip address: {s:?}"),
            ClientAddrError::BadPrefix(s) => write!(f, "bad prefix length: {s:?}"),
            ClientAddrError::BadHeaderName(s) => write!(
                f,
                "unknown forwarding header {s:?} (forwarded or x-forwarded-for)"
            ),
        }
    }
}

impl std::error::Error for ClientAddrError {}

/// An address block, e.g. `10.0.0.0/8`, `fd00::/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = ClientAddrError;

    fn from_str(s: &str) -> Result<Cidr, ClientAddrError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| ClientAddrError::BadAddress(s.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| ClientAddrError::BadPrefix(s.to_owned()))?,
        };
        Ok(Cidr {
            addr: canonical(addr),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Which header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, Caddy, HAProxy, most CDNs).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = ClientAddrError;

    fn from_str(s: &str) -> Result<Self, ClientAddrError> {
        match s.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            _ => Err(ClientAddrError::BadHeaderName(s.to_owned())),
        }
    }
}

/// The proxies whose forwarding header is believed.
#[derive(Debug, Clone, Default)]
pub struct ProxyPolicy {
    pub trusted: Vec<Cidr>,
    pub header: ForwardedHeader,
}

impl ProxyPolicy {
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The client's address: `peer` itself unless `peer` is a trusted proxy, else the
    /// rightmost untrusted hop of the configured header. A hop that is not an address
    /// (`unknown`, an obfuscated `_name`, garbage) stops the walk: the request then counts
    /// against the last trusted hop, never against an address nobody vouched for.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => xff_hops(headers),
            ForwardedHeader::Forwarded => forwarded_hops(headers),
        };
        let mut client = peer;
        for hop in hops.into_iter().rev().take(MAX_HOPS) {
            let Some(ip) = hop else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The address per-IP limits and bans count: IPv4 /32, IPv6 /64.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(masked))
        }
        v4 => v4,
    }
}

/// How the limit key is written where the node keeps bans (`2001:db8::/64` for IPv6).
pub fn limit_key_string(ip: IpAddr) -> String {
    match limit_key(ip) {
        IpAddr::V6(v6) => format!("{v6}/64"),
        v4 => v4.to_string(),
    }
}

/// Every hop of every `X-Forwarded-For` line, left to right; `None` for one that is not an
/// address.
fn xff_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(text.split(',').map(|h| parse_node(h.trim())));
    }
    hops
}

/// The `for=` of every element of every `Forwarded` line, left to right (RFC 7239 §4);
/// `None` for an element without a usable `for=`.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in split_outside_quotes(text, ',') {
            let mut found = None;
            let mut seen_for = false;
            for pair in split_outside_quotes(element, ';') {
                let Some((name, val)) = pair.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("for") {
                    // Two `for=` in one element is malformed: believe neither.
                    found = if seen_for {
                        None
                    } else {
                        parse_node(val.trim())
                    };
                    seen_for = true;
                }
            }
            hops.push(found);
        }
    }
    hops
}

/// Splits at `sep` where it is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A node as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]`,
/// `[2001:db8::1]:5678`, `2001:db8::1`, optionally in double quotes. Anything else
/// (`unknown`, `_hidden`, garbage) is `None`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s);
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| canonical(IpAddr::V6(v6)));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let (host, port) = s.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn policy(cidrs: &[&str], header: ForwardedHeader) -> ProxyPolicy {
        ProxyPolicy {
            trusted: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            header,
        }
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const FWD: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")), "mapped v4 is v4");
        let c: Cidr = "fd00::/8".parse().unwrap();
        assert!(c.contains(ip("fd12::1")));
        assert!(!c.contains(ip("fe80::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nonsense",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn an_untrusted_peer_is_its_own_address_whatever_it_claims() {
        let p = policy(&["10.0.0.0/8"], XFF);
        let h = headers("x-forwarded-for", &["1.2.3.4"]);
        assert_eq!(p.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        // No proxies configured: headers are never read.
        let none = ProxyPolicy::default();
        assert_eq!(none.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_wins_over_spoofed_leftmost_entries() {
        let p = policy(&["10.0.0.0/8"], XFF);
        // The client wrote "6.6.6.6, 7.7.7.7"; the proxy appended the real address.
        let h = headers("x-forwarded-for", &["6.6.6.6, 7.7.7.7, 198.51.100.7"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Two trusted proxies in a row, and lines split over several headers.
        let h = headers("x-forwarded-for", &["6.6.6.6", "198.51.100.7, 10.0.0.5"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // The client claims a trusted address: it is still the rightmost untrusted hop
        // that counts... which is the claimed one only if everything right of it is trusted.
        let h = headers("x-forwarded-for", &["10.9.9.9, 198.51.100.7"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_unknown_and_obfuscated_hops_count_against_the_proxy() {
        let p = policy(&["10.0.0.0/8"], XFF);
        for v in [
            "garbage",
            "unknown",
            "_hidden",
            "",
            "1.2.3.4.5",
            "999.1.1.1",
            "[::1",
            "1.2.3.4:99999",
        ] {
            let h = headers("x-forwarded-for", &[v]);
            assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"), "{v:?}");
        }
        // Garbage right of a real address hides it: the proxy is charged, not 6.6.6.6.
        let h = headers("x-forwarded-for", &["6.6.6.6, nonsense"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // Behind a trusted hop, the last trusted hop is charged.
        let h = headers("x-forwarded-for", &["_obf, 10.0.0.7"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.7"));
        // Not valid UTF-8 / visible ASCII.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // No header at all.
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn many_hops_are_read_only_from_the_right_and_only_so_far() {
        let p = policy(&["10.0.0.0/8"], XFF);
        let long = vec!["10.0.0.1"; 10_000].join(",");
        let h = headers("x-forwarded-for", &[&format!("6.6.6.6,{long}")]);
        // More trusted hops than MAX_HOPS: charged to the last one examined.
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.1"));
        let many = vec!["198.51.100.1"; 10_000].join(",");
        let h = headers("x-forwarded-for", &[&many]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn ports_brackets_and_ipv6_in_x_forwarded_for() {
        let p = policy(&["10.0.0.0/8", "fd00::/8"], XFF);
        for (v, want) in [
            ("198.51.100.7:4711", "198.51.100.7"),
            ("[2001:db8::17]:4711", "2001:db8::17"),
            ("[2001:db8::17]", "2001:db8::17"),
            ("2001:db8::17", "2001:db8::17"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
        ] {
            let h = headers("x-forwarded-for", &[v]);
            assert_eq!(p.client_ip(ip("fd00::1"), &h), ip(want), "{v:?}");
        }
    }

    #[test]
    fn rfc7239_forwarded_elements() {
        let p = policy(&["10.0.0.0/8"], FWD);
        let h = headers(
            "forwarded",
            &[r#"for=6.6.6.6, For="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1"#],
        );
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        let h = headers("forwarded", &["for=192.0.2.60;proto=http;by=203.0.113.43"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("192.0.2.60"));
        let h = headers("forwarded", &[r#"for="192.0.2.43:47011""#]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("192.0.2.43"));
        // Quoted commas and semicolons do not split.
        let h = headers("forwarded", &[r#"by="a,b;c";for=198.51.100.3"#]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.3"));
        // Obfuscated, unknown, missing or doubled `for`: charged to the proxy.
        for v in [
            "for=_hidden",
            "for=unknown",
            "proto=https",
            "for=1.1.1.1;for=2.2.2.2",
            "for=\"unterminated",
            "==;;,,",
        ] {
            let h = headers("forwarded", &[v]);
            assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"), "{v:?}");
        }
        // With Forwarded configured, X-Forwarded-For (which the client may have written)
        // is ignored, and the reverse.
        let h = headers("x-forwarded-for", &["198.51.100.9"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        let xff = policy(&["10.0.0.0/8"], XFF);
        let h = headers("forwarded", &["for=198.51.100.9"]);
        assert_eq!(xff.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn limits_group_ipv6_by_64_and_ipv4_alone() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            limit_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:3::1")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(limit_key(ip("198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(limit_key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(limit_key_string(ip("2001:db8:1:2::5")), "2001:db8:1:2::/64");
        assert_eq!(limit_key_string(ip("198.51.100.7")), "198.51.100.7");
    }
}
