//! The dial policy (`docs/PROTOCOL.md` §5.6): which relay URLs a node may dial, so that
//! gossip cannot make it knock on a service inside its own network. Pure functions; the
//! node applies [`DialPolicy::check_url`] before it learns or dials a URL, and the hosts
//! apply [`DialPolicy::check_ip`] to every address a name resolves to before connecting
//! (the relay) or refuse what they cannot resolve themselves (the browser).

mod ip;
mod url;

#[cfg(test)]
mod tests;

pub use ip::{IpClass, classify, classify_v4, classify_v6};
pub use url::{Host, MAX_PATH, RelayUrl, is_local_name, parse_relay_url};

use core::fmt;
use core::net::IpAddr;

/// What a node may dial.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DialPolicy {
    /// Loopback, private, link-local and CGNAT addresses, and local names (`localhost`,
    /// `*.local`, …) may be dialed: for a test network on one machine or a LAN.
    pub allow_local: bool,
    /// Any port may be dialed; otherwise only the scheme's default port (80 for `ws://`,
    /// 443 for `wss://`) and [`DialPolicy::also_port`]. Relays allow any port; a browser
    /// only the defaults and its page's own port, so a page cannot be made to scan ports.
    pub any_port: bool,
    /// One more port allowed when `any_port` is off (the page's own).
    pub also_port: Option<u16>,
}

impl DialPolicy {
    /// A relay's policy: any port, no local addresses unless `allow_local`.
    pub fn relay(allow_local: bool) -> Self {
        DialPolicy {
            allow_local,
            any_port: true,
            also_port: None,
        }
    }

    /// A browser's policy, from the relay its page gave it (the page's own relay): when that
    /// relay is local (a loopback, private, link-local or CGNAT address, or a local name),
    /// the page is a local test network and everything local and any port is allowed;
    /// otherwise no local address, and only the default ports and that relay's own port.
    /// A browser cannot resolve names before connecting, so this is all it checks.
    pub fn browser(page_relay: &str) -> Self {
        let Ok(url) = parse_relay_url(page_relay) else {
            return DialPolicy::default();
        };
        let local = match &url.host {
            Host::Ip(ip) => classify(*ip).is_local(),
            Host::Name(name) => is_local_name(name),
        };
        DialPolicy {
            allow_local: local,
            any_port: local,
            also_port: (url.port != url.default_port()).then_some(url.port),
        }
    }

    /// Parses `url` and checks what can be checked without resolving names: the form, the
    /// port, an IP literal's class and local names.
    pub fn check_url(&self, url: &str) -> Result<RelayUrl, DialError> {
        let parsed = parse_relay_url(url)?;
        if !self.any_port
            && parsed.port != parsed.default_port()
            && Some(parsed.port) != self.also_port
        {
            return Err(DialError::PortNotAllowed(parsed.port));
        }
        match &parsed.host {
            Host::Ip(ip) => self.check_ip(*ip)?,
            Host::Name(name) if !self.allow_local && is_local_name(name) => {
                return Err(DialError::LocalName);
            }
            Host::Name(_) => {}
        }
        Ok(parsed)
    }

    /// Checks one address a relay URL leads to (an IP literal, or each address its name
    /// resolved to).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), DialError> {
        match classify(ip) {
            IpClass::Public => Ok(()),
            c if c.is_local() && self.allow_local => Ok(()),
            c => Err(DialError::Refused(c)),
        }
    }
}

/// Why a URL is not dialed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialError {
    TooLong,
    BadCharacter,
    BadScheme,
    QueryOrFragment,
    UserInfo,
    BadHost,
    NumericHost,
    BadPort,
    PathTooLong,
    BadPath,
    PortNotAllowed(u16),
    LocalName,
    Refused(IpClass),
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::TooLong => write!(f, "url longer than {} bytes", crate::wire::MAX_URL),
            DialError::BadCharacter => f.write_str("url has a space, control or non-ascii byte"),
            DialError::BadScheme => f.write_str("url is not ws:// or wss://"),
            DialError::QueryOrFragment => f.write_str("url has a query or fragment"),
            DialError::UserInfo => f.write_str("url has user info"),
            DialError::BadHost => f.write_str("url host is malformed"),
            DialError::NumericHost => f.write_str("url host is a non-canonical ipv4 form"),
            DialError::BadPort => f.write_str("url port is malformed"),
            DialError::PathTooLong => write!(f, "url path longer than {MAX_PATH} bytes"),
            DialError::BadPath => f.write_str("url path has a character or segment not allowed"),
            DialError::PortNotAllowed(p) => write!(f, "port {p} not allowed"),
            DialError::LocalName => f.write_str("url host is a local name"),
            DialError::Refused(c) => write!(f, "{c} address not allowed"),
        }
    }
}

impl core::error::Error for DialError {}
