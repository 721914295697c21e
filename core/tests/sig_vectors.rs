//! The ed25519-speccheck edge cases (see `tests/data/ed25519-speccheck/README.md`) against
//! Tabcoin's signature rule, in single and batch mode. The expected verdicts are the table
//! below, which must match `tests/data/ed25519-speccheck/verdicts.txt` (read by the wasm test
//! too, so native and wasm are held to the same verdicts).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use sha2::{Digest, Sha512};
use tabcoin_core::sig::{
    Keypair, PublicKey, SigCheck, SigError, Signature, VerifyMode, verify, verify_all,
};

const CASES_JSON: &str = include_str!("data/ed25519-speccheck/cases.json");
const VERDICTS_TXT: &str = include_str!("data/ed25519-speccheck/verdicts.txt");

/// What each case exercises, checked below against the points themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Order dividing 8.
    Small,
    /// Prime-order part plus a non-zero torsion part.
    Mixed,
    /// In the prime-order subgroup, not the identity.
    Prime,
}

/// Which verification equation holds, with `k` hashed over the bytes as sent and `s` taken
/// mod l: cofactorless `[s]B = R + [k]A`, cofactored `[8][s]B = [8]R + [8][k]A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Both equations.
    Both,
    /// Only the cofactored one.
    CofactoredOnly,
    /// Neither, but both do when `k` is hashed over the canonical re-encoding of `R`.
    WithCanonicalRHash,
}

struct Expected {
    accept: bool,
    a: Order,
    r: Order,
    r_canonical: bool,
    s_canonical: bool,
    holds: Holds,
    comment: &'static str,
}

const fn case(
    accept: bool,
    (a, r): (Order, Order),
    (r_canonical, s_canonical): (bool, bool),
    holds: Holds,
    comment: &'static str,
) -> Expected {
    Expected {
        accept,
        a,
        r,
        r_canonical,
        s_canonical,
        holds,
        comment,
    }
}

use Holds::{Both, CofactoredOnly, WithCanonicalRHash};
use Order::{Mixed, Prime, Small};

/// The verdict of `VerifyingKey::from_bytes` + `verify_strict` on each case, and why.
const EXPECTED: [Expected; 10] = [
    // 0: s = 0 with A and R of small order: every equation holds, verify_strict rejects
    //    small-order A and R.
    case(
        false,
        (Small, Small),
        (true, true),
        Both,
        "s = 0, small-order A and small-order R; both equations hold; rejected because A and R have small order",
    ),
    // 1: small-order A (a "weak key"): the signature verifies under both equations, but
    //    verify_strict rejects small-order A.
    case(
        false,
        (Small, Mixed),
        (true, true),
        Both,
        "small-order A, mixed-order R, 0 < s < l; both equations hold; rejected because A has small order",
    ),
    // 2: small-order R.
    case(
        false,
        (Mixed, Small),
        (true, true),
        Both,
        "mixed-order A, small-order R, 0 < s < l; both equations hold; rejected because R has small order",
    ),
    // 3: the one valid case. Mixed-order A and R whose torsion parts cancel exactly in the
    //    cofactorless equation: verify_strict accepts (it does not require torsion-free
    //    points). Plain ed25519_dalek::verify_batch rejects it: batch mode must fall back.
    case(
        true,
        (Mixed, Mixed),
        (true, true),
        Both,
        "mixed-order A and mixed-order R, 0 < s < l; cofactorless equation holds exactly, so the rule accepts (plain verify_batch rejects it)",
    ),
    // 4: cofactored-only: [8]([s]B - R - [k]A) = 0 but not without the 8.
    case(
        false,
        (Mixed, Mixed),
        (true, true),
        CofactoredOnly,
        "mixed-order A and mixed-order R; only the cofactored equation holds",
    ),
    // 5: cofactored-only with a prime-order R: the torsion of [k]A is left over.
    case(
        false,
        (Mixed, Prime),
        (true, true),
        CofactoredOnly,
        "mixed-order A, prime-order R; only the cofactored equation holds",
    ),
    // 6: s + l (malleated signature), caught by the canonical-s check.
    case(
        false,
        (Prime, Prime),
        (true, false),
        Both,
        "non-canonical s: l <= s < 2^253 (s mod l would verify); prime-order A and R",
    ),
    // 7: s with bit 253 set: fails even the old "top three bits clear" check.
    case(
        false,
        (Prime, Prime),
        (true, false),
        Both,
        "non-canonical s: s >= 2^253 (s mod l would verify); prime-order A and R",
    ),
    // 8: R = edff..ff7f encodes y = p, i.e. y = 0 (a point of order 4) non-canonically.
    //    The equation holds if the hash is taken over the canonical re-encoding of R.
    case(
        false,
        (Mixed, Small),
        (false, true),
        WithCanonicalRHash,
        "non-canonical R encoding (y = p, a small-order point), mixed-order A; the equation holds only with the hash over the canonical R bytes",
    ),
    // 9: the same R; the equation holds with the hash over the bytes as sent.
    case(
        false,
        (Mixed, Small),
        (false, true),
        Both,
        "non-canonical R encoding (y = p, a small-order point), mixed-order A; the equation holds with the hash over the R bytes as sent",
    ),
];

struct Case {
    msg: Vec<u8>,
    key: PublicKey,
    sig: Signature,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit"))
        .collect()
}

/// The string value of `"name": "..."` in one JSON object's text (no escapes in this file).
fn field<'a>(object: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\"");
    let at = object.find(&key).unwrap_or_else(|| panic!("no {name}")) + key.len();
    let rest = object[at..].trim_start();
    let rest = rest.strip_prefix(':').expect("colon").trim_start();
    let rest = rest.strip_prefix('"').expect("string value");
    &rest[..rest.find('"').expect("closing quote")]
}

fn load_cases() -> Vec<Case> {
    let text = CASES_JSON.trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .expect("a JSON array");
    inner
        .split('}')
        .map(str::trim)
        .map(|o| o.trim_start_matches(',').trim())
        .filter(|o| !o.is_empty())
        .map(|o| {
            let o = o.strip_prefix('{').expect("an object");
            Case {
                msg: hex(field(o, "message")),
                key: PublicKey(hex(field(o, "pub_key")).try_into().expect("32-byte key")),
                sig: Signature(hex(field(o, "signature")).try_into().expect("64-byte sig")),
            }
        })
        .collect()
}

fn order(bytes: &[u8]) -> Order {
    let point = CompressedEdwardsY(bytes.try_into().expect("32 bytes"))
        .decompress()
        .expect("every point in these cases decompresses");
    if point.is_small_order() {
        Small
    } else if point.is_torsion_free() {
        Prime
    } else {
        Mixed
    }
}

/// (cofactorless, cofactored) for `s mod l` and `k = H(r_hashed ‖ A ‖ M) mod l`.
fn equations(c: &Case, r_hashed: &[u8; 32]) -> (bool, bool) {
    let a = CompressedEdwardsY(c.key.0)
        .decompress()
        .expect("A decompresses");
    let r: [u8; 32] = c.sig.0[..32].try_into().expect("32 bytes");
    let r = CompressedEdwardsY(r).decompress().expect("R decompresses");
    let s = Scalar::from_bytes_mod_order(c.sig.0[32..].try_into().expect("32 bytes"));
    let mut h = Sha512::new();
    h.update(r_hashed);
    h.update(c.key.0);
    h.update(&c.msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let d: EdwardsPoint = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s) - r;
    (d.is_identity(), d.mul_by_cofactor().is_identity())
}

fn expected_result(e: &Expected) -> Result<(), SigError> {
    // Every key in these cases is a curve point, so rejections are `Invalid`.
    if e.accept {
        Ok(())
    } else {
        Err(SigError::Invalid)
    }
}

#[test]
fn verdicts_file_matches_table() {
    let table: String = EXPECTED
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let verdict = if e.accept { "accept" } else { "reject" };
            format!("{i} {verdict} {}\n", e.comment)
        })
        .collect();
    assert_eq!(VERDICTS_TXT, table);
}

#[test]
fn cases_are_the_edges_the_table_says() {
    let cases = load_cases();
    assert_eq!(cases.len(), EXPECTED.len());
    for (i, (c, e)) in cases.iter().zip(&EXPECTED).enumerate() {
        assert_eq!(order(&c.key.0), e.a, "case {i}: A");
        assert_eq!(order(&c.sig.0[..32]), e.r, "case {i}: R");
        let r: [u8; 32] = c.sig.0[..32].try_into().unwrap();
        let r_canonical = CompressedEdwardsY(r).decompress().unwrap().compress().0 == r;
        assert_eq!(r_canonical, e.r_canonical, "case {i}: R canonical");
        let s: [u8; 32] = c.sig.0[32..].try_into().unwrap();
        let s_canonical = bool::from(Scalar::from_canonical_bytes(s).is_some());
        assert_eq!(s_canonical, e.s_canonical, "case {i}: s canonical");
        let canonical_r = CompressedEdwardsY(r).decompress().unwrap().compress().0;
        let (raw, canonical) = (equations(c, &r), equations(c, &canonical_r));
        let holds = match (raw, canonical) {
            ((true, true), _) => Both,
            ((false, true), _) => CofactoredOnly,
            ((false, false), (true, true)) => WithCanonicalRHash,
            other => panic!("case {i}: unexpected equations {other:?}"),
        };
        assert_eq!(holds, e.holds, "case {i}: equations");
    }
}

#[test]
fn single_verdicts() {
    let cases = load_cases();
    assert_eq!(cases.len(), EXPECTED.len());
    for (i, (c, e)) in cases.iter().zip(&EXPECTED).enumerate() {
        assert_eq!(
            verify(&c.key, &c.msg, &c.sig),
            expected_result(e),
            "case {i}: {}",
            e.comment
        );
    }
}

#[test]
fn batch_verdicts_equal_single_verdicts() {
    let cases = load_cases();
    let honest = Keypair::from_seed(&[42; 32]);
    let honest_key = honest.public_key();
    let honest_msg = b"an honest input".to_vec();
    let honest_sig = honest.sign(&honest_msg);
    let honest_check = SigCheck {
        key: &honest_key,
        msg: &honest_msg,
        sig: &honest_sig,
    };
    for mode in [VerifyMode::Single, VerifyMode::Batch] {
        for (i, (c, e)) in cases.iter().zip(&EXPECTED).enumerate() {
            let check = SigCheck {
                key: &c.key,
                msg: &c.msg,
                sig: &c.sig,
            };
            let expected = expected_result(e);
            assert_eq!(
                verify_all(&[check], mode),
                expected.map_err(|err| (0, err)),
                "{mode:?} case {i}"
            );
            // Among honest signatures by other keys: the index of the case is reported.
            let mixed = [honest_check, honest_check, check, honest_check];
            assert_eq!(
                verify_all(&mixed, mode),
                expected.map_err(|err| (2, err)),
                "{mode:?} case {i} among honest items"
            );
        }
        // All cases in one call: the first rejected case is reported.
        let all: Vec<SigCheck<'_>> = cases
            .iter()
            .map(|c| SigCheck {
                key: &c.key,
                msg: &c.msg,
                sig: &c.sig,
            })
            .collect();
        let first_reject = EXPECTED.iter().position(|e| !e.accept).unwrap();
        assert_eq!(
            verify_all(&all, mode),
            Err((first_reject, SigError::Invalid))
        );
        // Only the accepted cases, repeated, together with honest items.
        let mut accepted: Vec<SigCheck<'_>> = Vec::new();
        for _ in 0..3 {
            accepted.push(honest_check);
            accepted.extend(
                all.iter()
                    .zip(&EXPECTED)
                    .filter(|(_, e)| e.accept)
                    .map(|(c, _)| *c),
            );
        }
        assert_eq!(verify_all(&accepted, mode), Ok(()), "{mode:?}");
    }
}

/// Why batch mode cannot just call `ed25519_dalek::verify_batch`: it disagrees with the rule
/// in both directions on these cases (its coefficients are derived from the inputs, so this
/// is deterministic).
#[test]
fn plain_verify_batch_disagrees_with_the_rule() {
    let cases = load_cases();
    let plain: Vec<bool> = cases
        .iter()
        .map(|c| {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&c.key.0).unwrap();
            let sig = ed25519_dalek::Signature::from_bytes(&c.sig.0);
            ed25519_dalek::verify_batch(&[&c.msg], &[sig], &[vk]).is_ok()
        })
        .collect();
    // Case 3 is valid under the rule, but its torsion components survive the random
    // combination.
    assert!(EXPECTED[3].accept);
    assert!(!plain[3]);
}

/// Keys whose x coordinate is 0 with the sign bit set ("−0"): y = 1 (the identity) and
/// y = −1 (the point of order 2). ed25519-dalek's decompression accepts them (negating x = 0
/// changes nothing; RFC 8032 §5.1.3 would reject them), so they are keys, not `InvalidKey`;
/// but both points have small order, so `verify_strict` rejects every signature: an output
/// locked to them can never be spent. CONSENSUS.md §8.1 states this.
#[test]
fn x_zero_with_the_sign_bit_set_decodes_but_never_verifies() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    identity[31] = 0x80;
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec; // p − 1 = 2^255 − 20, little-endian, sign bit set
    for bytes in [identity, minus_one] {
        let point = CompressedEdwardsY(bytes)
            .decompress()
            .expect("decompresses");
        assert!(point.is_small_order());
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_ok());
        let key = PublicKey(bytes);
        // The signature a key holder would make: for the identity, s = r and R = [r]B verify
        // the cofactorless equation; verify_strict must still reject it.
        let r = Scalar::from(7u64);
        let big_r = EdwardsPoint::mul_base(&r).compress();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice(r.as_bytes());
        for s in [Signature(sig), Signature([0; 64])] {
            assert_eq!(verify(&key, &[5; 32], &s), Err(SigError::Invalid));
        }
    }
}
