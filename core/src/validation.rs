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
    Block, BlockHash, BlockHeader, HEADER_VERSION, MAX_BLOCK_TXS_DECODE, MAX_COINBASE_EXTRA,
    MAX_TX_INPUTS, MAX_TX_OUTPUTS, OutPoint, Payload, Transaction, TxOut, Txid,
};
use crate::sig::{self, SigCheck, VerifyJob, VerifyMode};
use crate::units::{Amount, CompactTarget, Height};
use crate::utxo::{BlockUndo, UtxoOverlay, UtxoView, apply_tx, sum_outputs};

mod post_text;
pub use post_text::{check_post_text, is_bidi_control, is_invisible};

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
    /// More inputs than any node can decode (a transaction built in memory).
    TooManyInputs {
        count: usize,
        max: usize,
    },
    /// More outputs than any node can decode (a transaction built in memory).
    TooManyOutputs {
        count: usize,
        max: usize,
    },
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
    /// A post with no visible text: empty, or only characters of the invisible set
    /// ([`is_invisible`]).
    EmptyPost,
    /// A post carrying a bidirectional formatting control (U+061C, U+200E, U+200F,
    /// U+202A–U+202E, U+2066–U+2069), which can make text display as something else.
    PostBidiControl {
        /// Byte offset of the control in the text.
        offset: usize,
        code_point: u32,
    },
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
            TxError::TooManyInputs { count, max } => {
                write!(f, "transaction has {count} inputs, the limit is {max}")
            }
            TxError::TooManyOutputs { count, max } => {
                write!(f, "transaction has {count} outputs, the limit is {max}")
            }
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
            TxError::EmptyPost => write!(f, "post has no visible text"),
            TxError::PostBidiControl { offset, code_point } => write!(
                f,
                "post has the bidirectional control u+{code_point:04x} at byte {offset}"
            ),
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

impl core::error::Error for TxError {}

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
    /// The coinbase has more outputs than any node can decode.
    CoinbaseTooManyOutputs {
        count: usize,
        max: usize,
    },
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
            BlockError::CoinbaseTooManyOutputs { count, max } => {
                write!(f, "coinbase has {count} outputs, the limit is {max}")
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

impl core::error::Error for BlockError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            BlockError::Pow(e) => Some(e),
            BlockError::Tx { error, .. } => Some(error),
            _ => None,
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
    /// descendants can be rejected forever. A bad merkle root means the body is not the one
    /// the header commits to (a mutated or wrong copy); a future time may become valid later.
    /// Every other body rule is checked after the merkle root, so it judges the true body.
    pub fn marks_header_invalid(&self) -> bool {
        !matches!(
            self,
            BlockError::MerkleMismatch | BlockError::TimeTooNew { .. }
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
    // The decoder's limits are rules too: a transaction built in memory never met the
    // decoder, and one no peer can decode must never be valid.
    if tx.inputs.len() > MAX_TX_INPUTS {
        return Err(TxError::TooManyInputs {
            count: tx.inputs.len(),
            max: MAX_TX_INPUTS,
        });
    }
    if tx.outputs.len() > MAX_TX_OUTPUTS {
        return Err(TxError::TooManyOutputs {
            count: tx.outputs.len(),
            max: MAX_TX_OUTPUTS,
        });
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

/// A block that passed the stateless checks, with its transaction ids computed once. Only
/// [`check_block`] makes one, so holding one proves the checks passed.
#[derive(Debug, Clone)]
pub struct CheckedBlock<'a> {
    block: &'a Block,
    hash: BlockHash,
    txids: Vec<Txid>,
}

impl<'a> CheckedBlock<'a> {
    pub fn block(&self) -> &'a Block {
        self.block
    }

    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// The txids of the block's transactions, in block order.
    pub fn txids(&self) -> &[Txid] {
        &self.txids
    }
}

/// Stateless checks of a whole block. The cheap proof of work comes first, so junk costs the
/// sender a hash before it costs us anything; then the merkle root, so every later rule
/// judges the body the header commits to and a failure condemns the header itself.
pub fn check_block<'a>(block: &'a Block, params: &Params) -> Result<CheckedBlock<'a>, BlockError> {
    check_header(&block.header, params)?;
    let txids: Vec<Txid> = block.txs.iter().map(Transaction::txid).collect();
    if crate::merkle::root(&txids) != block.header.merkle_root {
        return Err(BlockError::MerkleMismatch);
    }
    if block.txs.is_empty() {
        return Err(BlockError::NoTransactions);
    }
    let max_txs = params.max_block_txs.min(MAX_BLOCK_TXS_DECODE);
    if block.txs.len() > max_txs {
        return Err(BlockError::TooManyTransactions {
            count: block.txs.len(),
            max: max_txs,
        });
    }
    let size = block.encoded_len();
    if size > params.max_block_size {
        return Err(BlockError::TooLarge {
            size,
            max: params.max_block_size,
        });
    }
    let coinbase = &block.txs[0];
    if !coinbase.is_coinbase() {
        return Err(BlockError::MissingCoinbase);
    }
    if !coinbase.inputs.is_empty() {
        return Err(BlockError::CoinbaseHasInputs);
    }
    if coinbase.outputs.len() > MAX_TX_OUTPUTS {
        return Err(BlockError::CoinbaseTooManyOutputs {
            count: coinbase.outputs.len(),
            max: MAX_TX_OUTPUTS,
        });
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
    /// Median time of the last `mtp_window` blocks up to and including the parent (for
    /// genesis: the launch time, [`Params::genesis_median_time_past`]).
    pub median_time_past: u64,
}

/// Checks a header against its parent and the local clock (`now` in seconds).
pub fn check_header_context(
    header: &BlockHeader,
    parent: &ParentInfo,
    params: &Params,
    now: u64,
) -> Result<(), BlockError> {
    let expected = params.next_bits(parent.height, parent.time);
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
    /// The output each input spends, in input order: its key must sign, and the sighash
    /// commits to it.
    pub spent: Vec<TxOut>,
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
    let mut spent = Vec::with_capacity(tx.inputs.len());
    for input in &tx.inputs {
        let coin = view.coin(&input.prev).ok_or(TxError::MissingInput {
            outpoint: input.prev,
        })?;
        let spendable_at = coin.spendable_height(params);
        if height < spendable_at {
            return Err(TxError::ImmatureCoinbase {
                outpoint: input.prev,
                spendable_at,
            });
        }
        // Every coin is below the cap, but their sum may not be.
        total = total
            .checked_add(coin.output.amount)
            .ok_or(TxError::ValueOverflow)?;
        spent.push(coin.output);
    }
    let outputs = sum_outputs(&tx.outputs).ok_or(TxError::ValueOverflow)?;
    let fee = total
        .checked_sub(outputs)
        .ok_or(TxError::OutputsExceedInputs {
            inputs: total,
            outputs,
        })?;
    if let Payload::Post(p) = &tx.payload {
        if spent.first().map(|o| o.key) != Some(p.author) {
            return Err(TxError::PostAuthorMismatch);
        }
    }
    Ok(CheckedInputs { fee, spent })
}

/// Explains a failed signature: a valid signature made for another known network is
/// reported as such, anything else as a bad signature.
fn signature_error(tx: &Transaction, input: usize, spent: &[TxOut], params: &Params) -> TxError {
    let sig = &tx.inputs[input].sig;
    let key = &spent[input].key;
    for (network, genesis) in Params::known_genesis_hashes() {
        if network != params.network
            && sig::verify(key, &tx.sighash(&genesis, spent).0, sig).is_ok()
        {
            return TxError::WrongNetwork { input, network };
        }
    }
    TxError::BadSignature { input }
}

/// Verifies every input signature of `tx` with the single rule; `spent[i]` is the output
/// input `i` spends (from [`check_tx_inputs`]).
pub fn verify_tx_signatures(
    tx: &Transaction,
    spent: &[TxOut],
    genesis: &BlockHash,
    params: &Params,
) -> Result<(), TxError> {
    let msg = tx.sighash(genesis, spent);
    let checks: Vec<SigCheck<'_>> = tx
        .inputs
        .iter()
        .zip(spent)
        .map(|(i, o)| SigCheck {
            key: &o.key,
            msg: &msg.0,
            sig: &i.sig,
        })
        .collect();
    sig::verify_all(&checks, VerifyMode::Single)
        .map_err(|(input, _)| signature_error(tx, input, spent, params))
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
    verify_tx_signatures(tx, &inputs.spent, genesis, params)?;
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
    let (undo, sigs) = connect_block_unsigned(checked, height, view, params, genesis)?;
    sigs.check(checked.block, sigs.job().verify(mode), params)?;
    Ok(undo)
}

/// The signature checks of a block that [`connect_block_unsigned`] connected, as a job a
/// host can verify anywhere, and what turns its verdict into the block's error.
#[derive(Clone, Debug)]
pub struct BlockSigs {
    job: VerifyJob,
    /// For each job item, the (transaction, input) it checks (the first input carrying that
    /// exact triple).
    at: Vec<(usize, usize)>,
    /// Per transaction, the outputs its inputs spend (to explain a failure).
    spent: Vec<Vec<TxOut>>,
}

impl BlockSigs {
    pub fn job(&self) -> &VerifyJob {
        &self.job
    }

    /// The block's verdict given the job's (from [`VerifyJob::verify`] or
    /// [`VerifyJob::finish`]): the same error [`connect_block`] returns, naming the same input.
    pub fn check(
        &self,
        block: &Block,
        verdict: Result<(), (usize, sig::SigError)>,
        params: &Params,
    ) -> Result<(), BlockError> {
        let Err((u, _)) = verdict else {
            return Ok(());
        };
        let (index, input) = *self
            .at
            .get(u)
            .expect("a job's failing index is one of its items");
        Err(BlockError::Tx {
            index,
            error: signature_error(&block.txs[index], input, &self.spent[index], params),
        })
    }
}

/// [`connect_block`] without the signatures: every other check, sequentially, and the
/// signature checks as a [`BlockSigs`] to verify before the block counts as connected.
pub fn connect_block_unsigned<V: UtxoView + ?Sized>(
    checked: &CheckedBlock<'_>,
    height: Height,
    view: &mut UtxoOverlay<'_, V>,
    params: &Params,
    genesis: &BlockHash,
) -> Result<(BlockUndo, BlockSigs), BlockError> {
    let block = checked.block;
    let mut undo = BlockUndo::default();
    let mut fees = Amount::ZERO;
    // Per transaction: its sighash and the outputs its inputs spend.
    let mut sighashes = Vec::with_capacity(block.txs.len());
    let mut spent: Vec<Vec<TxOut>> = Vec::with_capacity(block.txs.len());

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
            sighashes.push(tx.sighash(genesis, &inputs.spent));
            spent.push(inputs.spent);
        } else {
            sighashes.push(crate::hash::Hash256::ZERO);
            spent.push(Vec::new());
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
    let all = block
        .txs
        .iter()
        .enumerate()
        .flat_map(|(index, tx)| (0..tx.inputs.len()).map(move |input| (index, input)));
    let mut seen = alloc::collections::BTreeSet::new();
    let mut unique: Vec<(usize, usize)> = Vec::new();
    // The coinbase has no inputs (check_block), so only later transactions contribute.
    for (index, input) in all {
        let key = spent[index][input].key;
        if seen.insert((index, key.0, block.txs[index].inputs[input].sig.0)) {
            unique.push((index, input));
        }
    }
    let mut job = VerifyJob::new();
    for &(index, input) in &unique {
        job.push(
            spent[index][input].key,
            sighashes[index].0,
            block.txs[index].inputs[input].sig,
        );
    }
    Ok((
        undo,
        BlockSigs {
            job,
            at: unique,
            spent,
        },
    ))
}
