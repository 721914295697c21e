//! Mining templates: built when the node is synced and its tip or pool changed, and
//! blocks from solved headers.
//!
//! A template is never stamped ahead of the node's clock: when the median time past of the
//! tip has caught up with the clock (a burst of blocks, as on the test network whose
//! difficulty is at the limit), the node waits until the clock passes it. Block times then
//! stay at real time — never past the future-drift limit where every peer would ignore the
//! blocks — and a burst becomes a steady pace of at most about half the MTP window per second.

use alloc::string::String;

use crate::miner::build_template;
use crate::primitives::BlockHeader;
use crate::sig::PublicKey;

use super::{Event, Node, Output, TEMPLATE_REFRESH_MS};

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
        if self.chain.next_block_context().median_time_past >= self.now_s() {
            // Stays dirty: a later tick builds it once the clock has passed the MTP.
            return;
        }
        let t = build_template(&self.chain, &self.mempool, key, self.now_s(), b"tabcoin");
        self.template_dirty = false;
        self.last_template_ms = self.now_ms;
        self.templates.push_back(t.clone());
        if self.templates.len() > 4 {
            self.templates.pop_front();
        }
        self.outputs.push_back(Output::Template(t));
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

    use super::MiningWait;
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
        node.handle((now_s + 1) * 1000, Input::Tick);
        let t = templates(&mut node)
            .pop()
            .expect("a template once the clock passed the MTP");
        assert_eq!(t.block.header.time, now_s + 1);
        assert_eq!(node.mining_wait(), None);
    }
}
