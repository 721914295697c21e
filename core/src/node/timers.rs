//! What happens at each tick: handshake, ping and request timeouts, feelers, expiry of
//! relays and bans, and the periodic `getnodes`, resync and dials.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use crate::primitives::{BlockHash, Txid};
use crate::units::Work;
use crate::wire::Message;

use super::{
    BLOCK_REQUEST_TIMEOUT_MS, DIAL_TIMEOUT_MS, DisconnectReason, Event, FEELER_LIFETIME_MS,
    GETHEADERS_MIN_INTERVAL_MS, GETHEADERS_TIMEOUT_MS, GETNODES_EAGER_INTERVAL_MS,
    GETNODES_INTERVAL_MS, HANDSHAKE_TIMEOUT_MS, NODES_ANSWER_WINDOW_MS, Node, Offence, Output,
    PING_INTERVAL_MS, PING_TIMEOUT_MS, PeerId, RESYNC_INTERVAL_MS, TIMED_OUT_MEMORY_MS,
    TIMED_OUT_PER_PEER, TX_REQUEST_TIMEOUT_MS,
};

impl Node {
    pub(super) fn on_tick(&mut self) {
        self.compact_tick();
        let now = self.now_ms;
        let mut timeouts = Vec::new();
        let mut pings = Vec::new();
        let mut stalled = Vec::new();
        let mut header_timeouts = Vec::new();
        let mut deferred_headers = Vec::new();
        let mut tx_timeouts: Vec<(PeerId, Txid)> = Vec::new();
        for (&id, p) in &mut self.peers {
            if !p.established {
                if now >= p.connected_ms + HANDSHAKE_TIMEOUT_MS {
                    timeouts.push((id, DisconnectReason::HandshakeTimeout));
                }
                continue;
            }
            if let Some((_, sent)) = p.ping {
                if now >= sent + PING_TIMEOUT_MS {
                    timeouts.push((id, DisconnectReason::PingTimeout));
                    continue;
                }
            } else if now >= p.last_recv_ms + PING_INTERVAL_MS {
                pings.push(id);
            }
            // Requests that timed out are remembered: not asked of this peer again for a
            // while, and not penalised as unsolicited if they still arrive.
            p.timed_out.retain(|_, at| now < *at + TIMED_OUT_MEMORY_MS);
            let late_blocks: Vec<BlockHash> = p
                .blocks_in_flight
                .iter()
                .filter(|(_, at)| now >= **at + BLOCK_REQUEST_TIMEOUT_MS)
                .map(|(h, _)| *h)
                .collect();
            let late_txs: Vec<Txid> = p
                .txs_in_flight
                .iter()
                .filter(|(_, at)| now >= **at + TX_REQUEST_TIMEOUT_MS)
                .map(|(h, _)| *h)
                .collect();
            for h in &late_blocks {
                p.blocks_in_flight.remove(h);
                p.timed_out.insert(h.to_hash(), now);
            }
            for t in &late_txs {
                p.txs_in_flight.remove(t);
                p.timed_out.insert(t.to_hash(), now);
                tx_timeouts.push((id, *t));
            }
            while p.timed_out.len() > TIMED_OUT_PER_PEER {
                let oldest = p
                    .timed_out
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(h, _)| *h);
                match oldest {
                    Some(h) => {
                        p.timed_out.remove(&h);
                    }
                    None => break,
                }
            }
            if !late_blocks.is_empty() {
                p.stalls = p.stalls.saturating_add(1);
                stalled.push(id);
            }
            if let Some(sent) = p.getheaders_sent {
                if now >= sent + GETHEADERS_TIMEOUT_MS {
                    header_timeouts.push(id);
                }
            } else if p.getheaders_deferred
                && p.last_getheaders_ms
                    .is_none_or(|t| now >= t + GETHEADERS_MIN_INTERVAL_MS)
            {
                deferred_headers.push(id);
            }
            if p.nodes_asked > 0 && now >= p.nodes_asked_ms + NODES_ANSWER_WINDOW_MS {
                p.nodes_asked = 0;
            }
        }
        // Feelers that have nothing we lack are closed; one with more work stays until we
        // have caught up with it.
        let tip_work = self.chain.tip().work;
        let done_feelers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.feeler
                    && p.established
                    && now >= p.connected_ms + FEELER_LIFETIME_MS
                    && p.best_work <= tip_work
                    && p.blocks_in_flight.is_empty()
            })
            .map(|(&id, _)| id)
            .collect();
        for id in done_feelers {
            if let Some(p) = self.peers.remove(&id) {
                self.event(Event::PeerDisconnected { peer: id });
                self.outputs.push_back(Output::Disconnect {
                    peer: id,
                    reason: DisconnectReason::FeelerDone,
                });
                self.after_peer_removed(id, p);
            }
        }
        for (id, reason) in timeouts {
            self.drop_peer(id, reason, false);
        }
        for id in pings {
            let nonce = self.rng.next();
            if let Some(p) = self.peers.get_mut(&id) {
                p.ping = Some((nonce, now));
            }
            self.send(id, &Message::Ping(nonce));
        }
        // A peer that does not deliver what it was asked for is penalised each time, so one
        // that never delivers is eventually dropped.
        for &id in &stalled {
            self.offence(id, Offence::BlockRequestsTimedOut);
        }
        let best = self.chain.best_header().work;
        for id in header_timeouts {
            let demonstrated = self.demonstrated_work(id);
            let mut unbacked = false;
            if let Some(p) = self.peers.get_mut(&id) {
                unbacked = p.best_work > demonstrated && p.best_work > best;
                p.getheaders_sent = None;
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
                p.best_work = demonstrated;
            }
            // A peer that claimed more work than ours and did not back it in time loses the
            // connection; any other unanswered request costs a little.
            let offence = if unbacked {
                Offence::ClaimNotBacked
            } else {
                Offence::HeadersTimeout
            };
            self.offence(id, offence);
        }
        for id in deferred_headers {
            self.request_headers(id, false);
        }
        let mut refill = BTreeSet::new();
        for (id, txid) in tx_timeouts {
            if self.tx_asked.get(&txid) == Some(&id) {
                self.tx_asked.remove(&txid);
            }
            self.tx_fallback(txid);
            refill.insert(id);
        }
        for id in refill {
            self.fill_tx_requests(id);
        }
        self.fan_out_slow_txs();
        self.request_due_txs();
        if !stalled.is_empty() {
            self.request_blocks();
        }
        // Forget relays not heard of in a long time (never the ones we are connected to).
        // Relays loaded from the store count as heard of at start at the earliest.
        let start = self.started_ms.unwrap_or(now);
        let connected: BTreeSet<String> = self
            .peers
            .values()
            .flat_map(|p| {
                let mut v = alloc::vec![p.remote.clone()];
                if p.established {
                    v.extend(
                        p.hello
                            .as_ref()
                            .and_then(|h| h.record.as_ref().map(|r| r.url.clone())),
                    );
                }
                v
            })
            .collect();
        self.book.expire(now, start, &connected);
        self.expire_bans();
        for p in self.peers.values_mut() {
            p.decay_score(now);
        }
        // Dials that never answered.
        self.dialing.retain(|_, &mut at| now < at + DIAL_TIMEOUT_MS);
        let interval = if self.book.len() < self.config.target_outbound {
            GETNODES_EAGER_INTERVAL_MS
        } else {
            GETNODES_INTERVAL_MS
        };
        if now >= self.last_getnodes_ms + interval {
            self.last_getnodes_ms = now;
            let ids: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.established && p.nodes_asked == 0)
                .map(|(&id, _)| id)
                .collect();
            if !ids.is_empty() {
                let id = ids[(self.rng.next() % ids.len() as u64) as usize];
                self.ask_nodes(id);
            }
        }
        if now >= self.last_resync_ms + RESYNC_INTERVAL_MS {
            self.last_resync_ms = now;
            let ids: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.established && p.getheaders_sent.is_none())
                .map(|(&id, _)| id)
                .collect();
            if !ids.is_empty() {
                let id = ids[(self.rng.next() % ids.len() as u64) as usize];
                self.request_headers(id, false);
            }
        }
        self.dial_more();
        self.start_sync_if_idle();
    }
}
