//! Discovery (`docs/PROTOCOL.md` §5): learning relays from handshakes and `nodes`
//! messages, answering `getnodes`, forwarding new relays, and dialing until the outbound
//! target is met, half the time among relays that worked. The tables are the
//! [`crate::addrman::AddrMan`]; every URL is checked against the dial policy
//! ([`crate::dial::DialPolicy`]) before it is learned and again before it is dialed.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::encode::Encode;
use crate::record::RecordError;
use crate::sig::PublicKey;
use crate::store::ChangeSet;
use crate::wire::{MAX_ADDRS, Message, NodeRecord};

use super::{FEELER_INTERVAL_MS, MAX_UNSOLICITED_NODES, Node, Offence, Output, PeerId};

impl Node {
    /// Adds or refreshes a relay record; returns true if it was new. `direct` = the record
    /// was verified (we dialed its URL and the node there proved its id).
    pub(super) fn learn_node(&mut self, rec: NodeRecord, source: String, direct: bool) -> bool {
        if rec.node_id == self.node_id
            || self.config.public_url.as_deref() == Some(rec.url.as_str())
        {
            return false;
        }
        self.book.learn(rec, source, direct, self.now_ms)
    }

    /// Passes a newly learned relay on to every other established peer, once.
    pub(super) fn forward_node(&mut self, rec: NodeRecord, except: Option<PeerId>) {
        let targets: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| p.established && Some(**id) != except)
            .map(|(&id, _)| id)
            .collect();
        let bytes: Arc<[u8]> = Arc::from(Message::Nodes(alloc::vec![rec]).encode());
        for id in targets {
            self.send_bytes(id, bytes.clone());
        }
    }

    pub(super) fn ask_nodes(&mut self, peer: PeerId) {
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.nodes_asked = p.nodes_asked.saturating_add(1).min(4);
        p.nodes_asked_ms = now;
        self.send(peer, &Message::GetNodes);
    }

    pub(super) fn on_getnodes(&mut self, peer: PeerId) {
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // One answer a minute per peer is plenty; more is ignored.
        if p.last_getnodes_from_peer_ms
            .is_some_and(|t| now < t + 60_000)
        {
            return;
        }
        p.last_getnodes_from_peer_ms = Some(now);
        let own = self.own_record();
        // A relay's own record always goes in; relays that worked come first, then new ones
        // at random; expired records never do (nor placeholders for configured URLs, which
        // carry no signature).
        let now_s = self.now_s();
        let rng = &mut self.rng;
        let mut pick = |n: usize| (rng.next() % n as u64) as usize;
        let mut list = self
            .book
            .sample(MAX_ADDRS - usize::from(own.is_some()), &mut pick);
        list.retain(|r| r.is_live(now_s));
        list.extend(own);
        self.send(peer, &Message::Nodes(list));
    }

    pub(super) fn on_nodes(&mut self, peer: PeerId, list: Vec<NodeRecord>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // A one-record list is a forward of a newly learned relay; it can cross the answer to
        // our `getnodes` on the wire, so it never takes the answer's place.
        let answer = p.nodes_asked > 0 && list.len() != 1;
        if answer {
            p.nodes_asked -= 1;
        }
        let source = p.remote.clone();
        if !answer && list.len() > MAX_UNSOLICITED_NODES {
            self.offence(peer, Offence::UnsolicitedNodes);
            return;
        }
        // Records are checked one by one and passed on verbatim; the sender pays once per
        // message for the worst it sent (PROTOCOL §5.1).
        let (now_s, genesis) = (self.now_s(), self.chain.genesis_hash());
        let mut worst = None;
        for rec in list {
            match rec.verify(&genesis, now_s) {
                Ok(()) => {
                    if self.learn_node(rec.clone(), source.clone(), false) {
                        self.forward_node(rec, Some(peer));
                    }
                }
                Err(RecordError::Forged) => worst = Some(Offence::ForgedRecord),
                Err(RecordError::Expired) => {
                    worst = worst.or(Some(Offence::ExpiredRecord));
                }
                // A clock difference between the relay, the sender and us: dropped, no blame.
                Err(_) => {}
            }
        }
        if let Some(offence) = worst {
            self.offence(peer, offence);
        }
    }

    pub(super) fn flush_nodes(&mut self) {
        let (nodes, node_meta) = self.book.take_changes();
        if !nodes.is_empty() {
            self.outputs.push_back(Output::Persist(ChangeSet {
                nodes,
                node_meta,
                ..ChangeSet::default()
            }));
        }
    }

    pub(super) fn on_dial_failed(&mut self, url: &str) {
        self.dialing.remove(url);
        self.feelers.remove(url);
        self.book.dial_failed(url, self.now_ms);
    }

    /// Milliseconds until the node may dial the relay at `url` again (0: at its next tick),
    /// or None when it does not know that relay (it will not redial it).
    pub fn redial_in_ms(&self, url: &str) -> Option<u64> {
        self.book
            .next_try_ms(url)
            .map(|at| at.saturating_sub(self.now_ms))
    }

    /// Dials known relays until the outbound target is met.
    pub(super) fn dial_more(&mut self) {
        // Only URLs we dialed count as connected: a URL an inbound peer advertises is not
        // proven to be its own, and must not keep us from dialing the real relay.
        let connected: BTreeSet<String> = self.peers.values().map(|p| p.remote.clone()).collect();
        let connected_ids: BTreeSet<PublicKey> = self
            .peers
            .values()
            .filter(|p| p.authed)
            .filter_map(|p| p.node_id())
            .collect();
        let outbound = self
            .peers
            .values()
            .filter(|p| p.outbound && !p.feeler)
            .count()
            + self.dialing.len();
        let now = self.now_ms;
        let feeler = outbound >= self.config.target_outbound
            && self.feelers.is_empty()
            && now >= self.last_feeler_ms + FEELER_INTERVAL_MS;
        if outbound >= self.config.target_outbound && !feeler {
            return;
        }
        let policy = self.config.dial_policy;
        let mut proven: Vec<String> = Vec::new();
        let mut heard: Vec<String> = Vec::new();
        for (url, record, tried) in self.book.dialable(now) {
            let ok = !connected.contains(url)
                && !connected_ids.contains(&record.node_id)
                && !self.dialing.contains_key(url)
                && self.bans.get(url).is_none_or(|&t| t <= now)
                && policy.check_url(url).is_ok();
            if ok {
                if tried { &mut proven } else { &mut heard }.push(url.clone());
            }
        }
        if feeler {
            self.last_feeler_ms = now;
            // A pending tried-slot collision is tested first (test-before-evict).
            let test = self.book.resolve_collisions(now, &connected).filter(|u| {
                !connected.contains(u)
                    && !self.dialing.contains_key(u)
                    && policy.check_url(u).is_ok()
            });
            let url = match test {
                Some(u) => u,
                None => match self.pick_candidate(&mut proven, &mut heard) {
                    Some(u) => u,
                    None => return,
                },
            };
            self.feelers.insert(url.clone());
            self.outputs.push_back(Output::Dial { url });
            return;
        }
        let want = self.config.target_outbound - outbound;
        for _ in 0..want {
            let Some(url) = self.pick_candidate(&mut proven, &mut heard) else {
                break;
            };
            self.dialing.insert(url.clone(), now);
            self.outputs.push_back(Output::Dial { url });
        }
    }

    /// Takes a relay to dial: from the proven ones (tried or bootstrap) or the ones only
    /// heard of, half the time each (the other list when one is empty), then at random.
    fn pick_candidate(
        &mut self,
        proven: &mut Vec<String>,
        heard: &mut Vec<String>,
    ) -> Option<String> {
        let list = match (proven.is_empty(), heard.is_empty()) {
            (true, true) => return None,
            (false, true) => proven,
            (true, false) => heard,
            (false, false) => {
                if self.rng.next().is_multiple_of(2) {
                    proven
                } else {
                    heard
                }
            }
        };
        let i = (self.rng.next() % list.len() as u64) as usize;
        Some(list.swap_remove(i))
    }
}
