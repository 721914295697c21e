//! Test vectors shared by the signature tests: honest, torsioned and malformed items.

use alloc::format;
use alloc::vec::Vec;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use proptest::prelude::*;
use sha2::{Digest, Sha512};

use super::{Keypair, PublicKey, SigCheck, Signature};

pub(crate) fn seed(n: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&n.to_le_bytes());
    s[8] = 0xa5;
    s
}

pub(crate) fn scalar_from(label: &[u8], n: u64) -> Scalar {
    let mut h = Sha512::new();
    h.update(label);
    h.update(n.to_le_bytes());
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// k = SHA-512(R ‖ A ‖ M) mod ℓ, as the rule computes it.
pub(crate) fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(msg);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

pub(crate) fn sig_from(r: &EdwardsPoint, s: &Scalar) -> Signature {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&r.compress().0);
    out[32..].copy_from_slice(s.as_bytes());
    Signature(out)
}

/// Key `A' = aB + T` with `T` of order 8 and `s = r + k·a`: the cofactored equation holds,
/// the cofactorless one only when `k·T = 0`. Returns the key, the signature and whether
/// the cofactorless equation holds.
pub(crate) fn torsioned_key_sig(n: u64, msg: &[u8]) -> (PublicKey, Signature, bool) {
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
pub(crate) fn torsioned_r_sig(n: u64, msg: &[u8]) -> (PublicKey, Signature) {
    let a = scalar_from(b"a", n);
    let key = EdwardsPoint::mul_base(&a).compress().0;
    let r = scalar_from(b"r", n);
    let big_r = EdwardsPoint::mul_base(&r) + EIGHT_TORSION[3];
    let k = challenge(&big_r.compress().0, &key, msg);
    (PublicKey(key), sig_from(&big_r, &(r + k * a)))
}

/// A signature the rule ACCEPTS although both `A` and `R` have torsion (like speccheck
/// case 3): `A' = aB + T`, `R = rB + T_R` with `T_R = −k·T`, found by trying `r` and `T_R`.
pub(crate) fn mixed_order_valid_sig(n: u64, msg: &[u8]) -> (PublicKey, Signature) {
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

pub(crate) fn checks<'a>(items: &'a [(PublicKey, Vec<u8>, Signature)]) -> Vec<SigCheck<'a>> {
    items
        .iter()
        .map(|(key, msg, sig)| SigCheck { key, msg, sig })
        .collect()
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
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

pub(crate) fn kind() -> impl Strategy<Value = Kind> {
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

pub(crate) fn make_item(n: u64, key_no: u64, kind: Kind) -> (PublicKey, Vec<u8>, Signature) {
    let mut msg = format!("item {n:<27}").into_bytes();
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
