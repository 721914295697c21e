//! The relay's persistent store: a [`Store`] on an embedded redb database file.
//!
//! Every [`ChangeSet`] is written in exactly one redb write transaction and committed once
//! (redb's default durability: the commit is on disk when `persist` returns), so a crash
//! leaves the store at the end of some ChangeSet, never inside one.
//!
//! Layout of `chain.redb`:
//!
//! | table     | key                                  | value                                 |
//! |-----------|--------------------------------------|---------------------------------------|
//! | `blocks`  | block hash (32 bytes)                | (insertion sequence, canonical block) |
//! | `invalid` | block hash (32 bytes)                | ()                                    |
//! | `utxo`    | outpoint (36 bytes)                  | canonical coin                        |
//! | `undo`    | block hash (32 bytes)                | canonical block undo                  |
//! | `nodes`   | url                                  | node record                           |
//! | `meta`    | `genesis`, `tip`, `identity`, `seq`  | 32, 32, 32 and 8 bytes                |
//!
//! `seq` is the next block sequence number (little-endian u64); `load` returns blocks in
//! sequence order, so parents come before their children. A node record is the node id
//! (32 bytes), the url (varint length, UTF-8) and `last_seen` (u64 little-endian), as in the
//! core's ChangeSet encoding.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tabcoin_core::encode::{Decode, DecodeError, Encode, Reader, put_var_bytes};
use tabcoin_core::hash::{Hash256, to_hex};
use tabcoin_core::primitives::{Block, BlockHash, OutPoint};
use tabcoin_core::sig::PublicKey;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::utxo::{BlockUndo, Coin};
use tabcoin_core::wire::{MAX_URL, NodeRecord};

const BLOCKS: TableDefinition<&[u8; 32], (u64, &[u8])> = TableDefinition::new("blocks");
const INVALID: TableDefinition<&[u8; 32], ()> = TableDefinition::new("invalid");
const UTXO: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("utxo");
const UNDO: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("undo");
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_GENESIS: &str = "genesis";
const META_TIP: &str = "tip";
const META_IDENTITY: &str = "identity";
const META_SEQ: &str = "seq";

/// Name of the database file inside the store directory.
pub const FILE_NAME: &str = "chain.redb";

/// Why the store failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database (or its directory) could not be opened, read or written.
    Db(String),
    /// A stored record does not decode or does not fit the rest of the store.
    Corrupt(String),
    /// The store was made for a network with another genesis block.
    WrongNetwork {
        stored: BlockHash,
        expected: BlockHash,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "database error: {e}"),
            StoreError::Corrupt(e) => write!(f, "corrupt store: {e}"),
            StoreError::WrongNetwork { stored, expected } => write!(
                f,
                "store belongs to another network: genesis {stored}, expected {expected}"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

fn db(e: impl fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

fn corrupt(table: &str, key: &[u8], why: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table} table, key {}: {why}", to_hex(key)))
}

fn hash_value(table: &str, key: &str, bytes: &[u8]) -> Result<Hash256, StoreError> {
    let array = <[u8; 32]>::try_from(bytes).map_err(|_| {
        corrupt(
            table,
            key.as_bytes(),
            format_args!("expected 32 bytes, found {}", bytes.len()),
        )
    })?;
    Ok(Hash256(array))
}

fn encode_node(rec: &NodeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 2 + rec.url.len() + 8);
    out.extend_from_slice(&rec.node_id.0);
    put_var_bytes(&mut out, rec.url.as_bytes());
    out.extend_from_slice(&rec.last_seen.to_le_bytes());
    out
}

fn decode_node(bytes: &[u8]) -> Result<NodeRecord, DecodeError> {
    let mut r = Reader::new(bytes);
    let rec = NodeRecord {
        node_id: PublicKey(r.array()?),
        url: r.string("node url", MAX_URL)?,
        last_seen: r.u64()?,
    };
    r.finish()?;
    Ok(rec)
}

/// Chain state, known relays and the node identity in one redb file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens or creates the database file `dir/chain.redb` (create dir). Records `genesis` on
    /// first open; refuses a store of another network.
    pub fn open(dir: &Path, genesis: BlockHash) -> Result<RedbStore, StoreError> {
        fs::create_dir_all(dir)
            .map_err(|e| StoreError::Db(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        // Verify page checksums on every open, not only after a crash: a file damaged outside
        // redb is then an error instead of a possible panic.
        let database = Database::builder()
            .set_check_integrity_on_open(true)
            .create(&path)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", path.display())))?;
        let tx = database.begin_write().map_err(db)?;
        {
            // Create every table so that read transactions always find them.
            tx.open_table(BLOCKS).map_err(db)?;
            tx.open_table(INVALID).map_err(db)?;
            tx.open_table(UTXO).map_err(db)?;
            tx.open_table(UNDO).map_err(db)?;
            tx.open_table(NODES).map_err(db)?;
            let mut meta = tx.open_table(META).map_err(db)?;
            let stored = meta
                .get(META_GENESIS)
                .map_err(db)?
                .map(|v| v.value().to_vec());
            match stored {
                None => {
                    meta.insert(META_GENESIS, genesis.as_bytes().as_slice())
                        .map_err(db)?;
                }
                Some(bytes) => {
                    let stored = BlockHash::from_hash(hash_value("meta", META_GENESIS, &bytes)?);
                    if stored != genesis {
                        return Err(StoreError::WrongNetwork {
                            stored,
                            expected: genesis,
                        });
                    }
                }
            }
        }
        tx.commit().map_err(db)?;
        Ok(RedbStore { db: database, path })
    }

    /// The node identity seed, generated once with `fresh()` and kept (so the node id survives
    /// restarts).
    pub fn identity_seed(
        &mut self,
        fresh: impl FnOnce() -> [u8; 32],
    ) -> Result<[u8; 32], StoreError> {
        if let Some(seed) = self.read_identity()? {
            return Ok(seed);
        }
        let seed = fresh();
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut meta = tx.open_table(META).map_err(db)?;
            meta.insert(META_IDENTITY, seed.as_slice()).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(seed)
    }

    fn read_identity(&self) -> Result<Option<[u8; 32]>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let meta = tx.open_table(META).map_err(db)?;
        let Some(v) = meta.get(META_IDENTITY).map_err(db)? else {
            return Ok(None);
        };
        Ok(Some(hash_value("meta", META_IDENTITY, v.value())?.0))
    }
}

impl Store for RedbStore {
    type Error = StoreError;

    fn load(&mut self) -> Result<ChangeSet, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let mut cs = ChangeSet::default();

        let table = tx.open_table(BLOCKS).map_err(db)?;
        let mut blocks = Vec::new();
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let key = k.value();
            let (seq, bytes) = v.value();
            let block = Block::decode(bytes).map_err(|e| corrupt("blocks", key, e))?;
            let hash = block.hash();
            if hash.as_bytes() != key {
                return Err(corrupt(
                    "blocks",
                    key,
                    format_args!("the block stored there hashes to {hash}"),
                ));
            }
            blocks.push((seq, block));
        }
        blocks.sort_by_key(|(seq, _)| *seq);
        cs.blocks = blocks.into_iter().map(|(_, b)| b).collect();

        let table = tx.open_table(INVALID).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, _) = item.map_err(db)?;
            cs.invalid.insert(BlockHash::from_bytes(*k.value()));
        }

        let table = tx.open_table(UTXO).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let key = k.value();
            let outpoint = OutPoint::decode(key).map_err(|e| corrupt("utxo", key, e))?;
            let coin = Coin::decode(v.value()).map_err(|e| corrupt("utxo", key, e))?;
            cs.utxo.insert(outpoint, Some(coin));
        }

        let table = tx.open_table(UNDO).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let key = k.value();
            let undo = BlockUndo::decode(v.value()).map_err(|e| corrupt("undo", key, e))?;
            cs.undo.insert(BlockHash::from_bytes(*key), Some(undo));
        }

        let table = tx.open_table(NODES).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let url = k.value();
            let rec = decode_node(v.value()).map_err(|e| corrupt("nodes", url.as_bytes(), e))?;
            cs.nodes.insert(url.to_owned(), Some(rec));
        }

        let table = tx.open_table(META).map_err(db)?;
        if let Some(v) = table.get(META_TIP).map_err(db)? {
            cs.tip = Some(BlockHash::from_hash(hash_value(
                "meta",
                META_TIP,
                v.value(),
            )?));
        }
        Ok(cs)
    }

    fn persist(&mut self, cs: &ChangeSet) -> Result<(), StoreError> {
        if cs.is_empty() {
            return Ok(());
        }
        // One write transaction: if anything below fails it is dropped, which aborts it.
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut meta = tx.open_table(META).map_err(db)?;
            if !cs.blocks.is_empty() {
                let mut seq = match meta.get(META_SEQ).map_err(db)? {
                    None => 0,
                    Some(v) => {
                        let bytes = v.value();
                        let array = <[u8; 8]>::try_from(bytes).map_err(|_| {
                            corrupt(
                                "meta",
                                META_SEQ.as_bytes(),
                                format_args!("expected 8 bytes, found {}", bytes.len()),
                            )
                        })?;
                        u64::from_le_bytes(array)
                    }
                };
                let mut table = tx.open_table(BLOCKS).map_err(db)?;
                for block in &cs.blocks {
                    let hash = block.hash();
                    // Already stored (a ChangeSet merged from several may repeat a block):
                    // keep its first sequence number.
                    if table.get(hash.as_bytes()).map_err(db)?.is_some() {
                        continue;
                    }
                    table
                        .insert(hash.as_bytes(), (seq, block.encode().as_slice()))
                        .map_err(db)?;
                    seq += 1;
                }
                meta.insert(META_SEQ, seq.to_le_bytes().as_slice())
                    .map_err(db)?;
            }
            if let Some(tip) = &cs.tip {
                meta.insert(META_TIP, tip.as_bytes().as_slice())
                    .map_err(db)?;
            }

            if !cs.invalid.is_empty() {
                let mut table = tx.open_table(INVALID).map_err(db)?;
                for hash in &cs.invalid {
                    table.insert(hash.as_bytes(), ()).map_err(db)?;
                }
            }

            if !cs.utxo.is_empty() {
                let mut table = tx.open_table(UTXO).map_err(db)?;
                let mut key = Vec::with_capacity(36);
                for (outpoint, coin) in &cs.utxo {
                    key.clear();
                    outpoint.encode_to(&mut key);
                    let key = <&[u8; 36]>::try_from(key.as_slice()).map_err(|_| {
                        StoreError::Db(format!("outpoint encoded to {} bytes", key.len()))
                    })?;
                    match coin {
                        Some(coin) => {
                            table.insert(key, coin.encode().as_slice()).map_err(db)?;
                        }
                        None => {
                            table.remove(key).map_err(db)?;
                        }
                    }
                }
            }

            if !cs.undo.is_empty() {
                let mut table = tx.open_table(UNDO).map_err(db)?;
                for (hash, undo) in &cs.undo {
                    match undo {
                        Some(undo) => {
                            table
                                .insert(hash.as_bytes(), undo.encode().as_slice())
                                .map_err(db)?;
                        }
                        None => {
                            table.remove(hash.as_bytes()).map_err(db)?;
                        }
                    }
                }
            }

            if !cs.nodes.is_empty() {
                let mut table = tx.open_table(NODES).map_err(db)?;
                for (url, rec) in &cs.nodes {
                    match rec {
                        Some(rec) => {
                            table
                                .insert(url.as_str(), encode_node(rec).as_slice())
                                .map_err(db)?;
                        }
                        None => {
                            table.remove(url.as_str()).map_err(db)?;
                        }
                    }
                }
            }
        }
        tx.commit().map_err(db)
    }
}
