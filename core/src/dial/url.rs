//! The relay URLs a node accepts: `ws://` or `wss://`, a host (a DNS name, a dotted-quad
//! IPv4 address or a bracketed IPv6 address), an optional port and a short plain path.
//! Nothing else: no user info, no query, no fragment, no percent escapes.

use alloc::string::String;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DialError;
use crate::wire::MAX_URL;

/// Longest path accepted (bytes, with its leading `/`).
pub const MAX_PATH: usize = 64;
/// Longest host name accepted (DNS limit).
const MAX_HOST: usize = 253;

/// The host part of a relay URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lower-cased. Only the host that resolves it can check where it leads.
    Name(String),
    Ip(IpAddr),
}

/// A relay URL that passed [`parse_relay_url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayUrl {
    /// `wss://` (else `ws://`).
    pub secure: bool,
    pub host: Host,
    /// The port, the scheme's default (80, 443) when the URL names none.
    pub port: u16,
    /// Whether the URL names its port.
    pub explicit_port: bool,
    /// The path, `""` or starting with `/`.
    pub path: String,
}

impl RelayUrl {
    /// The scheme's default port.
    pub fn default_port(&self) -> u16 {
        if self.secure { 443 } else { 80 }
    }
}

/// Parses a relay URL, refusing everything but the plain form this module describes.
pub fn parse_relay_url(url: &str) -> Result<RelayUrl, DialError> {
    if url.len() > MAX_URL {
        return Err(DialError::TooLong);
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DialError::BadCharacter);
    }
    let (secure, rest) = if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(DialError::BadScheme);
    };
    if rest.contains(['?', '#']) {
        return Err(DialError::QueryOrFragment);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(DialError::UserInfo);
    }
    if path.len() > MAX_PATH {
        return Err(DialError::PathTooLong);
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~'))
        || path.contains("//")
        || path.split('/').any(|seg| seg == "." || seg == "..")
    {
        return Err(DialError::BadPath);
    }
    let (host, port) = split_host_port(authority)?;
    let default = if secure { 443 } else { 80 };
    Ok(RelayUrl {
        secure,
        host,
        port: port.unwrap_or(default),
        explicit_port: port.is_some(),
        path: String::from(path),
    })
}

fn split_host_port(authority: &str) -> Result<(Host, Option<u16>), DialError> {
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let (inside, after) = r.split_once(']').ok_or(DialError::BadHost)?;
        let ip: Ipv6Addr = inside.parse().map_err(|_| DialError::BadHost)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(DialError::BadHost)?),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (authority, None),
        };
        (parse_name(name)?, port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            let ok = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
            match p.parse::<u16>() {
                Ok(n) if ok && n != 0 => Some(n),
                _ => return Err(DialError::BadPort),
            }
        }
    };
    Ok((host, port))
}

/// A DNS name or a dotted-quad IPv4 address. Forms that resolvers and browsers read as
/// IPv4 although they are not a dotted quad (`127.1`, `2130706433`, `0x7f.1`, `010.0.0.1`)
/// are refused: the check would see a name and the dial an address.
fn parse_name(name: &str) -> Result<Host, DialError> {
    if name.is_empty() || name.len() > MAX_HOST {
        return Err(DialError::BadHost);
    }
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(DialError::BadHost);
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.len() > 1 && last[..2].eq_ignore_ascii_case("0x"));
    if numeric {
        return match name.parse::<Ipv4Addr>() {
            // The standard parser takes only canonical dotted quads (no leading zeros).
            Ok(ip) => Ok(Host::Ip(IpAddr::V4(ip))),
            Err(_) => Err(DialError::NumericHost),
        };
    }
    Ok(Host::Name(name.to_ascii_lowercase()))
}

/// Whether a DNS name is local by convention (`localhost`, `*.localhost`, `*.local`,
/// `*.internal`, `*.lan`, `*.home.arpa`): no public relay has such a name.
pub fn is_local_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "localhost"
        || [".localhost", ".local", ".internal", ".lan", ".home.arpa"]
            .iter()
            .any(|s| n.ends_with(s))
        || !n.contains('.')
}
