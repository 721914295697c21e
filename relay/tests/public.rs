//! A relay on the open internet: client addresses behind trusted proxies, the `Origin`
//! policy on `/ws`, what `/api/peers` shows (and the private listener), security headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{RawClient, Relay};
use tabcoin_relay::client_addr::{ForwardedHeader, ProxyPolicy};

const WAIT: Duration = Duration::from_secs(30);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A free loopback port for a second listener (bound and released at once).
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn connect(relay: &Relay, from: u8, headers: &[(&str, &str)]) -> Result<RawClient, String> {
    RawClient::connect_with_headers(&relay.ws_url, ip(from), headers)
        .await
        .map_err(|e| e.to_string())
}

/// GET on any address: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (code, head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limits_and_records_use_the_address_a_trusted_proxy_forwards() {
    let private = free_port();
    let mut config = Relay::test_config();
    config.limits.max_per_ip = 2;
    config.proxies = ProxyPolicy {
        trusted: vec!["127.0.0.2".parse().unwrap()],
        header: ForwardedHeader::XForwardedFor,
    };
    config.private_api = Some(private);
    let relay = Relay::start(config, false).await;
    let xff = |v: &'static str| [("X-Forwarded-For", v)];

    // Through the proxy (127.0.0.2): each forwarded client has its own limit of 2, and a
    // spoofed leftmost entry changes nothing.
    let mut kept = Vec::new();
    kept.push(connect(&relay, 2, &xff("198.51.100.1")).await.unwrap());
    kept.push(
        connect(&relay, 2, &xff("6.6.6.6, 198.51.100.1"))
            .await
            .unwrap(),
    );
    let third = connect(&relay, 2, &xff("198.51.100.1")).await.unwrap_err();
    assert!(third.contains("429"), "{third}");
    kept.push(connect(&relay, 2, &xff("198.51.100.2")).await.unwrap());
    // IPv6 clients count by /64.
    kept.push(connect(&relay, 2, &xff("2001:db8:1:2::1")).await.unwrap());
    kept.push(
        connect(&relay, 2, &xff("[2001:db8:1:2::2]:4711"))
            .await
            .unwrap(),
    );
    let v6 = connect(&relay, 2, &xff("2001:db8:1:2:ffff::3"))
        .await
        .unwrap_err();
    assert!(v6.contains("429"), "{v6}");
    kept.push(connect(&relay, 2, &xff("2001:db8:1:3::1")).await.unwrap());

    // Not a trusted proxy (127.0.0.3): its header is ignored, its own address counts.
    kept.push(connect(&relay, 3, &xff("198.51.100.50")).await.unwrap());
    kept.push(connect(&relay, 3, &xff("198.51.100.51")).await.unwrap());
    let spoofer = connect(&relay, 3, &xff("198.51.100.52")).await.unwrap_err();
    assert!(spoofer.contains("429"), "{spoofer}");

    // The record of a peer (what bans count against) is the forwarded address; only the
    // operator's listener shows it.
    let mut c = connect(&relay, 2, &xff("203.0.113.77")).await.unwrap();
    c.handshake_browser(7).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, _, body) = get(private, "/api/peers").await;
        assert_eq!(code, 200, "{body}");
        if body.contains("\"remote\":\"203.0.113.77\"") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let public = relay.get("/api/peers").await;
    let text = public.to_string();
    assert!(
        !text.contains("203.0.113.77") && !text.contains("127.0.0."),
        "{text}"
    );
    assert_eq!(public["counts"]["browser"], 1, "{text}");
    assert!(public["peers"].as_array().unwrap().is_empty(), "{text}");
    drop(kept);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_behind_a_trusted_proxy_bans_the_forwarded_client_not_the_proxy() {
    let mut config = Relay::test_config();
    config.proxies = ProxyPolicy {
        trusted: vec!["127.0.0.2".parse().unwrap()],
        header: ForwardedHeader::XForwardedFor,
    };
    let relay = Relay::start(config, false).await;
    let xff = |v: &'static str| [("X-Forwarded-For", v)];

    // One client behind the proxy sends a frame that is not a message: banned.
    let mut bad = connect(&relay, 2, &xff("198.51.100.66")).await.unwrap();
    bad.send_bytes(vec![0xee, 1, 2, 3]).await.unwrap();
    assert!(bad.closed_within(WAIT).await);
    let notice = bad.fatal_notice().unwrap_or_default();
    assert!(notice.contains("unknown message type"), "{notice}");
    // It is refused when it comes back through the same proxy, spoofed entries or not.
    for forwarded in ["198.51.100.66", "203.0.113.9, 198.51.100.66"] {
        let mut again = connect(&relay, 2, &[("X-Forwarded-For", forwarded)])
            .await
            .unwrap();
        assert!(
            again.handshake_browser(8).await.is_err(),
            "{forwarded}: a banned client got a handshake"
        );
        assert!(again.closed_within(WAIT).await, "{forwarded}");
    }
    // Every other client of the same proxy is still served, and so is the proxy's own
    // address: the ban is on the forwarded client alone.
    let mut other = connect(&relay, 2, &xff("198.51.100.67")).await.unwrap();
    other.handshake_browser(9).await.unwrap();
    let mut proxy_itself = connect(&relay, 2, &[]).await.unwrap();
    proxy_itself.handshake_browser(10).await.unwrap();
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_any_page_may_open_ws() {
    let relay = Relay::start(Relay::test_config(), false).await;
    for origin in [
        "https://another-relay.example",
        "http://127.0.0.1:1",
        "null",
    ] {
        assert!(
            connect(&relay, 22, &[("Origin", origin)]).await.is_ok(),
            "{origin}"
        );
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_origins_may_open_ws_when_restricted() {
    let mut config = Relay::test_config();
    config.allowed_origins = vec!["https://wallet.example".into()];
    let relay = Relay::start(config, false).await;
    let own = format!("http://{}", relay.addr);
    // No Origin (relays, tools), the relay's own origin and a configured one.
    assert!(connect(&relay, 20, &[]).await.is_ok());
    assert!(
        connect(&relay, 20, &[("Origin", own.as_str())])
            .await
            .is_ok()
    );
    assert!(
        connect(&relay, 20, &[("Origin", "https://wallet.example")])
            .await
            .is_ok()
    );
    // Any other page is refused before it holds a slot.
    for bad in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let e = connect(&relay, 20, &[("Origin", bad)]).await.unwrap_err();
        assert!(e.contains("403"), "{bad}: {e}");
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_restricted_policy_tabs_of_known_relays_may_still_fail_over_here() {
    let a = Relay::start(Relay::test_config(), true).await;
    let page_of_a = format!("http://{}", a.addr);
    let mut restricted = Relay::test_config();
    restricted.allowed_origins = vec!["https://wallet.example".into()];
    let b = Relay::start(restricted, true).await;
    // Before B knows A, a tab from A's page is a stranger to B.
    let e = connect(&b, 21, &[("Origin", page_of_a.as_str())])
        .await
        .unwrap_err();
    assert!(e.contains("403"), "{e}");
    // A links to B and B learns A's URL: A's pages may now use B.
    let mut c = Relay::test_config();
    c.peers = vec![b.ws_url.clone()];
    drop(a);
    let a2 = Relay::start(c, true).await;
    let page_of_a2 = format!("http://{}", a2.addr);
    assert!(
        b.wait_json("/api/peers", WAIT, |p| p["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["url"] == a2.ws_url.as_str()))
            .await
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Err(e) = connect(&b, 21, &[("Origin", page_of_a2.as_str())]).await {
        assert!(tokio::time::Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a2.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_api_carry_security_headers() {
    let relay = Relay::start(Relay::test_config(), false).await;
    for path in ["/", "/app.js", "/api/status"] {
        let (code, head, _) = get(relay.addr, path).await;
        assert_eq!(code, 200, "{path}: {head}");
        let head = head.to_ascii_lowercase();
        for h in [
            "content-security-policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval'",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
            "referrer-policy: no-referrer",
            "cross-origin-opener-policy: same-origin",
        ] {
            assert!(head.contains(h), "{path}: no {h:?} in\n{head}");
        }
    }
    relay.stop().await;
}

/// The operator's listener has limits of its own: of 40 silent connections from 8 addresses
/// it holds 16 and refuses the rest at once, closes the held ones when their header timeout
/// runs out, and the public listener serves its peers and visitors all the while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_listener_holds_a_bounded_number_of_connections_of_its_own() {
    use tokio::io::AsyncReadExt;
    const HELD: usize = 16; // `server::PRIVATE_MAX_CONNECTIONS`
    let private = free_port();
    let mut config = Relay::test_config();
    config.private_api = Some(private);
    // Long enough that the listener has accepted or refused all 40 before the first held
    // one times out and frees its slot, even on a busy machine.
    config.limits.header_read_timeout = Duration::from_secs(5);
    let relay = Relay::start(config, false).await;

    let mut silent = Vec::new();
    // The private listener is bound a little after the public one: the first connection
    // waits for it (a refused TCP connect holds no slot).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match common::tcp_from(private, ip(40)).await {
            Ok(s) => break silent.push(s),
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 1..40u8 {
        silent.push(common::tcp_from(private, ip(40 + i % 8)).await.unwrap());
    }
    // The public listener is untouched: the API answers and a tab gets its WebSocket.
    assert_eq!(relay.get("/api/status").await["network"], "test");
    let mut tab = connect(&relay, 2, &[]).await.unwrap();
    tab.handshake_browser(3).await.unwrap();

    // Each silent connection ends: refused at once with 503, or closed without an answer
    // when its 5 s header timeout runs out (a listener without one would keep it forever).
    let ends = silent.into_iter().map(|mut s| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
                .await
                .map(|_| String::from_utf8_lossy(&buf).into_owned())
        })
    });
    let mut refused = 0;
    let mut timed_out = 0;
    for end in ends.collect::<Vec<_>>() {
        let text = end
            .await
            .unwrap()
            .expect("every silent connection is closed");
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("relay is full"), "{text}");
            refused += 1;
        } else {
            assert_eq!(text, "", "a held connection is closed without an answer");
            timed_out += 1;
        }
    }
    assert_eq!((timed_out, refused), (HELD, 40 - HELD));
    // Its slots came back: the operator's API answers again.
    let (code, _, body) = get(private, "/api/status").await;
    assert_eq!(code, 200, "{body}");
}
