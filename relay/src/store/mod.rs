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
//! | `headers` | insertion sequence (u64)             | block header (88 bytes)               |
//! | `invalid` | block hash (32 bytes)                | ()                                    |
//! | `utxo`    | outpoint (36 bytes)                  | canonical coin                        |
//! | `undo`    | block hash (32 bytes)                | canonical block undo                  |
//! | `nodes`   | url                                  | node record                           |
//! | `bans`    | ban key (address group or url)       | banned until, ms since the epoch (u64)|
//! | `node_meta` | url                                | the relay's provenance (`AddrMeta`)   |
//! | `meta`    | `genesis`, `tip`, `identity`, `seq`, `index` | 32, 32, 32, 8 and 1 bytes     |
//! | `active`  | height (u64)                         | hash of the active block there        |
//! | `txindex` | txid (32 bytes)                      | (block hash, position in the block)   |
//!
//! `active` and `txindex` are indexes for the HTTP API, so that it reads blocks and
//! transactions here instead of asking the node task: they cover the active chain and are
//! written in the same transaction as each block connect (an `undo` entry added) and
//! disconnect (an `undo` entry removed). A store written before they existed is indexed once
//! on open (`index` = 1 marks it done). The genesis block is at height 0 of `active` but not
//! in `blocks` (the chain makes it from the network parameters).
//!
//! `seq` is the next block sequence number (little-endian u64); `load` returns the headers
//! of stored blocks in sequence order, so parents come before their children, and reads no
//! body and no undo data: those are read one block at a time by `load_block` when the node
//! asks (`Output::LoadBlock`). `headers` = 1 in `meta` marks the `headers` table filled (a
//! store from before it is filled once on open). See `docs/STORAGE.md`. A node record is the node id
//! (32 bytes), the url (varint length, UTF-8) and `last_seen` (u64 little-endian), as in the
//! core's ChangeSet encoding; its provenance (where it was heard of, tried or not, last
//! success, failures) is kept beside it in `node_meta`, encoded as in the ChangeSet.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tabcoin_core::addrman::AddrMeta;
use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::hash::{Hash256, to_hex};
use tabcoin_core::primitives::{
    Block, BlockHash, BlockHeader, HEADER_SIZE, OutPoint, Payload, Txid,
};
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::units::Height;
use tabcoin_core::utxo::{BlockUndo, Coin};
use tabcoin_core::wire::NodeRecord;

const BLOCKS: TableDefinition<&[u8; 32], (u64, &[u8])> = TableDefinition::new("blocks");
const HEADERS: TableDefinition<u64, &[u8; HEADER_SIZE]> = TableDefinition::new("headers");
const INVALID: TableDefinition<&[u8; 32], ()> = TableDefinition::new("invalid");
const UTXO: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("utxo");
const UNDO: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("undo");
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const BANS: TableDefinition<&str, u64> = TableDefinition::new("bans");
const NODE_META: TableDefinition<&str, &[u8]> = TableDefinition::new("node_meta");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ACTIVE: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("active");
const TXINDEX: TableDefinition<&[u8; 32], (&[u8; 32], u32)> = TableDefinition::new("txindex");
/// Encoded size of each stored body, so a pruned node knows what it keeps without reading
/// bodies at start-up.
const SIZES: TableDefinition<&[u8; 32], u32> = TableDefinition::new("sizes");

/// Default size of redb's page cache (`--store-cache`), read cache and write buffer together.
/// redb's own default (1 GiB) keeps every page the relay writes or reads, so the process grew
/// with the chain up to that size (the memory bench measured ~2.3 bytes of RSS per byte of
/// chain), and 32 MiB still was most of a synced relay's heap. The node keeps what it reads
/// often in memory itself (headers, the UTXO set, recent bodies), so the store is mostly
/// written, one ChangeSet (a block: well under half this) per transaction; the OS page cache
/// holds the file's hot pages outside the process.
pub const DEFAULT_CACHE_BYTES: usize = 4 * 1024 * 1024;

const META_GENESIS: &str = "genesis";
const META_TIP: &str = "tip";
const META_IDENTITY: &str = "identity";
const META_SEQ: &str = "seq";
const META_INDEX: &str = "index";
const META_HEADERS: &str = "headers";
const META_SIZES: &str = "sizes";
const META_PRUNE: &str = "prune_height";
/// Version of the `active` / `txindex` layout.
const INDEX_VERSION: u8 = 1;

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

/// A stored value of exactly `N` bytes (a `Corrupt` error naming the record otherwise).
fn fixed_value<const N: usize>(
    table: &str,
    key: &str,
    bytes: &[u8],
) -> Result<[u8; N], StoreError> {
    <[u8; N]>::try_from(bytes).map_err(|_| {
        corrupt(
            table,
            key.as_bytes(),
            format_args!("expected {N} bytes, found {}", bytes.len()),
        )
    })
}

fn hash_value(table: &str, key: &str, bytes: &[u8]) -> Result<Hash256, StoreError> {
    fixed_value(table, key, bytes).map(Hash256)
}

fn u64_value(table: &str, key: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    fixed_value(table, key, bytes).map(u64::from_le_bytes)
}

/// Chain state, known relays and the node identity in one redb file.
pub struct RedbStore {
    db: Arc<Database>,
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
        Self::open_with_cache(dir, genesis, DEFAULT_CACHE_BYTES)
    }

    /// [`RedbStore::open`] with a page cache of `cache_bytes` (redb's read cache and write
    /// buffer together; [`RedbStore::cache_used_bytes`] stays within it).
    pub fn open_with_cache(
        dir: &Path,
        genesis: BlockHash,
        cache_bytes: usize,
    ) -> Result<RedbStore, StoreError> {
        fs::create_dir_all(dir)
            .map_err(|e| StoreError::Db(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        // Verify page checksums on every open, not only after a crash: a file damaged outside
        // redb is then an error instead of a possible panic.
        let database = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", path.display())))?;
        Self::init(database, path, genesis)
    }

    /// Bytes redb's page cache holds now (read cache and write buffer).
    pub fn cache_used_bytes(&self) -> usize {
        self.db.cache_stats().used_bytes()
    }

    /// A store that lives in memory only (nothing survives the process), with the same
    /// tables and indexes as on disk.
    pub fn in_memory(genesis: BlockHash) -> Result<RedbStore, StoreError> {
        let database = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::Db(format!("cannot create an in-memory database: {e}")))?;
        Self::init(database, PathBuf::from(":memory:"), genesis)
    }

    fn init(
        database: Database,
        path: PathBuf,
        genesis: BlockHash,
    ) -> Result<RedbStore, StoreError> {
        let tx = database.begin_write().map_err(db)?;
        {
            // Create every table so that read transactions always find them.
            tx.open_table(BLOCKS).map_err(db)?;
            tx.open_table(HEADERS).map_err(db)?;
            tx.open_table(INVALID).map_err(db)?;
            tx.open_table(UTXO).map_err(db)?;
            tx.open_table(UNDO).map_err(db)?;
            tx.open_table(NODES).map_err(db)?;
            tx.open_table(BANS).map_err(db)?;
            tx.open_table(TXINDEX).map_err(db)?;
            tx.open_table(SIZES).map_err(db)?;
            tx.open_table(ACTIVE)
                .map_err(db)?
                .insert(0, genesis.as_bytes())
                .map_err(db)?;
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
            let indexed = meta
                .get(META_INDEX)
                .map_err(db)?
                .map(|v| v.value().to_vec());
            if indexed.as_deref() != Some(&[INDEX_VERSION][..]) {
                let tip = match meta.get(META_TIP).map_err(db)? {
                    Some(v) => Some(BlockHash::from_hash(hash_value(
                        "meta",
                        META_TIP,
                        v.value(),
                    )?)),
                    None => None,
                };
                reindex(&tx, tip, genesis)?;
                meta.insert(META_INDEX, [INDEX_VERSION].as_slice())
                    .map_err(db)?;
            }
            if meta.get(META_HEADERS).map_err(db)?.is_none() {
                // A store from before the `headers` table: fill it once from the bodies.
                let blocks = tx.open_table(BLOCKS).map_err(db)?;
                let mut headers = tx.open_table(HEADERS).map_err(db)?;
                for item in blocks.iter().map_err(db)? {
                    let (k, v) = item.map_err(db)?;
                    let (seq, bytes) = v.value();
                    let block =
                        Block::decode(bytes).map_err(|e| corrupt("blocks", k.value(), e))?;
                    headers.insert(seq, &block.header.to_bytes()).map_err(db)?;
                }
                meta.insert(META_HEADERS, [1u8].as_slice()).map_err(db)?;
            }
            if meta.get(META_SIZES).map_err(db)?.is_none() {
                // A store from before the `sizes` table: fill it once from the bodies.
                let blocks = tx.open_table(BLOCKS).map_err(db)?;
                let mut sizes = tx.open_table(SIZES).map_err(db)?;
                for item in blocks.iter().map_err(db)? {
                    let (k, v) = item.map_err(db)?;
                    let (_, bytes) = v.value();
                    sizes.insert(k.value(), body_size(bytes)).map_err(db)?;
                }
                meta.insert(META_SIZES, [1u8].as_slice()).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(RedbStore {
            db: Arc::new(database),
            path,
        })
    }

    /// A read-only handle for the API, usable from any thread while this store writes.
    pub fn reader(&self, genesis: Block) -> StoreReader {
        StoreReader {
            db: Arc::downgrade(&self.db),
            genesis: Arc::new(genesis),
        }
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

        // Headers only, in sequence order (parents first): no body is read at start-up.
        let table = tx.open_table(HEADERS).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let header = BlockHeader::decode(v.value())
                .map_err(|e| corrupt("headers", &k.value().to_le_bytes(), e))?;
            cs.headers.push(header);
        }

        let table = tx.open_table(INVALID).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, _) = item.map_err(db)?;
            cs.invalid.insert(BlockHash::from_bytes(*k.value()));
        }

        // Sizes of the stored bodies (12 bytes a block, not the bodies).
        let table = tx.open_table(SIZES).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            cs.sizes
                .insert(BlockHash::from_bytes(*k.value()), v.value());
        }

        let table = tx.open_table(UTXO).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let key = k.value();
            let outpoint = OutPoint::decode(key).map_err(|e| corrupt("utxo", key, e))?;
            let coin = Coin::decode(v.value()).map_err(|e| corrupt("utxo", key, e))?;
            cs.utxo.insert(outpoint, Some(coin));
        }

        let table = tx.open_table(NODES).map_err(db)?;
        for item in table.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let url = k.value();
            // A record of an older layout (before records were signed) is not an error: it
            // is skipped, and relearned from the network signed.
            match NodeRecord::decode(v.value()) {
                Ok(rec) => {
                    cs.nodes.insert(url.to_owned(), Some(rec));
                }
                Err(e) => tracing::debug!(url, error = %e, "skipping a stored relay record"),
            }
        }

        // A store from before bans were kept has no such table: no bans.
        match tx.open_table(BANS) {
            Ok(table) => {
                for item in table.iter().map_err(db)? {
                    let (k, v) = item.map_err(db)?;
                    cs.bans.insert(k.value().to_owned(), Some(v.value()));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(db(e)),
        }

        // A store from before provenance was kept has no such table: its relays load as
        // heard of from one source ("store").
        match tx.open_table(NODE_META) {
            Ok(table) => {
                for item in table.iter().map_err(db)? {
                    let (k, v) = item.map_err(db)?;
                    let url = k.value();
                    let meta = AddrMeta::decode(v.value())
                        .map_err(|e| corrupt("node_meta", url.as_bytes(), e))?;
                    cs.node_meta.insert(url.to_owned(), Some(meta));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(db(e)),
        }

        let table = tx.open_table(META).map_err(db)?;
        if let Some(v) = table.get(META_PRUNE).map_err(db)? {
            cs.prune_height = Some(Height(u64_value("meta", META_PRUNE, v.value())?));
        }
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
                    Some(v) => u64_value("meta", META_SEQ, v.value())?,
                };
                let mut table = tx.open_table(BLOCKS).map_err(db)?;
                let mut headers = tx.open_table(HEADERS).map_err(db)?;
                let mut sizes = tx.open_table(SIZES).map_err(db)?;
                for block in &cs.blocks {
                    let hash = block.hash();
                    // Already stored (a ChangeSet merged from several may repeat a block):
                    // keep its first sequence number.
                    if table.get(hash.as_bytes()).map_err(db)?.is_some() {
                        continue;
                    }
                    let bytes = block.encode();
                    table
                        .insert(hash.as_bytes(), (seq, bytes.as_slice()))
                        .map_err(db)?;
                    sizes
                        .insert(hash.as_bytes(), body_size(&bytes))
                        .map_err(db)?;
                    headers.insert(seq, &block.header.to_bytes()).map_err(db)?;
                    seq += 1;
                }
                meta.insert(META_SEQ, seq.to_le_bytes().as_slice())
                    .map_err(db)?;
            }
            if let Some(tip) = &cs.tip {
                meta.insert(META_TIP, tip.as_bytes().as_slice())
                    .map_err(db)?;
            }
            if let Some(h) = cs.prune_height {
                meta.insert(META_PRUNE, h.0.to_le_bytes().as_slice())
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
                index_changes(&tx, cs)?;
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

            // After blocks and undo: a body may be stored and pruned by the same set.
            if !cs.pruned.is_empty() {
                prune_bodies(&tx, &cs.pruned)?;
            }

            put_or_remove(&tx, NODES, &cs.nodes)?;
            put_or_remove(&tx, NODE_META, &cs.node_meta)?;

            if !cs.bans.is_empty() {
                let mut table = tx.open_table(BANS).map_err(db)?;
                for (key, until) in &cs.bans {
                    match until {
                        Some(until) => {
                            table.insert(key.as_str(), *until).map_err(db)?;
                        }
                        None => {
                            table.remove(key.as_str()).map_err(db)?;
                        }
                    }
                }
            }
        }
        tx.commit().map_err(db)
    }

    fn load_block(
        &mut self,
        hash: &BlockHash,
    ) -> Result<(Option<Block>, Option<BlockUndo>), StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let blocks = tx.open_table(BLOCKS).map_err(db)?;
        let block = stored_block(&blocks, hash)?;
        let table = tx.open_table(UNDO).map_err(db)?;
        let undo = match table.get(hash.as_bytes()).map_err(db)? {
            Some(v) => Some(
                BlockUndo::decode(v.value()).map_err(|e| corrupt("undo", hash.as_bytes(), e))?,
            ),
            None => None,
        };
        Ok((block, undo))
    }
}

/// The size a body is recorded with (a body never nears 4 GiB; saturate if it did).
/// Writes `changes` to the url-keyed `table`: each value encoded, or the key removed for
/// `None` (nothing opened when there are none).
fn put_or_remove<T: Encode>(
    tx: &redb::WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    changes: &std::collections::BTreeMap<String, Option<T>>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(table).map_err(db)?;
    for (key, value) in changes {
        match value {
            Some(v) => {
                table
                    .insert(key.as_str(), v.encode().as_slice())
                    .map_err(db)?;
            }
            None => {
                table.remove(key.as_str()).map_err(db)?;
            }
        }
    }
    Ok(())
}

fn body_size(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}

/// Deletes pruned bodies, their undo data and sizes, and the transaction index entries
/// that point at them (a pruned relay answers `/api/tx` for the blocks it keeps). Headers
/// and the `active` table stay.
fn prune_bodies(
    tx: &redb::WriteTransaction,
    pruned: &std::collections::BTreeSet<BlockHash>,
) -> Result<(), StoreError> {
    let mut blocks = tx.open_table(BLOCKS).map_err(db)?;
    let mut undo = tx.open_table(UNDO).map_err(db)?;
    let mut sizes = tx.open_table(SIZES).map_err(db)?;
    let mut txindex = tx.open_table(TXINDEX).map_err(db)?;
    for hash in pruned {
        let Some(block) = stored_block(&blocks, hash)? else {
            continue;
        };
        index_unlink(&mut txindex, hash, &block)?;
        blocks.remove(hash.as_bytes()).map_err(db)?;
        undo.remove(hash.as_bytes()).map_err(db)?;
        sizes.remove(hash.as_bytes()).map_err(db)?;
    }
    Ok(())
}

/// The height a block commits to in its coinbase.
fn coinbase_height(block: &Block) -> Option<u64> {
    match &block.txs.first()?.payload {
        Payload::Coinbase { height, .. } => Some(height.0),
        _ => None,
    }
}

fn stored_block(
    blocks: &impl ReadableTable<&'static [u8; 32], (u64, &'static [u8])>,
    hash: &BlockHash,
) -> Result<Option<Block>, StoreError> {
    let Some(v) = blocks.get(hash.as_bytes()).map_err(db)? else {
        return Ok(None);
    };
    let (_, bytes) = v.value();
    Block::decode(bytes)
        .map(Some)
        .map_err(|e| corrupt("blocks", hash.as_bytes(), e))
}

/// Adds a connected block to `active` and `txindex`.
fn index_connect(
    active: &mut Table<u64, &'static [u8; 32]>,
    txindex: &mut Table<&'static [u8; 32], (&'static [u8; 32], u32)>,
    hash: &BlockHash,
    block: &Block,
) -> Result<(), StoreError> {
    let height = coinbase_height(block)
        .ok_or_else(|| corrupt("blocks", hash.as_bytes(), "no coinbase height"))?;
    active.insert(height, hash.as_bytes()).map_err(db)?;
    for (i, t) in block.txs.iter().enumerate() {
        let position =
            u32::try_from(i).map_err(|_| corrupt("blocks", hash.as_bytes(), "too many txs"))?;
        txindex
            .insert(t.txid().as_bytes(), (hash.as_bytes(), position))
            .map_err(db)?;
    }
    Ok(())
}

/// Removes the `txindex` entries of `block`'s transactions that still point at `hash` (one
/// that another block holds now stays).
fn index_unlink(
    txindex: &mut Table<&'static [u8; 32], (&'static [u8; 32], u32)>,
    hash: &BlockHash,
    block: &Block,
) -> Result<(), StoreError> {
    for t in &block.txs {
        let txid = t.txid();
        let points_here = txindex
            .get(txid.as_bytes())
            .map_err(db)?
            .is_some_and(|v| v.value().0 == hash.as_bytes());
        if points_here {
            txindex.remove(txid.as_bytes()).map_err(db)?;
        }
    }
    Ok(())
}

/// Keeps `active` and `txindex` in step with the blocks a ChangeSet connects (`undo` added)
/// and disconnects (`undo` removed). Removals go first and only remove entries that still
/// point at the disconnected block, so a transaction in both branches of a reorg stays
/// indexed under the block that now holds it.
fn index_changes(tx: &redb::WriteTransaction, cs: &ChangeSet) -> Result<(), StoreError> {
    let blocks = tx.open_table(BLOCKS).map_err(db)?;
    let mut active = tx.open_table(ACTIVE).map_err(db)?;
    let mut txindex = tx.open_table(TXINDEX).map_err(db)?;
    let find = |hash: &BlockHash| -> Result<Block, StoreError> {
        // Usually the block arrives in the same ChangeSet; after a reorg it is stored.
        if let Some(b) = cs.blocks.iter().find(|b| b.hash() == *hash) {
            return Ok(b.clone());
        }
        stored_block(&blocks, hash)?.ok_or_else(|| {
            corrupt(
                "undo",
                hash.as_bytes(),
                "undo for a block that is not stored",
            )
        })
    };
    for (hash, _) in cs.undo.iter().filter(|(_, u)| u.is_none()) {
        let block = find(hash)?;
        if let Some(height) = coinbase_height(&block) {
            let here = active.get(height).map_err(db)?.map(|v| *v.value());
            if here == Some(*hash.as_bytes()) {
                active.remove(height).map_err(db)?;
            }
        }
        index_unlink(&mut txindex, hash, &block)?;
    }
    for (hash, _) in cs.undo.iter().filter(|(_, u)| u.is_some()) {
        let block = find(hash)?;
        index_connect(&mut active, &mut txindex, hash, &block)?;
    }
    Ok(())
}

/// Rebuilds `active` and `txindex` from the stored tip back to genesis.
fn reindex(
    tx: &redb::WriteTransaction,
    tip: Option<BlockHash>,
    genesis: BlockHash,
) -> Result<(), StoreError> {
    let blocks = tx.open_table(BLOCKS).map_err(db)?;
    let mut active = tx.open_table(ACTIVE).map_err(db)?;
    let mut txindex = tx.open_table(TXINDEX).map_err(db)?;
    active.retain(|_, _| false).map_err(db)?;
    txindex.retain(|_, _| false).map_err(db)?;
    active.insert(0, genesis.as_bytes()).map_err(db)?;
    let mut next = tip;
    while let Some(hash) = next.filter(|h| *h != genesis) {
        let block = stored_block(&blocks, &hash)?
            .ok_or_else(|| corrupt("meta", META_TIP.as_bytes(), "active chain not stored"))?;
        index_connect(&mut active, &mut txindex, &hash, &block)?;
        next = Some(block.header.prev);
    }
    Ok(())
}

mod reader;

pub use reader::{StoreReader, StoredBlock};
