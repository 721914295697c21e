//! Checks the test clients of `common` against a tiny in-test server that hosts a core
//! `Node` over tokio-tungstenite — no relay involved — and shows how to use them.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use common::{NodeClient, RawClient, build_blocks, now_ms, test_params, wallet, ws_url};
use tabcoin_core::node::{Input, Node, NodeConfig, Output};
use tabcoin_core::primitives::Block;
use tabcoin_core::sig::Signature;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::units::{Amount, COIN};
use tabcoin_core::wire::{Message, NodeKind};

const WAIT: Duration = Duration::from_secs(10);

/// Frames for one connection's writer; `None` closes it.
type Writer = mpsc::UnboundedSender<Option<Vec<u8>>>;

/// A minimal host: one shared node, one writer channel per connection.
#[derive(Clone)]
struct MiniServer {
    node: Arc<Mutex<Node>>,
    writers: Arc<Mutex<BTreeMap<u64, Writer>>>,
}

impl MiniServer {
    fn drive(&self, input: Input) {
        let mut node = self.node.lock().unwrap();
        node.handle(now_ms(), input);
        let writers = self.writers.lock().unwrap();
        while let Some(o) = node.poll_output() {
            match o {
                Output::Send { peer, bytes } => {
                    if let Some(w) = writers.get(&peer) {
                        let _ = w.send(Some(bytes.to_vec()));
                    }
                }
                Output::Disconnect { peer, .. } => {
                    if let Some(w) = writers.get(&peer) {
                        let _ = w.send(None);
                    }
                }
                _ => {}
            }
        }
    }

    fn height(&self) -> u64 {
        self.node.lock().unwrap().chain().height().0
    }

    /// Starts a server whose relay node already has `blocks`; returns it and its URL.
    async fn start(blocks: Vec<Block>) -> (MiniServer, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = ws_url(listener.local_addr().unwrap());
        // Its public URL is the one clients dial: handshakes are bound to it.
        let mut config = NodeConfig::new(NodeKind::Relay, [200; 32]);
        config.public_url = Some(url.clone());
        let node = Node::new(config, test_params(), ChangeSet::default()).unwrap();
        let server = MiniServer {
            node: Arc::new(Mutex::new(node)),
            writers: Arc::default(),
        };
        for b in blocks {
            server.drive(Input::MinedBlock(b));
        }
        let s = server.clone();
        tokio::spawn(async move {
            let mut next_peer = 1u64;
            while let Ok((tcp, addr)) = listener.accept().await {
                let peer = next_peer;
                next_peer += 1;
                let s = s.clone();
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let (mut sink, mut stream) = ws.split();
                    let (tx, mut rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
                    s.writers.lock().unwrap().insert(peer, tx);
                    tokio::spawn(async move {
                        while let Some(Some(bytes)) = rx.recv().await {
                            if sink.send(WsMessage::binary(bytes)).await.is_err() {
                                break;
                            }
                        }
                        let _ = sink.close().await;
                    });
                    s.drive(Input::Connected {
                        peer,
                        outbound: false,
                        remote: addr.to_string(),
                    });
                    while let Some(Ok(frame)) = stream.next().await {
                        match frame {
                            WsMessage::Binary(b) => s.drive(Input::Received {
                                peer,
                                bytes: b.to_vec(),
                            }),
                            WsMessage::Close(_) | WsMessage::Text(_) => break,
                            _ => {}
                        }
                    }
                    s.writers.lock().unwrap().remove(&peer);
                    s.drive(Input::Disconnected { peer });
                });
            }
        });
        let s = server.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                s.drive(Input::Tick);
            }
        });
        (server, url)
    }
}

#[tokio::test]
async fn node_client_syncs_mines_and_relays_a_payment() {
    // The server's chain pays participant 1, whose coinbases mature after 2 blocks.
    let blocks = build_blocks(5, wallet(1).public_key(), b"server");
    let server_tip = blocks.last().unwrap().hash();
    let (server, url) = MiniServer::start(blocks).await;

    let mut client = NodeClient::browser(&url, 1).await.unwrap();
    assert!(client.wait_connected(WAIT).await, "handshake");
    assert!(
        client.wait_tip(server_tip, WAIT).await,
        "synced the server's chain"
    );
    assert_eq!(client.height().0, 5);
    assert_eq!(client.blocks_received_count(), 5);

    // A payment from the client's wallet, then a block of it mined by the client.
    let tx = client
        .pay(
            &wallet(1),
            wallet(2).public_key(),
            Amount::from_units(COIN).unwrap(),
        )
        .unwrap();
    let txid = client.submit_tx(tx).await.unwrap().unwrap();
    assert!(client.in_mempool(&txid));
    let block = client.mine_and_submit().await.unwrap();
    assert!(block.txs.iter().any(|t| t.txid() == txid));
    assert_eq!(client.tip().0, block.hash());

    // The server fetched it by Headers → GetData → Block.
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.height() < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.node.lock().unwrap().chain().tip().hash, block.hash());
    client.close().await;
    assert!(client.is_closed() && !client.is_connected());
}

#[tokio::test]
async fn raw_client_handshakes_and_sees_a_bad_proof_refused() {
    let blocks = build_blocks(3, wallet(9).public_key(), b"server");
    let (_server, url) = MiniServer::start(blocks).await;

    let mut raw = RawClient::connect(&url).await.unwrap();
    let hello = raw.handshake_browser(7).await.unwrap();
    assert_eq!(hello.network, test_params().genesis_hash());
    assert_eq!(hello.best_height.0, 3);
    assert_eq!(hello.kind, NodeKind::Relay);
    // Established: the server asks for nodes, and answers pings.
    assert!(
        raw.wait_for(WAIT, |m| matches!(m, Message::GetNodes))
            .await
            .is_some()
    );
    raw.send(&Message::Ping(42)).await.unwrap();
    assert_eq!(
        raw.wait_for(WAIT, |m| matches!(m, Message::Pong(_))).await,
        Some(Message::Pong(42))
    );

    // A handshake with a forged proof: a fatal notice, then the close.
    let mut bad = RawClient::connect(&url).await.unwrap();
    let mut hello = common::make_hello(
        &test_params(),
        [8; 32],
        NodeKind::Browser,
        None,
        None,
        [1; 32],
    );
    hello.dialed = Some(url.clone());
    bad.send(&Message::Hello(hello)).await.unwrap();
    assert!(
        bad.wait_for(WAIT, |m| matches!(m, Message::Hello(_)))
            .await
            .is_some()
    );
    bad.send(&Message::Auth(Signature([3; 64]))).await.unwrap();
    assert!(bad.closed_within(WAIT).await);
    assert!(bad.fatal_notice().is_some_and(|r| r.contains("proof")));
}
