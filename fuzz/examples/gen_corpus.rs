//! Writes the seed corpus (`fuzz/corpus/<target>/seed-*`): real, valid objects from the
//! fixture chain and the core's testkit, encoded, so every target starts past its decoder.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus [OUT_DIR]
//!
//! Deterministic: running it again rewrites the same files.

use std::fs;
use std::path::{Path, PathBuf};

use tabcoin_core::addrman::AddrMeta;
use tabcoin_core::encode::Encode;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::primitives::{Block, BlockHash};
use tabcoin_core::sig::{Keypair, PublicKey, Signature};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit;
use tabcoin_core::units::{Amount, Height};
use tabcoin_core::wire::{Hello, InvItem, Message, NodeKind, NodeRecord, Notice, PROTOCOL_VERSION};
use tabcoin_fuzz::validation::{block_flags, tx_flags};
use tabcoin_fuzz::{Op, encode_ops, fixture, stream_flags};

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = root.join(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn with_flag(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(body);
    v
}

fn records(network: &BlockHash) -> Vec<NodeRecord> {
    (0..3u8)
        .map(|i| {
            NodeRecord::sign(
                &Keypair::from_seed(&[40 + i; 32]),
                network,
                format!("wss://relay{i}.example.org/ws"),
                1_700_000_000 + u64::from(i),
            )
        })
        .collect()
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let f = fixture();
    let genesis = f.params.genesis_block();
    let all: Vec<&Block> = std::iter::once(&genesis).chain(&f.blocks).collect();

    // Decoders.
    for (i, b) in all.iter().enumerate() {
        write(
            &root,
            "decode_header",
            &format!("block{i}"),
            &b.header.encode(),
        );
        write(&root, "decode_block", &format!("block{i}"), &b.encode());
    }
    let payment = f.blocks.last().expect("fixture blocks").txs[1].clone();
    let txs = [
        ("coinbase", f.blocks[0].txs[0].clone()),
        ("post-payment", payment.clone()),
        ("unconfirmed", f.unconfirmed.clone()),
    ];
    for (name, tx) in &txs {
        write(&root, "decode_tx", name, &tx.encode());
    }

    let atk = Keypair::from_seed(&[0xa7; 32]);
    let tip = f.chain.tip().hash;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        features: 0,
        network: f.params.genesis_hash(),
        node_id: atk.public_key(),
        kind: NodeKind::Relay,
        record: Some(NodeRecord::sign(
            &atk,
            &f.params.genesis_hash(),
            String::from("wss://relay.example.org/ws"),
            1_700_000_000,
        )),
        dialed: Some(String::from("wss://relay.example.org/ws")),
        best_hash: tip,
        best_height: f.chain.height(),
        best_work: f.chain.tip().work,
        challenge: [7; 32],
        agent: String::from("tabcoin/0.1"),
        kept_from: Default::default(),
        extra: Vec::new(),
    };
    let browser_hello = Hello {
        kind: NodeKind::Browser,
        node_id: Keypair::from_seed(&[0xb1; 32]).public_key(),
        record: None,
        dialed: None,
        agent: String::from("tabcoin-web/0.1"),
        ..hello.clone()
    };
    let items = vec![InvItem::block(tip), InvItem::tx(f.unconfirmed.txid())];
    let messages = [
        ("hello", Message::Hello(hello)),
        ("auth", Message::Auth(Signature([3; 64]))),
        ("getnodes", Message::GetNodes),
        ("nodes", Message::Nodes(records(&f.params.genesis_hash()))),
        ("inv", Message::Inv(items.clone())),
        ("getdata", Message::GetData(items.clone())),
        ("notfound", Message::NotFound(items)),
        (
            "getheaders",
            Message::GetHeaders {
                locator: vec![f.params.genesis_hash()],
                stop: BlockHash::ZERO,
            },
        ),
        (
            "headers",
            Message::Headers(f.blocks.iter().map(|b| b.header).collect()),
        ),
        (
            "block",
            Message::Block(f.blocks.last().expect("fixture blocks").clone()),
        ),
        ("tx", Message::Tx(f.unconfirmed.clone())),
        ("ping", Message::Ping(42)),
        ("pong", Message::Pong(42)),
        (
            "notice",
            Message::Notice(Notice {
                fatal: false,
                reason: String::from("slow down"),
            }),
        ),
        ("sendblocks", Message::SendBlocks),
        ("hello-browser", Message::Hello(browser_hello)),
    ];
    for (name, m) in &messages {
        write(&root, "decode_message", name, &m.encode());
    }

    let mut nodes_cs = ChangeSet::default();
    for r in records(&f.params.genesis_hash()) {
        nodes_cs.nodes.insert(r.url.clone(), Some(r));
    }
    nodes_cs
        .nodes
        .insert(String::from("wss://gone.example.org/ws"), None);
    write(
        &root,
        "decode_changeset",
        "fixture-store",
        &f.stored.encode(),
    );
    write(&root, "decode_changeset", "nodes", &nodes_cs.encode());
    let mut book_cs = nodes_cs.clone();
    for (i, url) in nodes_cs.nodes.keys().enumerate() {
        let meta = (i % 2 == 0).then(|| AddrMeta {
            source: format!("203.0.113.{i}"),
            tried: i == 0,
            last_success_s: if i == 0 { 1_700_000_100 } else { 0 },
            failures: i as u32,
        });
        book_cs.node_meta.insert(url.clone(), meta);
    }
    book_cs
        .bans
        .insert(String::from("198.51.100.7"), Some(1_700_003_600_000));
    book_cs
        .bans
        .insert(String::from("2001:db8:1:2::/64"), Some(1_700_003_600_000));
    book_cs.bans.insert(String::from("198.51.100.8"), None);
    write(&root, "decode_changeset", "address-book", &book_cs.encode());
    let headers_cs = ChangeSet {
        headers: f.blocks.iter().map(|b| b.header).collect(),
        tip: Some(tip),
        ..ChangeSet::default()
    };
    write(
        &root,
        "decode_changeset",
        "headers-only",
        &headers_cs.encode(),
    );
    write(
        &root,
        "decode_changeset",
        "empty",
        &ChangeSet::default().encode(),
    );

    for n in [0, 1, 3] {
        let body = Message::Nodes(
            records(&f.params.genesis_hash())
                .into_iter()
                .take(n)
                .collect(),
        )
        .encode();
        write(
            &root,
            "decode_node_records",
            &format!("{n}-records"),
            &body[1..],
        );
    }

    // Validation.
    let mut chain = f.chain.clone();
    let next = testkit::block_with(
        &chain,
        std::slice::from_ref(&f.unconfirmed),
        f.payee.public_key(),
        b"n",
    );
    let empty = testkit::block_with(&chain, &[], f.payee.public_key(), b"e");
    let fork = testkit::child_of(
        &f.params,
        &f.blocks[6],
        Height(7),
        atk.public_key(),
        b"fork",
    );
    write(
        &root,
        "validate_block",
        "next-valid",
        &with_flag(0, &next.encode()),
    );
    write(
        &root,
        "validate_block",
        "next-repaired",
        &with_flag(block_flags::ALL, &next.encode()),
    );
    write(
        &root,
        "validate_block",
        "empty-repaired",
        &with_flag(block_flags::ALL, &empty.encode()),
    );
    write(
        &root,
        "validate_block",
        "duplicate",
        &with_flag(0, &f.blocks[7].encode()),
    );
    write(
        &root,
        "validate_block",
        "fork",
        &with_flag(block_flags::MERKLE | block_flags::MINE, &fork.encode()),
    );

    let mut pool = Mempool::new(usize::MAX, 0);
    pool.add(f.unconfirmed.clone(), &chain).expect("valid");
    let child = f
        .payee
        .pay(
            &chain,
            &pool,
            f.miner.public_key(),
            Amount::from_units(500_000).expect("small"),
            1_000,
            Some("child"),
        )
        .expect("payee can spend its coin and the unconfirmed one");
    let payee_spend = f
        .payee
        .pay(
            &chain,
            &Mempool::new(usize::MAX, 0),
            f.miner.public_key(),
            Amount::from_units(100_000).expect("small"),
            2_000,
            None,
        )
        .expect("payee has a confirmed coin");
    write(
        &root,
        "validate_tx",
        "unconfirmed",
        &with_flag(0, &f.unconfirmed.encode()),
    );
    write(
        &root,
        "validate_tx",
        "unconfirmed-resigned",
        &with_flag(tx_flags::SIGN_MINER, &f.unconfirmed.encode()),
    );
    write(
        &root,
        "validate_tx",
        "payee",
        &with_flag(tx_flags::SIGN_PAYEE, &payee_spend.encode()),
    );
    write(
        &root,
        "validate_tx",
        "child",
        &with_flag(tx_flags::POOL_FIRST | tx_flags::SIGN_PAYEE, &child.encode()),
    );
    write(
        &root,
        "validate_tx",
        "double-spend",
        &with_flag(tx_flags::POOL_FIRST, &f.unconfirmed.encode()),
    );

    // The node: an attacker with real messages.
    let attacker_key: PublicKey = atk.public_key();
    let a1 = testkit::block_with(&chain, &[], attacker_key, b"atk");
    chain
        .accept_block(&a1, f.now)
        .expect("attacker block 1 is valid");
    let a2 = testkit::block_with(&chain, &[], attacker_key, b"atk");
    let m = |msg: &Message| Op::Send(msg.encode());
    const HS: u8 = stream_flags::HANDSHAKE;
    let streams: [(&str, u8, Vec<Op>); 9] = [
        (
            "dialed",
            HS | stream_flags::DIALED,
            vec![
                m(&messages[7].1),
                m(&messages[3].1),
                Op::Wait(2),
                m(&messages[5].1),
            ],
        ),
        (
            "browser-victim",
            HS | stream_flags::DIALED | stream_flags::BROWSER_VICTIM,
            vec![
                m(&messages[8].1),
                m(&messages[10].1),
                Op::Wait(40),
                m(&messages[3].1),
            ],
        ),
        (
            "sealed-and-signed",
            HS,
            vec![
                Op::SignedTx(f.unconfirmed.encode()),
                Op::SealedBlock(a1.encode()),
                Op::SealedBlock(a2.encode()),
                Op::Wait(3),
                Op::SealedBlock(next.encode()),
            ],
        ),
        (
            "requests",
            HS,
            vec![
                m(&messages[7].1),
                m(&messages[5].1),
                m(&messages[2].1),
                m(&messages[11].1),
                Op::Wait(5),
                m(&messages[4].1),
            ],
        ),
        (
            "new-blocks",
            HS,
            vec![
                m(&Message::Headers(vec![a1.header, a2.header])),
                Op::Wait(1),
                m(&Message::Block(a1.clone())),
                m(&Message::Block(a2.clone())),
                Op::Wait(2),
            ],
        ),
        (
            "pushed-blocks",
            HS,
            vec![
                m(&messages[14].1),
                Op::Wait(1),
                m(&Message::Block(a1)),
                m(&Message::Block(a2)),
                Op::Wait(2),
            ],
        ),
        (
            "tx-and-notice",
            HS,
            vec![
                m(&messages[10].1),
                Op::Wait(2),
                m(&messages[13].1),
                m(&messages[3].1),
            ],
        ),
        (
            "no-handshake",
            0,
            vec![
                m(&messages[7].1),
                Op::Send(vec![0xff, 0, 1]),
                Op::Connect { handshake: true },
                m(&messages[9].1),
            ],
        ),
        (
            "stale-and-unknown",
            HS,
            vec![
                m(&messages[8].1),
                m(&Message::GetData(vec![InvItem::block(
                    BlockHash::from_bytes([9; 32]),
                )])),
                Op::Wait(30),
                m(&messages[12].1),
            ],
        ),
    ];
    for (name, hs, ops) in &streams {
        write(&root, "node_stream", name, &encode_ops(*hs, ops));
    }
    println!("corpus written to {}", root.display());
}
