//! [`StoreReader`]: the HTTP API's reads of the relay's store (blocks of the active chain and
//! the transaction index), one redb read transaction each, off the node's task.

use super::*;

/// Reads blocks and transactions of the active chain for the API, off the node's task:
/// every call is one redb read transaction (use it from a blocking thread). It does not keep
/// the database open: once the store is dropped, reads fail with "store is closed".
#[derive(Clone)]
pub struct StoreReader {
    pub(super) db: Weak<Database>,
    pub(super) genesis: Arc<Block>,
}

impl fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreReader").finish_non_exhaustive()
    }
}

/// A block as the API shows it: the block, its height and whether it is on the active chain.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    pub hash: BlockHash,
    pub block: Block,
    pub height: u64,
    pub active: bool,
}

impl StoreReader {
    fn begin(&self) -> Result<redb::ReadTransaction, StoreError> {
        let database = self
            .db
            .upgrade()
            .ok_or_else(|| StoreError::Db("store is closed".into()))?;
        database.begin_read().map_err(db)
    }

    fn read(
        &self,
        hash: &BlockHash,
        blocks: &impl ReadableTable<&'static [u8; 32], (u64, &'static [u8])>,
        active: &impl ReadableTable<u64, &'static [u8; 32]>,
    ) -> Result<Option<StoredBlock>, StoreError> {
        let block = if *hash == self.genesis.hash() {
            Some((*self.genesis).clone())
        } else {
            stored_block(blocks, hash)?
        };
        let Some(block) = block else {
            return Ok(None);
        };
        let height = coinbase_height(&block).unwrap_or(0);
        let is_active = active
            .get(height)
            .map_err(db)?
            .is_some_and(|v| v.value() == hash.as_bytes());
        Ok(Some(StoredBlock {
            hash: *hash,
            block,
            height,
            active: is_active,
        }))
    }

    /// A stored block by hash (active or not).
    pub fn block(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, StoreError> {
        let tx = self.begin()?;
        let blocks = tx.open_table(BLOCKS).map_err(db)?;
        let active = tx.open_table(ACTIVE).map_err(db)?;
        self.read(hash, &blocks, &active)
    }

    /// Up to `limit` active blocks from height `top` down.
    pub fn active_blocks(&self, top: u64, limit: usize) -> Result<Vec<StoredBlock>, StoreError> {
        let tx = self.begin()?;
        let blocks = tx.open_table(BLOCKS).map_err(db)?;
        let active = tx.open_table(ACTIVE).map_err(db)?;
        let mut out = Vec::new();
        for item in active.range(..=top).map_err(db)?.rev().take(limit) {
            let (_, hash) = item.map_err(db)?;
            if let Some(b) = self.read(&BlockHash::from_bytes(*hash.value()), &blocks, &active)? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// The active block holding transaction `txid`, and the transaction's position in it.
    pub fn tx(&self, txid: &Txid) -> Result<Option<(StoredBlock, usize)>, StoreError> {
        let tx = self.begin()?;
        let txindex = tx.open_table(TXINDEX).map_err(db)?;
        let Some(v) = txindex.get(txid.as_bytes()).map_err(db)? else {
            return Ok(None);
        };
        let (hash, position) = v.value();
        let hash = BlockHash::from_bytes(*hash);
        let blocks = tx.open_table(BLOCKS).map_err(db)?;
        let active = tx.open_table(ACTIVE).map_err(db)?;
        let Some(b) = self.read(&hash, &blocks, &active)? else {
            return Err(corrupt(
                "txindex",
                txid.as_bytes(),
                "points at a block that is not stored",
            ));
        };
        let position = position as usize;
        if b.block.txs.get(position).is_none_or(|t| t.txid() != *txid) {
            return Err(corrupt(
                "txindex",
                txid.as_bytes(),
                "points at the wrong transaction",
            ));
        }
        Ok(Some((b, position)))
    }
}
