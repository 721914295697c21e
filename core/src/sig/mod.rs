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
//!
//! # Checking many signatures
//!
//! [`verify_all`] checks a list in order and reports the first failure; its batch mode
//! ([`batch`]) is an accelerator that cannot change a verdict. [`job`] packs the checks of
//! a block into a [`VerifyJob`] whose chunks hosts may verify on other threads or Web
//! Workers, with the same verdict and the same first failing index.

mod batch;
pub mod job;
#[cfg(test)]
pub(crate) mod testvec;

pub use job::{ChunkResult, VerifyChunk, VerifyJob};

use core::fmt;

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

pub(crate) fn decode_key(key: &PublicKey) -> Result<VerifyingKey, SigError> {
    VerifyingKey::from_bytes(&key.0).map_err(|_| SigError::InvalidKey)
}

/// The rule after its first step: `vk` must be `VerifyingKey::from_bytes` of the key bytes.
pub(crate) fn verify_decoded(
    vk: &VerifyingKey,
    msg: &[u8],
    sig: &Signature,
) -> Result<(), SigError> {
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
        VerifyMode::Batch => batch::verify_all_batched(items, BATCH_CHUNK),
    }
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
    use super::testvec::*;
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use curve25519_dalek::edwards::CompressedEdwardsY;

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
}
