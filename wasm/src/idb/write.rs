//! Writes to the IndexedDB store: a ChangeSet (or a merged batch of them) in one transaction
//! across every object store, the first write of a repair, and the tests' damage and
//! per-record writes. Layout in docs/STORAGE.md.

use js_sys::Array;
use tabcoin_core::encode::Encode;
use tabcoin_core::hash::to_hex;
use tabcoin_core::store::ChangeSet;
use wasm_bindgen::prelude::*;

use super::{CHUNK_ENTRY, IdbStore, StoreError, bytes, chunk_entry, utxo};

impl IdbStore {
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
        self.write(false, |tx| {
            let s = tx.object_store(store)?;
            let key = JsValue::from_str(key);
            match value {
                Some(v) => s.put_with_key(&bytes(v), &key)?,
                None => s.delete(&key)?,
            };
            Ok(())
        })
        .await
    }

    /// Starts writing `cs` and aborts the transaction before it commits (tests).
    pub async fn persist_and_abort(&self, cs: &ChangeSet) -> Result<(), StoreError> {
        self.persist_inner(cs, true).await
    }

    async fn persist_inner(&self, cs: &ChangeSet, abort: bool) -> Result<(), StoreError> {
        if cs.is_empty() {
            return Ok(());
        }
        // The set's `headers` chunk takes the next key (a chunk of an aborted write leaves a
        // gap, which is harmless: newer keys win).
        let seq = self.next_chunk.get();
        self.next_chunk.set(seq + 1.0);
        // The set's UTXO changes: one log chunk under the same number.
        let log = utxo::log_chunk(cs.utxo.iter());
        // Every request is issued synchronously; only the transaction's end is awaited.
        self.write(abort, |tx| {
            let blocks = tx.object_store("blocks")?;
            let index = tx.object_store("txindex")?;
            // One `headers` record for the whole set: each header once, with its body's size
            // (0 for a body this set prunes, or a header stored without its body).
            let mut chunk = Vec::with_capacity((cs.blocks.len() + cs.headers.len()) * CHUNK_ENTRY);
            let mut in_chunk = std::collections::BTreeSet::new();
            // Blocks whose undo data went into their `blocks` record.
            let mut undo_with_body = std::collections::BTreeSet::new();
            // One `txindex` record for the whole set too: the txids (`t`, indexed) and for
            // each its block hash and position (`e`, 36 bytes each).
            let txids = Array::new();
            let mut entries = Vec::new();
            for b in &cs.blocks {
                let hash = b.hash();
                let key = hash.to_hex();
                let mut v = b.encode();
                let size = u32::try_from(v.len()).unwrap_or(u32::MAX);
                if let Some(Some(u)) = cs.undo.get(&hash) {
                    u.encode_to(&mut v);
                    undo_with_body.insert(hash);
                }
                blocks.put_with_key(&bytes(&v), &JsValue::from_str(&key))?;
                for (pos, t) in b.txs.iter().enumerate() {
                    txids.push(&JsValue::from_str(&t.txid().to_hex()));
                    entries.extend_from_slice(hash.as_bytes());
                    entries
                        .extend_from_slice(&u32::try_from(pos).unwrap_or(u32::MAX).to_le_bytes());
                }
                if in_chunk.insert(hash) {
                    let size = if cs.pruned.contains(&hash) { 0 } else { size };
                    chunk_entry(&mut chunk, &b.header, size);
                }
            }
            // Headers without a body in this set: a pruned body's (size 0), or a repair's
            // re-indexing of bodies already stored (their sizes in `cs.sizes`).
            for h in &cs.headers {
                let hash = h.hash();
                if in_chunk.insert(hash) {
                    let size = match cs.sizes.get(&hash) {
                        Some(n) if !cs.pruned.contains(&hash) => *n,
                        _ => 0,
                    };
                    chunk_entry(&mut chunk, h, size);
                }
            }
            if !chunk.is_empty() {
                tx.object_store("headers")?
                    .put_with_key(&bytes(&chunk), &JsValue::from_f64(seq))?;
            }
            if txids.length() > 0 {
                let record = js_sys::Object::new();
                js_sys::Reflect::set(&record, &"t".into(), &txids)?;
                js_sys::Reflect::set(&record, &"e".into(), &bytes(&entries))?;
                index.put_with_key(&record, &JsValue::from_f64(seq))?;
            }
            let bans = tx.object_store("bans")?;
            for (key, until) in &cs.bans {
                let key = JsValue::from_str(key);
                match until {
                    Some(t) => bans.put_with_key(&bytes(&t.to_le_bytes()), &key)?,
                    None => bans.delete(&key)?,
                };
            }
            let invalid = tx.object_store("invalid")?;
            for h in &cs.invalid {
                invalid.put_with_key(&JsValue::TRUE, &JsValue::from_str(&h.to_hex()))?;
            }
            if let Some(log) = &log {
                tx.object_store("utxo")?
                    .put_with_key(&bytes(log), &JsValue::from_f64(seq))?;
            }
            let undo = tx.object_store("undo")?;
            for (h, u) in &cs.undo {
                if undo_with_body.contains(h) {
                    continue;
                }
                let key = JsValue::from_str(&h.to_hex());
                match u {
                    Some(u) => undo.put_with_key(&bytes(&u.encode()), &key)?,
                    None => undo.delete(&key)?,
                };
            }
            crate::prune::write(tx, cs)?;
            let nodes = tx.object_store("nodes")?;
            for (url, rec) in &cs.nodes {
                let key = JsValue::from_str(url);
                match rec {
                    // The one record encoding of core, signature included, then its
                    // provenance (none: stored before provenance was kept).
                    Some(r) => {
                        let mut v = r.encode();
                        if let Some(Some(m)) = cs.node_meta.get(url) {
                            v.extend_from_slice(&m.encode());
                        }
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
        })
        .await?;
        if let Some(log) = log {
            let mut sizes = self.utxo_sizes.get();
            sizes.log += log.len() as u64;
            self.utxo_sizes.set(sizes);
        }
        Ok(())
    }

    /// The first write of a repair, in one transaction: records `why` under meta `repair`
    /// (so an interrupted repair is redone at the next start), deletes the block records
    /// named in `drop_blocks`, and empties what is recomputed from the blocks (headers, UTXO
    /// set, undo data, invalid marks, the tip) and the relay list. Bans and the transaction
    /// index stay (an index entry of a dropped body finds no body and is skipped). Every
    /// other block stays: an interruption never leaves less than the blocks to rebuild from.
    pub async fn begin_repair(&self, why: &str, drop_blocks: &[String]) -> Result<(), StoreError> {
        self.write(false, |tx| {
            let meta = tx.object_store("meta")?;
            meta.put_with_key(&bytes(why.as_bytes()), &JsValue::from_str("repair"))?;
            meta.delete(&JsValue::from_str("tip"))?;
            let blocks = tx.object_store("blocks")?;
            for key in drop_blocks {
                blocks.delete(&JsValue::from_str(key))?;
            }
            // The replay writes the headers of the blocks it keeps.
            for s in ["headers", "invalid", "utxo", "undo", "nodes"] {
                tx.object_store(s)?.clear()?;
            }
            Ok(())
        })
        .await
    }

    /// Empties the chain stores (keeps meta: genesis, identity and wallet).
    pub async fn clear_chain(&self) -> Result<(), StoreError> {
        self.write(false, |tx| {
            for s in [
                "blocks", "headers", "txindex", "invalid", "utxo", "undo", "nodes",
            ] {
                tx.object_store(s)?.clear()?;
            }
            tx.object_store("meta")?.delete(&JsValue::from_str("tip"))?;
            Ok(())
        })
        .await
    }

    /// Writes garbage into one record (tests of damage detection).
    pub async fn damage(&self, store: &str, key: &str) -> Result<(), StoreError> {
        self.write(false, |tx| {
            tx.object_store(store)?
                .put_with_key(&bytes(&[0xde, 0xad]), &JsValue::from_str(key))?;
            Ok(())
        })
        .await
    }

    /// Writes garbage into the chunk numbered `key` of `store` (tests of damage detection).
    pub async fn damage_chunk(&self, store: &str, key: f64) -> Result<(), StoreError> {
        self.write(false, |tx| {
            tx.object_store(store)?
                .put_with_key(&bytes(&[0xde, 0xad]), &JsValue::from_f64(key))?;
            Ok(())
        })
        .await
    }
}
