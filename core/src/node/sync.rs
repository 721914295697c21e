//! Headers-first sync (`docs/PROTOCOL.md` §6): asking for headers, checking and holding
//! them until they show more work than ours, committing them to the block tree, and
//! requesting the missing bodies from peers that have them.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::primitives::{BlockHash, BlockHeader};
use crate::units::{Height, Work};
use crate::validation::{Conduct, check_header};
use crate::wire::{InvItem, MAX_HEADERS, MAX_LOCATOR, Message};

use super::peer::Peer;
use super::{
    BLOCKS_PER_PASS, DisconnectReason, Event, GETHEADERS_MIN_INTERVAL_MS,
    MAX_BLOCKS_IN_FLIGHT_PER_PEER, MAX_BLOCKS_PER_GETDATA, MAX_PENDING_HEADERS,
    MAX_PENDING_HEADERS_TOTAL, MAX_UNCONNECTING_HEADERS, Node, Offence, PeerId,
};

/// Blocks in flight per peer during initial sync (the peer's chain at least this many blocks
/// ahead of ours), when its recent blocks are small enough for [`SYNC_BYTES_IN_FLIGHT`].
pub const MAX_BLOCKS_IN_FLIGHT_SYNC: usize = 64;

/// What the sync window aims to keep in flight per peer, in bytes: the window is this ÷ the
/// largest block the peer delivered recently ([`Peer::recent_block_bytes`]), between
/// [`MAX_BLOCKS_IN_FLIGHT_PER_PEER`] and [`MAX_BLOCKS_IN_FLIGHT_SYNC`]. Far below the relay's
/// per-connection write buffer, so a tab pausing its reads while its store catches up is
/// not taken for a slow reader.
pub const SYNC_BYTES_IN_FLIGHT: usize = 4 << 20;

/// How many blocks `peer` may have in flight. `ahead`: how far its chain (as far as we know
/// it) reaches beyond our active tip.
pub(super) fn block_window(p: &Peer, ahead: u64) -> usize {
    if p.stalls > 0 {
        return 1;
    }
    if ahead < MAX_BLOCKS_IN_FLIGHT_SYNC as u64 {
        return MAX_BLOCKS_IN_FLIGHT_PER_PEER;
    }
    (SYNC_BYTES_IN_FLIGHT / p.recent_block_bytes.max(1))
        .clamp(MAX_BLOCKS_IN_FLIGHT_PER_PEER, MAX_BLOCKS_IN_FLIGHT_SYNC)
}

/// A window is refilled only once this many of its slots are free, so each `getdata`
/// carries several blocks: half a window, at most one `getdata`'s worth.
fn refill_at(window: usize) -> usize {
    (window / 2).clamp(1, MAX_BLOCKS_PER_GETDATA)
}

impl Node {
    /// Answers a `getheaders`: up to [`MAX_HEADERS`] of our best chain after the fork point
    /// of `locator`, ending at `stop` if it comes first.
    pub(super) fn on_getheaders(&mut self, peer: PeerId, locator: &[BlockHash], stop: BlockHash) {
        let fork = self.chain.find_fork(locator);
        let mut headers = self.chain.headers_after(&fork, MAX_HEADERS);
        if let Some(i) = headers.iter().position(|h| h.hash() == stop) {
            headers.truncate(i + 1);
        }
        self.send(peer, &Message::Headers(headers));
    }

    /// Asks the peer believed to have the most work for headers if anyone has more than we
    /// know (one sync request at a time).
    pub(super) fn start_sync(&mut self) {
        let best = self.chain.best_header().work;
        if self
            .peers
            .values()
            .any(|p| p.established && p.getheaders_sent.is_some())
        {
            return;
        }
        let Some((&peer, _)) = self
            .peers
            .iter()
            .filter(|(_, p)| p.established && p.best_work > best)
            .max_by(|a, b| a.1.best_work.cmp(&b.1.best_work))
        else {
            self.request_blocks();
            return;
        };
        self.request_headers(peer, false);
    }

    /// Sends `getheaders` to `peer` unless one is outstanding there. A `continuation` (the
    /// answer to our request was a full batch) goes at once; other requests go at most once
    /// per [`GETHEADERS_MIN_INTERVAL_MS`] per peer, later ones wait for a tick.
    pub(super) fn request_headers(&mut self, peer: PeerId, continuation: bool) {
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !p.established || p.getheaders_sent.is_some() {
            return;
        }
        if !continuation
            && p.last_getheaders_ms
                .is_some_and(|t| now < t + GETHEADERS_MIN_INTERVAL_MS)
        {
            p.getheaders_deferred = true;
            return;
        }
        p.getheaders_deferred = false;
        p.getheaders_sent = Some(now);
        p.last_getheaders_ms = Some(now);
        let mut locator = Vec::with_capacity(MAX_LOCATOR);
        let pending = p.pending_headers.last().map(BlockHeader::hash);
        locator.extend(pending);
        // Locate from the best header so a half-done download resumes where it stopped.
        locator.extend(
            self.chain
                .best_header_locator(MAX_LOCATOR - locator.len())
                .into_iter()
                .filter(|h| Some(*h) != pending),
        );
        self.send(
            peer,
            &Message::GetHeaders {
                locator,
                stop: BlockHash::ZERO,
            },
        );
    }

    /// The cumulative work of the best header `peer` has shown us (zero if none).
    pub(super) fn demonstrated_work(&self, peer: PeerId) -> Work {
        self.peers
            .get(&peer)
            .and_then(|p| p.best_header)
            .and_then(|b| self.chain.entry(&b))
            .map_or(Work::ZERO, |e| e.work)
    }

    pub(super) fn on_headers(&mut self, peer: PeerId, hs: Vec<BlockHeader>) {
        self.stats.headers_received += hs.len() as u64;
        let full = hs.len() == MAX_HEADERS;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let answer = p.getheaders_sent.is_some();
        if hs.is_empty() {
            // Only an answer can be empty; an empty message nobody asked for is ignored.
            if answer {
                p.getheaders_sent = None;
                self.end_of_answer(peer, Work::ZERO);
            }
            return;
        }
        // Where it attaches: the continuation of this peer's pending headers, or our tree.
        let pending_tip = p.pending_headers.last().map(BlockHeader::hash);
        let continues = Some(hs[0].prev) == pending_tip;
        let base_work = if continues {
            Some(p.pending_work)
        } else {
            self.chain.entry(&hs[0].prev).map(|e| e.work)
        };
        let Some(mut work) = base_work else {
            // Connects to nothing we know: an announcement from a peer on a branch (or far
            // ahead) we have not seen. Ask where it forks. Only a peer that keeps sending
            // such headers without its answers ever linking them up is penalised. (An
            // answer to our locator always connects, so this does not count as one.)
            // While a request to this peer is outstanding or waiting for its interval, more
            // announcements are what an honest peer mining on another branch sends; they
            // cost one lookup each and are not counted, or a fast race on a lower-work
            // branch (whose headers we drop) would get honest peers banned.
            let waiting = p.getheaders_sent.is_some() || p.getheaders_deferred;
            if !waiting {
                p.unconnecting = p.unconnecting.saturating_add(1);
                if p.unconnecting > MAX_UNCONNECTING_HEADERS {
                    self.offence(peer, Offence::UnconnectingHeaders);
                }
            }
            self.request_headers(peer, false);
            return;
        };
        p.unconnecting = 0;
        if answer {
            p.getheaders_sent = None;
        }
        if !continues {
            p.pending_headers.clear();
            p.pending_work = Work::ZERO;
        }
        // Check linkage and proof of work before anything is kept.
        let params = self.chain.params().clone();
        let mut prev = hs[0].prev;
        for h in &hs {
            if h.prev != prev {
                self.offence(peer, Offence::HeadersNotAChain);
                return;
            }
            if let Err(e) = check_header(h, &params) {
                self.conduct(
                    peer,
                    e.conduct(),
                    alloc::format!("header {}: {e}", h.hash()),
                );
                return;
            }
            let hw = h.bits.to_target().map(|t| t.work()).unwrap_or(Work::ZERO);
            work = work.checked_add(hw).unwrap_or(Work::MAX);
            prev = h.hash();
        }
        let last = hs[hs.len() - 1].hash();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.known.insert(last.to_hash());
        p.pending_headers.extend(hs);
        p.pending_work = work;
        if p.pending_headers.len() > MAX_PENDING_HEADERS {
            self.offence(peer, Offence::TooManyPendingHeaders);
            return;
        }
        self.limit_pending_headers();
        if !self.peers.contains_key(&peer) {
            return;
        }
        // Headers of a recent equal-work branch are kept too (they do not move our best
        // header): when its next block is announced it then connects, shows more work at
        // once and is fetched. Dropped, every announcement of that branch would cost a
        // `getheaders` round trip first, and two miners racing at equal work would never
        // see the other pull ahead (issue 15). Deep equal-work branches stay pending only
        // (bounded as before): a race forks near the tip.
        let best = self.chain.best_header();
        let recent_tie = work == best.work
            && self
                .peers
                .get(&peer)
                .and_then(|p| p.pending_headers.first())
                .and_then(|h| self.chain.entry(&h.prev))
                .is_some_and(|fork| fork.height.0 + MAX_HEADERS as u64 >= best.height.0);
        if work > best.work || recent_tie {
            self.commit_headers(peer);
        } else if self.chain.entry(&last).is_some() {
            // Nothing new to us, but it tells what the peer has.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
            }
            self.note_peer_header(peer, last);
        }
        if !self.peers.contains_key(&peer) {
            return;
        }
        if full {
            // There may be more: continue at once if we asked, else as the rate allows.
            self.request_headers(peer, answer);
        } else if answer {
            self.end_of_answer(peer, work);
        } else {
            // An announcement: whatever did not beat our chain is dropped.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
            }
            self.request_blocks();
            self.start_sync_if_idle();
        }
    }

    /// The peer answered our `getheaders` and has no more: drop what did not beat our chain,
    /// believe from now on only the work its headers showed, and penalise a claim its
    /// headers did not back (`delivered` = cumulative work of the last batch, kept or not).
    fn end_of_answer(&mut self, peer: PeerId, delivered: Work) {
        let ours = self.chain.best_header().work;
        let demonstrated = self.demonstrated_work(peer);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let claimed = p.best_work;
        p.pending_headers.clear();
        p.pending_work = Work::ZERO;
        p.best_work = demonstrated;
        if claimed > demonstrated.max(delivered) && claimed > ours {
            self.offence(peer, Offence::UnbackedWorkClaim);
        }
        self.request_blocks();
        self.start_sync_if_idle();
    }

    pub(super) fn start_sync_if_idle(&mut self) {
        if !self.peers.values().any(|p| p.getheaders_sent.is_some()) {
            self.start_sync();
        }
    }

    /// Keeps the headers pending across all peers within [`MAX_PENDING_HEADERS_TOTAL`] by
    /// closing the newest connections holding some.
    fn limit_pending_headers(&mut self) {
        loop {
            let total: usize = self.peers.values().map(|p| p.pending_headers.len()).sum();
            if total <= MAX_PENDING_HEADERS_TOTAL {
                return;
            }
            let newest = self
                .peers
                .iter()
                .filter(|(_, p)| !p.pending_headers.is_empty())
                .max_by_key(|(id, p)| (p.connected_ms, **id))
                .map(|(&id, _)| id);
            let Some(id) = newest else {
                return;
            };
            self.drop_peer(
                id,
                DisconnectReason::Evicted(String::from("too many pending headers")),
                false,
            );
        }
    }

    /// Moves a peer's pending headers into the block tree (full contextual checks).
    fn commit_headers(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let headers = core::mem::take(&mut p.pending_headers);
        p.pending_work = Work::ZERO;
        let now_s = self.now_s();
        let mut accepted = None;
        for h in headers {
            match self.chain.accept_header(&h, now_s) {
                Ok(_) => accepted = Some(h.hash()),
                Err(e) => {
                    let conduct = e.conduct();
                    let reason = alloc::format!("header {}: {e}", h.hash());
                    if conduct == Conduct::Ignore {
                        break;
                    }
                    self.conduct(peer, conduct, reason);
                    return;
                }
            }
        }
        if let Some(last) = accepted {
            self.note_peer_header(peer, last);
            self.note_hello_tips();
        }
        let best = self.chain.best_header();
        let (height, target) = (self.chain.height(), best.height);
        self.event(Event::SyncProgress { height, target });
        self.request_blocks();
    }

    /// A peer's `hello` names its tip, which counts as its best header once it is in our
    /// tree ([`Node::on_hello`]). For a peer whose tip we did not know then, it counts as
    /// soon as headers from anyone bring it: otherwise a peer whose `hello` came before
    /// another peer's headers and whose `auth` after them (so it claims no more work than
    /// we know and is never asked for headers) is never asked for a body either. When the
    /// only other peer is pruned, the sync then stops for good below what that one keeps.
    fn note_hello_tips(&mut self) {
        let chain = &self.chain;
        let now_known: Vec<(PeerId, BlockHash)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.best_header.is_none())
            .filter_map(|(&id, p)| Some((id, p.hello.as_ref()?.best_hash)))
            .filter(|(_, tip)| chain.entry(tip).is_some())
            .collect();
        for (id, tip) in now_known {
            self.note_peer_header(id, tip);
        }
    }

    /// Records that `peer` has the block `hash` (in our tree) and all its ancestors.
    fn note_peer_header(&mut self, peer: PeerId, hash: BlockHash) {
        let Some(e) = self.chain.entry(&hash) else {
            return;
        };
        let (work, height) = (e.work, e.height);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let better = p
            .best_header
            .and_then(|b| self.chain.entry(&b))
            .is_none_or(|e| e.work < work);
        if better {
            p.best_header = Some(hash);
            p.best_height = p.best_height.max(height);
        }
        if work > p.best_work {
            p.best_work = work;
        }
    }

    /// The peer delivered a block of `bytes` (encoded): its recent largest block, which
    /// sizes its sync window, follows the largest at once and decays by 1/8 per block.
    pub(super) fn note_block_size(&mut self, peer: PeerId, bytes: usize) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.recent_block_bytes = bytes.max(p.recent_block_bytes - p.recent_block_bytes / 8);
        }
    }

    /// Requests missing bodies along the best header chain from peers that have them.
    pub(super) fn request_blocks(&mut self) {
        // Called after every block: while every window is full (most of a sync), the pass
        // below would only rediscover that.
        let tip = self.chain.height().0;
        let chain = &self.chain;
        let room = self.peers.values().any(|p| {
            if !p.established {
                return false;
            }
            let ahead = p
                .best_header
                .and_then(|b| chain.entry(&b))
                .map_or(0, |e| e.height.0.saturating_sub(tip));
            let window = block_window(p, ahead);
            p.blocks_in_flight.len() + refill_at(window) <= window
        });
        if !room {
            return;
        }
        let in_flight: BTreeSet<BlockHash> = self
            .peers
            .values()
            .flat_map(|p| p.blocks_in_flight.keys().copied())
            .collect();
        struct Candidate {
            id: PeerId,
            /// It has every block of our best-header chain up to this height.
            upto: Height,
            load: usize,
            cap: usize,
            stalling: bool,
        }
        let chain = &self.chain;
        let mut cands: Vec<Candidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.established)
            .filter_map(|(&id, p)| {
                let upto = chain.best_chain_common_height(&p.best_header?)?;
                let stalling = p.stalls > 0;
                let window = block_window(p, upto.0.saturating_sub(tip));
                let load = p.blocks_in_flight.len();
                Some(Candidate {
                    id,
                    upto,
                    load,
                    // A window is refilled only once part of it is free, so one getdata
                    // carries several blocks: asking for each block as the previous one
                    // arrived sent a message per block, and the relay's per-peer rate limit
                    // disconnected syncing tabs as flooders (browser bench, P7). A busy peer
                    // stays a candidate (it has the block) with no room for now.
                    cap: if load + refill_at(window) > window {
                        load
                    } else {
                        window
                    },
                    stalling,
                })
            })
            .collect();
        // The walk below can hand out at most the free slots, after skipping what is in
        // flight: listing more missing bodies than that (up to 256 every refill of a sync,
        // each an index lookup) was the sync's largest cost in this function.
        let free: usize = cands.iter().map(|c| c.cap - c.load).sum();
        let missing = self
            .chain
            .missing_blocks(BLOCKS_PER_PASS.min(in_flight.len() + free));
        let mut per_peer: BTreeMap<PeerId, Vec<BlockHash>> = BTreeMap::new();
        for hash in missing {
            if in_flight.contains(&hash) {
                continue;
            }
            let Some(height) = chain.entry(&hash).map(|e| e.height) else {
                continue;
            };
            let peers = &self.peers;
            // A pruned peer is asked only for bodies at or above what its `hello` says it keeps.
            let has = |c: &Candidate| {
                c.upto >= height
                    && peers
                        .get(&c.id)
                        .is_some_and(|p| !p.lacks.contains(&hash) && p.holds_body(height))
            };
            // A peer that let this block's request time out, or lets requests time out at
            // all, is asked only when no other peer has the block.
            let good = |c: &Candidate| {
                !c.stalling
                    && peers
                        .get(&c.id)
                        .is_some_and(|p| !p.timed_out.contains_key(hash.as_hash()))
            };
            let any_good = cands.iter().any(|c| has(c) && good(c));
            let choice = cands
                .iter_mut()
                .filter(|c| has(c) && (!any_good || good(c)) && c.load < c.cap)
                .min_by_key(|c| (c.load, c.id));
            let Some(c) = choice else {
                break;
            };
            c.load += 1;
            per_peer.entry(c.id).or_default().push(hash);
        }
        let now = self.now_ms;
        for (peer, hashes) in per_peer {
            if let Some(p) = self.peers.get_mut(&peer) {
                for h in &hashes {
                    p.blocks_in_flight.insert(*h, now);
                }
            }
            // A sync window can be larger than what one `getdata` may ask for.
            for chunk in hashes.chunks(MAX_BLOCKS_PER_GETDATA) {
                let items = chunk.iter().copied().map(InvItem::block).collect();
                self.send(peer, &Message::GetData(items));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::new(true, String::from("ws://127.0.0.1:1/ws"), 0, [0; 32], false)
    }

    #[test]
    fn a_new_peer_gets_the_normal_window_even_far_ahead() {
        let p = peer();
        assert_eq!(block_window(&p, 10_000), MAX_BLOCKS_IN_FLIGHT_PER_PEER);
    }

    #[test]
    fn small_blocks_widen_the_window_during_initial_sync_only() {
        let mut p = peer();
        for _ in 0..40 {
            p.recent_block_bytes = 300.max(p.recent_block_bytes - p.recent_block_bytes / 8);
        }
        assert_eq!(block_window(&p, 10_000), MAX_BLOCKS_IN_FLIGHT_SYNC);
        assert_eq!(
            block_window(&p, MAX_BLOCKS_IN_FLIGHT_SYNC as u64 - 1),
            MAX_BLOCKS_IN_FLIGHT_PER_PEER,
            "near the tip the window is the normal one"
        );
        p.stalls = 1;
        assert_eq!(block_window(&p, 10_000), 1, "a stalling peer gets one");
    }

    #[test]
    fn the_window_keeps_its_bytes_in_flight_within_the_budget() {
        let mut p = peer();
        p.recent_block_bytes = 100_000;
        let w = block_window(&p, 10_000);
        assert_eq!(w, SYNC_BYTES_IN_FLIGHT / 100_000);
        assert!(w * 100_000 <= SYNC_BYTES_IN_FLIGHT);
        // Blocks so large that the budget holds fewer than the normal window: the normal one.
        p.recent_block_bytes = 1_000_000;
        assert_eq!(block_window(&p, 10_000), MAX_BLOCKS_IN_FLIGHT_PER_PEER);
    }

    #[test]
    fn refills_wait_for_half_a_window_and_at_most_one_getdata() {
        assert_eq!(refill_at(1), 1);
        assert_eq!(refill_at(MAX_BLOCKS_IN_FLIGHT_PER_PEER), 8);
        assert_eq!(refill_at(MAX_BLOCKS_IN_FLIGHT_SYNC), MAX_BLOCKS_PER_GETDATA);
    }
}
