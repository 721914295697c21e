//! A single-key wallet: keys from a host-supplied 32-byte seed (core has no RNG),
//! checksummed addresses, balance from the UTXO set and pool, coin selection, change,
//! signing, and posts.
//!
//! Address: `<prefix>_<base32(key ‖ checksum)>`, lower-case RFC 4648 base32 without padding,
//! `checksum = SHA-256d(prefix ‖ 0x00 ‖ key)[0..4]`. The prefix names the network (`tab`,
//! `ttab`), so an address for one network is refused by the other.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::chain::Chain;
use crate::encode::Encode;
use crate::hash::sha256d_parts;
use crate::mempool::{Mempool, MempoolError};
use crate::primitives::{OutPoint, Payload, Post, Transaction, TxIn, TxOut};
use crate::sig::{Keypair, PublicKey, Signature};
use crate::units::Amount;
use crate::utxo::UtxoView;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const PAYLOAD_LEN: usize = 36;
const ADDRESS_BODY_LEN: usize = 58; // ceil(36 * 8 / 5)

fn checksum(prefix: &str, key: &PublicKey) -> [u8; 4] {
    let h = sha256d_parts(&[prefix.as_bytes(), &[0], &key.0]);
    [h.0[0], h.0[1], h.0[2], h.0[3]]
}

/// The address of `key` on the network with `prefix`.
pub fn encode_address(prefix: &str, key: &PublicKey) -> String {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[..32].copy_from_slice(&key.0);
    payload[32..].copy_from_slice(&checksum(prefix, key));
    let mut s = String::with_capacity(prefix.len() + 1 + ADDRESS_BODY_LEN);
    s.push_str(prefix);
    s.push('_');
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in payload {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            s.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        s.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    s
}

/// Why an address was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// Not for this network (or no prefix at all).
    WrongNetwork {
        expected: String,
    },
    BadLength {
        len: usize,
    },
    BadCharacter {
        position: usize,
    },
    /// A typo: the checksum does not match.
    BadChecksum,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::WrongNetwork { expected } => {
                write!(f, "not an address of this network (expected {expected}_…)")
            }
            AddressError::BadLength { len } => {
                write!(
                    f,
                    "address body has {len} characters, expected {ADDRESS_BODY_LEN}"
                )
            }
            AddressError::BadCharacter { position } => {
                write!(f, "invalid character at position {position}")
            }
            AddressError::BadChecksum => write!(f, "checksum mismatch: the address has a typo"),
        }
    }
}

impl core::error::Error for AddressError {}

/// Parses an address of the network with `prefix`. Upper case is accepted.
pub fn decode_address(prefix: &str, address: &str) -> Result<PublicKey, AddressError> {
    let address = address.trim();
    let body = address
        .get(..prefix.len() + 1)
        .filter(|p| p[..prefix.len()].eq_ignore_ascii_case(prefix) && p.ends_with('_'))
        .map(|_| &address[prefix.len() + 1..])
        .ok_or_else(|| AddressError::WrongNetwork {
            expected: String::from(prefix),
        })?;
    if body.len() != ADDRESS_BODY_LEN {
        return Err(AddressError::BadLength { len: body.len() });
    }
    let mut payload = [0u8; PAYLOAD_LEN];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for (i, c) in body.bytes().enumerate() {
        let c = c.to_ascii_lowercase();
        let v = BASE32
            .iter()
            .position(|&b| b == c)
            .ok_or(AddressError::BadCharacter {
                position: prefix.len() + 1 + i,
            })? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n < PAYLOAD_LEN {
                payload[n] = (acc >> bits) as u8;
            }
            n += 1;
        }
    }
    // The last character carries 2 padding bits (58 * 5 - 288), which must be zero so
    // every key has one spelling.
    if acc & ((1 << bits) - 1) != 0 {
        return Err(AddressError::BadChecksum);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&payload[..32]);
    let key = PublicKey(key);
    if payload[32..] != checksum(prefix, &key) {
        return Err(AddressError::BadChecksum);
    }
    Ok(key)
}

/// Why a payment or post could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalletError {
    InsufficientFunds {
        available: Amount,
        needed: Amount,
    },
    ZeroAmount,
    PostTooLong {
        len: usize,
        max: usize,
    },
    EmptyPost,
    /// The post text breaks another consensus rule (a bidirectional control).
    InvalidPost(crate::validation::TxError),
    /// The amounts involved pass the supply cap.
    Overflow,
    /// The payment is below the pool's dust limit: nobody would relay it.
    Dust {
        amount: Amount,
        min: Amount,
    },
    /// Paying needs `inputs` coins or more, a transaction over `max` bytes: consolidate
    /// coins first (pay yourself smaller amounts), or pay less.
    TooLarge {
        inputs: usize,
        max: usize,
    },
    /// The coins that would pay it cannot be spent now without the pool refusing the
    /// transaction (e.g. unconfirmed change at the end of a chain at the ancestor limit):
    /// wait for a block.
    Policy(MempoolError),
}

impl fmt::Display for WalletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletError::InsufficientFunds { available, needed } => {
                write!(
                    f,
                    "insufficient funds: {available} spendable, {needed} needed"
                )
            }
            WalletError::ZeroAmount => write!(f, "amount must be above zero"),
            WalletError::PostTooLong { len, max } => {
                write!(f, "post is {len} bytes, the limit is {max}")
            }
            WalletError::EmptyPost => write!(f, "post has no visible text"),
            WalletError::InvalidPost(e) => write!(f, "post refused: {e}"),
            WalletError::Overflow => write!(f, "amount too large"),
            WalletError::Dust { amount, min } => {
                write!(f, "{amount} is below the dust limit of {min}")
            }
            WalletError::TooLarge { inputs, max } => write!(
                f,
                "paying needs {inputs} coins or more, over the {max}-byte transaction limit: \
                 consolidate coins first"
            ),
            WalletError::Policy(e) => write!(f, "the pool would refuse it: {e}"),
        }
    }
}

impl core::error::Error for WalletError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            WalletError::InvalidPost(e) => Some(e),
            WalletError::Policy(e) => Some(e),
            _ => None,
        }
    }
}

/// What the wallet owns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Confirmed and spendable now.
    pub confirmed: Amount,
    /// Mined coinbase outputs still maturing.
    pub immature: Amount,
    /// Unconfirmed outputs to us in the pool (change included).
    pub pending: Amount,
    /// Confirmed outputs already being spent by pool transactions.
    pub spending: Amount,
}

/// One key, from one seed.
pub struct Wallet {
    seed: [u8; 32],
    keypair: Keypair,
    key: PublicKey,
    prefix: &'static str,
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Confirmations after which the wallet counts a coin as settled and spends it before
/// shallower ones. A transaction spending a coin that a reorganisation removes (most often a
/// fresh coinbase, spendable on the test network one block after it is mined) can never
/// confirm; six blocks deep that is unlikely.
pub const SETTLED_CONFIRMATIONS: u64 = 6;

/// How safe a coin is to spend, best first: the wallet draws from a better tier before a
/// worse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Confirmed at least `SETTLED_CONFIRMATIONS` deep.
    Settled,
    /// Confirmed, but shallower.
    Shallow,
    /// An output of a pool transaction.
    Unconfirmed,
}

/// A spendable coin as the wallet sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Spendable {
    outpoint: OutPoint,
    amount: Amount,
    tier: Tier,
}

/// The order coins are tried in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// Settled coins first, then shallow, then unconfirmed; largest first within each.
    SafestFirst,
    /// Largest first over all coins: the fewest inputs any choice can need.
    LargestFirst,
}

impl Wallet {
    pub fn from_seed(seed: [u8; 32], prefix: &'static str) -> Wallet {
        let keypair = Keypair::from_seed(&seed);
        let key = keypair.public_key();
        Wallet {
            seed,
            keypair,
            key,
            prefix,
        }
    }

    /// The seed, for export. Whoever holds it owns the coins.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    pub fn public_key(&self) -> PublicKey {
        self.key
    }

    pub fn address(&self) -> String {
        encode_address(self.prefix, &self.key)
    }

    pub fn balance(&self, chain: &Chain, mempool: &Mempool) -> Balance {
        let next = chain.height().next();
        let mut b = Balance::default();
        let add = |a: Amount, x: Amount| a.checked_add(x).unwrap_or(Amount::MAX);
        for (op, coin) in chain.utxo().coins_of(&self.key) {
            let amount = coin.output.amount;
            if mempool.spender(&op).is_some() {
                b.spending = add(b.spending, amount);
            } else if next < coin.spendable_height(chain.params()) {
                b.immature = add(b.immature, amount);
            } else {
                b.confirmed = add(b.confirmed, amount);
            }
        }
        for (_, amount) in self.pool_outputs(mempool) {
            b.pending = add(b.pending, amount);
        }
        b
    }

    /// Unspent pool outputs to this wallet.
    fn pool_outputs<'a>(
        &'a self,
        mempool: &'a Mempool,
    ) -> impl Iterator<Item = (OutPoint, Amount)> + 'a {
        mempool.entries().into_iter().flat_map(move |e| {
            e.tx.outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| o.key == self.key)
                .map(move |(vout, o)| {
                    (
                        OutPoint {
                            txid: e.txid,
                            vout: vout as u32,
                        },
                        o.amount,
                    )
                })
                .filter(|(op, _)| mempool.spender(op).is_none())
                .collect::<Vec<_>>()
        })
    }

    /// Coins we may spend in the next block: mature confirmed coins and unconfirmed pool
    /// outputs, none already spent in the pool; in `order` (ties: the smaller outpoint first).
    fn spendable(&self, chain: &Chain, mempool: &Mempool, order: Order) -> Vec<Spendable> {
        let next = chain.height().next();
        let view = mempool.view(chain);
        let mut coins: Vec<Spendable> = chain
            .utxo()
            .coins_of(&self.key)
            .filter(|(op, c)| {
                mempool.spender(op).is_none() && next >= c.spendable_height(chain.params())
            })
            .map(|(op, c)| Spendable {
                outpoint: op,
                amount: c.output.amount,
                // A coin of block `h` has `tip - h + 1` confirmations.
                tier: if next.0.saturating_sub(c.height.0) >= SETTLED_CONFIRMATIONS {
                    Tier::Settled
                } else {
                    Tier::Shallow
                },
            })
            .collect();
        coins.extend(
            self.pool_outputs(mempool)
                .filter(|(op, _)| view.coin(op).is_some())
                .map(|(outpoint, amount)| Spendable {
                    outpoint,
                    amount,
                    tier: Tier::Unconfirmed,
                }),
        );
        coins.sort_by(|a, b| {
            let tier = match order {
                Order::SafestFirst => a.tier.cmp(&b.tier),
                Order::LargestFirst => core::cmp::Ordering::Equal,
            };
            tier.then(b.amount.cmp(&a.amount))
                .then(a.outpoint.cmp(&b.outpoint))
        });
        coins
    }

    /// A signed payment of `amount` to `to` (and optionally a post), paying at least
    /// `fee_rate` base units per 1000 bytes, change back to us.
    pub fn pay(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        to: PublicKey,
        amount: Amount,
        fee_rate: u64,
        post: Option<&str>,
    ) -> Result<Transaction, WalletError> {
        if amount == Amount::ZERO {
            return Err(WalletError::ZeroAmount);
        }
        self.build(
            chain,
            mempool,
            Some(TxOut { amount, key: to }),
            fee_rate,
            post,
        )
    }

    /// A signed post: pays only the fee, the rest returns as change.
    pub fn post(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        text: &str,
        fee_rate: u64,
    ) -> Result<Transaction, WalletError> {
        self.build(chain, mempool, None, fee_rate, Some(text))
    }

    fn build(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        pay: Option<TxOut>,
        rate: u64,
        post: Option<&str>,
    ) -> Result<Transaction, WalletError> {
        match self.build_in(chain, mempool, pay, rate, post, Order::SafestFirst) {
            // Safe coins may be many small ones: the fewest inputs come largest first.
            Err(WalletError::TooLarge { .. }) => {
                self.build_in(chain, mempool, pay, rate, post, Order::LargestFirst)
            }
            built => built,
        }
    }

    fn build_in(
        &self,
        chain: &Chain,
        mempool: &Mempool,
        pay: Option<TxOut>,
        rate: u64,
        post: Option<&str>,
        order: Order,
    ) -> Result<Transaction, WalletError> {
        let payload = match post {
            None => Payload::None,
            Some(text) => {
                match crate::validation::check_post_text(text) {
                    Err(crate::validation::TxError::PostTooLong { len, max }) => {
                        return Err(WalletError::PostTooLong { len, max });
                    }
                    Err(crate::validation::TxError::EmptyPost) => {
                        return Err(WalletError::EmptyPost);
                    }
                    Err(e) => return Err(WalletError::InvalidPost(e)),
                    Ok(()) => {}
                }
                Payload::Post(Post {
                    author: self.key,
                    text: String::from(text),
                })
            }
        };
        // Never below what the pool relays.
        let rate = rate.max(mempool.min_fee_rate());
        let dust = mempool.dust_limit();
        // Change is kept only if it is not dust at this payment's own rate either: worth
        // more than creating and later spending it costs at three times that rate.
        let min_change = dust.max(crate::mempool::dust_limit(rate));
        if let Some(o) = &pay {
            if o.amount < dust {
                return Err(WalletError::Dust {
                    amount: o.amount,
                    min: dust,
                });
            }
        }
        let max_size = chain.params().max_tx_size;
        let coins = self.spendable(chain, mempool, order);
        let available = Amount::checked_sum(coins.iter().map(|c| c.amount)).unwrap_or(Amount::MAX);
        let target = pay.map_or(Amount::ZERO, |o| o.amount);
        let mut tx = Transaction {
            inputs: Vec::new(),
            outputs: pay.into_iter().collect(),
            payload,
        };
        let change_size = crate::mempool::policy::OUTPUT_SIZE;
        let mut parents = alloc::collections::BTreeSet::new();
        // Why an unconfirmed coin was passed over, if one was.
        let mut skipped: Option<MempoolError> = None;
        let mut total = Amount::ZERO;
        for coin in &coins {
            tx.inputs.push(TxIn {
                prev: coin.outpoint,
                sig: Signature([0; 64]),
            });
            // Signatures have a fixed size, so these sizes are exact before signing.
            let size = tx.encoded_len();
            if size > max_size {
                // Largest first, no other choice needs fewer inputs (`build` retries so).
                return Err(WalletError::TooLarge {
                    inputs: tx.inputs.len(),
                    max: max_size,
                });
            }
            if mempool.contains(&coin.outpoint.txid) && !parents.contains(&coin.outpoint.txid) {
                let mut with = parents.clone();
                with.insert(coin.outpoint.txid);
                if let Err(e) = mempool.check_limits(&with, size + change_size) {
                    // Spending it would break the pool's package limits: try other coins.
                    tx.inputs.pop();
                    skipped.get_or_insert(e);
                    continue;
                }
                parents = with;
            }
            total = total
                .checked_add(coin.amount)
                .ok_or(WalletError::Overflow)?;
            let fee_without_change = fee_for(rate, size)?;
            let fee_with_change = fee_for(rate, size + change_size)?;
            let change = target
                .checked_add(fee_with_change)
                .and_then(|needed| total.checked_sub(needed))
                .filter(|c| *c >= min_change && size + change_size <= max_size);
            if let Some(change) = change {
                tx.outputs.push(TxOut {
                    amount: change,
                    key: self.key,
                });
            } else if tx.outputs.is_empty()
                || total
                    < target
                        .checked_add(fee_without_change)
                        .ok_or(WalletError::Overflow)?
            {
                // A post needs its change output; a payment needs its fee covered.
                continue;
            }
            // Otherwise change below the dust limit is left to the miner as extra fee.
            // What the pool checks beyond validity, checked on the final transaction.
            mempool.check_dust(&tx).map_err(WalletError::Policy)?;
            mempool
                .check_limits(&parents, tx.encoded_len())
                .map_err(WalletError::Policy)?;
            let spent = self.spent_outputs(&tx, &coins);
            self.sign_tx(&mut tx, &spent, &chain.genesis_hash());
            return Ok(tx);
        }
        if let Some(e) = skipped {
            return Err(WalletError::Policy(e));
        }
        let needed = target
            .checked_add(fee_for(rate, 200)?)
            .ok_or(WalletError::Overflow)?;
        Err(WalletError::InsufficientFunds { available, needed })
    }

    /// The outputs `tx`'s inputs spend, looked up among our spendable `coins` (every input
    /// of a transaction we build is one of them).
    fn spent_outputs(&self, tx: &Transaction, coins: &[Spendable]) -> Vec<TxOut> {
        tx.inputs
            .iter()
            .map(|i| TxOut {
                amount: coins
                    .iter()
                    .find(|c| c.outpoint == i.prev)
                    .map_or(Amount::ZERO, |c| c.amount),
                key: self.key,
            })
            .collect()
    }

    /// Signs every input of `tx` for the network with `genesis`; `spent[i]` is the output
    /// input `i` spends (all must be ours). The signature commits to those amounts and keys,
    /// so a wrong amount here makes a signature the network rejects, never a wrong fee.
    pub fn sign_tx(
        &self,
        tx: &mut Transaction,
        spent: &[TxOut],
        genesis: &crate::primitives::BlockHash,
    ) {
        let msg = tx.sighash(genesis, spent);
        let sig = self.keypair.sign(&msg.0);
        for input in &mut tx.inputs {
            input.sig = sig;
        }
    }
}

/// Fee for `size` bytes at `rate` per 1000 bytes, rounded up.
fn fee_for(rate: u64, size: usize) -> Result<Amount, WalletError> {
    let fee = (u128::from(rate) * size as u128).div_ceil(1000);
    u64::try_from(fee)
        .ok()
        .and_then(Amount::from_units)
        .ok_or(WalletError::Overflow)
}

#[cfg(test)]
mod policy_tests;

#[cfg(test)]
mod tests;
