//! Mining templates: built when the node is synced and its tip or pool changed, and
//! blocks from solved headers.

use alloc::string::String;

use crate::miner::build_template;
use crate::primitives::BlockHeader;
use crate::sig::PublicKey;

use super::{Event, Node, Output, TEMPLATE_REFRESH_MS};

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
        let t = build_template(&self.chain, &self.mempool, key, self.now_s(), b"tabcoin");
        self.template_dirty = false;
        self.last_template_ms = self.now_ms;
        self.templates.push_back(t.clone());
        if self.templates.len() > 4 {
            self.templates.pop_front();
        }
        self.outputs.push_back(Output::Template(t));
    }

    /// Changes the key templates pay (None stops templates).
    pub fn set_mining_key(&mut self, key: Option<PublicKey>) {
        self.config.mining_key = key;
        self.template_dirty = true;
        self.maybe_template();
    }
}
