//! Transaction relay (`docs/PROTOCOL.md` §7): the local wallet's transactions,
//! announcements, requests with fallback to other announcers, and the pool's verdicts.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::encode::Encode;
use crate::mempool::MempoolError;
use crate::primitives::{Transaction, Txid};
use crate::validation::TxError;
use crate::wire::{InvId, InvItem, MAX_INV, Message};

use super::{
    Event, MAX_TXS_DUE, MAX_TXS_IN_FLIGHT_PER_PEER, Node, Offence, PeerId, TX_FALLBACK_MS,
};

impl Node {
    /// Adds a local transaction to the pool and announces it. The same as
    /// `Input::SubmitTx`, with the verdict returned.
    pub fn submit_tx(&mut self, tx: Transaction) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        match self.mempool.add(tx, &self.chain) {
            Ok(txid) => {
                self.stats.txs_accepted += 1;
                self.template_dirty = true;
                self.event(Event::TxAccepted { txid });
                self.announce_tx(txid, None);
                Ok(txid)
            }
            Err(error) => {
                self.event(Event::TxRejected {
                    txid,
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    /// Whether a transaction is worth fetching from anyone.
    fn tx_unwanted(&self, txid: &Txid) -> bool {
        self.mempool.contains(txid) || self.rejected_txs.contains(txid)
    }

    fn send_tx_requests(&mut self, peer: PeerId, txids: Vec<Txid>) {
        if txids.is_empty() {
            return;
        }
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        for t in &txids {
            p.txs_in_flight.insert(*t, now);
            p.tx_waiting.remove(t);
            self.tx_asked.insert(*t, peer);
        }
        let items = txids.into_iter().map(InvItem::tx).collect();
        self.send(peer, &Message::GetData(items));
    }

    /// A request for `txid` ended without it (timeout, `notfound`, disconnect): ask the next
    /// peer that announced it and has a free request slot.
    pub(super) fn tx_fallback(&mut self, txid: Txid) {
        if self.tx_unwanted(&txid) || self.tx_asked.contains_key(&txid) {
            return;
        }
        let next = self
            .peers
            .iter()
            .find(|(_, p)| {
                p.established
                    && p.tx_waiting.contains(&txid)
                    && p.txs_in_flight.len() < MAX_TXS_IN_FLIGHT_PER_PEER
                    && !p.timed_out.contains_key(txid.as_hash())
            })
            .map(|(&id, _)| id);
        if let Some(id) = next {
            self.send_tx_requests(id, alloc::vec![txid]);
        }
    }

    /// Fills `peer`'s free request slots with transactions it announced that nobody is
    /// being asked for.
    pub(super) fn fill_tx_requests(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let free = MAX_TXS_IN_FLIGHT_PER_PEER.saturating_sub(p.txs_in_flight.len());
        if free == 0 || p.tx_waiting.is_empty() {
            return;
        }
        let mut ask = Vec::new();
        let mut stale = Vec::new();
        for t in p.tx_waiting.iter() {
            if ask.len() >= free {
                break;
            }
            if self.tx_unwanted(t) {
                stale.push(*t);
            } else if !self.tx_asked.contains_key(t) && !p.timed_out.contains_key(t.as_hash()) {
                ask.push(*t);
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            for t in &stale {
                p.tx_waiting.remove(t);
            }
        }
        self.send_tx_requests(peer, ask);
    }

    /// Sends the first request for each transaction announced since the last tick to one of
    /// its announcers, chosen at random (so the first to announce, perhaps an attacker, is
    /// not the one asked as a rule).
    pub(super) fn request_due_txs(&mut self) {
        let due = core::mem::take(&mut self.txs_due);
        let mut per_peer: BTreeMap<PeerId, Vec<Txid>> = BTreeMap::new();
        for txid in due {
            if self.tx_unwanted(&txid) || self.tx_asked.contains_key(&txid) {
                continue;
            }
            let cands: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(id, p)| {
                    p.established
                        && p.tx_waiting.contains(&txid)
                        && !p.timed_out.contains_key(txid.as_hash())
                        && p.txs_in_flight.len() + per_peer.get(id).map_or(0, Vec::len)
                            < MAX_TXS_IN_FLIGHT_PER_PEER
                })
                .map(|(&id, _)| id)
                .collect();
            if cands.is_empty() {
                continue;
            }
            let pick = cands[(self.rng.next() % cands.len() as u64) as usize];
            self.tx_asked.insert(txid, pick);
            per_peer.entry(pick).or_default().push(txid);
        }
        for (peer, txids) in per_peer {
            self.send_tx_requests(peer, txids);
        }
    }

    /// Requests that have gone [`TX_FALLBACK_MS`] without the transaction: every other
    /// announcer with a free slot is asked at once, in parallel (once per txid), so silent
    /// announcers delay a transaction by one short timeout however many there are.
    pub(super) fn fan_out_slow_txs(&mut self) {
        let now = self.now_ms;
        let slow: Vec<Txid> = self
            .peers
            .values()
            .flat_map(|p| {
                p.txs_in_flight
                    .iter()
                    .filter(|(_, at)| now >= **at + TX_FALLBACK_MS)
                    .map(|(t, _)| *t)
            })
            .filter(|t| !self.txs_fanned.contains(t))
            .collect();
        let mut per_peer: BTreeMap<PeerId, Vec<Txid>> = BTreeMap::new();
        for txid in slow {
            if !self.txs_fanned.insert(txid) || self.tx_unwanted(&txid) {
                continue;
            }
            for (&id, p) in &self.peers {
                let queued = per_peer.get(&id).map_or(0, Vec::len);
                if p.established
                    && p.tx_waiting.contains(&txid)
                    && !p.txs_in_flight.contains_key(&txid)
                    && !p.timed_out.contains_key(txid.as_hash())
                    && p.txs_in_flight.len() + queued < MAX_TXS_IN_FLIGHT_PER_PEER
                {
                    per_peer.entry(id).or_default().push(txid);
                }
            }
        }
        for (peer, txids) in per_peer {
            self.send_tx_requests(peer, txids);
        }
    }

    pub(super) fn on_inv(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut unknown_block = false;
        for item in items.into_iter().take(MAX_INV) {
            let (unwanted, asked) = match item.id() {
                InvId::Tx(txid) => (self.tx_unwanted(&txid), self.tx_asked.contains_key(&txid)),
                InvId::Block(_) => (false, false),
            };
            let Some(p) = self.peers.get_mut(&peer) else {
                return;
            };
            p.known.insert(item.hash);
            match item.id() {
                InvId::Tx(txid) => {
                    if unwanted || p.txs_in_flight.contains_key(&txid) {
                        continue;
                    }
                    // Remember who has it; the first request goes to a random announcer at
                    // the next tick (`request_due_txs`).
                    p.tx_waiting.push(txid);
                    if !asked && self.txs_due.len() < MAX_TXS_DUE {
                        self.txs_due.insert(txid);
                    }
                }
                InvId::Block(hash) => {
                    if self.chain.entry(&hash).is_none() {
                        unknown_block = true;
                    }
                }
            }
        }
        if unknown_block {
            self.request_headers(peer, false);
        }
    }

    pub(super) fn on_tx(&mut self, peer: PeerId, tx: Transaction) {
        let txid = tx.txid();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let requested = p.txs_in_flight.remove(&txid).is_some();
        let late = !requested && p.timed_out.remove(txid.as_hash()).is_some();
        if !requested && !late {
            self.offence(peer, Offence::UnsolicitedTx(txid));
            return;
        }
        p.known.insert(txid.to_hash());
        p.tx_waiting.remove(&txid);
        if self.tx_asked.get(&txid) == Some(&peer) {
            self.tx_asked.remove(&txid);
        }
        match self.mempool.add(tx, &self.chain) {
            Ok(_) => {
                self.stats.txs_accepted += 1;
                self.template_dirty = true;
                self.event(Event::TxAccepted { txid });
                self.announce_tx(txid, Some(peer));
            }
            Err(e) => {
                // Only a verdict about the transaction itself is remembered: one refused
                // for a missing parent, a low fee or a full pool may be fine later.
                if intrinsic_rejection(&e) {
                    self.rejected_txs.insert(txid);
                }
                let conduct = e.conduct();
                self.conduct(peer, conduct, alloc::format!("transaction {txid}: {e}"));
            }
        }
        self.fill_tx_requests(peer);
    }

    pub(super) fn announce_tx(&mut self, txid: Txid, except: Option<PeerId>) {
        let ids: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| {
                p.established && Some(**id) != except && !p.known.contains(txid.as_hash())
            })
            .map(|(&id, _)| id)
            .collect();
        let bytes: Arc<[u8]> = Arc::from(Message::Inv(alloc::vec![InvItem::tx(txid)]).encode());
        for id in ids {
            if let Some(p) = self.peers.get_mut(&id) {
                p.known.insert(txid.to_hash());
            }
            self.send_bytes(id, bytes.clone());
        }
    }
}

/// Whether a pool refusal says something about the transaction itself (so it is not worth
/// fetching again), rather than about our pool or chain at the moment.
/// A refusal that no later state can change (so the txid is not fetched again): invalid for
/// a reason of its own, or dust (the outputs are part of the txid).
fn intrinsic_rejection(e: &MempoolError) -> bool {
    match e {
        MempoolError::Invalid(te) => !matches!(
            te,
            TxError::MissingInput { .. } | TxError::ImmatureCoinbase { .. }
        ),
        MempoolError::Dust { .. } => true,
        _ => false,
    }
}
