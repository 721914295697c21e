//! The node's status as the page shows it: height, tip, peers, sync, mining and storage.

use serde::Serialize;
use tabcoin_core::node::MiningWait as CoreMiningWait;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::events::MiningWait;
use crate::{BrowserNode, DIGEST_EVERY_TIP_MAX_COINS, to_js};

#[wasm_bindgen]
impl BrowserNode {
    /// Height, tip, peers, sync and storage state.
    #[wasm_bindgen(unchecked_return_type = "NodeStatus")]
    pub fn status(&self) -> JsValue {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let tip = chain.tip();
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        #[serde(rename_all = "camelCase")]
        struct PeerView {
            id: u64,
            kind: String,
            /// The URL this tab dialed (outbound), else the URL the peer advertises.
            url: Option<String>,
            /// The URL the peer advertises (a claim, unproven).
            claimed_url: Option<String>,
            outbound: bool,
            height: u64,
        }
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        struct MempoolSummary {
            count: usize,
            bytes: usize,
        }
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        #[serde(rename_all = "camelCase")]
        struct StorageState {
            persisted: Option<bool>,
            error: Option<String>,
            /// Blocks validated but not yet committed to IndexedDB.
            unstored_blocks: usize,
            unstored_bytes: usize,
            /// Height of the tip IndexedDB holds (as written by this session).
            stored_height: Option<u64>,
        }
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        #[serde(rename_all = "camelCase")]
        struct NodeStatus {
            network: &'static str,
            height: u64,
            tip: String,
            synced: bool,
            sync_target: u64,
            connected: bool,
            relay: String,
            peers: Vec<PeerView>,
            known_relays: Vec<String>,
            mempool: MempoolSummary,
            hashrate: f64,
            node_id: String,
            mining: bool,
            mining_wait: Option<MiningWait>,
            storage: StorageState,
            prune: crate::prune::PruneView,
            /// `UtxoSet::digest` of the UTXO set at `utxo_digest_tip` (hex).
            utxo_digest: String,
            /// The tip whose UTXO set `utxo_digest` is: `tip`, except on a large set between
            /// two refreshes.
            utxo_digest_tip: String,
        }
        let peers: Vec<PeerView> = i
            .node
            .peers()
            .into_iter()
            .map(|p| PeerView {
                id: p.id,
                kind: format!("{:?}", p.kind).to_lowercase(),
                // A relay we dialed is at the URL we dialed, whatever it advertises.
                url: if p.outbound {
                    Some(p.remote.clone())
                } else {
                    p.url.clone()
                },
                claimed_url: p.url,
                outbound: p.outbound,
                height: p.best_height.0,
            })
            .collect();
        let now = js_sys::Date::now();
        let (digest_tip, utxo_digest) = match i.utxo_digest.get() {
            Some((at, d, _)) if at == tip.hash => (at, d),
            Some((at, d, t))
                if chain.utxo().len() > DIGEST_EVERY_TIP_MAX_COINS && now - t < 60_000.0 =>
            {
                (at, d)
            }
            _ => {
                let d = chain.utxo().digest();
                i.utxo_digest.set(Some((tip.hash, d, now)));
                (tip.hash, d)
            }
        };
        to_js(&NodeStatus {
            utxo_digest: utxo_digest.to_string(),
            utxo_digest_tip: digest_tip.to_hex(),
            network: chain.params().name,
            height: tip.height.0,
            tip: tip.hash.to_hex(),
            // Not synced while more than a few validated blocks are not yet stored.
            synced: i.node.is_synced() && i.writer.within_synced_slack(),
            sync_target: chain.best_header().height.0.max(i.sync_target.0),
            connected: !peers.is_empty(),
            relay: i.relay.clone(),
            peers,
            known_relays: i.node.known_nodes().into_iter().map(|r| r.url).collect(),
            mempool: MempoolSummary {
                count: i.node.mempool().len(),
                bytes: i.node.mempool().bytes(),
            },
            hashrate: chain.hashrate_estimate(60),
            node_id: i.node.node_id().to_string(),
            mining: i.mining,
            mining_wait: i
                .mining
                .then(|| i.node.mining_wait())
                .flatten()
                .map(|w| match w {
                    CoreMiningWait::Clock { not_before } => MiningWait::Clock { not_before },
                    CoreMiningWait::NotSynced => MiningWait::NotSynced,
                    _ => MiningWait::Off,
                }),
            storage: StorageState {
                persisted: i.persisted,
                error: i.store_failed.clone(),
                unstored_blocks: i.writer.unstored_blocks(),
                unstored_bytes: i.writer.unstored_bytes(),
                stored_height: i
                    .writer
                    .stored_tip()
                    .and_then(|h| chain.entry(&h))
                    .map(|e| e.height.0),
            },
            prune: crate::prune::PruneView::of(chain),
        })
    }
}
