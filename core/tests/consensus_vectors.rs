//! Consensus test vectors: `tests/data/consensus-vectors.txt`, quoted in `docs/CONSENSUS.md`.
//!
//! This test regenerates every value of that file from the code and asserts that the file is
//! byte-for-byte what the code produces today, so the published vectors (and the document that
//! quotes them) cannot drift from the rules. Where a value can be derived from the byte layouts
//! in the document without the crate's own encoders (hashes of raw bytes, header field offsets,
//! the sighash preimage, the merkle shape, the address checksum), it is also recomputed that
//! way here, with `sha2` and `ed25519-dalek` directly. Every `key = value` line that
//! `docs/CONSENSUS.md` quotes in an `ini` code block must equal the file as well.
//!
//! After an intended consensus change, regenerate the file and review the diff:
//!
//! ```text
//! TABCOIN_WRITE_VECTORS=1 cargo test -p tabcoin-core --test consensus_vectors
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tabcoin_core::chain::Chain;
use tabcoin_core::encode::{Decode, Encode, put_varint};
use tabcoin_core::hash::{Hash256, sha256d, to_hex};
use tabcoin_core::mempool::Mempool;
use tabcoin_core::merkle;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{
    Block, HEADER_SIZE, HEADER_VERSION, MAX_BLOCK_TXS_DECODE, MAX_COINBASE_EXTRA, MAX_POST_BYTES,
    MAX_TX_INPUTS, MAX_TX_OUTPUTS, SIGHASH_TAG, Transaction, Txid,
};
use tabcoin_core::sig::PublicKey;
use tabcoin_core::testkit::{block_with, extend_empty, seal, wallet};
use tabcoin_core::units::{Amount, COIN, CompactTarget, Height, MAX_MONEY};
use tabcoin_core::validation::{check_post_text, validate_tx};
use tabcoin_core::wallet::{decode_address, encode_address};

#[path = "consensus_vectors/policy.rs"]
mod policy;

const WRITE_VAR: &str = "TABCOIN_WRITE_VECTORS";

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/consensus-vectors.txt")
}

/// The vector file being built: `[section]` headers, `key = value` lines, `#` comments.
struct Doc(String);

impl Doc {
    fn section(&mut self, name: &str, comments: &[&str]) {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        writeln!(self.0, "[{name}]").unwrap();
        for c in comments {
            writeln!(self.0, "# {c}").unwrap();
        }
    }

    fn kv(&mut self, key: &str, value: impl Display) {
        let value = value.to_string();
        assert!(
            !value.contains('\n') && value.trim() == value,
            "{key}: values are single trimmed lines"
        );
        writeln!(self.0, "{key} = {value}").unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Independent recomputation from the documented layouts (no crate encoders).
// ---------------------------------------------------------------------------------------------

fn sha256d_raw(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Sha256::digest(h.finalize()).into()
}

fn unhex(s: &str) -> Vec<u8> {
    tabcoin_core::hash::decode_hex(s).unwrap()
}

/// Header layout (CONSENSUS.md): offsets of every field, and the block hash as SHA-256d of the
/// 88 bytes.
fn check_header_layout(block: &Block) {
    let b = block.header.to_bytes();
    assert_eq!(b.len(), 88);
    assert_eq!(
        u32::from_le_bytes(b[0..4].try_into().unwrap()),
        HEADER_VERSION
    );
    assert_eq!(&b[4..36], block.header.prev.as_bytes());
    assert_eq!(&b[36..68], block.header.merkle_root.as_bytes());
    assert_eq!(
        u64::from_le_bytes(b[68..76].try_into().unwrap()),
        block.header.time
    );
    assert_eq!(
        u32::from_le_bytes(b[76..80].try_into().unwrap()),
        block.header.bits.0
    );
    assert_eq!(
        u64::from_le_bytes(b[80..88].try_into().unwrap()),
        block.header.nonce
    );
    assert_eq!(sha256d_raw(&[&b]), *block.hash().as_bytes());
    // The block encoding is the header, a varint count, then the transactions.
    let enc = block.encode();
    assert_eq!(&enc[..88], &b);
    let mut count = Vec::new();
    put_varint(&mut count, block.txs.len() as u64);
    assert_eq!(&enc[88..88 + count.len()], &count[..]);
    // The hash, read as a big-endian integer, meets the target.
    let target = block.header.bits.to_target().unwrap();
    assert!(*block.hash().as_bytes() <= target.to_be_bytes());
    assert_eq!(Block::decode(&enc).unwrap(), *block);
}

/// Merkle rule (CONSENSUS.md): leaf = SHA-256d(0x00 ‖ txid), node = SHA-256d(0x01 ‖ l ‖ r), an
/// odd last node is carried up unchanged.
fn merkle_by_hand(ids: &[[u8; 32]]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = ids.iter().map(|id| sha256d_raw(&[&[0x00], id])).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match p {
                [l, r] => sha256d_raw(&[&[0x01], l, r]),
                [lone] => *lone,
                _ => unreachable!(),
            })
            .collect();
    }
    level[0]
}

/// Address rule (CONSENSUS.md): `prefix_` + lower-case RFC 4648 base32, no padding, of
/// key ‖ SHA-256d(prefix ‖ 0x00 ‖ key)[0..4].
fn address_by_hand(prefix: &str, key: &[u8; 32]) -> String {
    let sum = sha256d_raw(&[prefix.as_bytes(), &[0], key]);
    let mut data = key.to_vec();
    data.extend_from_slice(&sum[..4]);
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits = String::new();
    for b in data {
        write!(bits, "{b:08b}").unwrap();
    }
    while !bits.len().is_multiple_of(5) {
        bits.push('0');
    }
    let body: String = bits
        .as_bytes()
        .chunks(5)
        .map(|c| {
            alphabet[usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()] as char
        })
        .collect();
    format!("{prefix}_{body}")
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

fn constants(d: &mut Doc) {
    d.section(
        "constants",
        &["Network-independent constants (units: base units; 1 TAB = 10^8 units)."],
    );
    d.kv("coin", COIN);
    d.kv("max-money", MAX_MONEY);
    d.kv("header-size", HEADER_SIZE);
    d.kv("header-version", HEADER_VERSION);
    d.kv("max-tx-inputs-decode", MAX_TX_INPUTS);
    d.kv("max-tx-outputs-decode", MAX_TX_OUTPUTS);
    d.kv("max-block-txs-decode", MAX_BLOCK_TXS_DECODE);
    d.kv("max-post-bytes", MAX_POST_BYTES);
    d.kv("max-coinbase-extra", MAX_COINBASE_EXTRA);
    assert_eq!(SIGHASH_TAG, b"tabcoin/sighash/v2");
    d.kv("sighash-tag", std::str::from_utf8(SIGHASH_TAG).unwrap());
    d.kv("sighash-tag-hex", to_hex(SIGHASH_TAG));
}

fn genesis(d: &mut Doc, params: &Params) {
    let section = format!("{}-genesis", params.name);
    d.section(
        &section,
        &[
            "Network parameters, then the genesis block (a coinbase with no outputs).",
            "target: 64 hex digits, most significant first; work: floor(2^256 / (target + 1)).",
        ],
    );
    d.kv("network", params.name);
    d.kv("address-prefix", params.address_prefix);
    d.kv("target-block-time", params.target_block_time);
    d.kv("half-life", params.half_life);
    d.kv("pow-limit-bits", params.pow_limit);
    d.kv("pow-limit-target", params.pow_limit_target());
    d.kv("coinbase-maturity", params.coinbase_maturity);
    d.kv("initial-subsidy", params.initial_subsidy.units());
    d.kv("halving-interval", params.halving_interval);
    d.kv("max-block-size", params.max_block_size);
    d.kv("max-block-txs", params.max_block_txs);
    d.kv("max-tx-size", params.max_tx_size);
    d.kv("max-future-drift", params.max_future_drift);
    d.kv("mtp-window", params.mtp_window);
    d.kv("genesis-time", params.genesis_time);
    d.kv("launch-time", params.launch_time);
    d.kv("genesis-nonce", params.genesis_nonce);
    d.kv(
        "genesis-message",
        std::str::from_utf8(params.genesis_message).unwrap(),
    );
    d.kv("genesis-message-hex", to_hex(params.genesis_message));

    let g = params.genesis_block();
    check_header_layout(&g);
    let coinbase = &g.txs[0];
    let target = g.header.bits.to_target().unwrap();
    assert_eq!(
        merkle_by_hand(&[*coinbase.txid().as_bytes()]),
        g.header.merkle_root.0,
        "one-leaf merkle root"
    );
    assert_eq!(
        sha256d_raw(&[&coinbase.encode()]),
        *coinbase.txid().as_bytes()
    );
    d.kv("coinbase-hex", to_hex(&coinbase.encode()));
    d.kv("coinbase-txid", coinbase.txid());
    d.kv("merkle-root", g.header.merkle_root);
    d.kv("header-hex", to_hex(&g.header.to_bytes()));
    d.kv("block-hash", g.hash());
    d.kv("block-hex", to_hex(&g.encode()));
    d.kv("block-size", g.encoded_len());
    d.kv("bits", g.header.bits);
    d.kv("target", target);
    d.kv("work", target.work());
    d.kv(
        "block-1-bits",
        params.next_bits(Height(0), params.genesis_time),
    );
    d.kv("block-1-min-time", params.genesis_median_time_past() + 1);
    // Every height from 1 on issues its subsidy; genesis issues nothing.
    let eras = (0..64u64).map(|era| {
        u128::from(
            params
                .subsidy(Height(era * params.halving_interval))
                .units(),
        ) * u128::from(params.halving_interval)
    });
    let total = eras.sum::<u128>() - u128::from(params.subsidy(Height(0)).units());
    assert!(total <= u128::from(MAX_MONEY));
    d.kv("total-issuance", total);
}

fn address(d: &mut Doc) {
    d.section(
        "address",
        &[
            "address = prefix '_' base32(key || checksum), checksum = SHA-256d(prefix || 0x00 || key)[0..4];",
            "base32: RFC 4648 alphabet, lower case, no padding (36 bytes -> 58 characters).",
        ],
    );
    let key = PublicKey([0x07; 32]);
    d.kv("key", key);
    for params in [Params::main(), Params::test()] {
        let p = params.address_prefix;
        let sum = sha256d_raw(&[p.as_bytes(), &[0], &key.0]);
        let addr = encode_address(p, &key);
        assert_eq!(addr, address_by_hand(p, &key.0));
        assert_eq!(decode_address(p, &addr), Ok(key));
        assert!(decode_address(if p == "tab" { "ttab" } else { "tab" }, &addr).is_err());
        d.kv(&format!("{}-prefix", params.name), p);
        d.kv(
            &format!("{}-checksum-preimage", params.name),
            to_hex(&[p.as_bytes(), &[0], &key.0[..]].concat()),
        );
        d.kv(&format!("{}-checksum", params.name), to_hex(&sum[..4]));
        d.kv(&format!("{}-address", params.name), addr);
    }
}

fn asert(d: &mut Doc) {
    let params = Params::main();
    let launch = params.launch_time;
    let anchor = params.asert_anchor();
    d.section(
        "asert",
        &[
            "Main-network difficulty: bits = next_bits(tip height, tip time) for the block after the tip.",
            "Anchor (fixed by the parameters): height 0, parent time = launch-time - target-block-time, bits = genesis bits.",
            "On schedule, the tip at height h has time launch-time + 30 h.",
            "The last row is 7 s early: the exponent -764.58 truncates to -764 (floor would give -765).",
        ],
    );
    d.kv("anchor-height", anchor.height);
    d.kv("anchor-parent-time", anchor.parent_time);
    d.kv("anchor-bits", anchor.bits);
    let h = 100u64;
    let on_time = launch + 30 * h;
    let rows: [(&str, u64); 4] = [
        ("on-schedule", on_time),
        ("ten-blocks-ahead", on_time - 300),
        ("ten-blocks-behind", on_time + 300),
        ("seven-seconds-ahead", on_time - 7),
    ];
    for (name, time) in rows {
        let bits = params.next_bits(Height(h), time);
        let time_delta = time as i128 - i128::from(anchor.parent_time);
        let ideal = i128::from(params.target_block_time) * (h as i128 - anchor.height as i128 + 1);
        // Truncating division, as the rule (and the published vectors) require.
        let exponent = (time_delta - ideal) * 65536 / i128::from(params.half_life);
        d.kv(&format!("{name}-tip-height"), h);
        d.kv(&format!("{name}-tip-time"), time);
        d.kv(&format!("{name}-exponent"), exponent);
        d.kv(&format!("{name}-bits"), bits);
        d.kv(&format!("{name}-target"), bits.to_target().unwrap());
    }
}

/// Block rules of issue 9 (§13, §14.2): the verdict of the stateless check, and whether it
/// condemns the header; and the launch-time rule for block 1 (§12).
fn block_rules(d: &mut Doc) {
    use tabcoin_core::validation::{ParentInfo, check_block, check_header_context};
    d.section(
        "block-rules",
        &[
            "Test network, coinbase-only block 1 built by the test kit, then changed and re-mined:",
            "this crate's error text and whether it marks the header invalid for good.",
        ],
    );
    let params = Params::test();
    let chain = Chain::new(params.clone());
    let key = wallet(1, &params).public_key();
    let base = block_with(&chain, &[], key, b"vectors");
    let one = Amount::from_units(1).unwrap();
    let mut many = base.clone();
    many.txs[0].outputs =
        vec![tabcoin_core::primitives::TxOut { amount: one, key }; MAX_TX_OUTPUTS + 1];
    let mut empty = base.clone();
    empty.txs.clear();
    let mut wrong_root = base.clone();
    wrong_root.header.merkle_root = Hash256([1; 32]);
    let cases = [
        ("coinbase-4097-outputs", seal(many)),
        ("empty-body-zero-root", seal(empty)),
        (
            "wrong-merkle-root",
            tabcoin_core::miner::mine(wrong_root).unwrap(),
        ),
    ];
    for (name, blk) in cases {
        let err = check_block(&blk, &params).unwrap_err();
        d.kv(&format!("{name}-error"), &err);
        d.kv(&format!("{name}-marks-invalid"), err.marks_header_invalid());
    }
    // Block 1 must be later than the launch time (main network, its genesis as parent).
    let main = Params::main();
    let genesis = ParentInfo {
        height: Height(0),
        time: main.genesis_time,
        median_time_past: main.genesis_median_time_past(),
    };
    let mut header = main.genesis_block().header;
    header.prev = main.genesis_hash();
    header.time = main.launch_time;
    let err = check_header_context(&header, &genesis, &main, u64::MAX).unwrap_err();
    d.kv("main-block-1-at-launch-time-error", err);
}

/// Post texts (§11): the verdict of `check_post_text` on each, with the error text.
fn post_text(d: &mut Doc) {
    d.section(
        "post-text",
        &[
            "Post texts as UTF-8 hex and the verdict: ok, or this crate's error text.",
            "Bidirectional controls are rejected anywhere; a text of invisible characters only is empty.",
        ],
    );
    let cases: [(&str, &str); 10] = [
        ("plain", "live"),
        ("right-to-left-override", "\u{202e}evil"),
        ("isolate", "pay \u{2066}me\u{2069}"),
        ("right-to-left-mark", "a\u{200f}b"),
        ("ascii-blank", " \t\r\n"),
        ("zero-width-space-only", "\u{200b}"),
        ("no-break-and-ideographic-space", "\u{a0}\u{3000}"),
        ("hangul-filler-only", "\u{3164}"),
        ("zero-width-inside-text", "a\u{200b}b"),
        ("hebrew", "\u{5e9}\u{5dc}\u{5d5}\u{5dd}"),
    ];
    for (name, text) in cases {
        d.kv(&format!("{name}-hex"), to_hex(text.as_bytes()));
        let verdict = check_post_text(text).map_or_else(|e| e.to_string(), |()| "ok".into());
        d.kv(&format!("{name}-verdict"), verdict);
    }
}

fn test_chain_and_tx(d: &mut Doc) {
    let params = Params::test();
    let a = wallet(1, &params);
    let b = wallet(2, &params);
    let mut chain = Chain::new(params.clone());
    let genesis = chain.genesis_hash();
    let blocks = extend_empty(&mut chain, 2, a.public_key(), b"vectors");

    d.section(
        "test-chain",
        &[
            "Test network. Wallet A: seed 32 x 0x01; wallet B: seed 32 x 0x02 (RFC 8032 ed25519 seeds).",
            "Blocks 1 and 2 are coinbase-only, pay A, extra \"vectors\", time = parent time + 30.",
        ],
    );
    d.kv("wallet-a-seed", to_hex(&[0x01; 32]));
    d.kv("wallet-a-public-key", a.public_key());
    d.kv("wallet-a-address", a.address());
    d.kv("wallet-b-seed", to_hex(&[0x02; 32]));
    d.kv("wallet-b-public-key", b.public_key());
    d.kv("wallet-b-address", b.address());
    for (i, blk) in blocks.iter().enumerate() {
        check_header_layout(blk);
        let n = i + 1;
        d.kv(&format!("block-{n}-time"), blk.header.time);
        d.kv(&format!("block-{n}-hash"), blk.hash());
        d.kv(&format!("block-{n}-hex"), to_hex(&blk.encode()));
    }

    // A pays B 1.5 TAB at 1000 units/kB with a post.
    let amount = Amount::from_units(150_000_000).unwrap();
    let tx = a
        .pay(
            &chain,
            &Mempool::default(),
            b.public_key(),
            amount,
            1000,
            Some("hello tabcoin"),
        )
        .unwrap();
    let fee = validate_tx(&tx, chain.utxo(), chain.height().next(), &params, &genesis).unwrap();
    assert_eq!(
        tx.inputs.len(),
        1,
        "only block 1's coinbase is mature at height 3"
    );
    let input = &tx.inputs[0];
    let spent_coin = tabcoin_core::utxo::UtxoView::coin(chain.utxo(), &input.prev).unwrap();
    let sighash = tx.sighash(&genesis, &[spent_coin.output]);
    let enc = tx.encode();

    // The signature-free body is the encoding with the 64 signature bytes cut out (one input:
    // count byte, 36-byte outpoint, then the signature).
    let body = [&enc[..37], &enc[37 + 64..]].concat();
    assert_eq!(&enc[37..37 + 64], &input.sig.0[..]);
    // v2: the spent outputs follow the body, amount (u64 LE) then key, in input order.
    let spent_hex = [
        &spent_coin.output.amount.units().to_le_bytes()[..],
        &spent_coin.output.key.0,
    ]
    .concat();
    assert_eq!(
        sha256d_raw(&[b"tabcoin/sighash/v2", genesis.as_bytes(), &body, &spent_hex]),
        sighash.0
    );
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&a.public_key().0).unwrap();
    vk.verify_strict(
        &sighash.0,
        &ed25519_dalek::Signature::from_bytes(&input.sig.0),
    )
    .unwrap();
    assert_eq!(sha256d_raw(&[&enc]), *tx.txid().as_bytes());
    assert_eq!(Transaction::decode(&enc).unwrap(), tx);

    d.section(
        "signed-tx",
        &[
            "A pays B 150000000 units (1.5 TAB) at fee rate 1000 units/kB, post \"hello tabcoin\",",
            "built by A's wallet on the tip at height 2 for inclusion at height 3.",
            "sighash = SHA-256d(sighash-tag || test genesis hash || unsigned-body || spent-outputs); ed25519 signing is",
            "deterministic (RFC 8032), so the signature and txid are reproducible.",
        ],
    );
    d.kv("genesis-hash", genesis);
    d.kv("spent-outpoint-txid", input.prev.txid);
    d.kv("spent-outpoint-vout", input.prev.vout);
    d.kv("spent-outpoint-hex", to_hex(&input.prev.encode()));
    d.kv("spent-amount", spent_coin.output.amount.units());
    d.kv("spent-outputs-hex", to_hex(&spent_hex));
    d.kv("amount", amount.units());
    d.kv("post", tx.post().unwrap().text.as_str());
    d.kv("unsigned-body-hex", to_hex(&body));
    d.kv("sighash", sighash);
    d.kv("signature", to_hex(&input.sig.0));
    d.kv("tx-hex", to_hex(&enc));
    d.kv("txid", tx.txid());
    d.kv("size", enc.len());
    d.kv("fee", fee.units());
    d.kv("change", tx.outputs[1].amount.units());

    // Block 3 holds the transaction.
    let blk = block_with(
        &chain,
        std::slice::from_ref(&tx),
        a.public_key(),
        b"vectors",
    );
    check_header_layout(&blk);
    let ids: Vec<[u8; 32]> = blk.txs.iter().map(|t| *t.txid().as_bytes()).collect();
    assert_eq!(merkle_by_hand(&ids), blk.header.merkle_root.0);
    let out = chain.accept_block(&blk, blk.header.time).unwrap();
    assert!(out.tip_changed() && out.invalidated.is_empty());
    assert_eq!(chain.height(), Height(3));
    let coinbase = &blk.txs[0];
    assert_eq!(
        coinbase.outputs[0].amount.units(),
        params.subsidy(Height(3)).units() + fee.units()
    );

    d.section(
        "mined-block",
        &[
            "Block 3 on the test chain: coinbase paying A subsidy + fee, then the signed tx.",
            "utxo-digest = SHA-256d of the concatenated (outpoint || coin) encodings in outpoint order.",
        ],
    );
    d.kv("height", 3);
    d.kv("time", blk.header.time);
    d.kv("bits", blk.header.bits);
    d.kv("nonce", blk.header.nonce);
    d.kv("coinbase-hex", to_hex(&coinbase.encode()));
    d.kv("coinbase-txid", coinbase.txid());
    d.kv("merkle-root", blk.header.merkle_root);
    d.kv("header-hex", to_hex(&blk.header.to_bytes()));
    d.kv("block-hash", blk.hash());
    d.kv("block-hex", to_hex(&blk.encode()));
    d.kv("utxo-count", chain.utxo().len());
    d.kv("utxo-total", chain.utxo().total_value());
    d.kv("utxo-digest", chain.utxo().digest());
}

fn varint(d: &mut Doc) {
    d.section("varint", &["Unsigned LEB128, shortest form only."]);
    for v in [
        0u64,
        1,
        127,
        128,
        300,
        16_384,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let mut b = Vec::new();
        put_varint(&mut b, v);
        d.kv(&v.to_string(), to_hex(&b));
    }
}

fn merkle_shapes(d: &mut Doc) {
    d.section(
        "merkle",
        &[
            "Roots over ids id-i = SHA-256d(byte i), i = 0..n-1. n = 3 and 5 exercise the carried odd node.",
            "root-3 = node(node(leaf0, leaf1), leaf2); duplicating the last id gives a different root.",
        ],
    );
    let ids: Vec<Txid> = (0u8..5).map(|i| Txid::from_hash(sha256d(&[i]))).collect();
    for (i, id) in ids.iter().enumerate() {
        d.kv(&format!("id-{i}"), id);
    }
    d.kv("leaf-0", merkle::leaf_hash(&ids[0]));
    for n in 1..=5 {
        let root = merkle::root(&ids[..n]);
        let raw: Vec<[u8; 32]> = ids[..n].iter().map(|h| *h.as_bytes()).collect();
        assert_eq!(merkle_by_hand(&raw), root.0);
        d.kv(&format!("root-{n}"), root);
    }
    let mut dup = ids[..3].to_vec();
    dup.push(ids[2]);
    let dup_root = merkle::root(&dup);
    assert_ne!(dup_root, merkle::root(&ids[..3]));
    d.kv("root-3-last-duplicated", dup_root);
}

fn decode_rejects(d: &mut Doc) {
    d.section(
        "decode-reject",
        &[
            "Byte strings a decoder must reject as a Transaction (or Block), with this crate's error text.",
        ],
    );
    let coinbase = Params::test().genesis_block().txs[0].encode();
    let zero32 = [0u8; 32];
    let cases: Vec<(&str, bool, Vec<u8>)> = vec![
        ("tx-trailing-byte", false, [&coinbase[..], &[0]].concat()),
        (
            "tx-overlong-input-count",
            false,
            vec![0x80, 0x00, 0x00, 0x00],
        ),
        ("tx-unknown-payload-tag", false, vec![0x00, 0x00, 0x03]),
        (
            "tx-amount-above-cap",
            false,
            [
                &[0x00, 0x01][..],
                &(MAX_MONEY + 1).to_le_bytes(),
                &zero32,
                &[0x00],
            ]
            .concat(),
        ),
        (
            "tx-post-not-utf8",
            false,
            [&[0x00, 0x00, 0x02][..], &zero32, &[0x02, 0xc3, 0x28]].concat(),
        ),
        (
            "tx-post-too-long",
            false,
            [&[0x00, 0x00, 0x02][..], &zero32, &[0xc1, 0x02]].concat(),
        ),
        (
            "tx-coinbase-extra-too-long",
            false,
            vec![0x00, 0x00, 0x01, 0x00, 0x41],
        ),
        (
            "tx-varint-above-u64",
            false,
            [&[0x00, 0x00, 0x01][..], &[0xff; 9], &[0x02]].concat(),
        ),
        (
            "block-truncated-header",
            true,
            Params::test().genesis_block().encode()[..87].to_vec(),
        ),
    ];
    for (name, is_block, bytes) in cases {
        let err = if is_block {
            Block::decode(&bytes).unwrap_err()
        } else {
            Transaction::decode(&bytes).unwrap_err()
        };
        d.kv(&format!("{name}-hex"), to_hex(&bytes));
        d.kv(&format!("{name}-error"), err);
    }
}

fn generate() -> String {
    let mut d = Doc(String::new());
    d.0.push_str(
        "# Tabcoin consensus test vectors. Generated by core/tests/consensus_vectors.rs, which\n\
         # fails if this file differs from what the code computes. Format: [section], then\n\
         # `key = value` lines; bytes and hashes are lower-case hex in byte order (as encoded);\n\
         # bits are 0x-prefixed compact targets; amounts are base units. See docs/CONSENSUS.md.\n",
    );
    constants(&mut d);
    genesis(&mut d, &Params::main());
    genesis(&mut d, &Params::test());
    test_chain_and_tx(&mut d);
    asert(&mut d);
    post_text(&mut d);
    block_rules(&mut d);
    policy::policy(&mut d);
    address(&mut d);
    varint(&mut d);
    merkle_shapes(&mut d);
    decode_rejects(&mut d);
    d.0
}

#[test]
fn consensus_vectors_match_the_code() {
    let generated = generate();
    let path = vectors_path();
    if std::env::var(WRITE_VAR).is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path:?}: {e} (write it with {WRITE_VAR}=1)"));
    let mut section = "";
    for (i, (want, got)) in stored.lines().zip(generated.lines()).enumerate() {
        if got.starts_with('[') {
            section = got;
        }
        assert_eq!(
            want,
            got,
            "{path:?} line {} in {section} differs from the code (file first, code second); \
             if the change is intended, regenerate with {WRITE_VAR}=1 and review the diff",
            i + 1
        );
    }
    assert_eq!(
        stored.lines().count(),
        generated.lines().count(),
        "{path:?}: line count differs from the code"
    );
    assert_eq!(stored, generated);
}

/// Parses `[section]` / `key = value` / `# comment` lines into `(section, key) -> value`,
/// panicking on anything else or on a repeated key.
fn parse_vectors(text: &str) -> BTreeMap<(String, String), String> {
    let mut map = BTreeMap::new();
    let mut sections = std::collections::BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            assert!(sections.insert(section.clone()), "[{section}] twice");
            continue;
        }
        let (k, v) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("not `key = value`: {line:?}"));
        assert!(!k.is_empty() && !v.is_empty(), "{line:?}");
        let old = map.insert((section.clone(), k.to_string()), v.to_string());
        assert!(old.is_none(), "[{section}] {k} twice");
    }
    map
}

/// The file is plain enough for other implementations to read with a few lines of code, and a
/// value read back through that parse agrees with the bytes it names.
#[test]
fn vector_file_is_well_formed() {
    let v = parse_vectors(&generate());
    let get = |s: &str, k: &str| v[&(s.to_string(), k.to_string())].clone();
    for net in ["main", "test"] {
        let sec = format!("{net}-genesis");
        let header = unhex(&get(&sec, "header-hex"));
        assert_eq!(header.len(), 88);
        assert_eq!(to_hex(&sha256d_raw(&[&header])), get(&sec, "block-hash"));
        let bits = u32::from_le_bytes(header[76..80].try_into().unwrap());
        assert_eq!(CompactTarget(bits).to_string(), get(&sec, "bits"));
        assert!(get(&sec, "block-hex").starts_with(&get(&sec, "header-hex")));
    }
    let tx = unhex(&get("signed-tx", "tx-hex"));
    assert_eq!(tx.len().to_string(), get("signed-tx", "size"));
    assert_eq!(to_hex(&sha256d_raw(&[&tx])), get("signed-tx", "txid"));
    assert!(get("mined-block", "block-hex").contains(&get("signed-tx", "tx-hex")));
}

/// `docs/CONSENSUS.md` quotes vector values in ```ini blocks; each must equal the file.
#[test]
fn values_quoted_in_consensus_md_match() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/CONSENSUS.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let vectors = parse_vectors(&generate());
    let mut in_ini = false;
    let mut section = String::new();
    let mut quoted = 0;
    for (i, line) in doc.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            in_ini = !in_ini && lang == "ini";
            continue;
        }
        if !in_ini || trimmed.is_empty() {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (k, v) = trimmed
            .split_once(" = ")
            .unwrap_or_else(|| panic!("CONSENSUS.md:{}: not `key = value`", i + 1));
        assert_eq!(
            vectors
                .get(&(section.clone(), k.to_string()))
                .map(String::as_str),
            Some(v),
            "CONSENSUS.md:{}: [{section}] {k} differs from the vectors",
            i + 1
        );
        quoted += 1;
    }
    assert!(quoted > 0, "CONSENSUS.md quotes no vectors");
}
