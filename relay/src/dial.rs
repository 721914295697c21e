//! The relay's side of the dial policy (`docs/PROTOCOL.md` §5.6): the core checked the URL
//! before asking for the dial; here its name is resolved and every address it resolves to
//! is checked, and the connection goes to an address that was checked (never resolved
//! again by the connector), so a name cannot lead the relay into its own network.

use std::net::SocketAddr;

use tabcoin_core::dial::{DialError, DialPolicy, Host};

/// Why a dial did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum DialRefused {
    Policy(DialError),
    Resolve(std::io::Error),
    NoAddress,
}

impl std::fmt::Display for DialRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialRefused::Policy(e) => write!(f, "refused by the dial policy: {e}"),
            DialRefused::Resolve(e) => write!(f, "name did not resolve: {e}"),
            DialRefused::NoAddress => f.write_str("name resolved to no address"),
        }
    }
}

impl std::error::Error for DialRefused {}

/// The address to connect to for `url`: its IP literal, or the first address its name
/// resolves to, provided that every resolved address passes `policy` (a name that also
/// resolves into a refused range is refused as a whole).
pub async fn resolve_checked(policy: &DialPolicy, url: &str) -> Result<SocketAddr, DialRefused> {
    let parsed = policy.check_url(url).map_err(DialRefused::Policy)?;
    match parsed.host {
        Host::Ip(ip) => Ok(SocketAddr::new(ip, parsed.port)),
        Host::Name(name) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), parsed.port))
                .await
                .map_err(DialRefused::Resolve)?
                .collect();
            for a in &addrs {
                policy.check_ip(a.ip()).map_err(DialRefused::Policy)?;
            }
            addrs.first().copied().ok_or(DialRefused::NoAddress)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabcoin_core::dial::IpClass;

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed_before_any_connection() {
        let strict = DialPolicy::relay(false);
        let local = DialPolicy::relay(true);
        for url in ["ws://127.0.0.1:9/ws", "ws://[::1]:9/ws"] {
            assert!(matches!(
                resolve_checked(&strict, url).await,
                Err(DialRefused::Policy(DialError::Refused(IpClass::Loopback)))
            ));
        }
        assert_eq!(
            resolve_checked(&local, "ws://127.0.0.1:9/ws")
                .await
                .unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(matches!(
            resolve_checked(&local, "ws://169.254.169.254/").await,
            Err(DialRefused::Policy(DialError::Refused(IpClass::Metadata)))
        ));
        // A name is checked after resolution: `localhost` resolves (from the hosts file)
        // to loopback addresses only, which `local` allows and the strict policy refuses
        // already by name.
        assert!(matches!(
            resolve_checked(&strict, "ws://localhost:9/").await,
            Err(DialRefused::Policy(DialError::LocalName))
        ));
        if let Ok(a) = resolve_checked(&local, "ws://localhost:9/").await {
            assert!(a.ip().is_loopback());
        }
        for url in [
            "ws://u@127.0.0.1:9/",
            "ws://127.0.0.1:9/?q",
            "http://127.0.0.1:9/",
        ] {
            assert!(matches!(
                resolve_checked(&local, url).await,
                Err(DialRefused::Policy(_))
            ));
        }
    }
}
