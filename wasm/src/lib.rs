//! `tabcoin-wasm`: the browser full node. A thin adapter that hosts the core [`Node`]
//! unchanged in a tab: a JS-facing facade ([`BrowserNode`]), the store on IndexedDB
//! ([`idb`]), WebSocket connections (gloo-net), and the miner entry for Web Workers
//! ([`MinerJob`]). Every rule and every decision about peers stays in `tabcoin-core`.

#![allow(clippy::unused_unit)] // wasm-bindgen expansions

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::{SinkExt, StreamExt};
use gloo::net::websocket::{Message as WsMessage, State as WsState, futures::WebSocket};
use gloo::timers::callback::Interval;
use gloo::timers::future::TimeoutFuture;
use js_sys::{Function, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::hash::{decode_hex, to_hex};
use tabcoin_core::miner::{NonceRange, Step};
use tabcoin_core::node::{Event, Input, Node, NodeConfig, Output, PeerId};
use tabcoin_core::params::{Network, Params};
use tabcoin_core::primitives::{BlockHash, BlockHeader, HEADER_SIZE, Payload, Transaction, Txid};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::units::{Amount, Height};
use tabcoin_core::wallet::{Wallet, decode_address, encode_address};
use tabcoin_core::wire::NodeKind;

pub mod bench;
pub mod idb;
mod loads;
pub mod simd;
use idb::{IdbStore, StoreError};

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
}

struct Inner {
    node: Node,
    store: IdbStore,
    wallet: Wallet,
    relay: String,
    conns: HashMap<PeerId, Conn>,
    next_peer: PeerId,
    writes: VecDeque<ChangeSet>,
    writing: bool,
    store_failed: Option<String>,
    on_event: Option<Function>,
    on_template: Option<Function>,
    mining: bool,
    generation: u64,
    ticker: Option<Interval>,
    persisted: Option<bool>,
    sync_target: Height,
}

/// Events as the page sees them (`ev.kind` plus fields).
#[derive(Serialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
enum JsEvent {
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
        #[serde(rename = "peerKind")]
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
        state: &'static str,
        url: String,
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

/// Replays stored blocks that still decode into a fresh chain (parents first), producing
/// the state that is valid. Used when the stored state is damaged.
fn rebuild(params: &Params, blocks: Vec<tabcoin_core::primitives::Block>) -> (ChangeSet, usize) {
    let mut chain = Chain::new(params.clone());
    let mut pending = blocks;
    let mut all = ChangeSet::default();
    loop {
        let before = pending.len();
        pending.retain(|b| {
            if chain.entry(&b.header.prev).is_none() {
                return true;
            }
            if let Ok(out) = chain.accept_block(b, u64::MAX / 4) {
                all.merge(out.changes);
            }
            false
        });
        if pending.len() == before {
            break;
        }
    }
    (all, chain.height().0 as usize)
}

#[wasm_bindgen]
impl BrowserNode {
    /// Opens the store, loads (or repairs) the chain and connects to `opts.relay`.
    pub async fn start(opts: JsValue) -> Result<BrowserNode, JsError> {
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
        let wallet_seed: [u8; 32] = match store
            .meta("wallet")
            .await
            .map_err(|e| JsError::new(&e.to_string()))?
        {
            Some(s) if s.len() == 32 => {
                s.try_into().map_err(|_| JsError::new("bad wallet seed"))?
            }
            _ => {
                let s = random_seed()?;
                store
                    .put_meta("wallet", &s)
                    .await
                    .map_err(|e| JsError::new(&e.to_string()))?;
                s
            }
        };
        let mut config = NodeConfig::new(NodeKind::Browser, identity);
        config.bootstrap = vec![relay.clone()];
        config.target_outbound = 2;
        config.agent = format!("tabcoin-browser/{}", env!("CARGO_PKG_VERSION"));

        let mut repaired = None;
        let node = match store.load().await {
            Ok(cs) => match Node::new(config.clone(), params.clone(), cs) {
                Ok(n) => Ok(n),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let node = match node {
            Ok(n) => n,
            Err(damage) => {
                // Keep every block that still decodes and validates; recompute the rest.
                let blocks = store.valid_blocks().await.unwrap_or_default();
                let (cs, height) = rebuild(&params, blocks);
                store
                    .clear_chain()
                    .await
                    .map_err(|e| JsError::new(&e.to_string()))?;
                store
                    .persist(&cs)
                    .await
                    .map_err(|e| JsError::new(&e.to_string()))?;
                repaired = Some(format!(
                    "{damage}; rebuilt from stored blocks up to height {height}"
                ));
                Node::new(config, params.clone(), cs).map_err(|e| JsError::new(&e.to_string()))?
            }
        };
        let inner = Rc::new(RefCell::new(Inner {
            node,
            store,
            wallet: Wallet::from_seed(wallet_seed, params.address_prefix),
            relay,
            conns: HashMap::new(),
            next_peer: 1,
            writes: VecDeque::new(),
            writing: false,
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
                &JsEvent::Store {
                    error: None,
                    quota_exceeded: false,
                    repaired: Some(r),
                },
            );
        }
        let weak = Rc::downgrade(&inner);
        let ticker = Interval::new(1_000, move || {
            if let Some(inner) = weak.upgrade() {
                feed(&inner, Input::Tick);
            }
        });
        inner.borrow_mut().ticker = Some(ticker);
        feed(&inner, Input::Tick);
        Ok(BrowserNode { inner })
    }

    /// Height, tip, peers, sync and storage state.
    pub fn status(&self) -> JsValue {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let tip = chain.tip();
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Peer {
            id: u64,
            kind: String,
            url: Option<String>,
            outbound: bool,
            height: u64,
        }
        #[derive(Serialize)]
        struct Mempool {
            count: usize,
            bytes: usize,
        }
        #[derive(Serialize)]
        struct Storage {
            persisted: Option<bool>,
            error: Option<String>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Status {
            network: &'static str,
            height: u64,
            tip: String,
            synced: bool,
            sync_target: u64,
            connected: bool,
            relay: String,
            peers: Vec<Peer>,
            known_relays: Vec<String>,
            mempool: Mempool,
            hashrate: f64,
            node_id: String,
            mining: bool,
            storage: Storage,
        }
        let peers: Vec<Peer> = i
            .node
            .peers()
            .into_iter()
            .map(|p| Peer {
                id: p.id,
                kind: format!("{:?}", p.kind).to_lowercase(),
                // A relay we dialed is at the URL we dialed, advertised or not.
                url: p.url.or_else(|| p.outbound.then(|| p.remote.clone())),
                outbound: p.outbound,
                height: p.best_height.0,
            })
            .collect();
        to_js(&Status {
            network: chain.params().name,
            height: tip.height.0,
            tip: tip.hash.to_hex(),
            synced: i.node.is_synced(),
            sync_target: chain.best_header().height.0.max(i.sync_target.0),
            connected: !peers.is_empty(),
            relay: i.relay.clone(),
            peers,
            known_relays: i.node.known_nodes().into_iter().map(|r| r.url).collect(),
            mempool: Mempool {
                count: i.node.mempool().len(),
                bytes: i.node.mempool().bytes(),
            },
            hashrate: chain.hashrate_estimate(60),
            node_id: i.node.node_id().to_string(),
            mining: i.mining,
            storage: Storage {
                persisted: i.persisted,
                error: i.store_failed.clone(),
            },
        })
    }

    /// The newest `limit` blocks of the active chain.
    pub fn blocks(&self, limit: usize) -> JsValue {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let prefix = chain.params().address_prefix;
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Row {
            height: u64,
            hash: String,
            time: u64,
            tx_count: usize,
            size: usize,
            miner: Option<String>,
            reward: String,
        }
        let rows: Vec<Row> = (0..=chain.height().0)
            .rev()
            .take(limit.min(500))
            .filter_map(|h| {
                let hash = chain.hash_at(Height(h))?;
                let b = chain.block(&hash)?;
                let cb = b.txs.first()?;
                Some(Row {
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
        #[derive(Serialize)]
        struct BlockView {
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
        to_js(&BlockView {
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
    pub fn feed(&self, limit: usize) -> JsValue {
        let i = self.inner.borrow();
        let chain = i.node.chain();
        let prefix = chain.params().address_prefix;
        #[derive(Serialize)]
        struct Item {
            txid: String,
            author: String,
            text: String,
            height: Option<u64>,
            time: u64,
        }
        let mut items: Vec<Item> = Vec::new();
        let now = now_ms() / 1000;
        for e in i.node.mempool().entries().into_iter().rev() {
            if let Some(p) = e.tx.post() {
                items.push(Item {
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
                    items.push(Item {
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
    pub fn wallet(&self) -> JsValue {
        let i = self.inner.borrow();
        let b = i.wallet.balance(i.node.chain(), i.node.mempool());
        #[derive(Serialize)]
        struct W {
            address: String,
            confirmed: String,
            immature: String,
            pending: String,
            spending: String,
        }
        to_js(&W {
            address: i.wallet.address(),
            confirmed: b.confirmed.to_string(),
            immature: b.immature.to_string(),
            pending: b.pending.to_string(),
            spending: b.spending.to_string(),
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
            i.wallet
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
            i.wallet
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

    /// The wallet seed as 64 hex digits.
    #[wasm_bindgen(js_name = exportKey)]
    pub fn export_key(&self) -> String {
        to_hex(self.inner.borrow().wallet.seed())
    }

    /// Replaces the wallet key with `hex` (64 hex digits) and keeps it; returns the address.
    #[wasm_bindgen(js_name = importKey)]
    pub async fn import_key(&self, hex: String) -> Result<String, JsError> {
        let bytes = decode_hex(hex.trim()).map_err(|e| JsError::new(&format!("key: {e}")))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| JsError::new("key: expected 64 hex digits"))?;
        let store = self.inner.borrow().store.clone();
        store
            .put_meta("wallet", &seed)
            .await
            .map_err(|e| JsError::new(&e.to_string()))?;
        let address = {
            let mut i = self.inner.borrow_mut();
            let prefix = i.node.chain().params().address_prefix;
            i.wallet = Wallet::from_seed(seed, prefix);
            if i.mining {
                let k = i.wallet.public_key();
                i.node.set_mining_key(Some(k));
            }
            i.wallet.address()
        };
        pump(&self.inner);
        Ok(address)
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

    /// A transaction from the pool or the last 2,000 blocks, with its status; or null.
    pub fn tx(&self, txid: &str) -> JsValue {
        let i = self.inner.borrow();
        let Ok(id) = Txid::from_hex(txid) else {
            return JsValue::NULL;
        };
        let chain = i.node.chain();
        let prefix = chain.params().address_prefix;
        #[derive(Serialize)]
        struct Found {
            status: &'static str,
            height: Option<u64>,
            confirmations: Option<u64>,
            #[serde(flatten)]
            tx: TxView,
        }
        if let Some(e) = i.node.mempool().get(&id) {
            let tx = tx_view(&e.tx, prefix, Some(coins(e.fee.units())));
            return to_js(&Found {
                status: "mempool",
                height: None,
                confirmations: None,
                tx,
            });
        }
        let tip = chain.height().0;
        for h in (1..=tip).rev().take(2_000) {
            let Some(b) = chain.hash_at(Height(h)).and_then(|x| chain.block(&x)) else {
                continue;
            };
            if let Some(t) = b.txs.iter().find(|t| t.txid() == id) {
                let tx = tx_view(t, prefix, None);
                return to_js(&Found {
                    status: "confirmed",
                    height: Some(h),
                    confirmations: Some(tip - h + 1),
                    tx,
                });
            }
        }
        JsValue::NULL
    }

    /// Templates are produced only while mining is on and the node is synced.
    #[wasm_bindgen(js_name = setMining)]
    pub fn set_mining(&self, on: bool) {
        {
            let mut i = self.inner.borrow_mut();
            i.mining = on;
            let key = on.then(|| i.wallet.public_key());
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

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PoolTx {
        #[serde(flatten)]
        pub tx: super::TxView,
        pub size: usize,
        pub fee_rate: u64,
    }
}

#[derive(Serialize)]
struct InputView {
    txid: String,
    vout: u32,
}

#[derive(Serialize)]
struct OutputView {
    address: String,
    amount: String,
}

#[derive(Serialize)]
struct PostView {
    author: String,
    text: String,
}

#[derive(Serialize)]
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

fn fee_rate_units(rate: f64) -> Result<u64, JsError> {
    if !(rate.is_finite() && (0.0..=1e12).contains(&rate)) {
        return Err(JsError::new(
            "fee rate: a number of base units per 1000 bytes",
        ));
    }
    Ok(rate as u64)
}

fn emit(inner: &Rc<RefCell<Inner>>, ev: &JsEvent) {
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
    let mut loads = Vec::new();
    {
        let mut i = inner.borrow_mut();
        while let Some(out) = i.node.poll_output() {
            match out {
                Output::Send { peer, bytes } => {
                    if let Some(c) = i.conns.get(&peer) {
                        let _ = c.tx.unbounded_send(bytes.to_vec());
                    }
                }
                Output::Disconnect { peer, reason } => {
                    if let Some(c) = i.conns.remove(&peer) {
                        events.push(JsEvent::Connection {
                            state: "closed",
                            url: c.url,
                        });
                    }
                    if matches!(reason, tabcoin_core::node::DisconnectReason::Misbehaved(_)) {
                        events.push(JsEvent::Banned {
                            reason: reason.to_string(),
                        });
                    }
                }
                Output::Dial { url } => dials.push(url),
                Output::LoadBlock(hash) => loads.push(hash),
                Output::Persist(cs) => {
                    if i.store_failed.is_none() {
                        i.writes.push_back(cs);
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
    for url in dials {
        dial(inner, url);
    }
    kick_writer(inner);
    for hash in loads {
        loads::answer(inner, hash);
    }
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

fn event_view(i: &mut Inner, e: Event) -> Option<JsEvent> {
    Some(match e {
        Event::TipChanged {
            hash,
            height,
            disconnected,
        } => JsEvent::Tip {
            height: height.0,
            hash: hash.to_hex(),
            disconnected,
        },
        Event::SyncProgress { height, target } => {
            i.sync_target = target;
            JsEvent::Sync {
                height: height.0,
                target: target.0,
            }
        }
        Event::Synced { height } => JsEvent::Synced { height: height.0 },
        Event::PeerConnected { peer, kind, .. } => JsEvent::Peer {
            connected: true,
            id: peer,
            peer_kind: Some(format!("{kind:?}").to_lowercase()),
        },
        Event::PeerDisconnected { peer } => JsEvent::Peer {
            connected: false,
            id: peer,
            peer_kind: None,
        },
        Event::TxAccepted { txid } => JsEvent::Tx {
            txid: txid.to_hex(),
            accepted: true,
            error: None,
        },
        Event::TxRejected { txid, error } => JsEvent::Tx {
            txid: txid.to_hex(),
            accepted: false,
            error: Some(error.to_string()),
        },
        Event::BlockRejected { hash, reason } => JsEvent::BlockRejected {
            hash: hash.to_hex(),
            reason,
        },
        _ => return None,
    })
}

/// Writes queued ChangeSets one at a time, in order, each in one transaction.
fn kick_writer(inner: &Rc<RefCell<Inner>>) {
    {
        let mut i = inner.borrow_mut();
        if i.writing || i.writes.is_empty() {
            return;
        }
        i.writing = true;
    }
    let inner = inner.clone();
    spawn_local(async move {
        loop {
            let (store, cs) = {
                let mut i = inner.borrow_mut();
                match i.writes.pop_front() {
                    Some(cs) => (i.store.clone(), cs),
                    None => {
                        i.writing = false;
                        return;
                    }
                }
            };
            if let Err(e) = store.persist(&cs).await {
                // Later writes would build on a state the database does not have: stop,
                // keep running in memory, and say so. The next start resumes from the
                // last complete write and syncs the rest.
                let quota = e == StoreError::QuotaExceeded;
                {
                    let mut i = inner.borrow_mut();
                    i.store_failed = Some(e.to_string());
                    i.writes.clear();
                    i.writing = false;
                }
                emit(
                    &inner,
                    &JsEvent::Store {
                        error: Some(e.to_string()),
                        quota_exceeded: quota,
                        repaired: None,
                    },
                );
                return;
            }
        }
    });
}

fn dial(inner: &Rc<RefCell<Inner>>, url: String) {
    let (tx, rx) = unbounded();
    let peer = {
        let mut i = inner.borrow_mut();
        let p = i.next_peer;
        i.next_peer += 1;
        i.conns.insert(
            p,
            Conn {
                url: url.clone(),
                tx,
            },
        );
        p
    };
    spawn_local(run_conn(Rc::downgrade(inner), peer, url, rx));
}

async fn run_conn(
    weak: Weak<RefCell<Inner>>,
    peer: PeerId,
    url: String,
    mut rx: UnboundedReceiver<Vec<u8>>,
) {
    let with = |f: &dyn Fn(&Rc<RefCell<Inner>>)| {
        if let Some(inner) = weak.upgrade() {
            f(&inner);
        }
    };
    with(&|inner| {
        emit(
            inner,
            &JsEvent::Connection {
                state: "connecting",
                url: url.clone(),
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
                &JsEvent::Connection {
                    state: "closed",
                    url: url.clone(),
                },
            );
        }
    };
    let Ok(ws) = WebSocket::open(&url) else {
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
        &JsEvent::Connection {
            state: "open",
            url: url.clone(),
        },
    );
    drop(inner);
    spawn_local(async move {
        while let Some(bytes) = rx.next().await {
            if sink.send(WsMessage::Bytes(bytes)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(WsMessage::Bytes(b)) => {
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
            &JsEvent::Connection {
                state: "closed",
                url: url.clone(),
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
