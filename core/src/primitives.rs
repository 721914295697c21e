//! Headers, transactions, blocks and their canonical encodings.
//!
//! Byte layouts are specified in `docs/CONSENSUS.md`; the decoders here are the reference.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::encode::{
    Decode, DecodeError, Encode, Reader, put_var_bytes, put_varint, var_bytes_len, varint_len,
};
use crate::hash::{Hash256, HexError, sha256d, sha256d_parts};
use crate::sig::{PublicKey, Signature};
use crate::units::{Amount, CompactTarget, Height};

/// Defines a 32-byte id that is a [`Hash256`] underneath but its own type, so one kind of id
/// cannot be passed where another is expected. Bytes, hex, `Display` and `Debug` are exactly
/// those of the wrapped hash; conversions are explicit and named.
macro_rules! hash_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(Hash256);

        impl $name {
            /// All zero bytes (the genesis header's `prev`, the "no stop" locator value).
            pub const ZERO: $name = $name(Hash256::ZERO);

            /// Declares that `hash` is an id of this kind.
            pub const fn from_hash(hash: Hash256) -> Self {
                $name(hash)
            }

            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(Hash256(bytes))
            }

            /// The untyped hash, for code that treats every id alike (merkle leaves, wire
            /// inventory, sets of both kinds).
            pub const fn to_hash(self) -> Hash256 {
                self.0
            }

            pub const fn as_hash(&self) -> &Hash256 {
                &self.0
            }

            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0.0
            }

            /// Parses 64 hex digits (either case).
            pub fn from_hex(s: &str) -> Result<Self, HexError> {
                Hash256::from_hex(s).map($name)
            }

            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl core::str::FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                Self::from_hex(s)
            }
        }
    };
}

hash_id! {
    /// Block id: SHA-256d of the 88-byte header.
    ///
    /// A distinct type from [`Txid`]: a transaction id is not accepted where a block hash is
    /// expected.
    ///
    /// ```compile_fail,E0308
    /// use tabcoin_core::primitives::{BlockHash, Txid};
    /// fn wants_block(_: BlockHash) {}
    /// wants_block(Txid::ZERO);
    /// ```
    BlockHash
}

hash_id! {
    /// Transaction id: SHA-256d of the whole transaction encoding, signatures included. Under
    /// `verify_strict` a third party cannot change a signature; the signer can re-sign with
    /// another nonce, so wallets must not assume a txid before it confirms (see CONSENSUS.md).
    ///
    /// A distinct type from [`BlockHash`]:
    ///
    /// ```compile_fail,E0308
    /// use tabcoin_core::primitives::{BlockHash, Txid};
    /// fn wants_tx(_: Txid) {}
    /// wants_tx(BlockHash::ZERO);
    /// ```
    ///
    /// while the explicit conversion compiles:
    ///
    /// ```
    /// use tabcoin_core::primitives::{BlockHash, Txid};
    /// fn wants_tx(_: Txid) {}
    /// wants_tx(Txid::from_hash(BlockHash::ZERO.to_hash()));
    /// ```
    Txid
}

/// Size of an encoded header.
pub const HEADER_SIZE: usize = 88;
/// Header version this software produces and accepts.
pub const HEADER_VERSION: u32 = 1;

/// Decode limits. Consensus limits that depend on the network (block size, …) live in
/// [`crate::params::Params`] and are checked by validation; these only bound allocation.
pub const MAX_TX_INPUTS: usize = 4_096;
pub const MAX_TX_OUTPUTS: usize = 4_096;
pub const MAX_BLOCK_TXS_DECODE: usize = 65_536;
/// Largest post body in bytes of UTF-8.
pub const MAX_POST_BYTES: usize = 320;
/// Largest free-form data in a coinbase.
pub const MAX_COINBASE_EXTRA: usize = 64;

/// The fixed 88-byte header. Field order puts the nonce last so the first 64 bytes (one
/// SHA-256 block) are constant while a miner searches nonces: their state is computed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    pub version: u32,
    pub prev: BlockHash,
    pub merkle_root: Hash256,
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub bits: CompactTarget,
    pub nonce: u64,
}

impl BlockHeader {
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(self.prev.as_bytes());
        b[36..68].copy_from_slice(&self.merkle_root.0);
        b[68..76].copy_from_slice(&self.time.to_le_bytes());
        b[76..80].copy_from_slice(&self.bits.0.to_le_bytes());
        b[80..88].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> Self {
        let mut r = Reader::new(b);
        Self::read(&mut r).expect("88 bytes always hold a header")
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHeader {
            version: r.u32()?,
            prev: BlockHash::from_bytes(r.array()?),
            merkle_root: Hash256(r.array()?),
            time: r.u64()?,
            bits: CompactTarget(r.u32()?),
            nonce: r.u64()?,
        })
    }

    pub fn hash(&self) -> BlockHash {
        BlockHash::from_hash(sha256d(&self.to_bytes()))
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
    fn encoded_len(&self) -> usize {
        HEADER_SIZE
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::read(r)
    }
}

/// A reference to one output of an earlier transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutPoint {
    pub txid: Txid,
    pub vout: u32,
}

impl Encode for OutPoint {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.txid.as_bytes());
        out.extend_from_slice(&self.vout.to_le_bytes());
    }
    fn encoded_len(&self) -> usize {
        32 + 4
    }
}

impl Decode for OutPoint {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OutPoint {
            txid: Txid::from_bytes(r.array()?),
            vout: r.u32()?,
        })
    }
}

/// A spend of `prev`, authorised by a signature of the output's key over the sighash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxIn {
    pub prev: OutPoint,
    pub sig: Signature,
}

/// `amount` locked to the ed25519 public key `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxOut {
    pub amount: Amount,
    pub key: PublicKey,
}

impl Encode for TxOut {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.amount.units().to_le_bytes());
        out.extend_from_slice(&self.key.0);
    }
    fn encoded_len(&self) -> usize {
        8 + self.key.0.len()
    }
}

impl Decode for TxOut {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let amount =
            Amount::from_units(r.u64()?).ok_or(DecodeError::OutOfRange { field: "amount" })?;
        Ok(TxOut {
            amount,
            key: PublicKey(r.array()?),
        })
    }
}

/// A short signed message carried by a transaction. Its author must be the key that owns the
/// transaction's first input, so the input signature signs the post.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Post {
    pub author: PublicKey,
    pub text: String,
}

/// What a transaction carries beside value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    None,
    /// Marks the coinbase: commits to the block height so every coinbase has a unique id.
    Coinbase {
        height: Height,
        extra: Vec<u8>,
    },
    Post(Post),
}

/// A transaction: inputs spend earlier outputs, outputs lock amounts to keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transaction {
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
    pub payload: Payload,
}

/// Domain tag of the signature hash (v2: commits to the spent outputs).
pub const SIGHASH_TAG: &[u8] = b"tabcoin/sighash/v2";

impl Transaction {
    pub fn is_coinbase(&self) -> bool {
        matches!(self.payload, Payload::Coinbase { .. })
    }

    pub fn txid(&self) -> Txid {
        Txid::from_hash(sha256d(&self.encode()))
    }

    pub fn post(&self) -> Option<&Post> {
        match &self.payload {
            Payload::Post(p) => Some(p),
            _ => None,
        }
    }

    fn encode_parts(&self, out: &mut Vec<u8>, with_sigs: bool) {
        put_varint(out, self.inputs.len() as u64);
        for i in &self.inputs {
            i.prev.encode_to(out);
            if with_sigs {
                out.extend_from_slice(&i.sig.0);
            }
        }
        put_varint(out, self.outputs.len() as u64);
        for o in &self.outputs {
            o.encode_to(out);
        }
        match &self.payload {
            Payload::None => out.push(0),
            Payload::Coinbase { height, extra } => {
                out.push(1);
                put_varint(out, height.0);
                put_var_bytes(out, extra);
            }
            Payload::Post(p) => {
                out.push(2);
                out.extend_from_slice(&p.author.0);
                put_var_bytes(out, p.text.as_bytes());
            }
        }
    }

    /// The message every input signs: a tag, the network's genesis hash (a signature for one
    /// network is worthless on another), the transaction without its signatures, and the
    /// outputs its inputs spend (`spent[i]` is the output input `i` spends: amount and key),
    /// so a signer that is told the amounts cannot be lied to about the fee it signs.
    pub fn sighash(&self, genesis: &BlockHash, spent: &[TxOut]) -> Hash256 {
        let mut body = Vec::with_capacity(self.encoded_len() + spent.len() * 40);
        self.encode_parts(&mut body, false);
        for o in spent {
            o.encode_to(&mut body);
        }
        sha256d_parts(&[SIGHASH_TAG, genesis.as_bytes(), &body])
    }

    /// Every outpoint this transaction spends.
    pub fn spends(&self) -> impl Iterator<Item = &OutPoint> {
        self.inputs.iter().map(|i| &i.prev)
    }
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_parts(out, true);
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_to(&mut v);
        v
    }

    /// Counted, not encoded: blocks and pools ask for sizes often (limits, caches, fees).
    fn encoded_len(&self) -> usize {
        // An input: its outpoint (txid, vout) and its signature.
        let input = 32 + 4 + core::mem::size_of::<Signature>();
        let payload = match &self.payload {
            Payload::None => 0,
            Payload::Coinbase { height, extra } => {
                varint_len(height.0) + var_bytes_len(extra.len())
            }
            Payload::Post(p) => p.author.0.len() + var_bytes_len(p.text.len()),
        };
        varint_len(self.inputs.len() as u64)
            + self.inputs.len() * input
            + varint_len(self.outputs.len() as u64)
            + self.outputs.iter().map(Encode::encoded_len).sum::<usize>()
            + 1
            + payload
    }
}

impl Decode for Transaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let inputs = r.list("inputs", MAX_TX_INPUTS, |r| {
            Ok(TxIn {
                prev: OutPoint::decode_from(r)?,
                sig: Signature(r.array()?),
            })
        })?;
        let outputs = r.list("outputs", MAX_TX_OUTPUTS, TxOut::decode_from)?;
        let payload = match r.u8()? {
            0 => Payload::None,
            1 => Payload::Coinbase {
                height: Height(r.varint()?),
                extra: r.var_bytes("coinbase extra", MAX_COINBASE_EXTRA)?.to_vec(),
            },
            2 => Payload::Post(Post {
                author: PublicKey(r.array()?),
                text: r.string("post text", MAX_POST_BYTES)?,
            }),
            tag => {
                return Err(DecodeError::InvalidTag {
                    field: "payload",
                    tag,
                });
            }
        };
        Ok(Transaction {
            inputs,
            outputs,
            payload,
        })
    }
}

/// A header and its transactions; the first transaction is the coinbase.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<Transaction>,
}

impl Block {
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    pub fn compute_merkle_root(&self) -> Hash256 {
        let ids: Vec<Txid> = self.txs.iter().map(Transaction::txid).collect();
        crate::merkle::root(&ids)
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        put_varint(out, self.txs.len() as u64);
        for t in &self.txs {
            t.encode_to(out);
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_to(&mut v);
        v
    }

    fn encoded_len(&self) -> usize {
        HEADER_SIZE
            + varint_len(self.txs.len() as u64)
            + self.txs.iter().map(Encode::encoded_len).sum::<usize>()
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(r)?;
        let txs = r.list(
            "transactions",
            MAX_BLOCK_TXS_DECODE,
            Transaction::decode_from,
        )?;
        Ok(Block { header, txs })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn arb_hash() -> impl Strategy<Value = Hash256> {
        any::<[u8; 32]>().prop_map(Hash256)
    }

    pub fn arb_block_hash() -> impl Strategy<Value = BlockHash> {
        any::<[u8; 32]>().prop_map(BlockHash::from_bytes)
    }

    pub fn arb_txid() -> impl Strategy<Value = Txid> {
        any::<[u8; 32]>().prop_map(Txid::from_bytes)
    }

    pub fn arb_header() -> impl Strategy<Value = BlockHeader> {
        (
            any::<u32>(),
            arb_block_hash(),
            arb_hash(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
        )
            .prop_map(
                |(version, prev, merkle_root, time, bits, nonce)| BlockHeader {
                    version,
                    prev,
                    merkle_root,
                    time,
                    bits: CompactTarget(bits),
                    nonce,
                },
            )
    }

    pub fn arb_tx() -> impl Strategy<Value = Transaction> {
        let input = (
            arb_txid(),
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(txid, vout, a, b)| {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&a);
                sig[32..].copy_from_slice(&b);
                TxIn {
                    prev: OutPoint { txid, vout },
                    sig: Signature(sig),
                }
            });
        let output = (0..=crate::units::MAX_MONEY, any::<[u8; 32]>()).prop_map(|(a, k)| TxOut {
            amount: Amount::from_units(a).unwrap(),
            key: PublicKey(k),
        });
        let payload = prop_oneof![
            Just(Payload::None),
            (
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..=MAX_COINBASE_EXTRA)
            )
                .prop_map(|(h, extra)| Payload::Coinbase {
                    height: Height(h),
                    extra
                }),
            (any::<[u8; 32]>(), "\\PC{0,80}").prop_map(|(a, text)| Payload::Post(Post {
                author: PublicKey(a),
                text
            })),
        ];
        (
            proptest::collection::vec(input, 0..4),
            proptest::collection::vec(output, 0..4),
            payload,
        )
            .prop_map(|(inputs, outputs, payload)| Transaction {
                inputs,
                outputs,
                payload,
            })
    }

    pub fn arb_block() -> impl Strategy<Value = Block> {
        (arb_header(), proptest::collection::vec(arb_tx(), 0..4))
            .prop_map(|(header, txs)| Block { header, txs })
    }

    fn round_trip<T: Encode + Decode + PartialEq + core::fmt::Debug>(v: &T) {
        let bytes = v.encode();
        assert_eq!(bytes.len(), v.encoded_len());
        let back = T::decode(&bytes).expect("own encoding decodes");
        assert_eq!(&back, v);
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            T::decode(&extra),
            Err(DecodeError::TrailingBytes { remaining: 1 })
        );
        for cut in 0..bytes.len() {
            assert!(T::decode(&bytes[..cut]).is_err());
        }
    }

    proptest! {
        #[test]
        fn header_round_trip(h in arb_header()) {
            round_trip(&h);
            prop_assert_eq!(BlockHeader::from_bytes(&h.to_bytes()), h);
        }

        #[test]
        fn outpoint_round_trip(txid in arb_txid(), vout: u32) {
            round_trip(&OutPoint { txid, vout });
        }

        #[test]
        fn tx_round_trip(tx in arb_tx()) {
            round_trip(&tx);
        }

        #[test]
        fn block_round_trip(b in arb_block()) {
            round_trip(&b);
        }

        /// Any byte string that decodes re-encodes to itself (canonical encoding).
        #[test]
        fn decoded_bytes_reencode_identically(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(tx) = Transaction::decode(&bytes) {
                prop_assert_eq!(tx.encode(), bytes.clone());
            }
            if let Ok(b) = Block::decode(&bytes) {
                prop_assert_eq!(b.encode(), bytes);
            }
        }
    }

    /// The typed ids show, parse and encode exactly as the hash they wrap.
    #[test]
    fn typed_ids_look_like_their_hash() {
        use alloc::string::ToString;
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x01;
        let h = Hash256(bytes);
        let (b, t) = (BlockHash::from_bytes(bytes), Txid::from_hash(h));
        for (shown, debug, hex) in [
            (b.to_string(), alloc::format!("{b:?}"), b.to_hex()),
            (t.to_string(), alloc::format!("{t:?}"), t.to_hex()),
        ] {
            assert_eq!(shown, h.to_string());
            assert_eq!(debug, alloc::format!("{h:?}"));
            assert_eq!(hex, h.to_hex());
        }
        assert_eq!(h.to_hex().parse::<BlockHash>(), Ok(b));
        assert_eq!(Txid::from_hex(&h.to_hex().to_uppercase()), Ok(t));
        assert!("00".parse::<Txid>().is_err());
        assert_eq!((b.to_hash(), *t.as_hash(), *b.as_bytes()), (h, h, bytes));
        let op = OutPoint { txid: t, vout: 0 };
        assert_eq!(&op.encode()[..32], &bytes);
    }

    #[test]
    fn nonce_is_in_the_last_eight_bytes() {
        let h = BlockHeader {
            version: 1,
            prev: BlockHash::from_bytes([1; 32]),
            merkle_root: Hash256([2; 32]),
            time: 3,
            bits: CompactTarget(4),
            nonce: 0x0102_0304_0506_0708,
        };
        assert_eq!(&h.to_bytes()[80..], &0x0102_0304_0506_0708u64.to_le_bytes());
    }

    #[test]
    fn amount_above_cap_and_bad_tags_are_rejected() {
        let mut out = Vec::new();
        put_varint(&mut out, 0); // no inputs
        put_varint(&mut out, 1);
        out.extend_from_slice(&(crate::units::MAX_MONEY + 1).to_le_bytes());
        out.extend_from_slice(&[0; 32]);
        out.push(0);
        assert_eq!(
            Transaction::decode(&out),
            Err(DecodeError::OutOfRange { field: "amount" })
        );
        let tx = Transaction {
            inputs: Vec::new(),
            outputs: Vec::new(),
            payload: Payload::None,
        };
        let mut b = tx.encode();
        *b.last_mut().unwrap() = 3;
        assert_eq!(
            Transaction::decode(&b),
            Err(DecodeError::InvalidTag {
                field: "payload",
                tag: 3
            })
        );
    }

    #[test]
    fn sighash_commits_to_network_and_spent_outputs_and_ignores_signatures() {
        let mut tx = Transaction {
            inputs: alloc::vec![TxIn {
                prev: OutPoint {
                    txid: Txid::from_bytes([9; 32]),
                    vout: 1
                },
                sig: Signature([0; 64]),
            }],
            outputs: alloc::vec![],
            payload: Payload::None,
        };
        let spent = TxOut {
            amount: Amount::from_units(5).unwrap(),
            key: PublicKey([3; 32]),
        };
        let a = tx.sighash(&BlockHash::from_bytes([1; 32]), &[spent]);
        assert_ne!(a, tx.sighash(&BlockHash::from_bytes([2; 32]), &[spent]));
        let richer = TxOut {
            amount: Amount::from_units(6).unwrap(),
            ..spent
        };
        assert_ne!(a, tx.sighash(&BlockHash::from_bytes([1; 32]), &[richer]));
        let other_key = TxOut {
            key: PublicKey([4; 32]),
            ..spent
        };
        assert_ne!(a, tx.sighash(&BlockHash::from_bytes([1; 32]), &[other_key]));
        tx.inputs[0].sig = Signature([7; 64]);
        assert_eq!(a, tx.sighash(&BlockHash::from_bytes([1; 32]), &[spent]));
    }
}
