//! The UTXO set on IndexedDB (schema 4): a log of chunks, rewritten now and then as a
//! snapshot of the node's set.
//!
//! Before schema 4 every coin was its own `utxo` record, so each write put one record per
//! new coin and deleted one per spent coin: a sync of 300-payment blocks made ~900 IndexedDB
//! requests per block, the largest cost of a browser sync (docs/BENCHMARKS.md, P7). The tab
//! holds its whole UTXO set in memory and reads the stored copy only at start-up, so the
//! store needs no random access to coins. Now:
//!
//! - **Log chunks.** Each write transaction puts the UTXO changes of its ChangeSet as one
//!   record under the write's chunk number (the key its `headers` chunk takes): entries of
//!   outpoint (36 bytes) ‖ 1 ‖ coin for a coin created, outpoint ‖ 0 for a coin spent.
//! - **Snapshots.** When the log outweighs the last snapshot (and at least
//!   [`Limits::utxo_log_min`](crate::queue::Limits) bytes), the writer — at a moment nothing
//!   is unstored, so the node's set is exactly the stored one — clears the store and writes
//!   the node's whole set as chunks of [`SNAPSHOT_CHUNK`] bytes, in one transaction. Every
//!   byte of log is thus rewritten at most about once: writing stays linear in the changes,
//!   and start-up reads at most about twice the set's size, in a few large records.
//! - **Start-up** applies, in order: the per-coin records of older schemas (string keys), then
//!   the chunks in key order (numbers; IndexedDB sorts them before strings).
//!
//! A snapshot always follows a `clear` in its own transaction, so older records never mix
//! with it; a kill before its commit leaves the log as it was.

use js_sys::{Array, Uint8Array};
use tabcoin_core::encode::{Decode, Encode, Reader};
use tabcoin_core::hash::decode_hex;
use tabcoin_core::primitives::OutPoint;
use tabcoin_core::utxo::Coin;
use wasm_bindgen::prelude::*;

use std::collections::BTreeMap;

use super::{IdbStore, StoreError, bytes};

/// First byte of a chunk: a log of changes.
const LOG: u8 = 1;
/// First byte of a chunk: part of a snapshot (every entry a coin).
const SNAPSHOT: u8 = 2;
/// A snapshot is written in records of about this many bytes.
pub const SNAPSHOT_CHUNK: usize = 256 << 10;
/// What one per-coin record of schema 1–3 counts for in the snapshot's size.
const LEGACY_RECORD: u64 = 96;

/// Bytes of the stored UTXO set: its snapshot (or older per-coin records) and the log
/// written since. Kept by the store, updated when a write commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UtxoSizes {
    pub snapshot: u64,
    pub log: u64,
}

impl UtxoSizes {
    /// Whether the log is due to be folded into a new snapshot: it outweighs the snapshot,
    /// and `min` bytes.
    pub fn due(&self, min: u64) -> bool {
        self.log >= self.snapshot.max(min)
    }

    /// Whether the log has grown so far past [`due`](UtxoSizes::due) (a long sync that never
    /// lets the queue drain) that the writer must hold the node back to fold it.
    pub fn overdue(&self, min: u64) -> bool {
        self.log >= self.snapshot.max(min).saturating_mul(4)
    }
}

/// The log chunk of a set of UTXO changes; None when there are none.
pub(super) fn log_chunk<'a>(
    changes: impl ExactSizeIterator<Item = (&'a OutPoint, &'a Option<Coin>)>,
) -> Option<Vec<u8>> {
    if changes.len() == 0 {
        return None;
    }
    let mut v = Vec::with_capacity(1 + changes.len() * 84);
    v.push(LOG);
    for (op, coin) in changes {
        op.encode_to(&mut v);
        match coin {
            Some(c) => {
                v.push(1);
                c.encode_to(&mut v);
            }
            None => v.push(0),
        }
    }
    Some(v)
}

/// Applies one chunk to `set`; the chunk's kind. An error names what is wrong.
fn apply_chunk(set: &mut BTreeMap<OutPoint, Coin>, v: &[u8]) -> Result<u8, String> {
    let (&kind, entries) = v.split_first().ok_or("empty chunk")?;
    if kind != LOG && kind != SNAPSHOT {
        return Err(format!("unknown chunk kind {kind}"));
    }
    let mut r = Reader::new(entries);
    while r.remaining() > 0 {
        let op = OutPoint::decode_from(&mut r).map_err(|e| e.to_string())?;
        let live = if kind == SNAPSHOT {
            true
        } else {
            r.bool("coin flag").map_err(|e| e.to_string())?
        };
        if live {
            set.insert(op, Coin::decode_from(&mut r).map_err(|e| e.to_string())?);
        } else {
            set.remove(&op);
        }
    }
    Ok(kind)
}

/// Builds the set from the `utxo` store's keys and values (in key order, as `getAll`
/// returns them): per-coin records of older schemas, then the chunks.
pub(super) fn load(
    keys: &Array,
    values: &Array,
) -> Result<(BTreeMap<OutPoint, Coin>, UtxoSizes), StoreError> {
    let corrupt = |key: &str, e: String| StoreError::Corrupt(format!("utxo {key}: {e}"));
    let mut set = BTreeMap::new();
    let mut sizes = UtxoSizes::default();
    let mut chunks = Vec::new();
    for (k, v) in keys.iter().zip(values.iter()) {
        let v = Uint8Array::new(&v).to_vec();
        match k.as_string() {
            Some(key) => {
                let op = decode_hex(&key)
                    .ok()
                    .and_then(|b| OutPoint::decode(&b).ok())
                    .ok_or_else(|| corrupt(&key, "bad key".into()))?;
                let coin = Coin::decode(&v).map_err(|e| corrupt(&key, e.to_string()))?;
                set.insert(op, coin);
                sizes.snapshot += LEGACY_RECORD;
            }
            None => chunks.push((k.as_f64().unwrap_or(f64::NAN), v)),
        }
    }
    // getAll returns numbers in order already; sort anyway, so a load never depends on it.
    chunks.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (key, v) in chunks {
        let kind = apply_chunk(&mut set, &v).map_err(|e| corrupt(&key.to_string(), e))?;
        if kind == SNAPSHOT {
            sizes.snapshot += v.len() as u64;
        } else {
            sizes.log += v.len() as u64;
        }
    }
    Ok((set, sizes))
}

/// Encodes a snapshot of the set of `coins` into chunks of about [`SNAPSHOT_CHUNK`] bytes
/// (an empty set gives none).
pub fn snapshot_chunks(coins: impl IntoIterator<Item = (OutPoint, Coin)>) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut cur = vec![SNAPSHOT];
    for (op, coin) in coins {
        op.encode_to(&mut cur);
        coin.encode_to(&mut cur);
        if cur.len() >= SNAPSHOT_CHUNK {
            chunks.push(std::mem::replace(&mut cur, vec![SNAPSHOT]));
        }
    }
    if cur.len() > 1 {
        chunks.push(cur);
    }
    chunks
}

impl IdbStore {
    /// What the stored UTXO set weighs: read by [`IdbStore::load`], then kept up by writes.
    pub fn utxo_sizes(&self) -> UtxoSizes {
        self.utxo_sizes.get()
    }

    /// Replaces the stored UTXO set with `chunks` ([`snapshot_chunks`] of the set as of the
    /// last committed write), in one transaction: clears the `utxo` store (older records,
    /// the last snapshot and the log) and puts the chunks under fresh chunk numbers. The
    /// caller guarantees that nothing else is being written meanwhile.
    pub async fn write_snapshot(&self, chunks: &[Vec<u8>]) -> Result<(), StoreError> {
        let first = self.next_chunk.get();
        self.next_chunk.set(first + chunks.len() as f64);
        self.write(false, |tx| {
            let utxo = tx.object_store("utxo")?;
            utxo.clear()?;
            for (i, c) in chunks.iter().enumerate() {
                utxo.put_with_key(&bytes(c), &JsValue::from_f64(first + i as f64))?;
            }
            Ok(())
        })
        .await?;
        self.utxo_sizes.set(UtxoSizes {
            snapshot: chunks.iter().map(|c| c.len() as u64).sum(),
            log: 0,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabcoin_core::primitives::{TxOut, Txid};
    use tabcoin_core::sig::PublicKey;
    use tabcoin_core::units::{Amount, Height};

    fn op(i: u8) -> OutPoint {
        OutPoint {
            txid: Txid::from_bytes([i; 32]),
            vout: u32::from(i),
        }
    }

    fn coin(i: u8) -> Coin {
        Coin {
            output: TxOut {
                amount: Amount::from_units(u64::from(i) * 1000).unwrap(),
                key: PublicKey([i; 32]),
            },
            height: Height(u64::from(i)),
            coinbase: i.is_multiple_of(2),
        }
    }

    #[test]
    fn a_log_then_a_snapshot_then_a_log_replays_to_the_set() {
        let mut changes = BTreeMap::new();
        for i in 1..=5 {
            changes.insert(op(i), Some(coin(i)));
        }
        let first = log_chunk(changes.iter()).unwrap();
        let mut set = BTreeMap::new();
        assert_eq!(apply_chunk(&mut set, &first), Ok(LOG));
        let mut spend = BTreeMap::new();
        spend.insert(op(2), None);
        spend.insert(op(6), Some(coin(6)));
        spend.insert(op(9), None); // never stored: deleting it changes nothing
        apply_chunk(&mut set, &log_chunk(spend.iter()).unwrap()).unwrap();
        let want: Vec<u8> = vec![1, 3, 4, 5, 6];
        assert_eq!(
            set.keys().copied().collect::<Vec<_>>(),
            want.iter().map(|&i| op(i)).collect::<Vec<_>>()
        );
        // The set as a snapshot decodes to itself.
        let snap = snapshot_chunks(set.iter().map(|(o, c)| (*o, *c)));
        assert_eq!(snap.len(), 1);
        let mut again = BTreeMap::new();
        assert_eq!(apply_chunk(&mut again, &snap[0]), Ok(SNAPSHOT));
        assert_eq!(again, set);
        assert_eq!(
            log_chunk(BTreeMap::<OutPoint, Option<Coin>>::new().iter()),
            None
        );
        assert!(snapshot_chunks([]).is_empty());
    }

    #[test]
    fn a_big_snapshot_is_split_into_bounded_chunks() {
        let mut set = BTreeMap::new();
        for i in 0..8000u32 {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_le_bytes());
            set.insert(
                OutPoint {
                    txid: Txid::from_bytes(t),
                    vout: i,
                },
                coin((i % 200) as u8),
            );
        }
        let snap = snapshot_chunks(set.iter().map(|(o, c)| (*o, *c)));
        assert!(snap.len() >= 2, "{} chunks", snap.len());
        let entry = 36 + coin(0).encoded_len() + 2;
        assert!(snap.iter().all(|c| c.len() < SNAPSHOT_CHUNK + entry));
        let mut again = BTreeMap::new();
        for c in &snap {
            apply_chunk(&mut again, c).unwrap();
        }
        assert_eq!(again, set);
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let mut set = BTreeMap::new();
        assert!(apply_chunk(&mut set, &[]).is_err());
        assert!(apply_chunk(&mut set, &[7, 1, 2]).is_err());
        let good = log_chunk([(op(1), Some(coin(1)))].iter().map(|(a, b)| (a, b))).unwrap();
        for cut in 1..good.len() {
            let _ = apply_chunk(&mut BTreeMap::new(), &good[..cut]);
        }
        let mut bad_flag = good.clone();
        bad_flag[1 + 36] = 5;
        assert!(apply_chunk(&mut BTreeMap::new(), &bad_flag).is_err());
    }

    #[test]
    fn the_log_is_due_when_it_outweighs_the_snapshot_and_overdue_at_four_times() {
        let s = |snapshot, log| UtxoSizes { snapshot, log };
        assert!(!s(0, 999).due(1000));
        assert!(s(0, 1000).due(1000));
        assert!(!s(5000, 4999).due(1000));
        assert!(s(5000, 5000).due(1000));
        assert!(!s(5000, 19_999).overdue(1000));
        assert!(s(5000, 20_000).overdue(1000));
        assert!(s(0, 4000).overdue(1000));
    }
}
