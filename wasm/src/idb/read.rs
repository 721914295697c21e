//! Reads of the IndexedDB store: start-up's load (headers, UTXO set, tip and the cache
//! warm-up), the transaction index, and the scans of bodies a repair rebuilds from.

use js_sys::{Array, Uint8Array};
use tabcoin_core::encode::{Decode, Reader};
use tabcoin_core::primitives::{Block, BlockHash, BlockHeader, HEADER_SIZE, Txid};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::utxo::BlockUndo;
use tabcoin_core::wire::NodeRecord;
use wasm_bindgen::prelude::*;
use web_sys::{IdbTransaction, IdbTransactionMode};

use std::collections::BTreeMap;

use super::{
    CHUNK_ENTRY, IdbStore, StoreError, WARM_BLOCKS, count_body_reads, decode_body, js_err, request,
};

impl IdbStore {
    /// Where transaction `txid` is stored: (block, position in the block) for every stored
    /// body that holds it (a txid may be in blocks of several branches).
    pub async fn tx_locations(&self, txid: &Txid) -> Result<Vec<(BlockHash, u32)>, StoreError> {
        let aborted = |e: JsValue| StoreError::Aborted(js_err(&e));
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        let store = tx.object_store("txindex").map_err(aborted)?;
        let low = txid.to_hex();
        // Hex digits sort below '~': the range is every key that starts with the txid.
        let range = web_sys::IdbKeyRange::bound(
            &JsValue::from_str(&low),
            &JsValue::from_str(&format!("{low}~")),
        )
        .map_err(aborted)?;
        let keys = request(&store.get_all_keys_with_key(&range).map_err(aborted)?)
            .await
            .map_err(aborted)?;
        let values = request(&store.get_all_with_key(&range).map_err(aborted)?)
            .await
            .map_err(aborted)?;
        // Schema-3 chunks listing the txid, through their index.
        let chunks = request(&super::txid_chunks(&store, &low).map_err(aborted)?)
            .await
            .map_err(aborted)?;
        let corrupt = |key: &str| StoreError::Corrupt(format!("txindex {key}: bad record"));
        let mut found = Vec::new();
        for chunk in Array::from(&chunks).iter() {
            let field = |name: &str| js_sys::Reflect::get(&chunk, &name.into()).map_err(aborted);
            let txids = Array::from(&field("t")?);
            let entries = Uint8Array::new(&field("e")?).to_vec();
            for (i, t) in txids.iter().enumerate() {
                if t.as_string().as_deref() != Some(low.as_str()) {
                    continue;
                }
                let e = entries
                    .get(i * 36..i * 36 + 36)
                    .ok_or_else(|| corrupt("chunk"))?;
                let block = BlockHash::from_bytes(e[..32].try_into().expect("32 bytes"));
                found.push((
                    block,
                    u32::from_le_bytes(e[32..].try_into().expect("4 bytes")),
                ));
            }
        }
        for (k, v) in Array::from(&keys).iter().zip(Array::from(&values).iter()) {
            let key = k.as_string().unwrap_or_default();
            let block = key
                .get(64..)
                .and_then(|h| BlockHash::from_hex(h).ok())
                .ok_or_else(|| corrupt(&key))?;
            let pos = v
                .as_f64()
                .filter(|p| p.fract() == 0.0 && *p >= 0.0 && *p <= f64::from(u32::MAX))
                .ok_or_else(|| corrupt(&key))?;
            found.push((block, pos as u32));
        }
        Ok(found)
    }

    /// Every key and value of `store`, in key order (both requests issued at once).
    async fn keys_and_values(
        &self,
        tx: &IdbTransaction,
        store: &str,
    ) -> Result<(Array, Array), StoreError> {
        let aborted = |e: JsValue| StoreError::Aborted(js_err(&e));
        let s = tx.object_store(store).map_err(aborted)?;
        let keys = request(&s.get_all_keys().map_err(aborted)?);
        let values = request(&s.get_all().map_err(aborted)?);
        Ok((
            Array::from(&keys.await.map_err(aborted)?),
            Array::from(&values.await.map_err(aborted)?),
        ))
    }

    async fn all(
        &self,
        tx: &IdbTransaction,
        store: &str,
    ) -> Result<Vec<(String, JsValue)>, StoreError> {
        let (keys, values) = self.keys_and_values(tx, store).await?;
        if store == "blocks" {
            count_body_reads(values.length() as usize);
        }
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
        // Headers, not bodies (start-up reads no body); Chain::load orders them.
        self.load_headers(&tx, &mut cs).await?;
        for (key, _) in self.all(&tx, "invalid").await? {
            cs.invalid.insert(
                BlockHash::from_hex(&key).map_err(|e| corrupt("invalid", &key, e.to_string()))?,
            );
        }
        {
            let (keys, values) = self.keys_and_values(&tx, "utxo").await?;
            let (set, sizes) = super::utxo::load(&keys, &values)?;
            cs.utxo = set.into_iter().map(|(op, c)| (op, Some(c))).collect();
            self.utxo_sizes.set(sizes);
        }
        for (key, v) in self.all(&tx, "bans").await? {
            let until: [u8; 8] = Uint8Array::new(&v)
                .to_vec()
                .try_into()
                .map_err(|_| corrupt("bans", &key, "bad length".into()))?;
            cs.bans.insert(key, Some(u64::from_le_bytes(until)));
        }
        for (url, v) in self.all(&tx, "nodes").await? {
            // A record of the older unsigned layout is skipped (relearned signed), not an
            // error; the provenance follows the record.
            let b = Uint8Array::new(&v).to_vec();
            let mut r = Reader::new(&b);
            let Ok(rec) = NodeRecord::decode_from(&mut r) else {
                continue;
            };
            if r.remaining() > 0 {
                let meta = tabcoin_core::addrman::AddrMeta::decode_from(&mut r)
                    .and_then(|m| r.finish().map(|()| m))
                    .map_err(|e| corrupt("nodes", &url, e.to_string()))?;
                cs.node_meta.insert(url.clone(), Some(meta));
            }
            cs.nodes.insert(url, Some(rec));
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
        crate::prune::load(&mut cs, self.all(&tx, "meta").await?)?;
        self.warm_up(&tx, &mut cs).await?;
        Ok(cs)
    }

    /// The `headers` store into `cs.headers` and `cs.sizes`. Version-2 records (keyed by
    /// hash: the header, then its body's size while the body is stored) are older than every
    /// chunk (numeric keys, one per write: [`CHUNK_ENTRY`]-byte entries); among chunks the
    /// higher key is newer. The newest entry of a hash wins.
    async fn load_headers(
        &self,
        tx: &IdbTransaction,
        cs: &mut ChangeSet,
    ) -> Result<(), StoreError> {
        let corrupt = |key: &str, e: String| StoreError::Corrupt(format!("headers {key}: {e}"));
        let (keys, values) = self.keys_and_values(tx, "headers").await?;
        // Ordered by hash, as the version-2 records (keyed by hex hash) were: a load is
        // deterministic.
        let mut newest: BTreeMap<BlockHash, (BlockHeader, Option<u32>)> = BTreeMap::new();
        let mut chunks = Vec::new();
        for (k, v) in keys.iter().zip(values.iter()) {
            let v = Uint8Array::new(&v).to_vec();
            let Some(key) = k.as_string() else {
                chunks.push((k.as_f64().unwrap_or(f64::NAN), v));
                continue;
            };
            let (head, size) = v.split_at(v.len().min(HEADER_SIZE));
            let h = BlockHeader::decode(head).map_err(|e| corrupt(&key, e.to_string()))?;
            let size = match size.len() {
                0 => None,
                4 => Some(u32::from_le_bytes(size.try_into().expect("4 bytes"))),
                _ => return Err(corrupt(&key, "bad length".into())),
            };
            let hash = h.hash();
            if hash.to_hex() != key {
                return Err(corrupt(&key, "hash does not match its key".into()));
            }
            newest.insert(hash, (h, size));
        }
        // getAll lists numeric keys in ascending order: later entries are newer.
        for (seq, v) in chunks {
            if v.len() % CHUNK_ENTRY != 0 {
                return Err(corrupt(&seq.to_string(), "bad length".into()));
            }
            for e in v.chunks_exact(CHUNK_ENTRY) {
                let h = BlockHeader::decode(&e[..HEADER_SIZE])
                    .map_err(|err| corrupt(&seq.to_string(), err.to_string()))?;
                let size = u32::from_le_bytes(e[HEADER_SIZE..].try_into().expect("4 bytes"));
                newest.insert(h.hash(), (h, (size > 0).then_some(size)));
            }
        }
        for (hash, (h, size)) in newest {
            if let Some(n) = size {
                cs.sizes.insert(hash, n);
            }
            cs.headers.push(h);
        }
        Ok(())
    }

    /// The highest `headers` chunk key stored (0 when none).
    pub(super) async fn last_chunk(&self) -> Result<f64, StoreError> {
        let aborted = |e: JsValue| StoreError::Aborted(js_err(&e));
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        // Numbers sort below strings: this range holds the chunks and no per-hash or
        // per-coin record. A write may put a `utxo` chunk and no `headers` chunk (a switch
        // back to stored blocks), and a snapshot takes several numbers: both stores count.
        let range =
            web_sys::IdbKeyRange::bound(&JsValue::from_f64(0.0), &JsValue::from_f64(f64::INFINITY))
                .map_err(aborted)?;
        let mut last = 0.0;
        for store in ["headers", "utxo"] {
            let s = tx.object_store(store).map_err(aborted)?;
            let keys = request(&s.get_all_keys_with_key(&range).map_err(aborted)?)
                .await
                .map_err(aborted)?;
            last = Array::from(&keys)
                .iter()
                .filter_map(|k| k.as_f64())
                .fold(last, f64::max);
        }
        Ok(last)
    }

    /// Body `hash` and its undo data, in one readonly transaction: the undo record if there
    /// is one, else the copy kept in the body's record. None for what is missing or does
    /// not decode (or a body that is not `hash`).
    pub async fn load_block(
        &self,
        hash: &BlockHash,
    ) -> Result<(Option<Block>, Option<BlockUndo>), StoreError> {
        let aborted = |e: JsValue| StoreError::Aborted(js_err(&e));
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        let key = JsValue::from_str(&hash.to_hex());
        let b = request(
            &tx.object_store("blocks")
                .map_err(aborted)?
                .get(&key)
                .map_err(aborted)?,
        );
        let u = request(
            &tx.object_store("undo")
                .map_err(aborted)?
                .get(&key)
                .map_err(aborted)?,
        );
        let (b, u) = (b.await.map_err(aborted)?, u.await.map_err(aborted)?);
        let (block, kept_undo) = if b.is_undefined() || b.is_null() {
            (None, None)
        } else {
            count_body_reads(1);
            match decode_body(&Uint8Array::new(&b).to_vec()) {
                Ok((block, undo)) if block.hash() == *hash => (Some(block), undo),
                _ => (None, None),
            }
        };
        let undo = if u.is_undefined() || u.is_null() {
            kept_undo
        } else {
            BlockUndo::decode(&Uint8Array::new(&u).to_vec()).ok()
        };
        Ok((block, undo))
    }

    /// The cache warm-up of [`IdbStore::load`]: the bodies and undo data of the newest
    /// [`WARM_BLOCKS`] active blocks (what the page lists first), oldest first, so they are
    /// in memory from the start. A body that does not decode is left out (the node reads it
    /// again when it needs it, and downloads it if the store has none).
    async fn warm_up(&self, tx: &IdbTransaction, cs: &mut ChangeSet) -> Result<(), StoreError> {
        let aborted = |e: JsValue| StoreError::Aborted(js_err(&e));
        let Some(tip) = cs.tip else { return Ok(()) };
        let by_hash: std::collections::HashMap<BlockHash, &BlockHeader> =
            cs.headers.iter().map(|h| (h.hash(), h)).collect();
        let mut newest = Vec::new();
        let mut cursor = tip;
        while newest.len() < WARM_BLOCKS {
            let Some(h) = by_hash.get(&cursor) else { break };
            newest.push(cursor);
            cursor = h.prev;
        }
        let (blocks, undo) = (
            tx.object_store("blocks").map_err(aborted)?,
            tx.object_store("undo").map_err(aborted)?,
        );
        // Every request first, then the answers: one round trip.
        let mut pending = Vec::new();
        for hash in newest.iter().rev() {
            let key = JsValue::from_str(&hash.to_hex());
            let b = request(&blocks.get(&key).map_err(aborted)?);
            let u = request(&undo.get(&key).map_err(aborted)?);
            pending.push((*hash, b, u));
        }
        for (hash, b, u) in pending {
            let b = b.await.map_err(aborted)?;
            let u = u.await.map_err(aborted)?;
            if b.is_undefined() || b.is_null() {
                continue;
            }
            count_body_reads(1);
            let Ok((block, kept_undo)) = decode_body(&Uint8Array::new(&b).to_vec()) else {
                continue;
            };
            if block.hash() != hash {
                continue;
            }
            let undo = if !u.is_undefined() && !u.is_null() {
                BlockUndo::decode(&Uint8Array::new(&u).to_vec()).ok()
            } else {
                kept_undo
            };
            if let Some(u) = undo {
                cs.undo.insert(hash, Some(u));
            }
            cs.blocks.push(block);
        }
        Ok(())
    }

    /// Just the decodable blocks (for rebuilding after damage).
    pub async fn valid_blocks(&self) -> Result<Vec<Block>, StoreError> {
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        Ok(self
            .all(&tx, "blocks")
            .await?
            .into_iter()
            .filter_map(|(key, v)| {
                decode_body(&Uint8Array::new(&v).to_vec())
                    .ok()
                    .map(|(b, _)| b)
                    .filter(|b| b.hash().to_hex() == key)
            })
            .collect())
    }

    /// Every block record: the blocks that decode (and match their key), and the keys of
    /// the records that do not.
    pub async fn scan_blocks(&self) -> Result<(Vec<Block>, Vec<String>), StoreError> {
        let tx = self.tx(IdbTransactionMode::Readonly)?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (key, v) in self.all(&tx, "blocks").await? {
            match decode_body(&Uint8Array::new(&v).to_vec()) {
                Ok((b, _)) if b.hash().to_hex() == key => good.push(b),
                _ => bad.push(key),
            }
        }
        Ok((good, bad))
    }
}
