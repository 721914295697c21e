//! The handshake (`docs/PROTOCOL.md` §4): `hello`, the `auth` proof of the node id, and
//! what happens once a connection is established, including which of two connections to
//! the same node survives.

use alloc::vec::Vec;

use crate::hash::sha256d_parts;
use crate::sig::{self, PublicKey};
use crate::units::Work;
use crate::wire::{Hello, Message, NodeKind, NodeRecord, PROTOCOL_VERSION, auth_message};

use super::{DisconnectReason, Event, Node, Offence, Peer, PeerId};

impl Node {
    pub(super) fn hello(&self, challenge: [u8; 32]) -> Message {
        let tip = self.chain.tip();
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            network: self.chain.genesis_hash(),
            node_id: self.node_id,
            kind: self.config.kind,
            url: self.config.public_url.clone(),
            best_hash: tip.hash,
            best_height: tip.height,
            best_work: tip.work,
            challenge,
            agent: self.config.agent.clone(),
        })
    }

    /// A fresh handshake challenge: SHA-256d of the secret identity seed, a counter and the
    /// clock, so other nodes cannot predict it.
    pub(super) fn new_challenge(&mut self) -> [u8; 32] {
        self.challenges += 1;
        sha256d_parts(&[
            b"tabcoin/challenge",
            &self.config.identity_seed,
            &self.challenges.to_le_bytes(),
            &self.now_ms.to_le_bytes(),
        ])
        .0
    }

    pub(super) fn on_hello(&mut self, peer: PeerId, h: Hello) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        if p.hello.is_some() {
            self.offence(peer, Offence::SecondHello);
            return;
        }
        if h.network != self.chain.genesis_hash() {
            self.drop_peer(peer, DisconnectReason::WrongNetwork, false);
            return;
        }
        if h.version < 1 {
            self.drop_peer(peer, DisconnectReason::UnsupportedVersion(h.version), false);
            return;
        }
        if h.node_id == self.node_id {
            // Our own address came back to us: forget it as a relay to dial, for good.
            if let Some(url) = self
                .peers
                .get(&peer)
                .filter(|p| p.outbound)
                .map(|p| p.remote.clone())
            {
                self.book.mark_self(url);
            }
            self.drop_peer(peer, DisconnectReason::SelfConnection, false);
            return;
        }
        // Duplicate node ids are settled once the peer has proven its id (see
        // `maybe_established`): an unproven claim cannot push out a real connection.
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let proof = self.keypair.sign(
            &auth_message(
                &self.chain.genesis_hash(),
                &p.challenge,
                &h.challenge,
                &self.node_id,
                &h.node_id,
            )
            .0,
        );
        let known_best = self.chain.entry(&h.best_hash).map(|e| e.hash);
        p.best_work = h.best_work;
        p.best_height = h.best_height;
        p.best_header = known_best;
        p.hello = Some(h);
        self.send(peer, &Message::Auth(proof));
        self.maybe_established(peer);
    }

    pub(super) fn on_auth(&mut self, peer: PeerId, sig: sig::Signature) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let Some(h) = p.hello.as_ref() else {
            self.offence(peer, Offence::AuthBeforeHello);
            return;
        };
        if p.authed {
            self.offence(peer, Offence::SecondAuth);
            return;
        }
        let msg = auth_message(
            &self.chain.genesis_hash(),
            &h.challenge,
            &p.challenge,
            &h.node_id,
            &self.node_id,
        );
        if sig::verify(&h.node_id, &msg.0, &sig).is_err() {
            self.offence(peer, Offence::BadAuth);
            return;
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.authed = true;
        }
        self.maybe_established(peer);
    }

    /// Which of two proven connections to the same node to keep. Both sides reach the same
    /// answer: the connection opened by the node with the smaller id survives; if one node
    /// opened both, it keeps the older one (and the other side leaves the choice to it).
    fn duplicate_survivor(&self, new: &Peer, old: &Peer) -> Survivor {
        let opener = |p: &Peer| {
            if p.outbound {
                Some(self.node_id)
            } else {
                p.node_id()
            }
        };
        let (a, b) = (opener(new), opener(old));
        if a != b {
            if a < b { Survivor::New } else { Survivor::Old }
        } else if new.outbound {
            Survivor::Old
        } else {
            Survivor::Both
        }
    }

    fn maybe_established(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        if p.established || !p.authed {
            return;
        }
        let Some(h) = p.hello.clone() else {
            return;
        };
        let outbound = p.outbound;
        let remote = p.remote.clone();
        let now_ms = self.now_ms;
        if outbound {
            // We dialed `remote` and the node there proved its id: that binding is verified.
            self.book.dial_succeeded(&remote, h.node_id, now_ms);
        }
        let dups: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, q)| **id != peer && q.established && q.node_id() == Some(h.node_id))
            .map(|(&id, _)| id)
            .collect();
        for other in dups {
            let (Some(new), Some(old)) = (self.peers.get(&peer), self.peers.get(&other)) else {
                continue;
            };
            let (new_feeler, old_feeler) = (new.feeler, old.feeler);
            match self.duplicate_survivor(new, old) {
                Survivor::New => {
                    self.drop_peer(other, DisconnectReason::DuplicateConnection, false);
                    // A feeler that replaces a regular connection becomes a regular one.
                    if !old_feeler {
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.feeler = false;
                        }
                    }
                }
                Survivor::Old => {
                    self.drop_peer(peer, DisconnectReason::DuplicateConnection, false);
                    if !new_feeler {
                        if let Some(p) = self.peers.get_mut(&other) {
                            p.feeler = false;
                        }
                    }
                    return;
                }
                Survivor::Both => {}
            }
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.established = true;
        self.event(Event::PeerConnected {
            peer,
            node_id: h.node_id,
            kind: h.kind,
            outbound,
        });
        if h.kind == NodeKind::Relay {
            if let Some(url) = h.url.clone() {
                // Only a URL we dialed is known to lead to this node. Any other advertised URL
                // is a candidate like a gossiped one: not bound to this node id, never banned
                // or forgotten because of this peer, verified when we dial it.
                let verified = outbound && url == remote;
                let rec = NodeRecord {
                    node_id: if verified {
                        h.node_id
                    } else {
                        PublicKey([0; 32])
                    },
                    url,
                    last_seen: self.now_s(),
                };
                if self.learn_node(rec.clone(), remote, verified) {
                    self.forward_node(rec, Some(peer));
                }
            }
        }
        self.ask_nodes(peer);
        self.ask_push(peer);
        // A claim of more work than we know is checked at once, whatever other requests
        // are outstanding: claims are checked in parallel, so liars cannot queue up.
        let claimed = self.peers.get(&peer).map_or(Work::ZERO, |p| p.best_work);
        if claimed > self.chain.best_header().work {
            self.request_headers(peer, false);
        }
        self.start_sync();
    }
}

/// Which of two connections to the same node survives.
enum Survivor {
    New,
    Old,
    /// Both were opened by the other node: it closes one.
    Both,
}
