//! `tabcoin-wasm`: the browser full node. A thin adapter that hosts the core [`Node`]
//! unchanged in a tab: a JS-facing facade ([`BrowserNode`]), the store on IndexedDB
//! ([`idb`]), WebSocket connections (gloo-net), and the miner entry for Web Workers
//! ([`MinerJob`]). Every rule and every decision about peers stays in `tabcoin-core`.

#![allow(clippy::unused_unit)] // wasm-bindgen expansions

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gloo::timers::callback::Interval;
use js_sys::{Function, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use tabcoin_core::node::{Input, Node, NodeConfig, PeerId};
use tabcoin_core::params::{Network, Params};
use tabcoin_core::primitives::{BlockHash, BlockHeader, HEADER_SIZE};
use tabcoin_core::sig::PublicKey;
use tabcoin_core::units::Height;
use tabcoin_core::wallet::Wallet;
use tabcoin_core::wire::NodeKind;

pub mod bench;
mod conn;
mod driver;
mod events;
mod explorer;
pub mod idb;
mod keyguard;
mod loads;
mod miner;
pub mod prune;
pub mod queue;
pub mod repair;
pub mod sendq;
pub mod simd;
mod status;
mod verify;
mod views;
mod wallet_api;

use conn::Conn;
use driver::{TICK_MS, on_store_notice, store_failed};
pub(crate) use driver::{emit, feed, pump};
use events::NodeEvent;
use idb::{IdbStore, StoreError};
pub use miner::MinerJob;
use queue::{Limits, Writer};

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
    /// The wake the node asked for a held mining template (`Node::mining_wake_ms`).
    mining_wake: Option<u64>,
    persisted: Option<bool>,
    sync_target: Height,
    /// The UTXO digest (`UtxoSet::digest`, CONSENSUS.md) of a tip, and when it was computed
    /// (ms): O(coins) to compute, so `status()` recomputes it when the tip moved, and on a
    /// set above [`DIGEST_EVERY_TIP_MAX_COINS`] at most once a minute (as the relay does).
    utxo_digest: std::cell::Cell<Option<(BlockHash, tabcoin_core::hash::Hash256, f64)>>,
    /// The page's signature verification pool (`onVerify`), if any.
    verifier: verify::Verifier,
}

/// Up to this many coins (about 1 MB to hash) `status()` recomputes the UTXO digest at each
/// new tip; above it at most once a minute (the relay's `/api/status` does the same).
const DIGEST_EVERY_TIP_MAX_COINS: usize = 10_000;

#[wasm_bindgen(typescript_custom_section)]
const TS_START: &str = r#"
/** What `BrowserNode.start` takes. */
export interface StartOptions {
    relay: string;
    network: "main" | "test";
    dbName?: string;
    /** Byte budget of stored block bodies; 0 keeps every body; absent: sized from the quota. */
    pruneBytes?: number;
    onEvent?: (ev: NodeEvent) => void;
    onTemplate?: (t: MiningTemplate) => void;
    /** Signature jobs for a pool of workers (web/verify-pool.js): `chunks` are encoded
     * `VerifyChunk`s; answer with `BrowserNode.sigsVerified(ticket, results)`, or return
     * false to have the node verify the job itself. */
    onVerify?: (ticket: number, chunks: Uint8Array[]) => boolean;
    /** Workers of that pool (the node splits jobs for them); 0 or absent: no pool. */
    verifyWorkers?: number;
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
        config.prune_bytes = prune::budget(&opts).await;
        let verifier = verify::Verifier::from_opts(&opts);
        config.parallel_verify = verifier.enabled();

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
            mining_wake: None,
            persisted: None,
            sync_target: Height(0),
            utxo_digest: std::cell::Cell::new(None),
            verifier,
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
        // The writer folds the store's UTXO log into snapshots of the node's set.
        let weak = Rc::downgrade(&inner);
        writer.set_snapshot_source(Rc::new(move |stored_tip| {
            let inner = weak.upgrade()?;
            let i = inner.try_borrow().ok()?;
            // Only the set of the stored tip is the stored set.
            if stored_tip != Some(i.node.chain().tip().hash) {
                return None;
            }
            Some(idb::snapshot_chunks(i.node.chain().utxo().iter()))
        }));
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

/// The crate version (for the page footer).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
