//! The node's store on IndexedDB: one readwrite transaction per ChangeSet spanning every
//! object store, committed explicitly, with nothing but IndexedDB requests awaited inside it.
//! The schema is versioned (`SCHEMA_VERSION`); upgrades only add stores.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Promise, Uint8Array};
use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::hash::{decode_hex, to_hex};
use tabcoin_core::primitives::{Block, BlockHash, OutPoint};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::utxo::{BlockUndo, Coin};
use tabcoin_core::wire::NodeRecord;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

/// Bump when a store is added; `upgrade` creates whatever is missing.
pub const SCHEMA_VERSION: u32 = 1;
const STORES: [&str; 6] = ["blocks", "invalid", "utxo", "undo", "nodes", "meta"];

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

/// An open database.
#[derive(Debug, Clone)]
pub struct IdbStore {
    db: IdbDatabase,
    name: String,
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
        };
        match store.meta("genesis").await? {
            Some(g) if g != genesis.as_bytes() => return Err(StoreError::WrongNetwork),
            Some(_) => {}
            None => store.put_meta("genesis", genesis.as_bytes()).await?,
        }
        Ok(store)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn tx(&self, mode: IdbTransactionMode) -> Result<IdbTransaction, StoreError> {
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
        Ok(Some(Uint8Array::new(&v).to_vec()))
    }

    /// Writes one meta value in its own transaction.
    pub async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let tx = self.tx(IdbTransactionMode::Readwrite)?;
        let store = tx
            .object_store("meta")
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        store
            .put_with_key(&bytes(value), &JsValue::from_str(key))
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let done = completion(&tx);
        let _ = commit(&tx);
        done.await.map(|_| ()).map_err(|e| abort_error(&e))
    }

    /// Writes a ChangeSet atomically: one transaction across all stores.
    pub async fn persist(&self, cs: &ChangeSet) -> Result<(), StoreError> {
        self.persist_inner(cs, false).await
    }

    /// Writes `cs` with one transaction per record instead of one per ChangeSet: not
    /// atomic, and only here to measure what batching a ChangeSet into one transaction buys
    /// (`npm run bench`, P6). The node never uses it.
    pub async fn persist_per_record(&self, cs: &ChangeSet) -> Result<(), StoreError> {
        for b in &cs.blocks {
            self.put_one("blocks", &b.hash().to_hex(), Some(&b.encode()))
                .await?;
        }
        for (op, coin) in &cs.utxo {
            let v = coin.map(|c| c.encode());
            self.put_one("utxo", &to_hex(&op.encode()), v.as_deref())
                .await?;
        }
        for (h, u) in &cs.undo {
            let v = u.as_ref().map(Encode::encode);
            self.put_one("undo", &h.to_hex(), v.as_deref()).await?;
        }
        if let Some(tip) = &cs.tip {
            self.put_one("meta", "tip", Some(tip.as_bytes())).await?;
        }
        Ok(())
    }

    async fn put_one(
        &self,
        store: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tx = self.tx(IdbTransactionMode::Readwrite)?;
        let done = completion(&tx);
        let s = tx
            .object_store(store)
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let key = JsValue::from_str(key);
        match value {
            Some(v) => s.put_with_key(&bytes(v), &key),
            None => s.delete(&key),
        }
        .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let _ = commit(&tx);
        done.await.map(|_| ()).map_err(|e| abort_error(&e))
    }

    /// Starts writing `cs` and aborts the transaction before it commits (tests).
    pub async fn persist_and_abort(&self, cs: &ChangeSet) -> Result<(), StoreError> {
        self.persist_inner(cs, true).await
    }

    async fn persist_inner(&self, cs: &ChangeSet, abort: bool) -> Result<(), StoreError> {
        if cs.is_empty() {
            return Ok(());
        }
        let tx = self.tx(IdbTransactionMode::Readwrite)?;
        // Every request is issued synchronously; only the transaction's end is awaited.
        let issue = || -> Result<(), JsValue> {
            let blocks = tx.object_store("blocks")?;
            for b in &cs.blocks {
                blocks.put_with_key(&bytes(&b.encode()), &JsValue::from_str(&b.hash().to_hex()))?;
            }
            let invalid = tx.object_store("invalid")?;
            for h in &cs.invalid {
                invalid.put_with_key(&JsValue::TRUE, &JsValue::from_str(&h.to_hex()))?;
            }
            let utxo = tx.object_store("utxo")?;
            for (op, coin) in &cs.utxo {
                let key = JsValue::from_str(&to_hex(&op.encode()));
                match coin {
                    Some(c) => utxo.put_with_key(&bytes(&c.encode()), &key)?,
                    None => utxo.delete(&key)?,
                };
            }
            let undo = tx.object_store("undo")?;
            for (h, u) in &cs.undo {
                let key = JsValue::from_str(&h.to_hex());
                match u {
                    Some(u) => undo.put_with_key(&bytes(&u.encode()), &key)?,
                    None => undo.delete(&key)?,
                };
            }
            let nodes = tx.object_store("nodes")?;
            for (url, rec) in &cs.nodes {
                let key = JsValue::from_str(url);
                match rec {
                    Some(r) => {
                        let mut v = r.node_id.0.to_vec();
                        v.extend_from_slice(&r.last_seen.to_le_bytes());
                        nodes.put_with_key(&bytes(&v), &key)?
                    }
                    None => nodes.delete(&key)?,
                };
            }
            if let Some(tip) = &cs.tip {
                tx.object_store("meta")?
                    .put_with_key(&bytes(tip.as_bytes()), &JsValue::from_str("tip"))?;
            }
            Ok(())
        };
        let done = completion(&tx);
        if let Err(e) = issue() {
            let _ = tx.abort();
            let _ = done.await;
            return Err(abort_error(&e));
        }
        if abort {
            let _ = tx.abort();
        } else {
            let _ = commit(&tx);
        }
        done.await.map(|_| ()).map_err(|e| abort_error(&e))
    }

    async fn all(
        &self,
        tx: &IdbTransaction,
        store: &str,
    ) -> Result<Vec<(String, JsValue)>, StoreError> {
        let s = tx
            .object_store(store)
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let keys = request(
            &s.get_all_keys()
                .map_err(|e| StoreError::Aborted(js_err(&e)))?,
        )
        .await
        .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let values = request(&s.get_all().map_err(|e| StoreError::Aborted(js_err(&e)))?)
            .await
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let keys = Array::from(&keys);
        let values = Array::from(&values);
        Ok(keys
            .iter()
            .zip(values.iter())
            .map(|(k, v)| (k.as_string().unwrap_or_default(), v))
            .collect())
    }

    /// Everything stored, as one ChangeSet. A record that does not decode is an error
    /// naming it; the caller decides how to repair.
    pub async fn load(&self) -> Result<ChangeSet, StoreError> {
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        let corrupt =
            |store: &str, key: &str, e: String| StoreError::Corrupt(format!("{store} {key}: {e}"));
        let mut cs = ChangeSet::default();
        for (key, v) in self.all(&tx, "blocks").await? {
            let b = Block::decode(&Uint8Array::new(&v).to_vec())
                .map_err(|e| corrupt("blocks", &key, e.to_string()))?;
            if b.hash().to_hex() != key {
                return Err(corrupt(
                    "blocks",
                    &key,
                    "hash does not match its key".into(),
                ));
            }
            cs.blocks.push(b);
        }
        for (key, _) in self.all(&tx, "invalid").await? {
            cs.invalid.insert(
                BlockHash::from_hex(&key).map_err(|e| corrupt("invalid", &key, e.to_string()))?,
            );
        }
        for (key, v) in self.all(&tx, "utxo").await? {
            let op = decode_hex(&key)
                .ok()
                .and_then(|b| OutPoint::decode(&b).ok())
                .ok_or_else(|| corrupt("utxo", &key, "bad key".into()))?;
            let coin = Coin::decode(&Uint8Array::new(&v).to_vec())
                .map_err(|e| corrupt("utxo", &key, e.to_string()))?;
            cs.utxo.insert(op, Some(coin));
        }
        for (key, v) in self.all(&tx, "undo").await? {
            let h = BlockHash::from_hex(&key).map_err(|e| corrupt("undo", &key, e.to_string()))?;
            let u = BlockUndo::decode(&Uint8Array::new(&v).to_vec())
                .map_err(|e| corrupt("undo", &key, e.to_string()))?;
            cs.undo.insert(h, Some(u));
        }
        for (url, v) in self.all(&tx, "nodes").await? {
            let b = Uint8Array::new(&v).to_vec();
            if b.len() != 40 {
                return Err(corrupt("nodes", &url, "bad record".into()));
            }
            let mut id = [0u8; 32];
            id.copy_from_slice(&b[..32]);
            let mut seen = [0u8; 8];
            seen.copy_from_slice(&b[32..]);
            cs.nodes.insert(
                url.clone(),
                Some(NodeRecord {
                    node_id: tabcoin_core::sig::PublicKey(id),
                    url,
                    last_seen: u64::from_le_bytes(seen),
                }),
            );
        }
        let s = tx
            .object_store("meta")
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let tip = request(
            &s.get(&JsValue::from_str("tip"))
                .map_err(|e| StoreError::Aborted(js_err(&e)))?,
        )
        .await
        .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        if !tip.is_undefined() {
            let t = Uint8Array::new(&tip).to_vec();
            let arr: [u8; 32] = t
                .try_into()
                .map_err(|_| corrupt("meta", "tip", "bad length".into()))?;
            cs.tip = Some(BlockHash::from_bytes(arr));
        }
        Ok(cs)
    }

    /// Just the decodable blocks (for rebuilding after damage).
    pub async fn valid_blocks(&self) -> Result<Vec<Block>, StoreError> {
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        Ok(self
            .all(&tx, "blocks")
            .await?
            .into_iter()
            .filter_map(|(key, v)| {
                Block::decode(&Uint8Array::new(&v).to_vec())
                    .ok()
                    .filter(|b| b.hash().to_hex() == key)
            })
            .collect())
    }

    /// Empties the chain stores (keeps meta: genesis, identity and wallet).
    pub async fn clear_chain(&self) -> Result<(), StoreError> {
        let tx = self.tx(IdbTransactionMode::Readwrite)?;
        let done = completion(&tx);
        for s in ["blocks", "invalid", "utxo", "undo", "nodes"] {
            if let Ok(store) = tx.object_store(s) {
                let _ = store.clear();
            }
        }
        if let Ok(meta) = tx.object_store("meta") {
            let _ = meta.delete(&JsValue::from_str("tip"));
        }
        let _ = commit(&tx);
        done.await.map(|_| ()).map_err(|e| abort_error(&e))
    }

    /// Writes garbage into one record (tests of damage detection).
    pub async fn damage(&self, store: &str, key: &str) -> Result<(), StoreError> {
        let tx = self.tx(IdbTransactionMode::Readwrite)?;
        let done = completion(&tx);
        tx.object_store(store)
            .and_then(|s| s.put_with_key(&bytes(&[0xde, 0xad]), &JsValue::from_str(key)))
            .map_err(|e| StoreError::Aborted(js_err(&e)))?;
        let _ = commit(&tx);
        done.await.map(|_| ()).map_err(|e| abort_error(&e))
    }

    pub fn close(&self) {
        self.db.close();
    }
}
