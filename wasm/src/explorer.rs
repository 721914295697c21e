//! What the page's explorer reads: blocks, transactions, the pool, the feed of posts and an
//! address's history, from the node's memory (the active chain and the body cache).

use serde::Serialize;
use tabcoin_core::encode::Encode;
use tabcoin_core::primitives::{BlockHash, Txid};
use tabcoin_core::units::Height;
use tabcoin_core::wallet::{decode_address, encode_address};
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::views::{PoolTx, TxView, coins, tx_view};
use crate::{BrowserNode, loads, now_ms, to_js};

/// A transaction with where it is (`tx` and `findTx`).
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct TxLookup {
    status: &'static str,
    height: Option<u64>,
    confirmations: Option<u64>,
    #[serde(flatten)]
    tx: TxView,
}

#[wasm_bindgen]
impl BrowserNode {
    /// The newest `limit` blocks of the active chain.
    #[wasm_bindgen(unchecked_return_type = "BlockRow[]")]
    pub fn blocks(&self, limit: usize) -> JsValue {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let prefix = chain.params().address_prefix;
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        #[serde(rename_all = "camelCase")]
        struct BlockRow {
            height: u64,
            hash: String,
            time: u64,
            tx_count: usize,
            size: usize,
            miner: Option<String>,
            reward: String,
        }
        let rows: Vec<BlockRow> = (0..=chain.height().0)
            .rev()
            .take(limit.min(500))
            .filter_map(|h| {
                let hash = chain.hash_at(Height(h))?;
                let b = chain.block(&hash)?;
                let cb = b.txs.first()?;
                Some(BlockRow {
                    height: h,
                    hash: hash.to_hex(),
                    time: b.header.time,
                    tx_count: b.txs.len(),
                    size: b.encoded_len(),
                    miner: cb.outputs.first().map(|o| encode_address(prefix, &o.key)),
                    reward: coins(cb.outputs.iter().map(|o| o.amount.units()).sum()),
                })
            })
            .collect();
        to_js(&rows)
    }

    /// One block with its transactions, or null.
    #[wasm_bindgen(unchecked_return_type = "BlockDetail | null")]
    pub fn block(&self, hash: &str) -> JsValue {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let Ok(h) = BlockHash::from_hex(hash) else {
            return JsValue::NULL;
        };
        let (Some(b), Some(e)) = (chain.block(&h), chain.entry(&h)) else {
            return JsValue::NULL;
        };
        let prefix = chain.params().address_prefix;
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        struct BlockDetail {
            hash: String,
            height: u64,
            time: u64,
            prev: String,
            size: usize,
            bits: String,
            nonce: u64,
            confirmations: Option<u64>,
            txs: Vec<TxView>,
        }
        let undo = chain.undo_data(&h);
        let mut spent = undo.map(|u| u.spent.iter()).into_iter().flatten();
        let txs = b
            .txs
            .iter()
            .map(|t| {
                let inputs: u64 = t
                    .inputs
                    .iter()
                    .filter_map(|_| spent.next())
                    .map(|(_, c)| c.output.amount.units())
                    .sum();
                let outputs: u64 = t.outputs.iter().map(|o| o.amount.units()).sum();
                let fee = (!t.is_coinbase() && undo.is_some())
                    .then(|| coins(inputs.saturating_sub(outputs)));
                tx_view(t, prefix, fee)
            })
            .collect();
        to_js(&BlockDetail {
            hash: h.to_hex(),
            height: e.height.0,
            time: b.header.time,
            prev: b.header.prev.to_hex(),
            size: b.encoded_len(),
            bits: format!("{:#010x}", b.header.bits.0),
            nonce: b.header.nonce,
            confirmations: chain
                .is_active(&h)
                .then(|| chain.height().0 - e.height.0 + 1),
            txs,
        })
    }

    /// Pool transactions, oldest first.
    #[wasm_bindgen(unchecked_return_type = "PoolTx[]")]
    pub fn mempool(&self) -> JsValue {
        let i = self.inner.borrow();
        let prefix = i.node.chain().params().address_prefix;
        let list: Vec<PoolTx> = i
            .node
            .mempool()
            .entries()
            .into_iter()
            .map(|e| PoolTx {
                tx: tx_view(&e.tx, prefix, Some(coins(e.fee.units()))),
                size: e.size,
                fee_rate: e.fee_rate(),
            })
            .collect();
        to_js(&list)
    }

    /// Signed posts, newest first: unconfirmed, then from recent blocks.
    #[wasm_bindgen(unchecked_return_type = "FeedItem[]")]
    pub fn feed(&self, limit: usize) -> JsValue {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let prefix = chain.params().address_prefix;
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        struct FeedItem {
            txid: String,
            author: String,
            text: String,
            height: Option<u64>,
            time: u64,
        }
        let mut items: Vec<FeedItem> = Vec::new();
        let now = now_ms() / 1000;
        for e in i.node.mempool().entries().into_iter().rev() {
            if let Some(p) = e.tx.post() {
                items.push(FeedItem {
                    txid: e.txid.to_hex(),
                    author: encode_address(prefix, &p.author),
                    text: p.text.clone(),
                    height: None,
                    time: now,
                });
            }
        }
        for h in (1..=chain.height().0).rev().take(2_000) {
            if items.len() >= limit {
                break;
            }
            let Some(b) = chain.hash_at(Height(h)).and_then(|x| chain.block(&x)) else {
                continue;
            };
            for t in b.txs.iter().rev() {
                if let Some(p) = t.post() {
                    items.push(FeedItem {
                        txid: t.txid().to_hex(),
                        author: encode_address(prefix, &p.author),
                        text: p.text.clone(),
                        height: Some(h),
                        time: b.header.time,
                    });
                }
            }
        }
        items.truncate(limit);
        to_js(&items)
    }

    /// A transaction from the pool or the active chain's blocks, with its status; or null.
    #[wasm_bindgen(unchecked_return_type = "TxLookup | null")]
    pub fn tx(&self, txid: &str) -> JsValue {
        let i = self.inner.borrow();
        let Ok(id) = Txid::from_hex(txid) else {
            return JsValue::NULL;
        };
        let chain = i.node.chain();
        let prefix = chain.params().address_prefix;
        if let Some(e) = i.node.mempool().get(&id) {
            let tx = tx_view(&e.tx, prefix, Some(coins(e.fee.units())));
            return to_js(&TxLookup {
                status: "mempool",
                height: None,
                confirmations: None,
                tx,
            });
        }
        let tip = chain.height().0;
        for h in (0..=tip).rev() {
            let Some(b) = chain.hash_at(Height(h)).and_then(|x| chain.block(&x)) else {
                continue;
            };
            if let Some(t) = b.txs.iter().find(|t| t.txid() == id) {
                let tx = tx_view(t, prefix, None);
                return to_js(&TxLookup {
                    status: "confirmed",
                    height: Some(h),
                    confirmations: Some(tip - h + 1),
                    tx,
                });
            }
        }
        JsValue::NULL
    }

    /// A transaction from the pool or from any active block this node keeps — in memory, in
    /// the write queue or in IndexedDB (its transaction index) — with its status; or null.
    #[wasm_bindgen(js_name = findTx, unchecked_return_type = "TxLookup | null")]
    pub async fn find_tx(&self, txid: String) -> JsValue {
        let Ok(id) = Txid::from_hex(&txid) else {
            return JsValue::NULL;
        };
        {
            let i = self.inner.borrow();
            if let Some(e) = i.node.mempool().get(&id) {
                let prefix = i.node.chain().params().address_prefix;
                return to_js(&TxLookup {
                    status: "mempool",
                    height: None,
                    confirmations: None,
                    tx: tx_view(&e.tx, prefix, Some(coins(e.fee.units()))),
                });
            }
        }
        let Some((block, pos)) = loads::find_tx(&self.inner, id).await else {
            return JsValue::NULL;
        };
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let hash = block.hash();
        // Checked again after the last await: the block may have left the active chain.
        let Some(e) = chain.entry(&hash).filter(|_| chain.is_active(&hash)) else {
            return JsValue::NULL;
        };
        to_js(&TxLookup {
            status: "confirmed",
            height: Some(e.height.0),
            confirmations: Some(chain.height().0 - e.height.0 + 1),
            tx: tx_view(&block.txs[pos], chain.params().address_prefix, None),
        })
    }

    /// The hash of the active chain's block at `height`, or null.
    #[wasm_bindgen(js_name = blockAt)]
    pub fn block_at(&self, height: f64) -> Option<String> {
        if !(height.is_finite() && height >= 0.0 && height.fract() == 0.0) {
            return None;
        }
        let i = self.inner.borrow();
        i.node
            .chain()
            .hash_at(Height(height as u64))
            .map(|h| h.to_hex())
    }

    /// What the active chain's blocks (newest first) paid to and spent from `address`: at
    /// most `limit` transactions. Throws when the address does not decode.
    #[wasm_bindgen(unchecked_return_type = "AddressHistory")]
    pub fn address(&self, address: &str, limit: usize) -> Result<JsValue, JsError> {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let prefix = chain.params().address_prefix;
        let key = decode_address(prefix, address.trim())
            .map_err(|e| JsError::new(&format!("address: {e}")))?;
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        struct AddressTx {
            txid: String,
            height: u64,
            time: u64,
            /// Coins the transaction paid to the address.
            received: String,
            /// Coins of the address the transaction spent.
            spent: String,
        }
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        #[serde(rename_all = "camelCase")]
        struct AddressHistory {
            address: String,
            txs: Vec<AddressTx>,
            /// Blocks searched (the whole active chain unless the limit was reached).
            blocks_searched: u64,
        }
        let mut txs = Vec::new();
        let mut searched = 0;
        for h in (0..=chain.height().0).rev() {
            if txs.len() >= limit {
                break;
            }
            searched += 1;
            let Some(hash) = chain.hash_at(Height(h)) else {
                continue;
            };
            let Some(b) = chain.block(&hash) else {
                continue;
            };
            let undo = chain.undo_data(&hash);
            let mut spent_coins = undo.map(|u| u.spent.iter()).into_iter().flatten();
            for t in &b.txs {
                let spent: u64 = t
                    .inputs
                    .iter()
                    .filter_map(|_| spent_coins.next())
                    .filter(|(_, c)| c.output.key == key)
                    .map(|(_, c)| c.output.amount.units())
                    .sum();
                let received: u64 = t
                    .outputs
                    .iter()
                    .filter(|o| o.key == key)
                    .map(|o| o.amount.units())
                    .sum();
                if spent > 0 || received > 0 {
                    txs.push(AddressTx {
                        txid: t.txid().to_hex(),
                        height: h,
                        time: b.header.time,
                        received: coins(received),
                        spent: coins(spent),
                    });
                }
            }
        }
        txs.truncate(limit);
        Ok(to_js(&AddressHistory {
            address: encode_address(prefix, &key),
            txs,
            blocks_searched: searched,
        }))
    }
}
