//! `tabcoin-wasm`: the browser full node. A thin adapter that hosts the core [`Node`]
//! unchanged in a tab: a JS-facing facade ([`BrowserNode`]), the store on IndexedDB
//! ([`idb`]), WebSocket connections (gloo-net), and the miner entry for Web Workers
//! ([`MinerJob`]). Every rule and every decision about peers stays in `tabcoin-core`.

#![allow(clippy::unused_unit)] // wasm-bindgen expansions

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::{SinkExt, StreamExt};
use gloo::net::websocket::{Message as WsMessage, State as WsState, futures::WebSocket};
use gloo::timers::callback::Interval;
use gloo::timers::future::TimeoutFuture;
use js_sys::{Function, Reflect, Uint8Array};
use serde::Serialize;
use tsify::Tsify;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use tabcoin_core::encode::Encode;
use tabcoin_core::hash::{decode_hex, to_hex};
use tabcoin_core::miner::{NonceRange, Step};
use tabcoin_core::node::{
    Event, Input, MiningWait as CoreMiningWait, Node, NodeConfig, Output, PeerId,
};
use tabcoin_core::params::{Network, Params};
use tabcoin_core::primitives::{BlockHash, BlockHeader, HEADER_SIZE, Payload, Transaction, Txid};
use tabcoin_core::sig::PublicKey;
use tabcoin_core::units::{Amount, Height};
use tabcoin_core::wallet::{Wallet, decode_address, encode_address};
use tabcoin_core::wire::NodeKind;

pub mod bench;
pub mod idb;
mod keyguard;
mod loads;
pub mod queue;
pub mod repair;
pub mod sendq;
pub mod simd;
mod verify;
use idb::{IdbStore, StoreError};
use queue::{Limits, Notice, Writer};

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn random_seed() -> Result<[u8; 32], JsError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| JsError::new(&format!("no randomness available: {e}")))?;
    Ok(seed)
}

pub(crate) fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or(JsValue::NULL)
}

fn get_string(opts: &JsValue, key: &str) -> Result<String, JsError> {
    Reflect::get(opts, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| JsError::new(&format!("option {key:?} (a string) is required")))
}

fn get_fn(opts: &JsValue, key: &str) -> Option<Function> {
    Reflect::get(opts, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.dyn_into().ok())
}

/// A connection to a relay.
struct Conn {
    url: String,
    tx: UnboundedSender<Vec<u8>>,
    /// Bytes queued for this connection: in `tx` and in the socket's own buffer.
    queue: sendq::SendQueue,
}

struct Inner {
    node: Node,
    store: IdbStore,
    /// `None` while locked (the key has a passphrase and this session has not unlocked it).
    wallet: Option<Wallet>,
    /// The wallet's public key, known while locked (mining pays to it).
    wallet_key: PublicKey,
    /// The passphrase-sealed key as stored (`meta/wallet-sealed`), if it has a passphrase.
    sealed: Option<Vec<u8>>,
    relay: String,
    conns: HashMap<PeerId, Conn>,
    next_peer: PeerId,
    /// ChangeSets on their way to IndexedDB (merged, with back-pressure).
    writer: Writer,
    /// A Synced event held back until the write queue is within its slack.
    synced_pending: Option<Height>,
    store_failed: Option<String>,
    on_event: Option<Function>,
    on_template: Option<Function>,
    mining: bool,
    generation: u64,
    ticker: Option<Interval>,
    persisted: Option<bool>,
    sync_target: Height,
}

/// Events as the page sees them (`ev.kind` plus fields). The derives put each type into
/// the generated `tabcoin_wasm.d.ts`, which the page is checked against (`tsc`, npm test).
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
enum NodeEvent {
    Tip {
        height: u64,
        hash: String,
        disconnected: usize,
    },
    Sync {
        height: u64,
        target: u64,
    },
    Synced {
        height: u64,
    },
    Peer {
        connected: bool,
        id: u64,
        peer_kind: Option<String>,
    },
    Tx {
        txid: String,
        accepted: bool,
        error: Option<String>,
    },
    BlockRejected {
        hash: String,
        reason: String,
    },
    Connection {
        state: ConnState,
        url: String,
        /// With `closed`: milliseconds until the node dials this relay again (null: it
        /// will not, e.g. a relay it no longer knows).
        retry_in_ms: Option<u64>,
    },
    Store {
        error: Option<String>,
        quota_exceeded: bool,
        repaired: Option<String>,
    },
    Banned {
        reason: String,
    },
}

/// A relay link's state in a `connection` event.
#[derive(Serialize, Tsify, Clone, Copy)]
#[tsify(missing_as_null)]
#[serde(rename_all = "lowercase")]
enum ConnState {
    Connecting,
    Open,
    Closed,
}

/// Why no mining template comes (`status().miningWait`), from the core's [`CoreMiningWait`].
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
#[serde(
    tag = "reason",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
enum MiningWait {
    /// Mining is switched off.
    Off,
    /// Not synced (a browser node with no relay is never synced).
    NotSynced,
    /// The next block's time must exceed the tip's median time past: a template comes
    /// once the clock passes `notBefore` (seconds since the epoch).
    Clock { not_before: u64 },
}

#[wasm_bindgen(typescript_custom_section)]
const TS_START: &str = r#"
/** What `BrowserNode.start` takes. */
export interface StartOptions {
    relay: string;
    network: "main" | "test";
    dbName?: string;
    onEvent?: (ev: NodeEvent) => void;
    onTemplate?: (t: MiningTemplate) => void;
}
/** A block template for the mining workers (`onTemplate`). */
export interface MiningTemplate {
    header: Uint8Array;
    height: number;
    reward: string;
    generation: number;
}
"#;

/// Largest fee rate `send` and `post` accept, in base units per 1000 bytes: one coin per kB.
/// Anything above is a typo, not a fee.
pub const MAX_FEE_RATE: u64 = 100_000_000;

/// The browser node.
#[wasm_bindgen]
pub struct BrowserNode {
    inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for BrowserNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.borrow();
        f.debug_struct("BrowserNode")
            .field("height", &i.node.chain().height())
            .field("relay", &i.relay)
            .finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl BrowserNode {
    /// Opens the store, loads (or repairs) the chain and connects to `opts.relay`.
    pub async fn start(
        #[wasm_bindgen(unchecked_param_type = "StartOptions")] opts: JsValue,
    ) -> Result<BrowserNode, JsError> {
        let relay = get_string(&opts, "relay")?;
        let network = match get_string(&opts, "network")?.as_str() {
            "main" => Network::Main,
            "test" => Network::Test,
            other => return Err(JsError::new(&format!("unknown network {other:?}"))),
        };
        let params = Params::for_network(network);
        let db_name =
            get_string(&opts, "dbName").unwrap_or_else(|_| format!("tabcoin-{}", params.name));
        let store = IdbStore::open(&db_name, params.genesis_hash())
            .await
            .map_err(|e| JsError::new(&e.to_string()))?;
        let identity = match store
            .meta("identity")
            .await
            .map_err(|e| JsError::new(&e.to_string()))?
        {
            Some(s) if s.len() == 32 => s.try_into().map_err(|_| JsError::new("bad identity"))?,
            _ => {
                let s = random_seed()?;
                store
                    .put_meta("identity", &s)
                    .await
                    .map_err(|e| JsError::new(&e.to_string()))?;
                s
            }
        };
        let (wallet, wallet_key, sealed) =
            keyguard::load_wallet(&store, params.address_prefix).await?;
        let mut config = NodeConfig::new(NodeKind::Browser, identity);
        config.bootstrap = vec![relay.clone()];
        // Local addresses and other ports only when the page's own relay is local (a test
        // network); otherwise default ports and that relay's port (PROTOCOL §5.6).
        config.dial_policy = tabcoin_core::dial::DialPolicy::browser(&relay);
        config.target_outbound = 2;
        config.agent = format!("tabcoin-browser/{}", env!("CARGO_PKG_VERSION"));

        let mut repaired = None;
        let node = match store.meta(repair::REPAIR_MARK).await {
            Ok(Some(why)) => Err(format!(
                "{} (an interrupted repair)",
                String::from_utf8_lossy(&why)
            )),
            Ok(None) => match store.load().await {
                Ok(cs) => Node::new(config.clone(), params.clone(), cs).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let node = match node {
            Ok(n) => n,
            Err(damage) => {
                // Keep every block that still decodes and validates; recompute the rest.
                let done = repair::repair(&store, &params, &damage)
                    .await
                    .map_err(|e| JsError::new(&format!("{damage}; repair failed: {e}")))?;
                repaired = Some(format!(
                    "{damage}; rebuilt from {} stored blocks up to height {}",
                    done.kept, done.height
                ));
                let cs = store
                    .load()
                    .await
                    .map_err(|e| JsError::new(&e.to_string()))?;
                Node::new(config, params.clone(), cs).map_err(|e| JsError::new(&e.to_string()))?
            }
        };
        let writer = Writer::new(store.clone(), Limits::BROWSER);
        let inner = Rc::new(RefCell::new(Inner {
            node,
            store: store.clone(),
            wallet,
            wallet_key,
            sealed,
            relay,
            conns: HashMap::new(),
            next_peer: 1,
            writer: writer.clone(),
            synced_pending: None,
            store_failed: None,
            on_event: get_fn(&opts, "onEvent"),
            on_template: get_fn(&opts, "onTemplate"),
            mining: false,
            generation: 0,
            ticker: None,
            persisted: None,
            sync_target: Height(0),
        }));
        if let Some(r) = repaired {
            emit(
                &inner,
                &NodeEvent::Store {
                    error: None,
                    quota_exceeded: false,
                    repaired: Some(r),
                },
            );
        }
        let weak = Rc::downgrade(&inner);
        writer.set_notify(move |notice| {
            if let Some(inner) = weak.upgrade() {
                on_store_notice(&inner, notice);
            }
        });
        let weak = Rc::downgrade(&inner);
        store.set_on_closed(move || {
            if let Some(inner) = weak.upgrade() {
                store_failed(&inner, &StoreError::Closed);
            }
        });
        let weak = Rc::downgrade(&inner);
        let ticker = Interval::new(TICK_MS as u32, move || {
            if let Some(inner) = weak.upgrade() {
                feed(&inner, Input::Tick);
            }
        });
        inner.borrow_mut().ticker = Some(ticker);
        feed(&inner, Input::Tick);
        Ok(BrowserNode { inner })
    }

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
        to_js(&NodeStatus {
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
        })
    }

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
        let list: Vec<serde_json_like::PoolTx> = i
            .node
            .mempool()
            .entries()
            .into_iter()
            .map(|e| serde_json_like::PoolTx {
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

    /// Address and balances.
    #[wasm_bindgen(unchecked_return_type = "WalletView")]
    pub fn wallet(&self) -> JsValue {
        let i = self.inner.borrow();
        // Locked: the address is known, the balances are not computed (they need the wallet).
        let b = i
            .wallet
            .as_ref()
            .map(|w| w.balance(i.node.chain(), i.node.mempool()));
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        struct WalletView {
            address: String,
            confirmed: Option<String>,
            immature: Option<String>,
            pending: Option<String>,
            spending: Option<String>,
            locked: bool,
            protected: bool,
        }
        to_js(&WalletView {
            address: encode_address(i.node.chain().params().address_prefix, &i.wallet_key),
            confirmed: b.as_ref().map(|b| b.confirmed.to_string()),
            immature: b.as_ref().map(|b| b.immature.to_string()),
            pending: b.as_ref().map(|b| b.pending.to_string()),
            spending: b.as_ref().map(|b| b.spending.to_string()),
            locked: i.wallet.is_none(),
            protected: i.sealed.is_some(),
        })
    }

    /// Pays `amount` coins to `to`; returns the txid or throws a readable error.
    pub fn send(&self, to: &str, amount: &str, fee_rate: f64) -> Result<String, JsError> {
        let tx = {
            let i = self.inner.borrow();
            let prefix = i.node.chain().params().address_prefix;
            let key =
                decode_address(prefix, to).map_err(|e| JsError::new(&format!("address: {e}")))?;
            let amount = Amount::parse_coins(amount.trim()).ok_or_else(|| {
                JsError::new("amount: enter a number of coins with at most 8 decimals")
            })?;
            keyguard::unlocked(&i.wallet)?
                .pay(
                    i.node.chain(),
                    i.node.mempool(),
                    key,
                    amount,
                    fee_rate_units(fee_rate)?,
                    None,
                )
                .map_err(|e| JsError::new(&e.to_string()))?
        };
        self.submit(tx)
    }

    /// Publishes a signed post; returns the txid or throws.
    pub fn post(&self, text: &str, fee_rate: f64) -> Result<String, JsError> {
        let tx = {
            let i = self.inner.borrow();
            keyguard::unlocked(&i.wallet)?
                .post(
                    i.node.chain(),
                    i.node.mempool(),
                    text,
                    fee_rate_units(fee_rate)?,
                )
                .map_err(|e| JsError::new(&e.to_string()))?
        };
        self.submit(tx)
    }

    fn submit(&self, tx: Transaction) -> Result<String, JsError> {
        let result = self.inner.borrow_mut().node.submit_tx(tx);
        pump(&self.inner);
        result
            .map(|t| t.to_hex())
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The wallet seed as 64 hex digits (throws while the wallet is locked).
    #[wasm_bindgen(js_name = exportKey)]
    pub fn export_key(&self) -> Result<String, JsError> {
        Ok(to_hex(
            keyguard::unlocked(&self.inner.borrow().wallet)?.seed(),
        ))
    }

    /// Replaces the wallet key with `hex` (64 hex digits) and keeps it; returns the address.
    /// While the wallet has a passphrase, `sealed` is the new key sealed with it (the page's
    /// keystore): the new key is stored only that way.
    #[wasm_bindgen(js_name = importKey)]
    pub async fn import_key(
        &self,
        hex: String,
        sealed: Option<Vec<u8>>,
    ) -> Result<String, JsError> {
        let bytes = decode_hex(hex.trim()).map_err(|e| JsError::new(&format!("key: {e}")))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| JsError::new("key: expected 64 hex digits"))?;
        keyguard::replace_key(&self.inner, seed, sealed).await?;
        pump(&self.inner);
        Ok(self
            .inner
            .borrow()
            .wallet
            .as_ref()
            .map(Wallet::address)
            .unwrap_or_default())
    }

    /// A worker solved a template. Returns whether its block became the tip (false: stale
    /// or refused — an event says why).
    #[wasm_bindgen(js_name = submitHeader)]
    pub fn submit_header(&self, header: &[u8]) -> Result<bool, JsError> {
        let bytes: [u8; HEADER_SIZE] = header
            .try_into()
            .map_err(|_| JsError::new("a header has 88 bytes"))?;
        let header = BlockHeader::from_bytes(&bytes);
        feed(&self.inner, Input::MinedHeader(header));
        Ok(self.inner.borrow().node.chain().tip().hash == header.hash())
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
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        struct TxLookup {
            status: &'static str,
            height: Option<u64>,
            confirmations: Option<u64>,
            #[serde(flatten)]
            tx: TxView,
        }
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

    /// Templates are produced only while mining is on and the node is synced.
    #[wasm_bindgen(js_name = setMining)]
    pub fn set_mining(&self, on: bool) {
        {
            let mut i = self.inner.borrow_mut();
            i.mining = on;
            let key = on.then_some(i.wallet_key);
            i.node.set_mining_key(key);
        }
        pump(&self.inner);
    }

    /// Asks the browser to keep this origin's storage; returns its answer.
    #[wasm_bindgen(js_name = persistStorage)]
    pub async fn persist_storage(&self) -> bool {
        let Some(window) = web_sys::window() else {
            return false;
        };
        let storage = window.navigator().storage();
        let granted = match storage.persist() {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(p)
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            Err(_) => false,
        };
        self.inner.borrow_mut().persisted = Some(granted);
        granted
    }

    /// Resolves once every validated change is committed to IndexedDB (the page calls it
    /// on `pagehide` and when it becomes hidden); throws the store's error if a write failed.
    pub async fn flush(&self) -> Result<(), JsError> {
        let writer = self.inner.borrow().writer.clone();
        writer
            .flush()
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Closes connections and the database.
    pub fn stop(&self) {
        let mut i = self.inner.borrow_mut();
        i.ticker = None;
        i.conns.clear();
        i.mining = false;
        i.store.close();
    }
}

/// Helpers to keep the view types together.
mod serde_json_like {
    use serde::Serialize;

    #[derive(Serialize, tsify::Tsify)]
    #[tsify(missing_as_null)]
    #[serde(rename_all = "camelCase")]
    pub struct PoolTx {
        #[serde(flatten)]
        pub tx: super::TxView,
        pub size: usize,
        pub fee_rate: u64,
    }
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct InputView {
    txid: String,
    vout: u32,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct OutputView {
    address: String,
    amount: String,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct PostView {
    author: String,
    text: String,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct TxView {
    txid: String,
    coinbase: bool,
    inputs: Vec<InputView>,
    outputs: Vec<OutputView>,
    post: Option<PostView>,
    fee: Option<String>,
}

fn tx_view(t: &Transaction, prefix: &str, fee: Option<String>) -> TxView {
    TxView {
        txid: t.txid().to_hex(),
        coinbase: t.is_coinbase(),
        inputs: t
            .inputs
            .iter()
            .map(|i| InputView {
                txid: i.prev.txid.to_hex(),
                vout: i.prev.vout,
            })
            .collect(),
        outputs: t
            .outputs
            .iter()
            .map(|o| OutputView {
                address: encode_address(prefix, &o.key),
                amount: o.amount.to_string(),
            })
            .collect(),
        post: match &t.payload {
            Payload::Post(p) => Some(PostView {
                author: encode_address(prefix, &p.author),
                text: p.text.clone(),
            }),
            _ => None,
        },
        fee,
    }
}

fn coins(units: u64) -> String {
    Amount::from_units(units).unwrap_or(Amount::MAX).to_string()
}

/// The fee rate the page asks for, checked: a whole number of base units per 1000 bytes
/// from the pool's minimum relay rate up to [`MAX_FEE_RATE`].
fn fee_rate_units(rate: f64) -> Result<u64, JsError> {
    let min = tabcoin_core::mempool::DEFAULT_MIN_FEE_RATE;
    if !(rate.is_finite() && rate.fract() == 0.0) {
        return Err(JsError::new(
            "fee rate: a whole number of base units per 1000 bytes",
        ));
    }
    if rate < min as f64 {
        return Err(JsError::new(&format!(
            "fee rate: at least {min} base units per 1000 bytes (the minimum relays accept)"
        )));
    }
    if rate > MAX_FEE_RATE as f64 {
        return Err(JsError::new(&format!(
            "fee rate: at most {MAX_FEE_RATE} base units per 1000 bytes (1 coin per 1000 bytes)"
        )));
    }
    Ok(rate as u64)
}

/// When the node dials `url` again: its backoff, but no sooner than its next tick.
fn redial_in(inner: &Rc<RefCell<Inner>>, url: &str) -> Option<u64> {
    inner
        .borrow()
        .node
        .redial_in_ms(url)
        .map(|ms| ms.max(TICK_MS))
}

/// How often the node ticks (timers, redials, template refresh).
const TICK_MS: u64 = 1_000;

fn emit(inner: &Rc<RefCell<Inner>>, ev: &NodeEvent) {
    let f = inner.borrow().on_event.clone();
    if let Some(f) = f {
        let _ = f.call1(&JsValue::NULL, &to_js(ev));
    }
}

/// Feeds one input and carries out what the node asks.
fn feed(inner: &Rc<RefCell<Inner>>, input: Input) {
    inner.borrow_mut().node.handle(now_ms(), input);
    pump(inner);
}

/// Drains the node's outputs. The node is borrowed only while collecting; JS callbacks run
/// after, so they may call back into the node.
fn pump(inner: &Rc<RefCell<Inner>>) {
    let mut events = Vec::new();
    let mut templates = Vec::new();
    let mut dials = Vec::new();
    let mut slow = Vec::new();
    let mut loads = Vec::new();
    let mut verifies = Vec::new();
    {
        let mut i = inner.borrow_mut();
        while let Some(out) = i.node.poll_output() {
            match out {
                Output::Send { peer, bytes } => {
                    if let Some(c) = i.conns.get(&peer) {
                        match c.queue.admit(bytes.len()) {
                            Ok(()) => {
                                if c.tx.unbounded_send(bytes.to_vec()).is_err() {
                                    c.queue.sent(bytes.len());
                                }
                            }
                            Err(full) => {
                                // A relay that does not read: drop it, as the relay does.
                                if let Some(c) = i.conns.remove(&peer) {
                                    c.queue.close();
                                    slow.push((peer, c.url, full));
                                }
                            }
                        }
                    }
                }
                Output::Disconnect { peer, reason } => {
                    if let Some(c) = i.conns.remove(&peer) {
                        events.push(NodeEvent::Connection {
                            state: ConnState::Closed,
                            url: c.url,
                            retry_in_ms: None,
                        });
                    }
                    if matches!(reason, tabcoin_core::node::DisconnectReason::Misbehaved(_)) {
                        events.push(NodeEvent::Banned {
                            reason: reason.to_string(),
                        });
                    }
                }
                Output::Dial { url } => dials.push(url),
                Output::LoadBlock(hash) => loads.push(hash),
                Output::VerifySigs { ticket, job } => verifies.push((ticket, job)),
                Output::Persist(cs) => {
                    if i.store_failed.is_none() {
                        i.writer.push(cs);
                    }
                }
                Output::Event(e) => {
                    if let Some(js) = event_view(&mut i, e) {
                        events.push(js);
                    }
                }
                Output::Template(t) => {
                    i.generation += 1;
                    if i.mining {
                        templates.push((t, i.generation));
                    }
                }
            }
        }
    }
    for (peer, url, full) in slow {
        web_sys::console::warn_1(&format!("tabcoin: dropping the relay {url}: {full}").into());
        feed(inner, Input::Disconnected { peer });
        emit(
            inner,
            &NodeEvent::Connection {
                state: ConnState::Closed,
                retry_in_ms: redial_in(inner, &url),
                url,
            },
        );
    }
    for url in dials {
        dial(inner, url);
    }
    for hash in loads {
        loads::answer(inner, hash);
    }
    verify::answer_in_place(inner, verifies);
    for e in &events {
        emit(inner, e);
    }
    let f = inner.borrow().on_template.clone();
    if let Some(f) = f {
        for (t, generation) in templates {
            let obj = js_sys::Object::new();
            let _ = Reflect::set(
                &obj,
                &"header".into(),
                &Uint8Array::from(&t.block.header.to_bytes()[..]),
            );
            let _ = Reflect::set(
                &obj,
                &"height".into(),
                &JsValue::from_f64(t.height.0 as f64),
            );
            let _ = Reflect::set(
                &obj,
                &"reward".into(),
                &JsValue::from_str(&t.reward.to_string()),
            );
            let _ = Reflect::set(
                &obj,
                &"generation".into(),
                &JsValue::from_f64(generation as f64),
            );
            let _ = f.call1(&JsValue::NULL, &obj);
        }
    }
}

fn event_view(i: &mut Inner, e: Event) -> Option<NodeEvent> {
    Some(match e {
        Event::TipChanged {
            hash,
            height,
            disconnected,
        } => NodeEvent::Tip {
            height: height.0,
            hash: hash.to_hex(),
            disconnected,
        },
        Event::SyncProgress { height, target } => {
            i.sync_target = target;
            NodeEvent::Sync {
                height: height.0,
                target: target.0,
            }
        }
        Event::Synced { height } => {
            if !i.writer.within_synced_slack() {
                // Said once the queue drains (on_store_notice).
                i.synced_pending = Some(height);
                return None;
            }
            NodeEvent::Synced { height: height.0 }
        }
        Event::PeerConnected { peer, kind, .. } => NodeEvent::Peer {
            connected: true,
            id: peer,
            peer_kind: Some(format!("{kind:?}").to_lowercase()),
        },
        Event::PeerDisconnected { peer } => NodeEvent::Peer {
            connected: false,
            id: peer,
            peer_kind: None,
        },
        Event::TxAccepted { txid } => NodeEvent::Tx {
            txid: txid.to_hex(),
            accepted: true,
            error: None,
        },
        Event::TxRejected { txid, error } => NodeEvent::Tx {
            txid: txid.to_hex(),
            accepted: false,
            error: Some(error.to_string()),
        },
        Event::BlockRejected { hash, reason } => NodeEvent::BlockRejected {
            hash: hash.to_hex(),
            reason,
        },
        _ => return None,
    })
}

/// After each write: a held-back Synced event once few blocks are unstored; a failure
/// stops writing and is shown.
fn on_store_notice(inner: &Rc<RefCell<Inner>>, notice: &Notice) {
    match notice {
        Notice::Stored { .. } => {
            let synced = {
                let mut i = inner.borrow_mut();
                if i.writer.within_synced_slack() {
                    i.synced_pending.take()
                } else {
                    None
                }
            };
            if let Some(height) = synced {
                emit(inner, &NodeEvent::Synced { height: height.0 });
            }
        }
        Notice::Failed(e) => store_failed(inner, e),
    }
}

/// Later writes would build on a state the database does not have: stop, keep running in
/// memory, and say so. The next start resumes from the last complete write and syncs the rest.
fn store_failed(inner: &Rc<RefCell<Inner>>, e: &StoreError) {
    {
        let mut i = inner.borrow_mut();
        if i.store_failed.is_some() {
            return;
        }
        i.store_failed = Some(e.to_string());
    }
    emit(
        inner,
        &NodeEvent::Store {
            error: Some(e.to_string()),
            quota_exceeded: *e == StoreError::QuotaExceeded,
            repaired: None,
        },
    );
}

fn dial(inner: &Rc<RefCell<Inner>>, url: String) {
    let (tx, rx) = unbounded();
    let queue = sendq::SendQueue::default();
    let peer = {
        let mut i = inner.borrow_mut();
        let p = i.next_peer;
        i.next_peer += 1;
        i.conns.insert(
            p,
            Conn {
                url: url.clone(),
                tx,
                queue: queue.clone(),
            },
        );
        p
    };
    spawn_local(run_conn(Rc::downgrade(inner), peer, url, rx, queue));
}

async fn run_conn(
    weak: Weak<RefCell<Inner>>,
    peer: PeerId,
    url: String,
    mut rx: UnboundedReceiver<Vec<u8>>,
    queue: sendq::SendQueue,
) {
    let with = |f: &dyn Fn(&Rc<RefCell<Inner>>)| {
        if let Some(inner) = weak.upgrade() {
            f(&inner);
        }
    };
    with(&|inner| {
        emit(
            inner,
            &NodeEvent::Connection {
                state: ConnState::Connecting,
                url: url.clone(),
                retry_in_ms: None,
            },
        )
    });
    let failed = |weak: &Weak<RefCell<Inner>>| {
        if let Some(inner) = weak.upgrade() {
            let known = inner.borrow_mut().conns.remove(&peer).is_some();
            if known {
                feed(&inner, Input::DialFailed { url: url.clone() });
            }
            emit(
                &inner,
                &NodeEvent::Connection {
                    state: ConnState::Closed,
                    url: url.clone(),
                    retry_in_ms: redial_in(&inner, &url),
                },
            );
        }
    };
    // The socket itself stays reachable so its `bufferedAmount` counts against the budget.
    let Ok(raw) = web_sys::WebSocket::new(&url) else {
        failed(&weak);
        return;
    };
    queue.attach(raw.clone());
    let Ok(ws) = WebSocket::try_from(raw) else {
        failed(&weak);
        return;
    };
    let mut waited = 0;
    loop {
        match ws.state() {
            WsState::Open => break,
            WsState::Connecting if waited < 10_000 => {
                TimeoutFuture::new(25).await;
                waited += 25;
            }
            _ => {
                failed(&weak);
                return;
            }
        }
    }
    let (mut sink, mut stream) = ws.split();
    let Some(inner) = weak.upgrade() else { return };
    if !inner.borrow().conns.contains_key(&peer) {
        return;
    }
    feed(
        &inner,
        Input::Connected {
            peer,
            outbound: true,
            remote: url.clone(),
        },
    );
    emit(
        &inner,
        &NodeEvent::Connection {
            state: ConnState::Open,
            url: url.clone(),
            retry_in_ms: None,
        },
    );
    drop(inner);
    spawn_local(async move {
        while let Some(bytes) = rx.next().await {
            let len = bytes.len();
            let sent = sink.send(WsMessage::Bytes(bytes)).await;
            queue.sent(len);
            if sent.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(WsMessage::Bytes(b)) => {
                // Back-pressure: while the store lags, peers' messages wait here (the node
                // requests nothing more meanwhile), so validation stays within the write
                // queue's high-water mark of storage.
                let writer = match weak.upgrade() {
                    Some(inner) => inner.borrow().writer.clone(),
                    None => return,
                };
                writer.room().await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.borrow().conns.contains_key(&peer) {
                    break;
                }
                feed(&inner, Input::Received { peer, bytes: b });
            }
            Ok(WsMessage::Text(_)) => {}
            Err(_) => break,
        }
    }
    if let Some(inner) = weak.upgrade() {
        let known = inner.borrow_mut().conns.remove(&peer).is_some();
        if known {
            feed(&inner, Input::Disconnected { peer });
        }
        emit(
            &inner,
            &NodeEvent::Connection {
                state: ConnState::Closed,
                url: url.clone(),
                retry_in_ms: redial_in(&inner, &url),
            },
        );
    }
}

/// The proof-of-work search a Web Worker runs: one nonce slice of a template header.
#[wasm_bindgen]
#[derive(Debug)]
pub struct MinerJob {
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    job: tabcoin_core::miner::MinerJob,
    /// With simd128 (`-C target-feature=+simd128`): the 4-wide kernel, same semantics.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    job: simd::SimdJob,
}

#[wasm_bindgen]
impl MinerJob {
    #[wasm_bindgen(constructor)]
    pub fn new(header: &[u8], worker: u32, workers: u32) -> Result<MinerJob, JsError> {
        let bytes: [u8; HEADER_SIZE] = header
            .try_into()
            .map_err(|_| JsError::new("a header has 88 bytes"))?;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        use simd::SimdJob as Job;
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        use tabcoin_core::miner::MinerJob as Job;
        let job = Job::new(
            BlockHeader::from_bytes(&bytes),
            NonceRange::slice(worker, workers),
        )
        .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(MinerJob { job })
    }

    /// Tries up to `nonces` nonces; the solved 88-byte header, or undefined.
    pub fn step(&mut self, nonces: u32) -> Option<Vec<u8>> {
        match self.job.step(u64::from(nonces)) {
            Step::Found(h) => Some(h.to_bytes().to_vec()),
            Step::Continue | Step::Exhausted => None,
        }
    }

    #[wasm_bindgen(getter)]
    pub fn hashes(&self) -> f64 {
        self.job.hashes() as f64
    }
}

/// The crate version (for the page footer).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
