//! Browser-facing policy: which pages may open `/ws` (the `Origin` check) and the security
//! headers every response carries (CSP and friends).

use std::collections::HashSet;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The page's Content-Security-Policy. The page needs: its own module scripts, module
/// workers and service worker (`sw.js`, which imports `precache.js`: `'self'`), wasm
/// compilation (`'wasm-unsafe-eval'`, not `'unsafe-eval'`), WebSockets to this relay and to
/// the other relays it learns (`ws:` `wss:`), its own stylesheet (styles set from JS through
/// the CSSOM are not inline styles), its web app manifest and a `data:` favicon. Nothing may
/// frame it, and there are no plugins, forms elsewhere or base URLs.
///
/// `web/index.html` carries the same policy in a `<meta>` element (so a copy served from the
/// service worker's cache or from any static host runs under it too) without
/// `frame-ancestors`, which only a header can set; a test below keeps the two equal.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
worker-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; \
font-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// The security headers every answer carries, as (name, value).
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    ),
];

/// The headers on every response (set only where a handler did not set them itself). The
/// server applies this outside its limit layers too, so the answers they write (413, 408)
/// carry them; the answers written at accept time carry them as written text
/// ([`SECURITY_HEADERS`]).
pub fn security_headers(router: Router) -> Router {
    SECURITY_HEADERS
        .into_iter()
        .fold(router, |r, (name, value)| {
            r.layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ))
        })
}

/// Which pages may open `/ws`.
///
/// **Default: every page.** A tab runs the page of whichever relay served it and fails over
/// to the other relays it learns, including after the relay that served it is gone for good,
/// so a relay cannot list the origins its honest visitors come from. Nothing is lost by
/// allowing them: `/ws` carries no ambient authority (no cookies, no accounts), so a
/// cross-site page gets nothing a script could not get by connecting directly, and what a
/// site could do with its visitors' connections is bounded by the per-IP and global limits
/// like any other client.
///
/// **Restricted** (`--allowed-origin` given, without `*`): a browser's handshake is accepted
/// only from the relay's own origin (the `Origin` host equals the `Host` the request was sent
/// to, or the host of the relay's public URL), from the pages of the relays this relay knows
/// (`ws://h:p/ws` in the known-relay table or a relay link allows `http://h:p`, `wss://`
/// allows `https://`) and from the listed origins; tabs served by a relay it has never
/// heard of (or forgot) cannot fail over here. A handshake without `Origin` (relays, tools:
/// not a browser page) is always accepted.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Normalised `scheme://host[:port]` entries.
    allowed: Vec<String>,
    any: bool,
    /// The host[:port] of the public URL, if any.
    public_host: Option<String>,
}

impl OriginPolicy {
    pub fn new(allowed: &[String], public_url: Option<&str>) -> OriginPolicy {
        OriginPolicy {
            any: allowed.is_empty() || allowed.iter().any(|a| a.trim() == "*"),
            allowed: allowed
                .iter()
                .filter(|a| a.trim() != "*")
                .filter_map(|a| normalise_origin(a))
                .collect(),
            public_host: public_url.and_then(|u| {
                let (scheme, rest) = u.split_once("://")?;
                let authority = rest.split(['/', '?', '#']).next()?;
                Some(strip_default_port(scheme, &authority.to_ascii_lowercase()))
            }),
        }
    }

    /// Whether a `/ws` handshake with these headers may proceed; `relay_origins` are the
    /// origins of known relays ([`relay_origin`]).
    pub fn allows(&self, headers: &HeaderMap, relay_origins: &HashSet<String>) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        if self.any {
            return true;
        }
        let Some(origin) = origin.to_str().ok().and_then(normalise_origin) else {
            // `null` (sandboxed frames, file: pages) and garbage.
            return false;
        };
        if self.allowed.contains(&origin) || relay_origins.contains(&origin) {
            return true;
        }
        let Some((_, origin_host)) = origin.split_once("://") else {
            return false;
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        let same_host = |h: &str| {
            // The Host header has no scheme: compare with and without default ports.
            h == origin_host
                || strip_default_port("http", h) == origin_host
                || strip_default_port("https", h) == origin_host
        };
        host.as_deref().is_some_and(same_host) || self.public_host.as_deref().is_some_and(same_host)
    }
}

/// The origin of the page a relay at `ws_url` serves (`ws://h:p/ws` → `http://h:p`).
pub fn relay_origin(ws_url: &str) -> Option<String> {
    let (scheme, rest) = ws_url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" => "http",
        "wss" => "https",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    normalise_origin(&format!("{scheme}://{authority}"))
}

/// `scheme://host[:port]` in lower case without a default port, or `None` if `s` is not an
/// http(s) origin.
fn normalise_origin(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let (scheme, rest) = s.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    Some(format!("{scheme}://{}", strip_default_port(scheme, host)))
}

fn strip_default_port(scheme: &str, host: &str) -> String {
    let default = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return host.to_owned(),
    };
    host.strip_suffix(default).unwrap_or(host).to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    fn none() -> HashSet<String> {
        HashSet::new()
    }

    /// Directives a `<meta>` policy cannot carry (browsers ignore them there, with a warning).
    const HEADER_ONLY: [&str; 3] = ["frame-ancestors", "report-uri", "sandbox"];

    /// The `content` of the page's `<meta http-equiv="Content-Security-Policy">`.
    fn meta_csp(html: &str) -> Option<&str> {
        let start = html.find("http-equiv=\"Content-Security-Policy\"")?;
        let rest = &html[start..];
        let content = rest.find("content=\"")? + "content=\"".len();
        let end = rest[content..].find('"')?;
        Some(&rest[content..content + end])
    }

    fn directives(policy: &str) -> Vec<String> {
        let mut d: Vec<String> = policy
            .split(';')
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .collect();
        d.sort();
        d
    }

    #[test]
    fn the_page_carries_the_header_policy_in_a_meta_element() {
        let html = include_str!("../../web/index.html");
        let meta = meta_csp(html).expect("web/index.html has a CSP <meta> element");
        let header: Vec<String> = directives(CSP)
            .into_iter()
            .filter(|d| !HEADER_ONLY.iter().any(|h| d.starts_with(h)))
            .collect();
        assert_eq!(directives(meta), header);
        assert!(CSP.contains("frame-ancestors 'none'"));
        for d in directives(meta) {
            assert!(
                !HEADER_ONLY.iter().any(|h| d.starts_with(h)),
                "{d} in <meta>"
            );
        }
    }

    #[test]
    fn by_default_every_page_may_connect() {
        let p = OriginPolicy::new(&[], None);
        assert!(p.allows_(&req(None, "relay.example:8080")));
        assert!(p.allows_(&req(Some("https://other-relay.example"), "relay.example")));
        assert!(p.allows_(&req(Some("null"), "relay.example")));
    }

    #[test]
    fn restricted_allows_same_origin_and_non_browsers_only() {
        let p = OriginPolicy::new(&["https://listed.example".into()], None);
        assert!(p.allows_(&req(None, "relay.example:8080")));
        assert!(p.allows_(&req(
            Some("http://relay.example:8080"),
            "relay.example:8080"
        )));
        assert!(p.allows_(&req(Some("https://Relay.Example"), "relay.example")));
        assert!(p.allows_(&req(Some("https://relay.example"), "relay.example:443")));
        assert!(!p.allows_(&req(Some("https://evil.example"), "relay.example")));
        assert!(!p.allows_(&req(
            Some("http://relay.example:9999"),
            "relay.example:8080"
        )));
        assert!(!p.allows_(&req(Some("null"), "relay.example")));
        assert!(!p.allows_(&req(Some("garbage"), "relay.example")));
    }

    impl OriginPolicy {
        fn allows_(&self, headers: &HeaderMap) -> bool {
            self.allows(headers, &none())
        }
    }

    #[test]
    fn restricted_allows_pages_of_known_relays() {
        let p = OriginPolicy::new(&["https://listed.example".into()], None);
        let known: HashSet<String> = [
            "ws://127.0.0.1:8081/ws",
            "wss://Other.Example/ws",
            "garbage",
        ]
        .iter()
        .filter_map(|u| relay_origin(u))
        .collect();
        assert_eq!(known.len(), 2);
        assert!(p.allows(
            &req(Some("http://127.0.0.1:8081"), "127.0.0.1:8080"),
            &known
        ));
        assert!(p.allows(&req(Some("https://other.example"), "relay.example"), &known));
        assert!(!p.allows(
            &req(Some("https://other.example:8443"), "relay.example"),
            &known
        ));
        assert!(!p.allows(&req(Some("http://other.example"), "relay.example"), &known));
    }

    #[test]
    fn configured_origins_and_the_public_url_are_allowed() {
        let p = OriginPolicy::new(
            &[
                "https://wallet.example/".into(),
                "http://localhost:3000".into(),
            ],
            Some("wss://relay.example/ws"),
        );
        assert!(p.allows_(&req(Some("https://wallet.example"), "10.0.0.5:8080")));
        assert!(p.allows_(&req(Some("http://localhost:3000"), "10.0.0.5:8080")));
        // Behind a proxy that rewrites Host, the public URL still names the relay.
        assert!(p.allows_(&req(Some("https://relay.example"), "10.0.0.5:8080")));
        assert!(!p.allows_(&req(Some("https://other.example"), "10.0.0.5:8080")));
        let any = OriginPolicy::new(&["*".into()], None);
        assert!(any.allows_(&req(Some("https://anything.example"), "relay.example")));
    }
}
