//! The handshake (`docs/PROTOCOL.md` §4): `hello`, the `auth` proof of the node id, and
//! what happens once a connection is established, including which of two connections to
//! the same node survives.

use alloc::string::String;
use alloc::vec::Vec;

use crate::hash::sha256d_parts;
use crate::record::{NodeRecord, RECORD_REFRESH_S, RecordError};
use crate::sig;
use crate::units::Work;
use crate::wire::{Hello, MIN_PROTOCOL_VERSION, Message, NodeKind, PROTOCOL_VERSION, auth_message};

use super::{DisconnectReason, Event, Node, Offence, Peer, PeerId};

impl Node {
    /// Our `hello` on a new connection; `dialed` is the URL we dialed, if we opened it.
    pub(super) fn hello(&mut self, challenge: [u8; 32], dialed: Option<String>) -> Message {
        let record = self.own_record();
        let tip = self.chain.tip();
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            features: self.config.features,
            network: self.chain.genesis_hash(),
            node_id: self.node_id,
            kind: self.config.kind,
            record,
            dialed,
            best_hash: tip.hash,
            best_height: tip.height,
            best_work: tip.work,
            challenge,
            agent: self.config.agent.clone(),
            kept_from: self.chain.advertised_kept_from(),
            extra: Vec::new(),
        })
    }

    /// Our own signed record, if we are a relay with a public URL: signed anew when the last
    /// one is [`RECORD_REFRESH_S`] old. A browser never advertises itself as dialable.
    pub(super) fn own_record(&mut self) -> Option<NodeRecord> {
        if self.config.kind != NodeKind::Relay {
            return None;
        }
        let url = self.config.public_url.clone()?;
        let now_s = self.now_s();
        let fresh = self
            .own_record
            .as_ref()
            .is_some_and(|r| now_s < r.last_seen.saturating_add(RECORD_REFRESH_S));
        if !fresh {
            let genesis = self.chain.genesis_hash();
            self.own_record = Some(NodeRecord::sign(&self.keypair, &genesis, url, now_s));
        }
        self.own_record.clone()
    }

    /// The URL this node signs as its own (its record's), if any.
    fn own_url(&self) -> Option<&str> {
        match self.config.kind {
            NodeKind::Relay => self.config.public_url.as_deref(),
            NodeKind::Browser => None,
        }
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
        if h.version < MIN_PROTOCOL_VERSION {
            self.drop_peer(peer, DisconnectReason::UnsupportedVersion(h.version), false);
            return;
        }
        // The handshake is bound to the URL the dialing side dialed: we sign only our own.
        // A connection forwarded from another address names that address, and is refused
        // here; one whose `hello` was rewritten to name ours fails the peer's `auth` check.
        if !p.outbound {
            if let Some(own) = self.own_url() {
                if h.dialed.as_deref() != Some(own) {
                    self.drop_peer(peer, DisconnectReason::WrongEndpoint, false);
                    return;
                }
            }
        }
        // A relay's record must be its own and valid. A browser's is never learned.
        if let (NodeKind::Relay, Some(rec)) = (h.kind, &h.record) {
            let genesis = self.chain.genesis_hash();
            let forged = rec.node_id != h.node_id
                || rec.verify(&genesis, self.now_s()) == Err(RecordError::Forged);
            if forged {
                self.offence(peer, Offence::ForgedRecord);
                if !self.peers.contains_key(&peer) {
                    return;
                }
            }
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
        let known_best = self.chain.entry(&h.best_hash).map(|e| e.hash);
        p.best_work = h.best_work;
        p.best_height = h.best_height;
        p.best_header = known_best;
        p.version = h.version.min(PROTOCOL_VERSION);
        p.features = h.features & self.config.features;
        let (their_challenge, their_id) = (h.challenge, h.node_id);
        p.hello = Some(h);
        let proof = self.keypair.sign(
            &auth_message(
                &self.chain.genesis_hash(),
                &p.challenge,
                &their_challenge,
                &self.node_id,
                &their_id,
                p.dialed_url(),
            )
            .0,
        );
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
            p.dialed_url(),
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
            // We dialed `remote` and the node there proved its id over that very URL.
            self.book.dial_succeeded(&remote, now_ms);
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
            if let Some(rec) = h.record.clone() {
                // The record is the relay's own (its signature checked on `hello`). Only a URL
                // we dialed is known to lead to it; any other is a candidate like a gossiped
                // record: never banned or forgotten because of this peer, verified when we
                // dial it.
                if rec.verify(&self.chain.genesis_hash(), self.now_s()).is_ok() {
                    let verified = outbound && rec.url == remote;
                    if self.learn_node(rec.clone(), remote, verified) {
                        self.forward_node(rec, Some(peer));
                    }
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
