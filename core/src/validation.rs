//! Validation in stages, each with a typed error per rule:
//!
//! 1. [`check_tx`] / [`check_block`]: stateless — only the bytes and the parameters.
//!    A successful [`check_block`] returns a [`CheckedBlock`] that later stages require.
//! 2. [`check_header_context`]: against the parent header (difficulty, median time past,
//!    clock drift).
//! 3. [`check_tx_inputs`] / [`connect_block`]: against a UTXO view — inputs, maturity,
//!    amounts, post authorship and signatures.
//!
//! Every rejection also says how the peer who sent it behaved ([`Conduct`]), so hosts never
//! decide that for themselves.

use alloc::vec::Vec;
use core::fmt;

use crate::encode::Encode;
use crate::params::{Network, Params};
use crate::pow::PowError;
use crate::primitives::{
    Block, BlockHash, BlockHeader, HEADER_VERSION, MAX_COINBASE_EXTRA, MAX_POST_BYTES, OutPoint,
    Payload, Transaction, Txid,
};
use crate::sig::{self, PublicKey, SigCheck, VerifyMode};
use crate::units::{Amount, CompactTarget, Height};
use crate::utxo::{BlockUndo, UtxoOverlay, UtxoView, apply_tx, sum_outputs};

/// How the sender of rejected data behaved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduct {
    /// Honest peers send this too (a race, a clock difference, data we cannot judge yet).
    Ignore,
    /// Wrong, but cheap to send by mistake: add this score; a peer reaching 100 is banned.
    Penalise(u8),
    /// Only a broken or hostile peer sends this: disconnect and ban.
    Disconnect,
}

/// A transaction broke a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    NoInputs,
    NoOutputs,
    /// The outputs add up past the supply cap.
    ValueOverflow,
    /// The same outpoint appears twice among the inputs.
    DuplicateInput {
        outpoint: OutPoint,
    },
    TooLarge {
        size: usize,
        max: usize,
    },
    /// A coinbase outside the first position of a block, or offered as a loose transaction.
    UnexpectedCoinbase,
    /// A post with no text, or only spaces, tabs and line breaks.
    EmptyPost,
    /// A post longer than the limit (the decoder refuses these too; this catches
    /// transactions built in memory).
    PostTooLong {
        len: usize,
        max: usize,
    },
    /// The input does not exist or is already spent.
    MissingInput {
        outpoint: OutPoint,
    },
    /// A coinbase output spent before it matured.
    ImmatureCoinbase {
        outpoint: OutPoint,
        spendable_at: Height,
    },
    OutputsExceedInputs {
        inputs: Amount,
        outputs: Amount,
    },
    /// The post's author is not the key that owns the first input.
    PostAuthorMismatch,
    BadSignature {
        input: usize,
    },
    /// The signature is valid, but for another network's transactions.
    WrongNetwork {
        input: usize,
        network: Network,
    },
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::NoInputs => write!(f, "transaction has no inputs"),
            TxError::NoOutputs => write!(f, "transaction has no outputs"),
            TxError::ValueOverflow => write!(f, "outputs add up past the supply cap"),
            TxError::DuplicateInput { outpoint } => {
                write!(
                    f,
                    "input {}:{} is spent twice",
                    outpoint.txid, outpoint.vout
                )
            }
            TxError::TooLarge { size, max } => {
                write!(f, "transaction is {size} bytes, the limit is {max}")
            }
            TxError::UnexpectedCoinbase => write!(f, "coinbase outside the first position"),
            TxError::EmptyPost => write!(f, "post has no text"),
            TxError::PostTooLong { len, max } => {
                write!(f, "post is {len} bytes, the limit is {max}")
            }
            TxError::MissingInput { outpoint } => write!(
                f,
                "input {}:{} does not exist or is already spent",
                outpoint.txid, outpoint.vout
            ),
            TxError::ImmatureCoinbase {
                outpoint,
                spendable_at,
            } => write!(
                f,
                "coinbase output {}:{} cannot be spent before height {spendable_at}",
                outpoint.txid, outpoint.vout
            ),
            TxError::OutputsExceedInputs { inputs, outputs } => {
                write!(f, "outputs ({outputs}) exceed inputs ({inputs})")
            }
            TxError::PostAuthorMismatch => {
                write!(f, "post author is not the owner of the first input")
            }
            TxError::BadSignature { input } => write!(f, "signature of input {input} is invalid"),
            TxError::WrongNetwork { input, network } => write!(
                f,
                "input {input} is signed for the {network:?} network, not this one"
            ),
        }
    }
}

impl TxError {
    /// How a peer that relayed this loose transaction behaved.
    pub fn conduct(&self) -> Conduct {
        match self {
            // Double-spend races, a parent we have not seen, a tip we are behind on.
            TxError::MissingInput { .. } | TxError::ImmatureCoinbase { .. } => Conduct::Ignore,
            TxError::TooLarge { .. } => Conduct::Penalise(20),
            _ => Conduct::Penalise(50),
        }
    }
}

/// A block broke a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    BadVersion {
        version: u32,
    },
    /// Bits that do not decode, are easier than the network limit, or a hash above target.
    Pow(PowError),
    WrongBits {
        expected: CompactTarget,
        got: CompactTarget,
    },
    MerkleMismatch,
    NoTransactions,
    MissingCoinbase,
    ExtraCoinbase {
        index: usize,
    },
    CoinbaseHasInputs,
    CoinbaseHeight {
        expected: Height,
        got: Height,
    },
    CoinbaseOverpay {
        max: Amount,
        got: Amount,
    },
    /// Outputs of the coinbase add up past the supply cap.
    CoinbaseValueOverflow,
    /// The coinbase's free-form data is longer than the limit.
    CoinbaseExtraTooLong {
        len: usize,
        max: usize,
    },
    /// Not after the median time of the last blocks.
    TimeTooOld {
        time: u64,
        median_time_past: u64,
    },
    /// Too far ahead of our clock. It may become valid later: never a reason to ban.
    TimeTooNew {
        time: u64,
        max: u64,
    },
    TooLarge {
        size: usize,
        max: usize,
    },
    TooManyTransactions {
        count: usize,
        max: usize,
    },
    /// Two transactions of the block spend the same outpoint.
    DoubleSpend {
        outpoint: OutPoint,
    },
    /// Transaction `index` of the block is invalid.
    Tx {
        index: usize,
        error: TxError,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::BadVersion { version } => write!(f, "unknown block version {version}"),
            BlockError::Pow(e) => write!(f, "proof of work: {e}"),
            BlockError::WrongBits { expected, got } => write!(
                f,
                "difficulty bits {:#010x} differ from the required {:#010x}",
                got.0, expected.0
            ),
            BlockError::MerkleMismatch => write!(f, "merkle root does not match transactions"),
            BlockError::NoTransactions => write!(f, "block has no transactions"),
            BlockError::MissingCoinbase => write!(f, "first transaction is not a coinbase"),
            BlockError::ExtraCoinbase { index } => {
                write!(f, "transaction {index} is a second coinbase")
            }
            BlockError::CoinbaseHasInputs => write!(f, "coinbase spends inputs"),
            BlockError::CoinbaseHeight { expected, got } => {
                write!(
                    f,
                    "coinbase commits to height {got}, block is at {expected}"
                )
            }
            BlockError::CoinbaseOverpay { max, got } => {
                write!(f, "coinbase pays {got}, at most {max} allowed")
            }
            BlockError::CoinbaseValueOverflow => {
                write!(f, "coinbase outputs add up past the supply cap")
            }
            BlockError::CoinbaseExtraTooLong { len, max } => {
                write!(f, "coinbase data is {len} bytes, the limit is {max}")
            }
            BlockError::TimeTooOld {
                time,
                median_time_past,
            } => write!(
                f,
                "time {time} is not after the median time past {median_time_past}"
            ),
            BlockError::TimeTooNew { time, max } => {
                write!(f, "time {time} is too far in the future (max {max})")
            }
            BlockError::TooLarge { size, max } => {
                write!(f, "block is {size} bytes, the limit is {max}")
            }
            BlockError::TooManyTransactions { count, max } => {
                write!(f, "block has {count} transactions, the limit is {max}")
            }
            BlockError::DoubleSpend { outpoint } => write!(
                f,
                "outpoint {}:{} is spent twice in the block",
                outpoint.txid, outpoint.vout
            ),
            BlockError::Tx { index, error } => write!(f, "transaction {index}: {error}"),
        }
    }
}

impl BlockError {
    /// How the peer that sent this block behaved.
    pub fn conduct(&self) -> Conduct {
        match self {
            BlockError::TimeTooNew { .. } => Conduct::Ignore,
            _ => Conduct::Disconnect,
        }
    }

    /// Whether the block itself (not just the copy we were sent) is invalid, so its hash and
    /// descendants can be rejected forever. A bad merkle root or a too-large body may be a
    /// mutated copy of a valid header; a future time may become valid later.
    pub fn marks_header_invalid(&self) -> bool {
        !matches!(
            self,
            BlockError::MerkleMismatch
                | BlockError::TimeTooNew { .. }
                | BlockError::TooLarge { .. }
                | BlockError::TooManyTransactions { .. }
                | BlockError::NoTransactions
        )
    }
}

/// Stateless checks of a loose (non-coinbase) transaction.
pub fn check_tx(tx: &Transaction, params: &Params) -> Result<(), TxError> {
    if tx.is_coinbase() {
        return Err(TxError::UnexpectedCoinbase);
    }
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    let size = tx.encoded_len();
    if size > params.max_tx_size {
        return Err(TxError::TooLarge {
            size,
            max: params.max_tx_size,
        });
    }
    if sum_outputs(&tx.outputs).is_none() {
        return Err(TxError::ValueOverflow);
    }
    let mut seen = alloc::collections::BTreeSet::new();
    for op in tx.spends() {
        if !seen.insert(*op) {
            return Err(TxError::DuplicateInput { outpoint: *op });
        }
    }
    if let Payload::Post(p) = &tx.payload {
        check_post_text(&p.text)?;
    }
    Ok(())
}

/// A post must hold 1..=MAX_POST_BYTES bytes of UTF-8 and at least one byte that is not an
/// ASCII space, tab, CR or LF. (Defined by bytes, not by a Unicode whitespace table, so no
/// implementation's Unicode version can change consensus.)
pub fn check_post_text(text: &str) -> Result<(), TxError> {
    if text.len() > MAX_POST_BYTES {
        return Err(TxError::PostTooLong {
            len: text.len(),
            max: MAX_POST_BYTES,
        });
    }
    if text
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(TxError::EmptyPost);
    }
    Ok(())
}

/// Checks a header alone: version and proof of work against its own bits.
pub fn check_header(header: &BlockHeader, params: &Params) -> Result<(), BlockError> {
    if header.version != HEADER_VERSION {
        return Err(BlockError::BadVersion {
            version: header.version,
        });
    }
    crate::pow::check_proof_of_work(&header.hash(), header.bits, &params.pow_limit_target())
        .map_err(BlockError::Pow)
}

/// A block that passed the stateless checks, with its transaction ids computed once.
#[derive(Debug, Clone)]
pub struct CheckedBlock<'a> {
    pub block: &'a Block,
    pub hash: BlockHash,
    pub txids: Vec<Txid>,
}

/// Stateless checks of a whole block. The cheap proof of work comes first, so junk costs the
/// sender a hash before it costs us anything.
pub fn check_block<'a>(block: &'a Block, params: &Params) -> Result<CheckedBlock<'a>, BlockError> {
    check_header(&block.header, params)?;
    if block.txs.is_empty() {
        return Err(BlockError::NoTransactions);
    }
    if block.txs.len() > params.max_block_txs {
        return Err(BlockError::TooManyTransactions {
            count: block.txs.len(),
            max: params.max_block_txs,
        });
    }
    let size = block.encoded_len();
    if size > params.max_block_size {
        return Err(BlockError::TooLarge {
            size,
            max: params.max_block_size,
        });
    }
    let txids: Vec<Txid> = block.txs.iter().map(Transaction::txid).collect();
    if crate::merkle::root(&txids) != block.header.merkle_root {
        return Err(BlockError::MerkleMismatch);
    }
    let coinbase = &block.txs[0];
    if !coinbase.is_coinbase() {
        return Err(BlockError::MissingCoinbase);
    }
    if !coinbase.inputs.is_empty() {
        return Err(BlockError::CoinbaseHasInputs);
    }
    if sum_outputs(&coinbase.outputs).is_none() {
        return Err(BlockError::CoinbaseValueOverflow);
    }
    if let Payload::Coinbase { extra, .. } = &coinbase.payload {
        if extra.len() > MAX_COINBASE_EXTRA {
            return Err(BlockError::CoinbaseExtraTooLong {
                len: extra.len(),
                max: MAX_COINBASE_EXTRA,
            });
        }
    }
    let mut spent = alloc::collections::BTreeSet::new();
    for (index, tx) in block.txs.iter().enumerate().skip(1) {
        if tx.is_coinbase() {
            return Err(BlockError::ExtraCoinbase { index });
        }
        check_tx(tx, params).map_err(|error| BlockError::Tx { index, error })?;
        for op in tx.spends() {
            if !spent.insert(*op) {
                return Err(BlockError::DoubleSpend { outpoint: *op });
            }
        }
    }
    Ok(CheckedBlock {
        block,
        hash: block.hash(),
        txids,
    })
}

/// What the contextual header check needs to know of the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentInfo {
    pub height: Height,
    pub time: u64,
    /// Median time of the last `mtp_window` blocks up to and including the parent.
    pub median_time_past: u64,
    /// Time of block 1 on the parent's chain (the difficulty anchor); 0 for genesis.
    pub first_block_time: u64,
}

/// Checks a header against its parent and the local clock (`now` in seconds).
pub fn check_header_context(
    header: &BlockHeader,
    parent: &ParentInfo,
    params: &Params,
    now: u64,
) -> Result<(), BlockError> {
    let expected = params.next_bits(parent.height, parent.time, parent.first_block_time);
    if header.bits != expected {
        return Err(BlockError::WrongBits {
            expected,
            got: header.bits,
        });
    }
    if header.time <= parent.median_time_past {
        return Err(BlockError::TimeTooOld {
            time: header.time,
            median_time_past: parent.median_time_past,
        });
    }
    let max = now.saturating_add(params.max_future_drift);
    if header.time > max {
        return Err(BlockError::TimeTooNew {
            time: header.time,
            max,
        });
    }
    Ok(())
}

/// Median of a list of times (the upper median for an even count).
pub fn median_time(times: &mut [u64]) -> u64 {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or(0)
}

/// Inputs of a transaction checked against a view, signatures not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedInputs {
    pub fee: Amount,
    /// The key each input must be signed by, in input order.
    pub keys: Vec<PublicKey>,
}

/// Checks a non-coinbase transaction's inputs against `view` for inclusion at `height`:
/// each exists and is unspent, coinbases are mature, outputs do not exceed inputs, and a
/// post is authored by the first input's owner. Signatures are checked separately.
pub fn check_tx_inputs(
    tx: &Transaction,
    view: &(impl UtxoView + ?Sized),
    height: Height,
    params: &Params,
) -> Result<CheckedInputs, TxError> {
    let mut total = Amount::ZERO;
    let mut keys = Vec::with_capacity(tx.inputs.len());
    for input in &tx.inputs {
        let coin = view.coin(&input.prev).ok_or(TxError::MissingInput {
            outpoint: input.prev,
        })?;
        if coin.coinbase {
            let spendable_at = Height(coin.height.0.saturating_add(params.coinbase_maturity));
            if height < spendable_at {
                return Err(TxError::ImmatureCoinbase {
                    outpoint: input.prev,
                    spendable_at,
                });
            }
        }
        // Every coin is below the cap, but their sum may not be.
        total = total
            .checked_add(coin.output.amount)
            .ok_or(TxError::ValueOverflow)?;
        keys.push(coin.output.key);
    }
    let outputs = sum_outputs(&tx.outputs).ok_or(TxError::ValueOverflow)?;
    let fee = total
        .checked_sub(outputs)
        .ok_or(TxError::OutputsExceedInputs {
            inputs: total,
            outputs,
        })?;
    if let Payload::Post(p) = &tx.payload {
        if keys.first() != Some(&p.author) {
            return Err(TxError::PostAuthorMismatch);
        }
    }
    Ok(CheckedInputs { fee, keys })
}

/// Explains a failed signature: a valid signature made for another known network is
/// reported as such, anything else as a bad signature.
fn signature_error(tx: &Transaction, input: usize, key: &PublicKey, params: &Params) -> TxError {
    let sig = &tx.inputs[input].sig;
    for (network, genesis) in Params::known_genesis_hashes() {
        if network != params.network && sig::verify(key, &tx.sighash(&genesis).0, sig).is_ok() {
            return TxError::WrongNetwork { input, network };
        }
    }
    TxError::BadSignature { input }
}

/// Verifies every input signature of `tx` with the single rule.
pub fn verify_tx_signatures(
    tx: &Transaction,
    keys: &[PublicKey],
    genesis: &BlockHash,
    params: &Params,
) -> Result<(), TxError> {
    let msg = tx.sighash(genesis);
    let checks: Vec<SigCheck<'_>> = tx
        .inputs
        .iter()
        .zip(keys)
        .map(|(i, key)| SigCheck {
            key,
            msg: &msg.0,
            sig: &i.sig,
        })
        .collect();
    sig::verify_all(&checks, VerifyMode::Single)
        .map_err(|(input, _)| signature_error(tx, input, &keys[input], params))
}

/// Full contextual validation of a loose transaction against `view` for the next block at
/// `height`. Returns its fee.
pub fn validate_tx(
    tx: &Transaction,
    view: &(impl UtxoView + ?Sized),
    height: Height,
    params: &Params,
    genesis: &BlockHash,
) -> Result<Amount, TxError> {
    check_tx(tx, params)?;
    let inputs = check_tx_inputs(tx, view, height, params)?;
    verify_tx_signatures(tx, &inputs.keys, genesis, params)?;
    Ok(inputs.fee)
}

/// Validates a stateless-checked block against `view` (the UTXO set after its parent) and
/// applies it to the overlay, returning the undo data. On error the overlay is partly
/// changed and must be dropped; the caller's base state is untouched.
pub fn connect_block<V: UtxoView + ?Sized>(
    checked: &CheckedBlock<'_>,
    height: Height,
    view: &mut UtxoOverlay<'_, V>,
    params: &Params,
    genesis: &BlockHash,
    mode: VerifyMode,
) -> Result<BlockUndo, BlockError> {
    let block = checked.block;
    let mut undo = BlockUndo::default();
    let mut fees = Amount::ZERO;
    let mut sighashes = Vec::with_capacity(block.txs.len());
    let mut keys: Vec<(usize, usize, PublicKey)> = Vec::new();

    let coinbase = &block.txs[0];
    match &coinbase.payload {
        Payload::Coinbase { height: h, .. } if *h == height => {}
        Payload::Coinbase { height: got, .. } => {
            return Err(BlockError::CoinbaseHeight {
                expected: height,
                got: *got,
            });
        }
        _ => return Err(BlockError::MissingCoinbase),
    }

    for (index, tx) in block.txs.iter().enumerate() {
        if index > 0 {
            let inputs = check_tx_inputs(tx, view, height, params)
                .map_err(|error| BlockError::Tx { index, error })?;
            fees = fees
                .checked_add(inputs.fee)
                .ok_or(BlockError::CoinbaseValueOverflow)?;
            for (input, key) in inputs.keys.into_iter().enumerate() {
                keys.push((index, input, key));
            }
            sighashes.push(tx.sighash(genesis));
        } else {
            sighashes.push(crate::hash::Hash256::ZERO);
        }
        apply_tx(view, tx, checked.txids[index], height, &mut undo).map_err(|outpoint| {
            BlockError::Tx {
                index,
                error: TxError::MissingInput { outpoint },
            }
        })?;
    }

    let max = params
        .subsidy(height)
        .checked_add(fees)
        .ok_or(BlockError::CoinbaseValueOverflow)?;
    let paid = sum_outputs(&coinbase.outputs).ok_or(BlockError::CoinbaseValueOverflow)?;
    if paid > max {
        return Err(BlockError::CoinbaseOverpay { max, got: paid });
    }

    // Identical (key, message, signature) triples — every input of one transaction signed
    // by the same key carries the same signature over the same sighash — are verified once.
    // The verdict cannot change, and the first failing triple is first met at the first
    // failing input, so errors name the same input as checking each one would.
    let mut seen = alloc::collections::BTreeSet::new();
    let mut unique: Vec<usize> = Vec::with_capacity(keys.len());
    for (i, (index, input, key)) in keys.iter().enumerate() {
        if seen.insert((*index, key.0, block.txs[*index].inputs[*input].sig.0)) {
            unique.push(i);
        }
    }
    let checks: Vec<SigCheck<'_>> = unique
        .iter()
        .map(|&i| {
            let (index, input, key) = &keys[i];
            SigCheck {
                key,
                msg: &sighashes[*index].0,
                sig: &block.txs[*index].inputs[*input].sig,
            }
        })
        .collect();
    if let Err((u, _)) = sig::verify_all(&checks, mode) {
        let (index, input, key) = keys[unique[u]];
        return Err(BlockError::Tx {
            index,
            error: signature_error(&block.txs[index], input, &key, params),
        });
    }
    Ok(undo)
}
