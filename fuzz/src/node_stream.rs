//! The sans-IO node under an arbitrary message stream from one peer, in the deterministic
//! simulator: a relay (the victim) on the fixture chain, an honest browser node connected to
//! it, and an attacker endpoint that sends whatever the input says.
//!
//! Invariants: no panic; the heap the stream leaves behind stays within a fixed allowance plus
//! a multiple of the bytes the attacker sent; the honest peer is still served (a block the
//! victim mines afterwards reaches it).

use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::miner::mine;
use tabcoin_core::node::PeerId;
use tabcoin_core::primitives::{Block, Transaction};
use tabcoin_core::sim::{Actor, Sim};
use tabcoin_core::wire::{Message, NodeKind};

use crate::alloc_count::live_bytes;
use crate::fixture;

/// One step of the attacker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Send these bytes as one message on the newest connection.
    Send(Vec<u8>),
    /// Let this many seconds pass.
    Wait(u8),
    /// Open another connection, with a valid handshake or without.
    Connect { handshake: bool },
    /// Decode these bytes as a block, repair its merkle root and proof of work (at the test
    /// network's limit), send it as a `block` message: valid-looking bodies of any shape.
    SealedBlock(Vec<u8>),
    /// Decode these bytes as a transaction, sign every input with wallet 1 (which holds the
    /// fixture's coins), send it as a `tx` message.
    SignedTx(Vec<u8>),
}

const TAG_SEND: u8 = 0;
const TAG_WAIT: u8 = 1;
const TAG_CONNECT: u8 = 2;
const TAG_SEALED_BLOCK: u8 = 3;
const TAG_SIGNED_TX: u8 = 4;
const TAGS: u8 = 5;
/// Connections the attacker may open (more only repeats what one does).
const MAX_CONNECTIONS: usize = 8;
/// Heap the stream may leave behind regardless of its size (caches, tables, one template).
const FIXED_ALLOWANCE: usize = 1 << 20;
/// Heap per byte the attacker sent that may remain: the victim and the honest node each keep
/// accepted blocks in their chain and their store, decoded.
const PER_BYTE_ALLOWANCE: usize = 32;

/// Flags of the first byte of a `node_stream` input.
pub mod stream_flags {
    /// Complete a valid handshake on the first connection.
    pub const HANDSHAKE: u8 = 1;
    /// The first connection is one the victim dials (the attacker is in its bootstrap list)
    /// instead of an inbound one.
    pub const DIALED: u8 = 2;
    /// The victim is a browser node (and the honest peer a relay it dials).
    pub const BROWSER_VICTIM: u8 = 4;
}

/// Where the attacker listens for the victim's dial.
const ATTACKER_URL: &str = "ws://attacker.sim/ws";

/// The input layout: a flag byte ([`stream_flags`]), then ops:
/// `0, len: u16 LE, bytes` = send; `1, seconds: u8` = wait; `2, flags: u8` = connect;
/// `3, len: u16 LE, block` = sealed block; `4, len: u16 LE, tx` = signed transaction.
/// A tag byte counts modulo 5.
pub fn encode_ops(flags: u8, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![flags];
    for op in ops {
        let mut put = |tag: u8, b: &[u8]| {
            let len = u16::try_from(b.len()).expect("seed messages are below 64 KiB");
            out.push(tag);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(b);
        };
        match op {
            Op::Send(b) => put(TAG_SEND, b),
            Op::SealedBlock(b) => put(TAG_SEALED_BLOCK, b),
            Op::SignedTx(b) => put(TAG_SIGNED_TX, b),
            Op::Wait(s) => out.extend_from_slice(&[TAG_WAIT, *s]),
            Op::Connect { handshake } => {
                out.extend_from_slice(&[TAG_CONNECT, u8::from(*handshake)])
            }
        }
    }
    out
}

/// A `len: u16 LE, bytes` field (shorter if the input ends first).
fn take_bytes(rest: &mut &[u8]) -> Vec<u8> {
    let len = match rest {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => 0,
    };
    let body = rest.get(2..).unwrap_or(&[]);
    let (b, tail) = body.split_at(len.min(body.len()));
    *rest = tail;
    b.to_vec()
}

fn parse_ops(data: &[u8]) -> Option<(u8, Vec<Op>)> {
    let (&flags, mut rest) = data.split_first()?;
    let mut ops = Vec::new();
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        match tag % TAGS {
            TAG_SEND => ops.push(Op::Send(take_bytes(&mut rest))),
            TAG_SEALED_BLOCK => ops.push(Op::SealedBlock(take_bytes(&mut rest))),
            TAG_SIGNED_TX => ops.push(Op::SignedTx(take_bytes(&mut rest))),
            TAG_WAIT => {
                let s = rest.first().copied().unwrap_or(1);
                rest = rest.get(1..).unwrap_or(&[]);
                ops.push(Op::Wait(s));
            }
            _ => {
                let f = rest.first().copied().unwrap_or(0);
                rest = rest.get(1..).unwrap_or(&[]);
                ops.push(Op::Connect {
                    handshake: f & 1 == 1,
                });
            }
        }
    }
    Some((flags, ops))
}

/// A handshake from the attacker with identity `seed` (bound to the URL the dialing side
/// dialed); false if the node never answered (it may have refused the connection: the
/// attacker can be banned by then).
fn try_handshake(sim: &mut Sim, raw: usize, peer: PeerId, seed: [u8; 32]) -> bool {
    let work = tabcoin_core::chain::Chain::new(sim.params.clone())
        .tip()
        .work;
    let hello = sim.raw_hello(seed, work);
    let answered = sim.try_raw_handshake(raw, peer, seed, hello, 2_000);
    if answered {
        sim.run_for(200);
    }
    answered
}

/// Drops what the harness itself recorded (the attacker's inbox, the UI events), so the heap
/// that remains is the nodes' own.
fn forget_harness_records(sim: &mut Sim) {
    for actor in &mut sim.actors {
        match actor {
            Actor::Raw(r) => r.inbox.values_mut().for_each(Vec::clear),
            Actor::Node(n) => {
                n.events.clear();
                n.dials.clear();
            }
        }
    }
    sim.block_sends.clear();
}

pub fn node_stream(data: &[u8]) {
    let Some((flags, ops)) = parse_ops(data) else {
        return;
    };
    let dialed = flags & stream_flags::DIALED != 0;
    let f = fixture();
    let mut sim = Sim::new(f.params.clone());
    sim.jitter_ms = 0;
    sim.latency_ms = 10;
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    sim.raw_listen(raw, ATTACKER_URL);
    let (victim, honest) = if flags & stream_flags::BROWSER_VICTIM != 0 {
        // Actors: raw 0, honest relay 1, victim browser 2 (dials the relay).
        let honest = sim.add_node(Sim::config(NodeKind::Relay, 2, &[]), f.stored.clone());
        let mut vc = Sim::config(NodeKind::Browser, 1, &[honest]);
        vc.mining_key = Some(f.miner.public_key());
        if dialed {
            vc.bootstrap.push(String::from(ATTACKER_URL));
        }
        (sim.add_node(vc, f.stored.clone()), honest)
    } else {
        // Actors: raw 0, victim relay 1, honest browser 2 (dials the victim).
        let mut vc = Sim::config(NodeKind::Relay, 1, &[]);
        vc.mining_key = Some(f.miner.public_key());
        if dialed {
            vc.bootstrap.push(String::from(ATTACKER_URL));
        }
        let victim = sim.add_node(vc, f.stored.clone());
        let honest = sim.add_node(
            Sim::config(NodeKind::Browser, 2, &[victim]),
            f.stored.clone(),
        );
        (victim, honest)
    };
    let honest_id = sim.node(honest).node_id();
    let linked = sim.run_until_for(60_000, |s| {
        s.node(victim)
            .peers()
            .iter()
            .any(|p| p.node_id == honest_id)
    });
    assert!(linked, "the honest node did not connect before the attack");
    // The victim's dial of the attacker, if it made one by now.
    let dialed_peer = sim.raw(raw).inbox.keys().next().copied();
    forget_harness_records(&mut sim);
    let baseline = live_bytes();

    let mut sent = 0usize;
    let mut connections = 1;
    let mut peer = match dialed_peer {
        Some(p) if dialed => p,
        _ => sim.raw_connect(raw, victim, "203.0.113.7:4000"),
    };
    if flags & stream_flags::HANDSHAKE != 0 {
        try_handshake(&mut sim, raw, peer, [0xa7; 32]);
    }
    for op in ops {
        match op {
            Op::Send(bytes) => {
                sent += bytes.len();
                sim.raw_send(raw, peer, bytes);
                sim.run_for(50);
            }
            Op::SealedBlock(bytes) => {
                let Ok(mut block) = Block::decode(&bytes) else {
                    continue;
                };
                block.header.merkle_root = block.compute_merkle_root();
                if block.header.bits == f.params.pow_limit {
                    block = mine(block).expect("test network bits are valid");
                }
                let msg = Message::Block(block).encode();
                sent += msg.len();
                sim.raw_send(raw, peer, msg);
                sim.run_for(50);
            }
            Op::SignedTx(bytes) => {
                let Ok(mut tx) = Transaction::decode(&bytes) else {
                    continue;
                };
                crate::sign(f, &f.miner, &mut tx);
                let msg = Message::Tx(tx).encode();
                sent += msg.len();
                sim.raw_send(raw, peer, msg);
                sim.run_for(50);
            }
            Op::Wait(s) => sim.run_for(u64::from(s) * 1_000),
            Op::Connect { handshake } => {
                if connections == MAX_CONNECTIONS {
                    continue;
                }
                connections += 1;
                let remote = format!("203.0.113.{}:4000", 7 + connections);
                peer = sim.raw_connect(raw, victim, &remote);
                if handshake {
                    try_handshake(&mut sim, raw, peer, [0xa7 + connections as u8; 32]);
                }
            }
        }
        forget_harness_records(&mut sim);
    }
    sim.run_for(1_000);
    forget_harness_records(&mut sim);
    let grown = live_bytes().saturating_sub(baseline);
    let allowed = FIXED_ALLOWANCE + PER_BYTE_ALLOWANCE * sent;
    assert!(
        grown <= allowed,
        "{grown} bytes of heap remain after {sent} bytes from the attacker (allowed {allowed})"
    );

    // The honest peer is still served: a block the victim mines reaches it.
    let block = sim.mine(victim);
    let hash = block.hash();
    let served = sim.run_until_for(5 * 60_000, |s| s.node(honest).chain().tip().hash == hash);
    assert!(served, "the honest peer did not get the victim's new block");
}
