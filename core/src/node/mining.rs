//! Mining templates: built when the node is synced and its tip or pool changed, and
//! blocks from solved headers.
//!
//! A template is never stamped ahead of the node's clock: when the median time past of the
//! tip has caught up with the clock (a burst of blocks, as on the test network whose
//! difficulty is at the limit), the node waits until the clock passes it. Block times then
//! stay at real time — never past the future-drift limit where every peer would ignore the
//! blocks — and a burst becomes a steady pace of at most about half the MTP window per second.
//!
//! Such a held template then comes at a random moment in the first [`CLOCK_JITTER_MS`] after
//! the clock passed the MTP, not at once (docs/PROTOCOL.md §6.6, miner policy). Every miner
//! held by the clock would otherwise start in the same few milliseconds of each second, each
//! reach the cap on its own branch before it saw another's block, and two branches would stay
//! at equal work for as long as both sides mine (each node keeps the equal-work tip it saw
//! first, and a miner sees its own block first). With the wait, in most seconds one miner's
//! first block reaches the others before they start: it has more work, they switch to it,
//! and (the wait holds across that change of tip) let that miner finish the second's blocks
//! rather than race it for the next height. A lone miner loses nothing (its blocks of the second come a little later);
//! where blocks come minutes apart (the main network) the clock never holds a template, so
//! nothing changes there. The host wakes the node at [`Node::mining_wake_ms`].

use alloc::string::String;

use crate::hash::sha256d_parts;
use crate::miner::build_template;
use crate::primitives::BlockHeader;
use crate::sig::PublicKey;

use super::{Event, Node, Output, TEMPLATE_REFRESH_MS};

/// A template the clock held back comes this long at most after the clock passed the tip's
/// median time past (a wait drawn per node and tip; see the module docs).
pub const CLOCK_JITTER_MS: u64 = 1_000;

/// The clock second a held-back template waits for (the tip's median time past + 1), and
/// once the clock reached it, when the template comes (ms). Kept when the tip changes
/// meanwhile: a node that took another miner's first block of the second lets that miner
/// finish the second's blocks rather than race it for the next height.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ClockHold {
    second: Option<u64>,
    release_ms: Option<u64>,
}

/// Why a node offers no mining template ([`Node::mining_wait`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MiningWait {
    /// No mining key: mining is switched off.
    Off,
    /// The node does not have the best chain its peers show (or, in a browser, has no peer).
    NotSynced,
    /// The next block's time must exceed the tip's median time past, which the clock has not
    /// passed yet: a template comes at `not_before` (seconds since the epoch).
    Clock { not_before: u64 },
}

impl Node {
    /// A worker solved `header` for one of the recent templates: the block is that
    /// template's with this header.
    pub(super) fn on_mined_header(&mut self, header: BlockHeader) {
        let found = self.templates.iter().find(|t| {
            t.block.header.prev == header.prev && t.block.header.merkle_root == header.merkle_root
        });
        match found {
            Some(t) => {
                let mut block = t.block.clone();
                block.header = header;
                self.on_mined(block);
            }
            None => self.event(Event::BlockRejected {
                hash: header.hash(),
                reason: String::from("no template for the mined header"),
            }),
        }
    }

    pub(super) fn maybe_template(&mut self) {
        let Some(key) = self.config.mining_key else {
            return;
        };
        if !self.template_dirty || !self.is_synced() {
            return;
        }
        let tip_changed = self
            .templates
            .back()
            .is_none_or(|t| t.block.header.prev != self.chain.tip().hash);
        if !tip_changed && self.now_ms < self.last_template_ms + TEMPLATE_REFRESH_MS {
            return;
        }
        let mtp = self.chain.next_block_context().median_time_past;
        if mtp >= self.now_s() {
            // Stays dirty: a later input builds it once the clock has passed the MTP.
            self.clock_hold = ClockHold {
                second: Some(mtp.saturating_add(1)),
                release_ms: None,
            };
            return;
        }
        if let Some(second) = self.clock_hold.second {
            let jitter = self.clock_jitter_ms(second);
            let release = *self
                .clock_hold
                .release_ms
                .get_or_insert(second.saturating_mul(1000) + jitter);
            if self.now_ms < release {
                return;
            }
        }
        self.clock_hold = ClockHold::default();
        let t = build_template(&self.chain, &self.mempool, key, self.now_s(), b"tabcoin");
        self.template_dirty = false;
        self.last_template_ms = self.now_ms;
        self.templates.push_back(t.clone());
        if self.templates.len() > 4 {
            self.templates.pop_front();
        }
        self.outputs.push_back(Output::Template(t));
    }

    /// This node's wait after the clock reached `second` (a held template's): drawn from the
    /// node's secret identity seed and the second, so it differs between nodes and between
    /// seconds, and replays exactly.
    fn clock_jitter_ms(&self, second: u64) -> u64 {
        let h = sha256d_parts(&[
            b"tabcoin/clock-jitter",
            &self.config.identity_seed,
            &second.to_le_bytes(),
        ]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&h.0[..8]);
        u64::from_le_bytes(n) % CLOCK_JITTER_MS
    }

    /// When (ms since the epoch) the host should feed the node a [`super::Input::Tick`] so
    /// that a template the clock holds back comes on time: the moment the clock passes the
    /// tip's median time past, then the moment its random wait ends. None when no template
    /// waits for the clock (the host's regular ticks do).
    pub fn mining_wake_ms(&self) -> Option<u64> {
        if self.config.mining_key.is_none() || !self.template_dirty {
            return None;
        }
        let second = self.clock_hold.second?;
        let at = self
            .clock_hold
            .release_ms
            .unwrap_or(second.saturating_mul(1000));
        (at > self.now_ms).then_some(at)
    }

    /// Why no template comes now, if it does not: mining is off, the node is not synced, or
    /// the next block could not be stamped before `not_before` (seconds, the clock must pass
    /// the tip's median time past first).
    pub fn mining_wait(&self) -> Option<MiningWait> {
        if self.config.mining_key.is_none() {
            return Some(MiningWait::Off);
        }
        if !self.is_synced() {
            return Some(MiningWait::NotSynced);
        }
        let mtp = self.chain.next_block_context().median_time_past;
        (mtp >= self.now_s()).then_some(MiningWait::Clock {
            not_before: mtp.saturating_add(1),
        })
    }

    /// Changes the key templates pay (None stops templates).
    pub fn set_mining_key(&mut self, key: Option<PublicKey>) {
        self.config.mining_key = key;
        self.template_dirty = true;
        self.maybe_template();
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::{CLOCK_JITTER_MS, MiningWait};
    use crate::miner::{BlockTemplate, mine};
    use crate::node::{Input, Node, NodeConfig, Output};
    use crate::params::Params;
    use crate::sig::Keypair;
    use crate::store::ChangeSet;
    use crate::wire::NodeKind;

    fn templates(node: &mut Node) -> Vec<BlockTemplate> {
        let mut out = Vec::new();
        while let Some(o) = node.poll_output() {
            if let Output::Template(t) = o {
                out.push(t);
            }
        }
        out
    }

    /// On the test network every hash or two is a block: mining at one clock second must not
    /// run the block times ahead of the clock (issue 13: a tab mined hundreds of blocks in
    /// seconds, their times ran past the future-drift limit and mining stalled). The node
    /// waits for the clock instead, and says so.
    #[test]
    fn templates_never_run_ahead_of_the_clock() {
        let params = Params::test();
        let mut config = NodeConfig::new(NodeKind::Relay, [7; 32]);
        config.mining_key = Some(Keypair::from_seed(&[9; 32]).public_key());
        let mut node =
            Node::new(config, params.clone(), ChangeSet::default()).expect("empty store");
        let now_s = params.launch_time + 3_600;
        node.handle(now_s * 1000, Input::Tick);
        let mut mined = 0;
        for _ in 0..50 {
            let Some(t) = templates(&mut node).pop() else {
                break;
            };
            assert!(
                t.block.header.time <= now_s,
                "template stamped {} at clock {now_s}",
                t.block.header.time
            );
            let block = mine(t.block).expect("test bits are valid");
            node.handle(now_s * 1000, Input::MinedBlock(block));
            mined += 1;
        }
        assert!(
            (1..50).contains(&mined),
            "a burst at one clock second stops: mined {mined}"
        );
        assert_eq!(
            node.mining_wait(),
            Some(MiningWait::Clock {
                not_before: now_s + 1
            })
        );
        node.handle(now_s * 1000 + 999, Input::Tick);
        assert!(
            templates(&mut node).is_empty(),
            "no template before the clock passes the MTP"
        );
        assert_eq!(
            node.mining_wake_ms(),
            Some((now_s + 1) * 1000),
            "the host is asked to wake the node when the clock passes the MTP"
        );
        node.handle((now_s + 1) * 1000, Input::Tick);
        let mut got = templates(&mut node);
        if got.is_empty() {
            // The random wait after the clock passed the MTP.
            let at = node.mining_wake_ms().expect("a wake for the held template");
            assert!(((now_s + 1) * 1000..(now_s + 1) * 1000 + CLOCK_JITTER_MS).contains(&at));
            node.handle(at - 1, Input::Tick);
            assert!(templates(&mut node).is_empty(), "not before the wait ends");
            node.handle(at, Input::Tick);
            got = templates(&mut node);
        }
        let t = got.pop().expect("a template once the clock passed the MTP");
        assert_eq!(t.block.header.time, now_s + 1);
        assert_eq!(node.mining_wait(), None);
        assert_eq!(node.mining_wake_ms(), None);
    }

    /// Miners held by the clock wait different random times after it passes the MTP (so
    /// that in most seconds one's block reaches the others before they start), each at most
    /// [`CLOCK_JITTER_MS`].
    #[test]
    fn held_templates_come_after_different_waits() {
        let params = Params::test();
        let now_s = params.launch_time + 3_600;
        let mut waits = Vec::new();
        for seed in 1..=8u8 {
            let mut config = NodeConfig::new(NodeKind::Relay, [seed; 32]);
            config.mining_key = Some(Keypair::from_seed(&[9; 32]).public_key());
            let mut node =
                Node::new(config, params.clone(), ChangeSet::default()).expect("empty store");
            // Every node mines the same burst of blocks at one clock second.
            node.handle(now_s * 1000, Input::Tick);
            while let Some(t) = templates(&mut node).pop() {
                let block = mine(t.block).expect("test bits are valid");
                node.handle(now_s * 1000, Input::MinedBlock(block));
            }
            node.handle((now_s + 1) * 1000, Input::Tick);
            let wait = match node.mining_wake_ms() {
                Some(at) => at - (now_s + 1) * 1000,
                None => 0,
            };
            assert!(wait < CLOCK_JITTER_MS);
            waits.push(wait);
        }
        waits.sort_unstable();
        waits.dedup();
        assert!(waits.len() >= 6, "waits {waits:?}");
    }
}
