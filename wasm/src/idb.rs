//! The node's store on IndexedDB: one readwrite transaction per ChangeSet spanning every
//! object store, committed explicitly, with nothing but IndexedDB requests awaited inside it.
//! The schema is versioned (`SCHEMA_VERSION`, layout in docs/STORAGE.md); upgrades add stores
//! and fill them inside the upgrade transaction, so an interrupted upgrade leaves the old
//! version whole. Start-up ([`IdbStore::load`]) reads headers, the UTXO set, invalid marks,
//! relays, bans and the tip, and the bodies of only the newest [`WARM_BLOCKS`] active
//! blocks (a cache warm-up). When another tab
//! opens a newer version (or deletes the database), this one closes its connection at once
//! (`onversionchange`) so it does not block that tab, and every later write fails with
//! [`StoreError::Closed`] (the page tells the user to reload).

mod read;
mod utxo;
mod write;

pub use utxo::{SNAPSHOT_CHUNK, UtxoSizes, snapshot_chunks};

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Promise, Uint8Array};
use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::primitives::{Block, BlockHash, Txid};
use tabcoin_core::utxo::BlockUndo;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

/// Bump when a store is added or a record's layout changes; `upgrade` creates whatever is
/// missing and fills it. 1: blocks, invalid, utxo, undo, nodes, meta. 2: + headers, bans,
/// txindex. 3: `headers` and `txindex` also hold chunks (one record per write, numeric keys;
/// `txindex` with a multi-entry index `txids`) and a `blocks` record may carry its block's
/// undo data after the body; version-2 records stay valid, so the upgrade only creates the
/// index (and a version-2 tab cannot open the database and misread the new records).
/// 4: `utxo` holds log and snapshot chunks (numeric keys, `idb/utxo.rs`) instead of one
/// record per coin; per-coin records stay valid until the first snapshot clears them, so the
/// upgrade changes nothing stored (and a version-3 tab cannot open the database).
pub const SCHEMA_VERSION: u32 = 4;

/// One entry of a `headers` chunk: the header, then its body's encoded size (u32 LE; 0: no
/// body stored, as no block encodes to 0 bytes).
pub(crate) const CHUNK_ENTRY: usize = tabcoin_core::primitives::HEADER_SIZE + 4;

fn chunk_entry(chunk: &mut Vec<u8>, h: &tabcoin_core::primitives::BlockHeader, size: u32) {
    chunk.extend_from_slice(&h.to_bytes());
    chunk.extend_from_slice(&size.to_le_bytes());
}

/// A `blocks` record: the body, then (schema 3, when the body was written with it) the
/// block's undo data. Undo data is a function of the block alone (the coins its inputs
/// spend, fixed by its ancestry), so a copy kept here after the block left the active chain
/// is still right if it comes back.
pub fn decode_body(
    v: &[u8],
) -> Result<(Block, Option<BlockUndo>), tabcoin_core::encode::DecodeError> {
    let mut r = tabcoin_core::encode::Reader::new(v);
    let b = Block::decode_from(&mut r)?;
    let u = if r.remaining() > 0 {
        Some(BlockUndo::decode_from(&mut r)?)
    } else {
        None
    };
    r.finish()?;
    Ok((b, u))
}
const STORES: [&str; 9] = [
    "blocks", "headers", "invalid", "utxo", "undo", "nodes", "bans", "txindex", "meta",
];

/// Bodies read at start-up to fill the cache: the newest active blocks, as many as the page
/// lists (15) and one more.
pub const WARM_BLOCKS: usize = 16;

thread_local! {
    /// Block bodies read from the `blocks` store by this thread (tests count start-up reads).
    static BODY_READS: Cell<u64> = const { Cell::new(0) };
}

/// How many block bodies this thread has read from IndexedDB so far.
pub fn body_reads() -> u64 {
    BODY_READS.with(Cell::get)
}

fn count_body_reads(n: usize) {
    BODY_READS.with(|c| c.set(c.get() + n as u64));
}

/// The `txindex` key of transaction `txid` in block `block`: both in hex, txid first, so
/// every block holding a txid is one key range.
pub fn txindex_key(txid: &Txid, block: &BlockHash) -> String {
    let mut k = txid.to_hex();
    k.push_str(&block.to_hex());
    k
}

/// A `headers` record: the header, then the body's encoded size (u32 LE) while the body is
/// stored, so a pruned node knows what its kept bodies weigh without reading them
/// (`ChangeSet::sizes` at load).
fn header_record(h: &tabcoin_core::primitives::BlockHeader, size: Option<u32>) -> Vec<u8> {
    let mut record = h.to_bytes().to_vec();
    if let Some(n) = size {
        record.extend_from_slice(&n.to_le_bytes());
    }
    record
}

/// Puts the header and the transaction index entries of `b` (in the same transaction as
/// its body).
fn put_indexes(tx: &IdbTransaction, b: &Block) -> Result<(), JsValue> {
    let hash = b.hash();
    let record = header_record(
        &b.header,
        Some(u32::try_from(b.encoded_len()).unwrap_or(u32::MAX)),
    );
    tx.object_store("headers")?
        .put_with_key(&bytes(&record), &JsValue::from_str(&hash.to_hex()))?;
    let index = tx.object_store("txindex")?;
    for (pos, t) in b.txs.iter().enumerate() {
        index.put_with_key(
            &JsValue::from_f64(pos as f64),
            &JsValue::from_str(&txindex_key(&t.txid(), &hash)),
        )?;
    }
    Ok(())
}

/// The multi-entry index `txids` over the `t` array of each `txindex` chunk (created once,
/// in the upgrade transaction). Called through `Reflect`, like [`txid_chunks`].
fn create_txid_index(store: &web_sys::IdbObjectStore) -> Result<(), JsValue> {
    if store.index_names().contains(TXID_INDEX) {
        return Ok(());
    }
    let params = js_sys::Object::new();
    js_sys::Reflect::set(&params, &"multiEntry".into(), &JsValue::TRUE)?;
    let create: js_sys::Function =
        js_sys::Reflect::get(store, &"createIndex".into())?.dyn_into()?;
    create.call3(store, &TXID_INDEX.into(), &"t".into(), &params)?;
    Ok(())
}

/// A request for every `txindex` chunk listing `txid` (through the `txids` index).
pub(crate) fn txid_chunks(
    store: &web_sys::IdbObjectStore,
    txid: &str,
) -> Result<IdbRequest, JsValue> {
    let index_of: js_sys::Function = js_sys::Reflect::get(store, &"index".into())?.dyn_into()?;
    let index = index_of.call1(store, &TXID_INDEX.into())?;
    let get_all: js_sys::Function = js_sys::Reflect::get(&index, &"getAll".into())?.dyn_into()?;
    get_all.call1(&index, &txid.into())?.dyn_into()
}

/// Name of the multi-entry index over `txindex` chunks.
const TXID_INDEX: &str = "txids";

/// Version 1 → 2, inside the upgrade transaction: the header and txindex entries of every
/// stored body (read once, here; a body that does not decode or match its key is left for
/// the repair that start-up then runs).
fn fill_from_bodies(tx: &IdbTransaction) -> Result<(), JsValue> {
    let blocks = tx.object_store("blocks")?;
    let keys = blocks.get_all_keys()?;
    let values = blocks.get_all()?;
    let tx2 = tx.clone();
    let values2 = values.clone();
    let done = Closure::once_into_js(move |_: web_sys::Event| {
        let (Ok(keys), Ok(values)) = (keys.result(), values2.result()) else {
            return;
        };
        let keys = Array::from(&keys);
        let values = Array::from(&values);
        count_body_reads(values.length() as usize);
        for (k, v) in keys.iter().zip(values.iter()) {
            let Ok((b, _)) = decode_body(&Uint8Array::new(&v).to_vec()) else {
                continue;
            };
            if k.as_string().as_deref() != Some(&b.hash().to_hex()) {
                continue;
            }
            if put_indexes(&tx2, &b).is_err() {
                let _ = tx2.abort();
                return;
            }
        }
    });
    values.set_onsuccess(Some(done.unchecked_ref()));
    Ok(())
}

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// IndexedDB is missing or refused to open (private mode, disabled storage).
    Unavailable(String),
    /// Another tab holds an older version of the database open.
    Blocked,
    /// The origin's storage quota is used up.
    QuotaExceeded,
    /// A transaction failed or was aborted; nothing of it was written.
    Aborted(String),
    /// A record does not decode (named by store and key).
    Corrupt(String),
    /// The database holds another network's chain.
    WrongNetwork,
    /// The connection was closed because another tab upgrades or deletes the database.
    Closed,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(e) => write!(f, "browser storage unavailable: {e}"),
            StoreError::Blocked => write!(f, "the database is held open by an older tab"),
            StoreError::QuotaExceeded => write!(f, "browser storage quota exceeded"),
            StoreError::Aborted(e) => write!(f, "storage transaction aborted: {e}"),
            StoreError::Corrupt(e) => write!(f, "stored data is damaged: {e}"),
            StoreError::WrongNetwork => write!(f, "the database belongs to another network"),
            StoreError::Closed => write!(
                f,
                "the database was closed because another tab is upgrading or deleting it: reload this tab"
            ),
        }
    }
}

fn js_err(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<web_sys::DomException>() {
        return format!("{}: {}", e.name(), e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// Resolves with the request's result once it succeeds.
fn request(req: &IdbRequest) -> JsFuture {
    let req2 = req.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let ok_req = req2.clone();
        let ok = Closure::once_into_js(move |_: web_sys::Event| {
            let _ = resolve.call1(
                &JsValue::NULL,
                &ok_req.result().unwrap_or(JsValue::UNDEFINED),
            );
        });
        let err_req = req2.clone();
        let err = Closure::once_into_js(move |_: web_sys::Event| {
            let e = err_req
                .error()
                .ok()
                .flatten()
                .map(JsValue::from)
                .unwrap_or(JsValue::NULL);
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        req2.set_onsuccess(Some(ok.unchecked_ref()));
        req2.set_onerror(Some(err.unchecked_ref()));
    });
    JsFuture::from(promise)
}

/// Resolves when the transaction commits; rejects with its error when it aborts.
fn completion(tx: &IdbTransaction) -> JsFuture {
    let tx2 = tx.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let ok = Closure::once_into_js(move |_: web_sys::Event| {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let rej = reject.clone();
        let t1 = tx2.clone();
        let err = Closure::once_into_js(move |_: web_sys::Event| {
            let e = t1
                .error()
                .map(JsValue::from)
                .unwrap_or_else(|| JsValue::from_str("error"));
            let _ = rej.call1(&JsValue::NULL, &e);
        });
        let t2 = tx2.clone();
        let abort = Closure::once_into_js(move |_: web_sys::Event| {
            let e = t2
                .error()
                .map(JsValue::from)
                .unwrap_or_else(|| JsValue::from_str("aborted"));
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        tx2.set_oncomplete(Some(ok.unchecked_ref()));
        tx2.set_onerror(Some(err.unchecked_ref()));
        tx2.set_onabort(Some(abort.unchecked_ref()));
    });
    JsFuture::from(promise)
}

/// Commits explicitly instead of waiting for the event loop to go idle. web-sys marks
/// `commit` deprecated, but it is standard and supported by every current browser; the
/// write is still only trusted once `oncomplete` fires.
#[allow(deprecated)]
fn commit(tx: &IdbTransaction) -> Result<(), JsValue> {
    tx.commit()
}

fn abort_error(e: &JsValue) -> StoreError {
    let text = js_err(e);
    if text.contains("QuotaExceeded") {
        StoreError::QuotaExceeded
    } else {
        StoreError::Aborted(text)
    }
}

fn factory() -> Result<web_sys::IdbFactory, StoreError> {
    let global = js_sys::global();
    let idb = if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        w.indexed_db()
    } else if let Some(w) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        w.indexed_db()
    } else {
        return Err(StoreError::Unavailable("no window or worker scope".into()));
    };
    idb.map_err(|e| StoreError::Unavailable(js_err(&e)))?
        .ok_or_else(|| StoreError::Unavailable("indexedDB is not available".into()))
}

fn bytes(v: &[u8]) -> JsValue {
    Uint8Array::from(v).into()
}

/// The host's callback for a connection closed by `onversionchange`.
type OnClosed = Rc<RefCell<Option<Box<dyn Fn()>>>>;

/// An open database.
#[derive(Clone)]
pub struct IdbStore {
    db: IdbDatabase,
    name: String,
    /// Set when `onversionchange` closed the connection.
    closed: Rc<Cell<bool>>,
    /// Called once when `onversionchange` closes the connection.
    on_closed: OnClosed,
    /// Tests: write transactions left before the tab "dies" (see [`IdbStore::kill_after`]).
    kill_after: Rc<Cell<Option<u32>>>,
    /// Key of the next chunk (`headers`, `txindex`, `utxo`): above every stored one (read
    /// at open).
    next_chunk: Rc<Cell<f64>>,
    /// What the stored UTXO set weighs (set by `load`, kept up by writes).
    utxo_sizes: Rc<Cell<UtxoSizes>>,
}

impl std::fmt::Debug for IdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbStore")
            .field("name", &self.name)
            .field("closed", &self.closed.get())
            .finish_non_exhaustive()
    }
}

impl IdbStore {
    /// Opens (creating or upgrading) database `name` for the network with `genesis`.
    pub async fn open(name: &str, genesis: BlockHash) -> Result<IdbStore, StoreError> {
        let req = factory()?
            .open_with_u32(name, SCHEMA_VERSION)
            .map_err(|e| StoreError::Unavailable(js_err(&e)))?;
        let blocked = Rc::new(RefCell::new(false));
        let b2 = blocked.clone();
        let on_blocked =
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| *b2.borrow_mut() = true);
        req.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
        let on_upgrade = Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(
            move |ev: web_sys::IdbVersionChangeEvent| {
                let Some(target) = ev.target() else { return };
                let Ok(req) = target.dyn_into::<IdbRequest>() else {
                    return;
                };
                let Ok(result) = req.result() else { return };
                let Ok(db) = result.dyn_into::<IdbDatabase>() else {
                    return;
                };
                let existing = db.object_store_names();
                for store in STORES {
                    if !existing.contains(store) {
                        let _ = db.create_object_store(store);
                    }
                }
                // Schema 3: the index over the txids of `txindex` chunks.
                let indexed = req
                    .transaction()
                    .ok_or_else(|| JsValue::from_str("no upgrade transaction"))
                    .and_then(|tx| tx.object_store("txindex"))
                    .and_then(|s| create_txid_index(&s));
                if indexed.is_err() {
                    if let Some(tx) = req.transaction() {
                        let _ = tx.abort();
                    }
                    return;
                }
                // A version-1 database has bodies but no headers: index them once.
                if !existing.contains("headers") && existing.contains("blocks") {
                    let filled = req
                        .transaction()
                        .ok_or_else(|| JsValue::from_str("no upgrade transaction"))
                        .and_then(|tx| fill_from_bodies(&tx));
                    if filled.is_err() {
                        if let Some(tx) = req.transaction() {
                            let _ = tx.abort();
                        }
                    }
                }
            },
        );
        req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        let result = request(&req).await;
        drop(on_upgrade);
        drop(on_blocked);
        let db: IdbDatabase = match result {
            Ok(v) => v
                .dyn_into()
                .map_err(|_| StoreError::Unavailable("open returned no database".into()))?,
            Err(e) if *blocked.borrow() => {
                return Err(StoreError::Unavailable(format!("blocked: {}", js_err(&e))));
            }
            Err(e) => return Err(StoreError::Unavailable(js_err(&e))),
        };
        let store = IdbStore {
            db,
            name: name.to_owned(),
            closed: Rc::new(Cell::new(false)),
            on_closed: Rc::new(RefCell::new(None)),
            kill_after: Rc::new(Cell::new(None)),
            next_chunk: Rc::new(Cell::new(1.0)),
            utxo_sizes: Rc::new(Cell::new(UtxoSizes::default())),
        };
        // Another tab wants a newer schema or deletes the database: let it, stop writing,
        // and tell the host (the page asks the user to reload).
        let (db2, closed, on_closed) = (
            store.db.clone(),
            store.closed.clone(),
            store.on_closed.clone(),
        );
        let on_version_change = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            db2.close();
            if !closed.replace(true) {
                if let Some(f) = on_closed.borrow().as_ref() {
                    f();
                }
            }
        });
        store
            .db
            .set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        // The database holds the handler for as long as it lives.
        on_version_change.forget();
        match store.meta("genesis").await? {
            Some(g) if g != genesis.as_bytes() => return Err(StoreError::WrongNetwork),
            Some(_) => {}
            None => store.put_meta("genesis", genesis.as_bytes()).await?,
        }
        store.next_chunk.set(store.last_chunk().await? + 1.0);
        Ok(store)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Called once if another tab's upgrade or deletion closes this connection.
    pub fn set_on_closed(&self, f: impl Fn() + 'static) {
        *self.on_closed.borrow_mut() = Some(Box::new(f));
    }

    /// Whether `onversionchange` closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Tests: the tab "dies" during write transaction number `n` (0 = the next one): that
    /// transaction issues its requests and is aborted before it commits, and every later
    /// write fails, as if the tab had been closed at that moment.
    pub fn kill_after(&self, n: u32) {
        self.kill_after.set(Some(n));
    }

    /// Counts one write transaction against [`IdbStore::kill_after`]: true if it must abort.
    fn killed_now(&self) -> bool {
        match self.kill_after.get() {
            None => false,
            Some(0) => true,
            Some(n) => {
                self.kill_after.set(Some(n - 1));
                false
            }
        }
    }

    fn tx(&self, mode: IdbTransactionMode) -> Result<IdbTransaction, StoreError> {
        if self.closed.get() {
            return Err(StoreError::Closed);
        }
        let names = Array::new();
        for s in STORES {
            names.push(&JsValue::from_str(s));
        }
        self.db
            .transaction_with_str_sequence_and_mode(&names, mode)
            .map_err(|e| StoreError::Aborted(js_err(&e)))
    }

    /// A value of the meta store.
    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get("meta", key).await
    }

    /// One value of object store `name` (e.g. a body in `blocks`, keyed by hex hash).
    pub async fn get(&self, name: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        let store = tx
            .object_store(name)
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let req = store
            .get(&JsValue::from_str(key))
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let v = request(&req)
            .await
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        if name == "blocks" {
            count_body_reads(1);
        }
        Ok(Some(Uint8Array::new(&v).to_vec()))
    }

    /// Writes one meta value in its own transaction.
    pub async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(false, |tx| {
            tx.object_store("meta")?
                .put_with_key(&bytes(value), &JsValue::from_str(key))?;
            Ok(())
        })
        .await
    }

    /// Deletes one meta value in its own transaction.
    pub async fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        self.write(false, |tx| {
            tx.object_store("meta")?.delete(&JsValue::from_str(key))?;
            Ok(())
        })
        .await
    }

    /// One readwrite transaction across every store: `issue` makes its requests
    /// synchronously (nothing else is awaited inside the transaction), then it commits —
    /// or aborts, with `abort` or when the test kill switch fires.
    async fn write(
        &self,
        abort: bool,
        issue: impl FnOnce(&IdbTransaction) -> Result<(), JsValue>,
    ) -> Result<(), StoreError> {
        let tx = self.tx(IdbTransactionMode::Readwrite)?;
        let done = completion(&tx);
        if let Err(e) = issue(&tx) {
            let _ = tx.abort();
            let _ = done.await;
            return Err(abort_error(&e));
        }
        if self.killed_now() {
            let _ = tx.abort();
            let _ = done.await;
            return Err(StoreError::Aborted(
                "the tab died here (test kill switch)".into(),
            ));
        }
        if abort {
            let _ = tx.abort();
        } else {
            let _ = commit(&tx);
        }
        done.await.map(|_| ()).map_err(|e| abort_error(&e))
    }

    pub fn close(&self) {
        self.db.close();
    }
}
