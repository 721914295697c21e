//! Protocol version 2 against a real relay on loopback: its `hello` carries its own signed
//! record, a `hello` naming a URL that is not the relay's (as a byte-forwarding proxy's
//! would) is refused before any proof is signed, and unknown message types after the
//! handshake are ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{RawClient, Relay, make_hello, now_ms, test_params};
use tabcoin_core::wire::{Message, NodeKind};

const WAIT: Duration = Duration::from_secs(10);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 31, last))
}

#[tokio::test]
async fn the_relay_signs_its_record_and_binds_handshakes_to_its_url() {
    let relay = Relay::start(Relay::test_config(), true).await;
    let params = test_params();

    // An honest handshake, bound to the URL dialed: the relay names itself in a valid record.
    let mut honest = RawClient::connect_from(&relay.ws_url, ip(1), None)
        .await
        .unwrap();
    let theirs = honest.handshake_browser(1).await.unwrap();
    let rec = theirs.record.expect("a relay advertises itself");
    assert_eq!(rec.url, relay.ws_url);
    assert_eq!(rec.node_id, theirs.node_id);
    assert_eq!(rec.verify(&params.genesis_hash(), now_ms() / 1000), Ok(()));

    // Unknown message types from a version 2 peer are ignored: the connection goes on.
    honest.send_bytes(vec![200, 1, 2, 3]).await.unwrap();
    honest.send(&Message::Ping(5)).await.unwrap();
    assert_eq!(
        honest
            .wait_for(WAIT, |m| matches!(m, Message::Pong(_)))
            .await,
        Some(Message::Pong(5))
    );

    // A hello naming another URL, as one forwarded by a proxy would: refused, no proof.
    let mut proxied = RawClient::connect_from(&relay.ws_url, ip(2), None)
        .await
        .unwrap();
    let mut hello = make_hello(&params, [2; 32], NodeKind::Browser, None, None, [9; 32]);
    hello.dialed = Some(String::from("ws://proxy.example/ws"));
    proxied.send(&Message::Hello(hello)).await.unwrap();
    assert!(proxied.closed_within(WAIT).await);
    assert!(
        !proxied
            .history
            .iter()
            .any(|m| matches!(m, Message::Auth(_)))
    );
    assert_eq!(
        proxied.fatal_notice().as_deref(),
        Some("dialed url is not this node's")
    );
    relay.stop().await;
}
