//! Ed25519 keys and signatures, and the one signature rule of Tabcoin.
//!
//! # The rule
//!
//! A signature `sig` by the 32-byte key `key` on `msg` is valid iff
//! `ed25519_dalek::VerifyingKey::from_bytes(key)` succeeds and
//! `verify_strict(msg, sig)` succeeds. [`verify`] is that rule and nothing else. Spelled out,
//! with `A` the key point, `R` the first and `s` the second half of the signature and
//! `k = SHA-512(R bytes ‖ A bytes ‖ msg) mod ℓ`:
//!
//! 1. the key bytes decompress to a curve point `A` (non-canonical encodings, `y = p + e`,
//!    are accepted, and some of them decode to points of large order; the hash uses the
//!    bytes as given, so such a key is a different key from the canonical one);
//! 2. `s` is canonical (`s < ℓ`);
//! 3. the `R` bytes decompress to a point, and neither `R` nor `A` has small order (order
//!    dividing 8);
//! 4. the *encoding* of `[s]B − [k]A` equals the `R` bytes. This is the cofactorless
//!    equation, and since the comparison is on bytes, a non-canonical `R` encoding never
//!    verifies.
//!
//! Mixed-order points (a prime-order part plus a non-zero torsion part) are *not* rejected
//! by the rule: a signature whose `R` and `A` carry torsion verifies if the cofactorless
//! equation holds exactly (speccheck case 3 is one).
//!
//! # Batch verification: an accelerator that cannot change a verdict
//!
//! [`verify_all`] with [`VerifyMode::Batch`] returns exactly what [`VerifyMode::Single`]
//! returns: `Ok` iff every item passes [`verify`], otherwise the index of the first item that
//! fails and its error. `ed25519_dalek::verify_batch` alone does not have that property: it
//! decompresses `R` (so accepts non-canonical encodings), does not reject small-order points,
//! and checks the cofactorless equation `Σ zᵢ·([sᵢ]B − Rᵢ − [kᵢ]Aᵢ) = 0` with 128-bit
//! coefficients `zᵢ` derived deterministically from the inputs. If `Rᵢ` or `Aᵢ` has a torsion
//! part `Tᵢ`, the sum contains `zᵢ·Tᵢ`, which vanishes whenever `zᵢ` is a multiple of the
//! order of `Tᵢ` — probability at least 1/8 — so an invalid signature can pass the batch
//! (and, because the `zᵢ` are deterministic, a forger just tries messages until it does).
//! Conversely it can reject what the rule accepts (speccheck case 3).
//!
//! So an item only goes into `verify_batch` if it passes prechecks that put it in the safe
//! case; everything else is checked by [`verify`] itself:
//!
//! * `A` decompresses, is not small-order and is torsion-free (checked once per distinct key
//!   per call: one key often signs many inputs);
//! * `s` is canonical;
//! * `R` decompresses, re-compresses to the same bytes (canonical), is not small-order and is
//!   torsion-free.
//!
//! Then every `Aᵢ` and `Rᵢ` lies in the prime-order subgroup 𝔾 (order ℓ), so
//! `Dᵢ = [sᵢ]B − Rᵢ − [kᵢ]Aᵢ ∈ 𝔾`, and the batch uses the same `kᵢ` as the rule (it hashes
//! the same `R` and `A` bytes).
//!
//! * If every item passes the rule, every `Dᵢ = 0` and the batch equation holds, always.
//! * If some `Dⱼ ≠ 0`: fix the other coefficients; since 𝔾 is cyclic of prime order, at most
//!   one value of `zⱼ mod ℓ` makes the sum vanish, and `zⱼ < 2¹²⁸ < ℓ`, so the batch
//!   passes with probability at most 2⁻¹²⁸ (per attempt, with the `zᵢ` modelled as a random
//!   oracle of the inputs, which is how dalek derives them).
//! * If every `Dᵢ = 0`, then `[sᵢ]B − [kᵢ]Aᵢ = Rᵢ` as points, and because the `R` bytes are
//!   the canonical encoding of `Rᵢ`, the rule's byte comparison succeeds; the prechecks
//!   already covered steps 1–3. So a passing batch means every item passes the rule.
//!
//! A chunk whose batch equation fails, and any item that fails a precheck, is verified with
//! [`verify`] one by one, in index order, which also yields the first failing index and its
//! exact error. Chunks are consecutive runs of items, checked in order, so the first failure
//! found is the first failure overall. The verdict therefore equals the single rule's (except
//! with probability 2⁻¹²⁸ per chunk), and the error is always the single rule's error.
//!
//! Torsion-freeness is tested as `[ℓ]P = 0`, computed in variable time as
//! `[ℓ−1]P + P` (`ℓ` itself is not a reduced scalar); a unit test checks it agrees with
//! `EdwardsPoint::is_torsion_free` on clean, torsioned and small-order points. Everything here
//! is public data, so variable time is fine.
//!
//! # Cost: batch mode is not faster
//!
//! The torsion test is one variable-base scalar multiplication per `R` (~0.5 of a whole
//! single verification on x86-64), and decompressing and re-compressing `R` adds ~0.2; the
//! `verify_batch` call itself costs ~0.3 per item at 128 items. Measured on 256 honest
//! signatures from 16 keys (`measure_single_vs_batch`), batch/single ≈ 1.02 (1.0–1.1 across
//! runs; 0.99 with chunks of 256, 1.07 with chunks of 64): batch mode is *sound* but buys
//! nothing, so [`VerifyMode::Single`] is the default. What would make batching pay is an `R`
//! subgroup test much cheaper than a scalar multiplication (point halving / Legendre
//! symbols), which needs field arithmetic that curve25519-dalek does not expose.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// A 32-byte ed25519 public key, as it appears on the wire. Whether it is a valid point is
/// decided by [`verify`]. Shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// A 64-byte ed25519 signature (`R ‖ s`), as it appears on the wire. Shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Why a signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigError {
    /// The public key bytes do not decompress to a curve point.
    InvalidKey,
    /// The key is a point but the signature does not verify under the rule.
    Invalid,
}

impl fmt::Display for SigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SigError::InvalidKey => "public key is not a valid curve point",
            SigError::Invalid => "signature does not verify",
        })
    }
}

impl core::error::Error for SigError {}

/// The signature rule: `VerifyingKey::from_bytes(key)` then `verify_strict(msg, sig)`.
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), SigError> {
    let vk = decode_key(key)?;
    verify_decoded(&vk, msg, sig)
}

fn decode_key(key: &PublicKey) -> Result<VerifyingKey, SigError> {
    VerifyingKey::from_bytes(&key.0).map_err(|_| SigError::InvalidKey)
}

/// The rule after its first step: `vk` must be `VerifyingKey::from_bytes` of the key bytes.
fn verify_decoded(vk: &VerifyingKey, msg: &[u8], sig: &Signature) -> Result<(), SigError> {
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .map_err(|_| SigError::Invalid)
}

/// One signature check: `sig` by `key` over `msg`.
#[derive(Clone, Copy, Debug)]
pub struct SigCheck<'a> {
    pub key: &'a PublicKey,
    pub msg: &'a [u8],
    pub sig: &'a Signature,
}

/// How [`verify_all`] does its work. The verdict is the same in both modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// [`verify`] on each item in order.
    #[default]
    Single,
    /// Prechecked items go through `ed25519_dalek::verify_batch` in chunks; see the module
    /// docs for why this cannot change the verdict.
    Batch,
}

/// Items per `verify_batch` call. Larger chunks amortise better (dalek switches from Straus
/// to Pippenger at 190 points, i.e. about 95 items) but cost more to re-check one by one when
/// a chunk holds a bad signature.
const BATCH_CHUNK: usize = 128;

/// Verdict identical to calling [`verify`] on each item in order; `Err` carries the index of
/// the FIRST failing item and its error.
pub fn verify_all(items: &[SigCheck<'_>], mode: VerifyMode) -> Result<(), (usize, SigError)> {
    match mode {
        VerifyMode::Single => {
            for (i, item) in items.iter().enumerate() {
                verify(item.key, item.msg, item.sig).map_err(|e| (i, e))?;
            }
            Ok(())
        }
        VerifyMode::Batch => verify_all_batched(items, BATCH_CHUNK),
    }
}

/// What one call knows about a distinct key.
#[derive(Clone, Copy)]
struct KeyInfo {
    /// `VerifyingKey::from_bytes` of the key, or its error.
    decoded: Result<VerifyingKey, SigError>,
    /// The point is in the prime-order subgroup and is not the identity.
    batchable: bool,
}

impl KeyInfo {
    fn new(key: &PublicKey) -> Self {
        let decoded = decode_key(key);
        let batchable = decoded
            .as_ref()
            .is_ok_and(|vk| in_prime_subgroup_not_identity(&vk.to_edwards()));
        KeyInfo { decoded, batchable }
    }
}

fn verify_all_batched(items: &[SigCheck<'_>], chunk_len: usize) -> Result<(), (usize, SigError)> {
    let chunk_len = chunk_len.max(1);
    let mut keys: BTreeMap<[u8; 32], KeyInfo> = BTreeMap::new();
    // Reused across chunks.
    let mut decoded: Vec<Result<VerifyingKey, SigError>> = Vec::with_capacity(chunk_len);
    let mut in_batch: Vec<bool> = Vec::with_capacity(chunk_len);
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(chunk_len);
    let mut sigs: Vec<ed25519_dalek::Signature> = Vec::with_capacity(chunk_len);
    let mut vks: Vec<VerifyingKey> = Vec::with_capacity(chunk_len);

    for (chunk_no, chunk) in items.chunks(chunk_len).enumerate() {
        decoded.clear();
        in_batch.clear();
        msgs.clear();
        sigs.clear();
        vks.clear();
        for item in chunk {
            let info = *keys
                .entry(item.key.0)
                .or_insert_with(|| KeyInfo::new(item.key));
            decoded.push(info.decoded);
            let batchable = match info.decoded {
                Ok(vk) if info.batchable && signature_batchable(item.sig) => {
                    msgs.push(item.msg);
                    sigs.push(ed25519_dalek::Signature::from_bytes(&item.sig.0));
                    vks.push(vk);
                    true
                }
                _ => false,
            };
            in_batch.push(batchable);
        }
        let batch_passed =
            !msgs.is_empty() && ed25519_dalek::verify_batch(&msgs, &sigs, &vks).is_ok();
        let base = chunk_no * chunk_len;
        let per_item = chunk.iter().zip(&decoded).zip(&in_batch).enumerate();
        for (j, ((item, decoded), &in_batch)) in per_item {
            if batch_passed && in_batch {
                continue;
            }
            let result = match decoded {
                Ok(vk) => verify_decoded(vk, item.msg, item.sig),
                Err(e) => Err(*e),
            };
            result.map_err(|e| (base + j, e))?;
        }
    }
    Ok(())
}

/// `s` canonical, and `R` a canonical encoding of a point of the prime-order subgroup other
/// than the identity.
fn signature_batchable(sig: &Signature) -> bool {
    let mut r_bytes = [0u8; 32];
    let mut s_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig.0[..32]);
    s_bytes.copy_from_slice(&sig.0[32..]);
    if bool::from(Scalar::from_canonical_bytes(s_bytes).is_none()) {
        return false;
    }
    match CompressedEdwardsY(r_bytes).decompress() {
        Some(r) => r.compress().0 == r_bytes && in_prime_subgroup_not_identity(&r),
        None => false,
    }
}

fn in_prime_subgroup_not_identity(p: &EdwardsPoint) -> bool {
    !p.is_small_order() && is_torsion_free_vartime(p)
}

/// `[ℓ]P == 0`, in variable time: `[ℓ−1]P + P` (`ℓ` is not a reduced scalar; the
/// multiplication computes the exact integer multiple, whatever the order of `P`). Same
/// answer as `EdwardsPoint::is_torsion_free` (checked by a unit test), about 17% faster on
/// x86-64; a one-point `vartime_multiscalar_mul` measured the same as this.
fn is_torsion_free_vartime(p: &EdwardsPoint) -> bool {
    let l_minus_one = -Scalar::ONE;
    let l_minus_one_p =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&l_minus_one, p, &Scalar::ZERO);
    (l_minus_one_p + p).is_identity()
}

/// An ed25519 signing key made from a 32-byte seed (RFC 8032 secret key). The host supplies
/// the seed; core never draws randomness. `Debug` shows only the public key, and the secret
/// is zeroed on drop.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Keypair {
            signing: SigningKey::from_bytes(seed),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Deterministic RFC 8032 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.signing.sign(msg).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use proptest::prelude::*;
    use sha2::{Digest, Sha512};

    fn seed(n: u64) -> [u8; 32] {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&n.to_le_bytes());
        s[8] = 0xa5;
        s
    }

    fn scalar_from(label: &[u8], n: u64) -> Scalar {
        let mut h = Sha512::new();
        h.update(label);
        h.update(n.to_le_bytes());
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }

    /// k = SHA-512(R ‖ A ‖ M) mod ℓ, as the rule computes it.
    fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
        let mut h = Sha512::new();
        h.update(r);
        h.update(a);
        h.update(msg);
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }

    fn sig_from(r: &EdwardsPoint, s: &Scalar) -> Signature {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r.compress().0);
        out[32..].copy_from_slice(s.as_bytes());
        Signature(out)
    }

    /// Key `A' = aB + T` with `T` of order 8 and `s = r + k·a`: the cofactored equation holds,
    /// the cofactorless one only when `k·T = 0`. Returns the key, the signature and whether
    /// the cofactorless equation holds.
    fn torsioned_key_sig(n: u64, msg: &[u8]) -> (PublicKey, Signature, bool) {
        let a = scalar_from(b"a", n);
        let t = EIGHT_TORSION[1];
        let key_point = EdwardsPoint::mul_base(&a) + t;
        let key = key_point.compress().0;
        let r = scalar_from(b"r", n);
        let big_r = EdwardsPoint::mul_base(&r);
        let k = challenge(&big_r.compress().0, &key, msg);
        let s = r + k * a;
        let holds = (k * t).is_identity();
        (PublicKey(key), sig_from(&big_r, &s), holds)
    }

    /// An honest key `A = aB` and `R' = rB + T` with `T` of order 8, `s = r + k·a`: the
    /// cofactored equation holds, the cofactorless one never does.
    fn torsioned_r_sig(n: u64, msg: &[u8]) -> (PublicKey, Signature) {
        let a = scalar_from(b"a", n);
        let key = EdwardsPoint::mul_base(&a).compress().0;
        let r = scalar_from(b"r", n);
        let big_r = EdwardsPoint::mul_base(&r) + EIGHT_TORSION[3];
        let k = challenge(&big_r.compress().0, &key, msg);
        (PublicKey(key), sig_from(&big_r, &(r + k * a)))
    }

    /// A signature the rule ACCEPTS although both `A` and `R` have torsion (like speccheck
    /// case 3): `A' = aB + T`, `R = rB + T_R` with `T_R = −k·T`, found by trying `r` and `T_R`.
    fn mixed_order_valid_sig(n: u64, msg: &[u8]) -> (PublicKey, Signature) {
        let a = scalar_from(b"a", n);
        let t = EIGHT_TORSION[5];
        let key = (EdwardsPoint::mul_base(&a) + t).compress().0;
        for attempt in 0..4096u64 {
            let r = scalar_from(b"mixed r", n.wrapping_mul(4096).wrapping_add(attempt));
            for t_r in EIGHT_TORSION.iter().skip(1) {
                let big_r = EdwardsPoint::mul_base(&r) + t_r;
                let k = challenge(&big_r.compress().0, &key, msg);
                if -(k * t) == *t_r {
                    return (PublicKey(key), sig_from(&big_r, &(r + k * a)));
                }
            }
        }
        panic!("no mixed-order signature found in 4096 attempts");
    }

    fn checks<'a>(items: &'a [(PublicKey, Vec<u8>, Signature)]) -> Vec<SigCheck<'a>> {
        items
            .iter()
            .map(|(key, msg, sig)| SigCheck { key, msg, sig })
            .collect()
    }

    #[test]
    fn sign_verify_round_trip() {
        for n in 0..8 {
            let kp = Keypair::from_seed(&seed(n));
            let msg = format!("message {n}");
            let sig = kp.sign(msg.as_bytes());
            assert_eq!(verify(&kp.public_key(), msg.as_bytes(), &sig), Ok(()));
            // Deterministic.
            assert_eq!(kp.sign(msg.as_bytes()), sig);
        }
        let kp = Keypair::from_seed(&seed(99));
        assert_eq!(verify(&kp.public_key(), b"", &kp.sign(b"")), Ok(()));
    }

    #[test]
    fn rfc8032_test_1() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let seed = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let kp = Keypair::from_seed(&seed);
        assert_eq!(
            format!("{}", kp.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            format!("{:?}", kp.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn wrong_message_key_or_signature_fails() {
        let kp = Keypair::from_seed(&seed(1));
        let other = Keypair::from_seed(&seed(2));
        let sig = kp.sign(b"pay alice 5");
        assert_eq!(
            verify(&kp.public_key(), b"pay alice 6", &sig),
            Err(SigError::Invalid)
        );
        assert_eq!(
            verify(&other.public_key(), b"pay alice 5", &sig),
            Err(SigError::Invalid)
        );
        let mut bad = sig;
        bad.0[40] ^= 1;
        assert_eq!(
            verify(&kp.public_key(), b"pay alice 5", &bad),
            Err(SigError::Invalid)
        );
        // y = 2 is not the y-coordinate of a curve point.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(CompressedEdwardsY(not_a_point).decompress().is_none());
        assert_eq!(
            verify(&PublicKey(not_a_point), b"pay alice 5", &sig),
            Err(SigError::InvalidKey)
        );
    }

    #[test]
    fn formatting() {
        let kp = Keypair::from_seed(&seed(3));
        let pk = kp.public_key();
        let hex = format!("{pk}");
        assert_eq!(hex.len(), 64);
        assert_eq!(format!("{pk:?}"), hex);
        assert_eq!(format!("{:?}", kp.sign(b"x")).len(), 128);
        // The secret never appears in Debug output.
        let secret_hex: alloc::string::String =
            seed(3).iter().map(|b| format!("{b:02x}")).collect();
        let dbg = format!("{kp:?}");
        assert!(dbg.contains(&hex));
        assert!(!dbg.contains(&secret_hex));
        assert_eq!(
            SigError::InvalidKey.to_string(),
            "public key is not a valid curve point"
        );
        assert_eq!(SigError::Invalid.to_string(), "signature does not verify");
    }

    #[test]
    fn vartime_torsion_check_agrees_with_dalek() {
        let mut points = vec![EdwardsPoint::default(), ED25519_BASEPOINT_POINT];
        for n in 0..16 {
            points.push(EdwardsPoint::mul_base(&scalar_from(b"p", n)));
        }
        let clean = points.clone();
        for p in &clean {
            for t in &EIGHT_TORSION {
                points.push(p + t);
            }
        }
        let mut torsioned = 0;
        for p in &points {
            assert_eq!(is_torsion_free_vartime(p), p.is_torsion_free(), "{p:?}");
            torsioned += usize::from(!p.is_torsion_free());
        }
        assert_eq!(torsioned, clean.len() * 7);
        // Small-order points: only the identity is torsion-free, and none is batchable.
        for t in &EIGHT_TORSION {
            assert_eq!(is_torsion_free_vartime(t), t.is_identity());
            assert!(!in_prime_subgroup_not_identity(t));
        }
        assert!(in_prime_subgroup_not_identity(&ED25519_BASEPOINT_POINT));
    }

    /// `y = p + e` encodes the point with `y = e`; several such points are not of small order,
    /// so the re-compression check (not the small-order check) is what keeps them out.
    #[test]
    fn non_canonical_r_is_never_batched() {
        let kp = Keypair::from_seed(&seed(4));
        let key = kp.public_key();
        let mut non_small = 0;
        for e in 0u8..19 {
            for sign in [0u8, 0x80] {
                let mut r = [0xffu8; 32];
                r[0] = 0xed + e;
                r[31] = 0x7f | sign;
                let Some(point) = CompressedEdwardsY(r).decompress() else {
                    continue;
                };
                assert_ne!(point.compress().0, r);
                non_small += usize::from(!point.is_small_order());
                let mut sig = Signature([0; 64]);
                sig.0[..32].copy_from_slice(&r);
                sig.0[32] = 1;
                assert!(!signature_batchable(&sig));
                let one = [SigCheck {
                    key: &key,
                    msg: b"m",
                    sig: &sig,
                }];
                assert_eq!(verify(&key, b"m", &sig), Err(SigError::Invalid));
                assert_eq!(
                    verify_all(&one, VerifyMode::Batch),
                    Err((0, SigError::Invalid))
                );
            }
        }
        assert!(non_small > 0);
    }

    #[test]
    fn empty_and_honest_batches() {
        assert_eq!(verify_all(&[], VerifyMode::Single), Ok(()));
        assert_eq!(verify_all(&[], VerifyMode::Batch), Ok(()));
        let items: Vec<_> = (0..300u64)
            .map(|i| {
                let kp = Keypair::from_seed(&seed(i % 5));
                let msg = format!("input {i}").into_bytes();
                let sig = kp.sign(&msg);
                (kp.public_key(), msg, sig)
            })
            .collect();
        let c = checks(&items);
        assert_eq!(verify_all(&c, VerifyMode::Single), Ok(()));
        assert_eq!(verify_all(&c, VerifyMode::Batch), Ok(()));
        // A bad item deep in the second chunk.
        let mut items = items;
        items[200].1.push(0);
        let c = checks(&items);
        assert_eq!(
            verify_all(&c, VerifyMode::Batch),
            Err((200, SigError::Invalid))
        );
        assert_eq!(
            verify_all(&c, VerifyMode::Single),
            Err((200, SigError::Invalid))
        );
    }

    /// The reason for the prechecks: a mixed-order key lets a signature satisfy the
    /// cofactored equation; dalek's `verify_batch` accepts some of them, the rule does not,
    /// and neither does our batch mode.
    #[test]
    fn torsioned_key_rejected_by_rule_and_batch_mode_but_not_by_plain_batch() {
        let honest = Keypair::from_seed(&seed(7));
        let mut plain_batch_accepted_invalid = 0;
        let mut rule_rejected = 0;
        for m in 0..64u64 {
            let msg = format!("torsion message {m}").into_bytes();
            let (key, sig, holds) = torsioned_key_sig(m, &msg);
            let verdict = verify(&key, &msg, &sig);
            // The rule accepts exactly when the cofactorless equation holds (k·T = 0).
            assert_eq!(verdict.is_ok(), holds, "message {m}");
            if !holds {
                rule_rejected += 1;
                assert_eq!(verdict, Err(SigError::Invalid));
            }
            // Batch mode agrees, alone and surrounded by honest items.
            let one = [SigCheck {
                key: &key,
                msg: &msg,
                sig: &sig,
            }];
            assert_eq!(
                verify_all(&one, VerifyMode::Batch),
                verdict.map_err(|e| (0, e))
            );
            let hm = b"honest".to_vec();
            let hs = honest.sign(&hm);
            let items = vec![
                (honest.public_key(), hm.clone(), hs),
                (key, msg.clone(), sig),
                (honest.public_key(), hm, hs),
            ];
            let c = checks(&items);
            assert_eq!(
                verify_all(&c, VerifyMode::Batch),
                verdict.map_err(|e| (1, e))
            );
            assert_eq!(
                verify_all(&c, VerifyMode::Single),
                verdict.map_err(|e| (1, e))
            );

            // Plain dalek batch verification.
            let vk = VerifyingKey::from_bytes(&key.0).unwrap();
            let dsig = ed25519_dalek::Signature::from_bytes(&sig.0);
            if ed25519_dalek::verify_batch(&[&msg], &[dsig], &[vk]).is_ok() && !holds {
                plain_batch_accepted_invalid += 1;
            }
        }
        assert!(rule_rejected >= 32, "{rule_rejected}");
        assert!(
            plain_batch_accepted_invalid >= 1,
            "plain verify_batch accepted none of the {rule_rejected} invalid signatures"
        );
    }

    #[test]
    fn torsioned_r_rejected_by_rule_and_batch_mode_but_not_by_plain_batch() {
        let mut plain_batch_accepted = 0;
        for m in 0..64u64 {
            let msg = format!("torsioned R {m}").into_bytes();
            let (key, sig) = torsioned_r_sig(m, &msg);
            assert_eq!(verify(&key, &msg, &sig), Err(SigError::Invalid));
            let one = [SigCheck {
                key: &key,
                msg: &msg,
                sig: &sig,
            }];
            assert_eq!(
                verify_all(&one, VerifyMode::Batch),
                Err((0, SigError::Invalid))
            );
            let vk = VerifyingKey::from_bytes(&key.0).unwrap();
            let dsig = ed25519_dalek::Signature::from_bytes(&sig.0);
            if ed25519_dalek::verify_batch(&[&msg], &[dsig], &[vk]).is_ok() {
                plain_batch_accepted += 1;
            }
        }
        assert!(plain_batch_accepted >= 1);
    }

    /// The other direction: the rule accepts some mixed-order signatures, which
    /// `verify_batch` may reject; the prechecks route them to the single rule.
    #[test]
    fn mixed_order_signature_accepted_by_rule_and_batch_mode() {
        let mut plain_batch_rejected = 0;
        for m in 0..16u64 {
            let msg = format!("mixed {m}").into_bytes();
            let (key, sig) = mixed_order_valid_sig(m, &msg);
            assert_eq!(verify(&key, &msg, &sig), Ok(()));
            let one = [SigCheck {
                key: &key,
                msg: &msg,
                sig: &sig,
            }];
            assert_eq!(verify_all(&one, VerifyMode::Batch), Ok(()));
            let vk = VerifyingKey::from_bytes(&key.0).unwrap();
            let dsig = ed25519_dalek::Signature::from_bytes(&sig.0);
            if ed25519_dalek::verify_batch(&[&msg], &[dsig], &[vk]).is_err() {
                plain_batch_rejected += 1;
            }
        }
        assert!(plain_batch_rejected >= 1);
    }

    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Honest,
        FlipSig(u16),
        FlipMsg(u16),
        FlipKey(u16),
        /// Mixed-order key, cofactored-only signature (usually invalid).
        TorsionedKey,
        /// Torsioned R (always invalid).
        TorsionedR,
        /// Mixed-order key and R, valid under the rule.
        MixedValid,
        /// s + ℓ: non-canonical s.
        NonCanonicalS,
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            12 => Just(Kind::Honest),
            1 => any::<u16>().prop_map(Kind::FlipSig),
            1 => any::<u16>().prop_map(Kind::FlipMsg),
            1 => any::<u16>().prop_map(Kind::FlipKey),
            1 => Just(Kind::TorsionedKey),
            1 => Just(Kind::TorsionedR),
            1 => Just(Kind::MixedValid),
            1 => Just(Kind::NonCanonicalS),
        ]
    }

    fn make_item(n: u64, key_no: u64, kind: Kind) -> (PublicKey, Vec<u8>, Signature) {
        let mut msg = format!("item {n}").into_bytes();
        let kp = Keypair::from_seed(&seed(key_no));
        match kind {
            Kind::Honest => {
                let sig = kp.sign(&msg);
                (kp.public_key(), msg, sig)
            }
            Kind::FlipSig(bit) => {
                let mut sig = kp.sign(&msg);
                sig.0[usize::from(bit % 512) / 8] ^= 1 << (bit % 8);
                (kp.public_key(), msg, sig)
            }
            Kind::FlipMsg(bit) => {
                let sig = kp.sign(&msg);
                let len = msg.len();
                msg[usize::from(bit) / 8 % len] ^= 1 << (bit % 8);
                (kp.public_key(), msg, sig)
            }
            Kind::FlipKey(bit) => {
                let sig = kp.sign(&msg);
                let mut key = kp.public_key();
                key.0[usize::from(bit % 256) / 8] ^= 1 << (bit % 8);
                (key, msg, sig)
            }
            Kind::TorsionedKey => {
                let (key, sig, _) = torsioned_key_sig(n, &msg);
                (key, msg, sig)
            }
            Kind::TorsionedR => {
                let (key, sig) = torsioned_r_sig(n, &msg);
                (key, msg, sig)
            }
            Kind::MixedValid => {
                let (key, sig) = mixed_order_valid_sig(n, &msg);
                (key, msg, sig)
            }
            Kind::NonCanonicalS => {
                let mut sig = kp.sign(&msg);
                let mut s = [0u8; 32];
                s.copy_from_slice(&sig.0[32..]);
                // s + ℓ as a 256-bit little-endian integer (fits: s < ℓ < 2^253).
                let l = (-Scalar::ONE).to_bytes();
                let mut carry = 1u16; // ℓ = (ℓ − 1) + 1
                for i in 0..32 {
                    let v = u16::from(s[i]) + u16::from(l[i]) + carry;
                    s[i] = v as u8;
                    carry = v >> 8;
                }
                sig.0[32..].copy_from_slice(&s);
                (kp.public_key(), msg, sig)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn batch_verdict_equals_single_verdict(
            spec in proptest::collection::vec((0u64..4, kind()), 0..48),
            chunk in 1usize..20,
        ) {
            let items: Vec<_> = spec
                .iter()
                .enumerate()
                .map(|(i, (key_no, kind))| make_item(i as u64, *key_no, *kind))
                .collect();
            let c = checks(&items);
            let single = verify_all(&c, VerifyMode::Single);
            // Single mode is the rule applied in order.
            let expected = c
                .iter()
                .enumerate()
                .find_map(|(i, it)| verify(it.key, it.msg, it.sig).err().map(|e| (i, e)));
            prop_assert_eq!(single, expected.map_or(Ok(()), Err));
            prop_assert_eq!(verify_all(&c, VerifyMode::Batch), single);
            prop_assert_eq!(verify_all_batched(&c, chunk), single);
        }
    }

    /// `cargo test --release -p tabcoin-core --lib sig -- --ignored --nocapture`
    #[test]
    #[ignore = "timing measurement, run by hand"]
    fn measure_single_vs_batch() {
        extern crate std;
        use std::println;
        use std::time::Instant;

        let items: Vec<_> = (0..256u64)
            .map(|i| {
                let kp = Keypair::from_seed(&seed(i % 16));
                let msg = format!("transaction input {i} of a block").into_bytes();
                let sig = kp.sign(&msg);
                (kp.public_key(), msg, sig)
            })
            .collect();
        let c = checks(&items);
        let time = |f: &dyn Fn() -> Result<(), (usize, SigError)>| {
            let rounds = 20;
            let mut best = f64::MAX;
            for _ in 0..rounds {
                let start = Instant::now();
                assert_eq!(f(), Ok(()));
                best = best.min(start.elapsed().as_secs_f64());
            }
            best
        };
        let single = time(&|| verify_all(&c, VerifyMode::Single));
        let batch = time(&|| verify_all(&c, VerifyMode::Batch));
        println!(
            "256 signatures, 16 keys: single {:.2} ms, batch {:.2} ms, batch/single = {:.3}",
            single * 1e3,
            batch * 1e3,
            batch / single
        );
        for chunk in [16, 32, 64, 128, 256] {
            let t = time(&|| verify_all_batched(&c, chunk));
            println!(
                "  chunk {chunk:>3}: {:.2} ms, ratio {:.3}",
                t * 1e3,
                t / single
            );
        }
        // Where the time goes.
        let pre = time(&|| {
            for it in &c {
                assert!(signature_batchable(it.sig));
            }
            Ok(())
        });
        let msgs: Vec<&[u8]> = c.iter().map(|it| it.msg).collect();
        let sigs: Vec<_> = c
            .iter()
            .map(|it| ed25519_dalek::Signature::from_bytes(&it.sig.0))
            .collect();
        let vks: Vec<_> = c
            .iter()
            .map(|it| VerifyingKey::from_bytes(&it.key.0).unwrap())
            .collect();
        let plain = time(&|| {
            for ((m, s), v) in msgs.chunks(128).zip(sigs.chunks(128)).zip(vks.chunks(128)) {
                ed25519_dalek::verify_batch(m, s, v).map_err(|_| (0, SigError::Invalid))?;
            }
            Ok(())
        });
        let points: Vec<EdwardsPoint> = c
            .iter()
            .map(|it| {
                let mut r = [0u8; 32];
                r.copy_from_slice(&it.sig.0[..32]);
                CompressedEdwardsY(r).decompress().unwrap()
            })
            .collect();
        let torsion = |name: &str, f: &dyn Fn(&EdwardsPoint) -> bool| {
            let t = time(&|| {
                assert!(points.iter().all(f));
                Ok(())
            });
            println!("  torsion test {name}: {:.3} of single", t / single);
        };
        torsion("double-base [l-1]P + P (used)", &is_torsion_free_vartime);
        torsion("multiscalar [l-1]P + P", &|p| {
            use curve25519_dalek::traits::VartimeMultiscalarMul;
            (EdwardsPoint::vartime_multiscalar_mul([-Scalar::ONE], [*p]) + p).is_identity()
        });
        torsion("EdwardsPoint::is_torsion_free", &|p| p.is_torsion_free());
        println!(
            "  R prechecks alone: {:.2} ms ({:.3} of single); plain verify_batch alone (chunks of 128): {:.2} ms ({:.3})",
            pre * 1e3,
            pre / single,
            plain * 1e3,
            plain / single
        );
    }
}
