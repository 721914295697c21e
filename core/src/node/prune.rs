//! Pruned peers (`docs/PROTOCOL.md` §3.2, §6.5): a peer whose `hello` says it keeps bodies
//! only from some height up is asked only for those. A body it dropped since its `hello`
//! is answered `notfound`, which is remembered per peer like any other (`Peer::lacks`).

use super::peer::Peer;
use crate::units::Height;

impl Peer {
    /// Whether the peer keeps the body of a block at `height`, as far as its `hello` said
    /// (the lowest height it keeps; 0 for a node that keeps every body).
    pub(super) fn holds_body(&self, height: Height) -> bool {
        self.hello.as_ref().is_none_or(|h| height >= h.kept_from)
    }
}

#[cfg(test)]
mod tests {
    //! A syncing node and a pruned peer, on the deterministic simulator (`crate::sim`).
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

    use alloc::string::String;
    use alloc::vec::Vec;

    use crate::encode::Encode;
    use crate::node::NodeConfig;
    use crate::params::Params;
    use crate::sig::Keypair;
    use crate::sim::Sim;
    use crate::store::{ChangeSet, Store};
    use crate::testkit::long_chain;
    use crate::units::Height;
    use crate::wire::{InvId, Message, NodeKind, auth_message};

    const CHAIN: usize = 80;
    const DEPTH: u64 = 16;
    const MINUTE: u64 = 60_000;

    fn pruned_config(seed: u8, bootstrap: &[usize]) -> NodeConfig {
        let mut c = Sim::config(NodeKind::Relay, seed, bootstrap);
        c.prune_bytes = Some(1);
        c.prune_depth = DEPTH;
        c.body_cache_bytes = 0;
        c
    }

    /// The relay test `relay/tests/prune.rs` hung here about once in 100 runs: a fresh node
    /// dials a pruned relay and a full one; the full one's `hello` comes before the pruned
    /// relay's headers (so its tip is not yet in our tree) and its `auth` after them (so
    /// it claims no more work than we know of, and is not asked for headers). Its tip must
    /// still count as its once those headers bring it, or no peer is ever asked for the
    /// bodies the pruned relay dropped and the sync stops at genesis for good.
    #[test]
    fn a_full_peer_whose_hello_came_before_the_headers_still_serves_the_old_bodies() {
        let mut sim = Sim::new(Params::test());
        // Every message takes exactly the base latency: the order below is the only one.
        sim.jitter_ms = 0;
        let stored = long_chain(&sim.params, CHAIN);
        let full = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored);
        let pruned = sim.add_node(pruned_config(2, &[full]), ChangeSet::default());
        assert!(
            sim.run_until_for(5 * MINUTE, |s| s.node(pruned).chain().height()
                == Height(CHAIN as u64))
        );
        let kept_from = sim.node(pruned).chain().prune_status().kept_from;
        assert_eq!(kept_from, Height(CHAIN as u64 + 1 - DEPTH));
        let tip = sim.node(full).chain().tip();
        let (tip_hash, tip_height, tip_work) = (tip.hash, tip.height, tip.work);

        // The full relay is played by a raw endpoint serving the full relay's bodies, so
        // the test decides when its handshake messages arrive.
        let mut bodies = sim.sim_node(full).store.clone();
        sim.set_online(full, false);
        let raw = sim.add_raw();
        sim.set_auto_pong(raw, true);
        let raw_url = String::from("ws://full.sim/ws");
        sim.raw_listen(raw, &raw_url);
        let mut c = Sim::config(NodeKind::Relay, 3, &[pruned]);
        c.bootstrap.push(raw_url.clone());
        c.target_outbound = 2;
        let fresh = sim.add_node(c, ChangeSet::default());

        // The fresh node's `hello` reaches the raw endpoint; its own `hello` goes back at once.
        assert!(
            sim.run_until_for(MINUTE, |s| s.raw_inbound(raw).first().is_some_and(|&p| {
                s.raw(raw)
                    .inbox
                    .get(&p)
                    .is_some_and(|m| m.iter().any(|b| b.first() == Some(&0)))
            }))
        );
        let p = sim.raw_inbound(raw)[0];
        let theirs = sim
            .raw_messages(raw, p)
            .into_iter()
            .find_map(|m| match m {
                Message::Hello(h) => Some(h),
                _ => None,
            })
            .unwrap();
        let seed = [9; 32];
        let mut hello = sim.raw_hello(seed, tip_work);
        hello.kind = NodeKind::Relay;
        hello.best_hash = tip_hash;
        hello.best_height = tip_height;
        sim.raw_send(raw, p, Message::Hello(hello.clone()).encode());
        sim.run_for(sim.latency_ms + 1);
        assert_eq!(
            sim.node(fresh).chain().best_header().height,
            Height(0),
            "the full peer's hello came before any header"
        );
        // The pruned relay's headers arrive; only then the full peer's `auth`.
        assert!(
            sim.run_until_for(MINUTE, |s| s.node(fresh).chain().best_header().hash
                == tip_hash)
        );
        let proof = Keypair::from_seed(&seed).sign(
            &auth_message(
                &sim.params.genesis_hash(),
                &hello.challenge,
                &theirs.challenge,
                &hello.node_id,
                &theirs.node_id,
                theirs.dialed.as_deref().unwrap_or_default(),
            )
            .0,
        );
        sim.raw_send(raw, p, Message::Auth(proof).encode());
        sim.run_for(sim.latency_ms + 1);
        let full_peer = sim
            .node(fresh)
            .peers()
            .into_iter()
            .find(|q| q.node_id == hello.node_id);
        assert!(full_peer.is_some(), "the full peer is established");

        // The raw endpoint serves the bodies it is asked for, for two simulated minutes
        // at most (a sync of this chain takes well under a second).
        let (mut answered, mut served) = (0, 0);
        for _ in 0..1_200 {
            let got = sim.raw_messages(raw, p);
            let asked: Vec<_> = got[answered..]
                .iter()
                .filter_map(|m| match m {
                    Message::GetData(items) => Some(items.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            answered = got.len();
            for item in asked {
                if let InvId::Block(hash) = item.id() {
                    let block = bodies.load_block(&hash).unwrap().0.unwrap();
                    sim.raw_send(raw, p, Message::Block(block).encode());
                    served += 1;
                }
            }
            sim.run_for(100);
            if sim.node(fresh).chain().height() == Height(CHAIN as u64) {
                break;
            }
        }
        assert_eq!(
            sim.node(fresh).chain().tip().hash,
            tip_hash,
            "the fresh node synced (the full peer served {served} bodies)"
        );
        assert!(served >= (kept_from.0 - 1) as usize, "served {served}");
    }
}
