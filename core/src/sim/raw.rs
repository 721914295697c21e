//! Raw endpoints of the simulator: scripted peers an adversary drives byte by byte,
//! byte-forwarding proxies, and handshakes done by hand.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::encode::Encode;
use crate::node::{Input, PeerId};
use crate::sig::Keypair;
use crate::units::Work;
use crate::wire::{Hello, Message, NodeKind, NodeRecord, PROTOCOL_VERSION, auth_message};

use super::{Actor, Sim};

impl Sim {
    /// Connects raw endpoint `raw` to node `to`; returns the raw side's peer id.
    pub fn raw_connect(&mut self, raw: usize, to: usize, remote: &str) -> PeerId {
        let (pr, pn) = self.connect_ids(raw, to);
        // The raw endpoint dials the node's own URL (a browser node has none).
        let url = match &self.actors[to] {
            Actor::Node(n) => n.node.config().public_url.clone().unwrap_or_default(),
            Actor::Raw(_) => String::new(),
        };
        self.dialed.insert((raw, pr), url);
        if let Actor::Raw(r) = &mut self.actors[raw] {
            r.inbox.entry(pr).or_default();
        }
        self.input(
            to,
            Input::Connected {
                peer: pn,
                outbound: false,
                remote: String::from(remote),
            },
        );
        pr
    }

    /// Makes raw endpoint `raw` a byte-forwarding proxy between its connections `a` and `b`.
    /// With `rewrite_dialed`, the `dialed` URL of a forwarded `hello` is replaced by it.
    /// What either side sent before the pipe existed is forwarded first.
    pub fn raw_pipe(&mut self, raw: usize, a: PeerId, b: PeerId, rewrite_dialed: Option<String>) {
        let backlog = match &mut self.actors[raw] {
            Actor::Raw(r) => {
                r.pipes.insert(a, b);
                r.pipes.insert(b, a);
                r.rewrite_dialed = rewrite_dialed;
                let mut take =
                    |p: PeerId| r.inbox.get_mut(&p).map(core::mem::take).unwrap_or_default();
                [(a, take(a)), (b, take(b))]
            }
            Actor::Node(_) => return,
        };
        for (peer, msgs) in backlog {
            for bytes in msgs {
                // Through the same path as live traffic, so a rewrite applies too.
                self.input(raw, Input::Received { peer, bytes });
            }
        }
    }

    /// The raw endpoint's connections that the node `node` opened to it, oldest first.
    pub fn raw_inbound(&self, raw: usize) -> Vec<PeerId> {
        self.links
            .keys()
            .filter(|(a, p)| *a == raw && !self.dialed.contains_key(&(raw, *p)))
            .map(|(_, p)| *p)
            .collect()
    }

    /// The URL actor `actor` dialed to open its connection `peer`, if it opened it.
    pub fn dialed_url(&self, actor: usize, peer: PeerId) -> Option<&str> {
        self.dialed.get(&(actor, peer)).map(String::as_str)
    }

    /// Sends raw bytes from a raw endpoint.
    pub fn raw_send(&mut self, raw: usize, peer: PeerId, bytes: Vec<u8>) {
        self.transmit(raw, peer, Arc::from(bytes));
    }

    /// Makes dials of `url` reach raw endpoint `raw` (as an inbound connection there).
    pub fn raw_listen(&mut self, raw: usize, url: &str) {
        self.urls.insert(String::from(url), raw);
    }

    /// Completes a valid handshake from a raw endpoint with identity `seed`, claiming the
    /// genesis block as its best.
    pub fn raw_handshake(&mut self, raw: usize, peer: PeerId, seed: [u8; 32]) {
        let genesis_work = crate::chain::Chain::new(self.params.clone()).tip().work;
        self.raw_handshake_claiming(raw, peer, seed, genesis_work);
    }

    /// A valid handshake that claims `genesis_work` of chain work (true or not).
    pub fn raw_handshake_claiming(
        &mut self,
        raw: usize,
        peer: PeerId,
        seed: [u8; 32],
        genesis_work: Work,
    ) {
        let hello = self.raw_hello(seed, genesis_work);
        self.raw_handshake_with(raw, peer, seed, hello);
    }

    /// A browser's `hello` for identity `seed` claiming the genesis block as its best with
    /// `best_work` of work, for tests to adjust before [`Sim::raw_handshake_with`].
    pub fn raw_hello(&self, seed: [u8; 32], best_work: Work) -> Hello {
        let genesis = self.params.genesis_hash();
        Hello {
            version: PROTOCOL_VERSION,
            network: genesis,
            node_id: Keypair::from_seed(&seed).public_key(),
            kind: NodeKind::Browser,
            features: 0,
            record: None,
            dialed: None,
            best_hash: genesis,
            best_height: crate::units::Height(0),
            best_work,
            challenge: [7; 32],
            agent: String::from("adversary"),
            kept_from: Default::default(),
            extra: Vec::new(),
        }
    }

    /// Sends `hello` (whose node id should be the key of `seed`) on `peer`, waits for the
    /// node's `hello` and proves the identity `seed` with an `auth` bound to both and to the
    /// URL the dialing side dialed. When the raw endpoint dialed, its `hello` names the URL
    /// it dialed unless the test set another.
    pub fn raw_handshake_with(&mut self, raw: usize, peer: PeerId, seed: [u8; 32], hello: Hello) {
        let answered = self.try_raw_handshake(raw, peer, seed, hello, 5_000);
        assert!(answered, "no hello from the node");
        self.run_for(500);
    }

    /// The handshake of [`Sim::raw_handshake_with`] for callers that expect refusals (a
    /// fuzzed attacker may be banned by then): false when the node sent no `hello` within
    /// `wait_ms`, and then no `auth` is sent. Returns right after sending the `auth`.
    pub fn try_raw_handshake(
        &mut self,
        raw: usize,
        peer: PeerId,
        seed: [u8; 32],
        mut hello: Hello,
        wait_ms: u64,
    ) -> bool {
        let key = Keypair::from_seed(&seed);
        let genesis = self.params.genesis_hash();
        let we_dialed = self.dialed.get(&(raw, peer)).cloned();
        if hello.dialed.is_none() {
            hello.dialed = we_dialed.clone();
        }
        let our_dialed = hello.dialed.clone();
        let challenge = hello.challenge;
        let claimed = hello.node_id;
        self.raw_send(raw, peer, Message::Hello(hello).encode());
        self.run_until_for(wait_ms, |s| {
            s.raw(raw)
                .inbox
                .get(&peer)
                .is_some_and(|m| m.iter().any(|b| b.first() == Some(&0)))
        });
        let Some(their) = self
            .raw_messages(raw, peer)
            .into_iter()
            .find_map(|m| match m {
                Message::Hello(h) => Some(h),
                _ => None,
            })
        else {
            return false;
        };
        let proof = key.sign(
            &auth_message(
                &genesis,
                &challenge,
                &their.challenge,
                &claimed,
                &their.node_id,
                &match we_dialed {
                    Some(_) => our_dialed.unwrap_or_default(),
                    None => their.dialed.clone().unwrap_or_default(),
                },
            )
            .0,
        );
        self.raw_send(raw, peer, Message::Auth(proof).encode());
        true
    }

    /// A relay record for `url` signed at `last_seen` (seconds) by the key of `seed`.
    pub fn signed_record(&self, seed: [u8; 32], url: String, last_seen: u64) -> NodeRecord {
        let genesis = self.params.genesis_hash();
        NodeRecord::sign(&Keypair::from_seed(&seed), &genesis, url, last_seen)
    }

    /// Messages a raw endpoint received on `peer`, decoded.
    pub fn raw_messages(&self, raw: usize, peer: PeerId) -> Vec<Message> {
        self.raw(raw)
            .inbox
            .get(&peer)
            .map(|v| {
                v.iter()
                    .filter_map(|b| Message::from_bytes(b).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}
