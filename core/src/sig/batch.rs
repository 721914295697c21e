//! Batch verification of many signatures.
//!
//! ## Batch verification: an accelerator that cannot change a verdict
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
//! ## Cost: batch mode is not faster
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

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::VerifyingKey;

use super::{PublicKey, SigCheck, SigError, Signature, decode_key, verify_decoded};

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

pub(super) fn verify_all_batched(
    items: &[SigCheck<'_>],
    chunk_len: usize,
) -> Result<(), (usize, SigError)> {
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

#[cfg(test)]
mod tests {
    use super::super::testvec::*;
    use super::super::{Keypair, VerifyMode, verify, verify_all};
    use super::*;
    use alloc::format;
    use alloc::vec;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use proptest::prelude::*;

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
