//! Proof of work: the per-block ASERT difficulty rule (the "aserti3-2d" formula) and the check
//! that a block hash meets its target.
//!
//! ASERT sets the target of each block from a fixed *anchor* block: the target doubles for every
//! half-life the chain falls behind the ideal schedule and halves for every half-life it runs
//! ahead. The exponential is approximated by a cubic polynomial in 16.16 fixed point, so every
//! node computes the same target with integer arithmetic only.

use core::fmt;

use crate::primitives::BlockHash;
use crate::units::{CompactTarget, Target, TargetError, U256};

/// Parameters of the difficulty rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsertParams {
    /// Ideal time between blocks, in seconds.
    pub target_block_time: i64,
    /// Time, in seconds, for the target to double (or halve) when the chain is that far
    /// behind (or ahead of) schedule. Values below 1 are treated as 1.
    pub half_life: i64,
    /// The easiest target allowed.
    pub pow_limit: Target,
}

/// The block all targets are computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsertAnchor {
    /// Height of the anchor block.
    pub height: u64,
    /// Timestamp of the anchor block's *parent*.
    pub parent_time: i64,
    /// The anchor block's own bits.
    pub bits: CompactTarget,
}

/// Fixed-point scale of the exponent: 16 fractional bits.
const RADIX_BITS: u32 = 16;
const RADIX: i128 = 1 << RADIX_BITS;

/// The bits required of the block built on a tip at `current_height` with timestamp
/// `current_time` (the tip is the new block's parent).
///
/// With `time_delta = current_time - anchor.parent_time` and
/// `height_delta = current_height - anchor.height`:
///
/// ```text
/// exponent   = trunc((time_delta - target_block_time * (height_delta + 1)) * 2^16 / half_life)
/// num_shifts = floor(exponent / 2^16);  frac = exponent - num_shifts * 2^16   (0 <= frac < 2^16)
/// factor     = ((195766423245049*frac + 971821376*frac^2 + 5127*frac^3 + 2^47) >> 48) + 2^16
/// target     = floor(anchor_target * factor * 2^num_shifts / 2^16)
/// ```
///
/// `trunc` rounds toward zero (as C's `/`; the published vectors require it), `floor` toward
/// negative infinity (an arithmetic shift `exponent >> 16`). A zero result becomes 1; a result
/// above `pow_limit` becomes `pow_limit`. The answer is the normalised compact form of that
/// target. All arithmetic is exact (i128 for the exponent, saturating far outside any reachable
/// range, and a 320-bit product for the target), so this never panics. If the anchor's bits do
/// not decode to a target, the answer is `pow_limit`'s compact form.
pub fn next_target(
    params: &AsertParams,
    anchor: &AsertAnchor,
    current_height: u64,
    current_time: i64,
) -> CompactTarget {
    let limit = params.pow_limit;
    let Ok(anchor_target) = anchor.bits.to_target() else {
        return limit.to_compact();
    };

    let time_delta = i128::from(current_time) - i128::from(anchor.parent_time);
    let height_delta = i128::from(current_height) - i128::from(anchor.height);
    let half_life = i128::from(params.half_life.max(1));
    // |time_delta| < 2^65, but block_time * (height_delta + 1) can reach 2^128: saturate. Any
    // saturated value is so far beyond 256 doublings that the result is the limit or 1 anyway.
    let schedule = i128::from(params.target_block_time).saturating_mul(height_delta + 1);
    let exponent = time_delta
        .saturating_sub(schedule)
        .saturating_mul(RADIX)
        // Division truncating toward zero (C semantics), NOT floor division: the published
        // vectors require it (floor division misses most rows of runs 5-9, 11 and 12).
        / half_life;

    let num_shifts = exponent.div_euclid(RADIX);
    let frac = exponent.rem_euclid(RADIX);
    let frac = u128::try_from(frac).expect("rem_euclid by a positive divisor is non-negative");
    // The terms reach about 2^64 together: u128.
    let poly = 195_766_423_245_049u128 * frac
        + 971_821_376u128 * frac * frac
        + 5_127u128 * frac * frac * frac
        + (1u128 << 47);
    let factor = u64::try_from((poly >> 48) + (1u128 << RADIX_BITS))
        .expect("the factor lies in [2^16, 2^17)");

    // anchor_target * factor needs up to 273 bits: keep the limb above the low 256 bits.
    let (low, high) = anchor_target.as_u256().mul_u64_wide(factor);
    // Shifting left by num_shifts and then right by 16 is one shift by num_shifts - 16 (both
    // floor the same way on the unbounded product).
    let net_shift = num_shifts.saturating_sub(i128::from(RADIX_BITS));

    let next = if net_shift >= 0 {
        let shifted = if high != 0 {
            None
        } else {
            u32::try_from(net_shift)
                .ok()
                .and_then(|s| low.checked_shl(s))
        };
        match shifted {
            Some(v) => v,
            // At least 2^256: above any limit.
            None => return limit.to_compact(),
        }
    } else {
        match shr_320(low, high, net_shift.unsigned_abs()) {
            Some(v) => v,
            None => return limit.to_compact(),
        }
    };

    let next = if next.is_zero() { U256::ONE } else { next };
    if next > limit.as_u256() {
        return limit.to_compact();
    }
    Target::from_u256(next)
        .expect("zero was replaced by one")
        .to_compact()
}

/// `(high * 2^256 + low) >> n`, or `None` if that needs more than 256 bits.
fn shr_320(low: U256, high: u64, n: u128) -> Option<U256> {
    if n >= 320 {
        return Some(U256::ZERO);
    }
    let n = u32::try_from(n).expect("n < 320");
    if n >= 256 {
        return Some(U256::from_u64(high >> (n - 256)));
    }
    if n < 64 && high >> n != 0 {
        return None;
    }
    if n == 0 {
        return Some(low);
    }
    // high < 2^n here, so high << (256 - n) keeps every bit and lies above low >> n.
    let from_high = U256::from_u64(high).shl_bits(256 - n);
    Some(
        low.shr_bits(n)
            .checked_add(from_high)
            .expect("the two parts occupy disjoint bits"),
    )
}

/// Why a block's proof of work is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PowError {
    /// The header's bits do not decode to a target.
    InvalidBits(TargetError),
    /// The header's target is easier than the network's limit.
    AboveLimit,
    /// The block hash does not meet the header's target.
    HashAboveTarget,
}

impl fmt::Display for PowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowError::InvalidBits(e) => write!(f, "invalid bits: {e}"),
            PowError::AboveLimit => f.write_str("target above the proof-of-work limit"),
            PowError::HashAboveTarget => f.write_str("hash does not meet the target"),
        }
    }
}

impl core::error::Error for PowError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            PowError::InvalidBits(e) => Some(e),
            _ => None,
        }
    }
}

/// Checks that `bits` decodes to a target no easier than `pow_limit` and that `hash` (read as
/// a big-endian integer) meets it. Whether `bits` is the value the difficulty rule requires is
/// a separate check ([`next_target`]).
pub fn check_proof_of_work(
    hash: &BlockHash,
    bits: CompactTarget,
    pow_limit: &Target,
) -> Result<(), PowError> {
    let target = bits.to_target().map_err(PowError::InvalidBits)?;
    if target > *pow_limit {
        return Err(PowError::AboveLimit);
    }
    if !target.is_met_by(hash.as_hash()) {
        return Err(PowError::HashAboveTarget);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    const LIMIT_BITS: CompactTarget = CompactTarget(0x1d00ffff);

    fn limit() -> Target {
        LIMIT_BITS.to_target().unwrap()
    }

    /// The published vectors' parameters.
    fn bch_params() -> AsertParams {
        AsertParams {
            target_block_time: 600,
            half_life: 172_800,
            pow_limit: limit(),
        }
    }

    fn anchor(bits: u32) -> AsertAnchor {
        AsertAnchor {
            height: 1,
            parent_time: 0,
            bits: CompactTarget(bits),
        }
    }

    #[test]
    fn on_schedule_keeps_the_anchor_target() {
        let p = bch_params();
        for bits in [0x1d00ffff, 0x1a2b3c4d, 0x0101_0000, 0x1802aee8] {
            let a = anchor(bits);
            for h in 1..50u64 {
                // The tip at height h is on schedule when its time is 600 * (h - 1 + 1).
                let t = 600 * i64::try_from(h).unwrap();
                assert_eq!(next_target(&p, &a, h, t), CompactTarget(bits), "h={h}");
            }
        }
    }

    #[test]
    fn one_half_life_late_doubles_and_early_halves() {
        let p = bch_params();
        let a = anchor(0x1a2b3c4d);
        let base = a.bits.to_target().unwrap().as_u256();
        let compact = |v: U256| Target::from_u256(v).unwrap().to_compact();
        assert_eq!(next_target(&p, &a, 1, 600 + 172_800), compact(base << 1));
        assert_eq!(
            next_target(&p, &a, 1, 600 + 2 * 172_800),
            compact(base << 2)
        );
        // Halving 0x2b3c4d leaves an odd mantissa bit that the compact form drops.
        assert_eq!(next_target(&p, &a, 1, 600 - 172_800), compact(base >> 1));
        assert_eq!(
            next_target(&p, &a, 1, 600 - 172_800),
            CompactTarget(0x1a159e26)
        );
        // 288 more blocks with no time passing: 288 * 600 s = one half-life early.
        assert_eq!(next_target(&p, &a, 1 + 288, 600), compact(base >> 1));
    }

    #[test]
    fn exponent_division_truncates_toward_zero() {
        let p = bch_params();
        let a = anchor(0x1a2b3c4d);
        // Two seconds early: -131072 / 172800 = -0.76 truncates to 0 (floor would give -1,
        // a factor just under 1 that lowers the target).
        assert_eq!(next_target(&p, &a, 1, 598), a.bits);
        // Three seconds early: -196608 / 172800 = -1.14 truncates to -1: the target drops.
        let t = next_target(&p, &a, 1, 597).to_target().unwrap();
        assert!(t < a.bits.to_target().unwrap());
        // Late by the same amounts: +0.76 → 0 and +1.14 → 1.
        assert_eq!(next_target(&p, &a, 1, 602), a.bits);
        assert!(next_target(&p, &a, 1, 603).to_target().unwrap() > a.bits.to_target().unwrap());
    }

    #[test]
    fn clamps_to_limit_and_to_one() {
        let p = bch_params();
        let a = anchor(0x1d00ffff);
        assert_eq!(next_target(&p, &a, 1, 1_000_000_000), LIMIT_BITS);
        assert_eq!(next_target(&p, &a, 1, i64::MAX), LIMIT_BITS);
        let hardest = CompactTarget(0x0101_0000);
        assert_eq!(next_target(&p, &a, 1, -1_000_000_000), hardest);
        assert_eq!(next_target(&p, &a, 1, i64::MIN), hardest);
        assert_eq!(next_target(&p, &a, u64::MAX, 0), hardest);
        // Anchor bits that are not a target fall back to the limit.
        assert_eq!(next_target(&p, &anchor(0), 5, 0), LIMIT_BITS);
        assert_eq!(next_target(&p, &anchor(0x0480_0001), 5, 0), LIMIT_BITS);
    }

    #[test]
    fn huge_anchor_and_limit_do_not_overflow() {
        // An anchor at the largest 256-bit target with no limit: the product by the factor
        // needs more than 256 bits.
        let p = AsertParams {
            target_block_time: 600,
            half_life: 172_800,
            pow_limit: Target::MAX,
        };
        let a = AsertAnchor {
            height: 0,
            parent_time: 0,
            bits: Target::MAX.to_compact(),
        };
        let max = Target::MAX.to_compact();
        assert_eq!(next_target(&p, &a, 0, 600), max);
        assert_eq!(next_target(&p, &a, 0, 600 + 86_400), max);
        // Half a half-life early: the anchor (0xffff << 240) times ~2^-0.5.
        let t = next_target(&p, &a, 0, 600 - 86_400).to_target().unwrap();
        let expected = (U256::from_u64(0xffff) << 240).to_f64_approx() / 2f64.sqrt();
        assert!((t.as_u256().to_f64_approx() / expected - 1.0).abs() < 1e-4);
    }

    #[test]
    fn degenerate_params_do_not_panic() {
        for (block_time, half_life) in [
            (0, 0),
            (-600, -1),
            (i64::MAX, 1),
            (i64::MIN, 1),
            (1, i64::MAX),
            (i64::MAX, i64::MAX),
        ] {
            let p = AsertParams {
                target_block_time: block_time,
                half_life,
                pow_limit: limit(),
            };
            for (h, t) in [(0, 0), (u64::MAX, i64::MAX), (u64::MAX, i64::MIN), (3, -5)] {
                let a = AsertAnchor {
                    height: u64::MAX - h,
                    parent_time: t / -2,
                    bits: CompactTarget(0x1802aee8),
                };
                let bits = next_target(&p, &a, h, t);
                let target = bits.to_target().unwrap();
                assert!(target <= limit());
            }
        }
    }

    #[test]
    fn pow_check() {
        let limit = limit();
        let mut easy_hash = [0u8; 32];
        easy_hash[5] = 1;
        assert_eq!(
            check_proof_of_work(&BlockHash::from_bytes(easy_hash), LIMIT_BITS, &limit),
            Ok(())
        );
        assert_eq!(
            check_proof_of_work(&BlockHash::from_bytes([0xff; 32]), LIMIT_BITS, &limit),
            Err(PowError::HashAboveTarget)
        );
        assert_eq!(
            check_proof_of_work(&BlockHash::ZERO, CompactTarget(0x1d01_0000), &limit),
            Err(PowError::AboveLimit)
        );
        assert_eq!(
            check_proof_of_work(&BlockHash::ZERO, CompactTarget(0x1d80_ffff), &limit),
            Err(PowError::InvalidBits(TargetError::Negative))
        );
        assert_eq!(
            check_proof_of_work(&BlockHash::ZERO, CompactTarget(0), &limit),
            Err(PowError::InvalidBits(TargetError::Zero))
        );
        assert_eq!(
            check_proof_of_work(&BlockHash::ZERO, CompactTarget(0xff00_ffff), &limit),
            Err(PowError::InvalidBits(TargetError::Overflow))
        );
        assert_eq!(
            PowError::InvalidBits(TargetError::Zero).to_string(),
            "invalid bits: zero target"
        );
    }

    #[test]
    fn shr_320_matches_parts() {
        let low = U256::MAX;
        assert_eq!(shr_320(low, 0, 0), Some(low));
        assert_eq!(shr_320(low, 1, 0), None);
        assert_eq!(shr_320(low, 1, 1), Some(U256::MAX));
        assert_eq!(shr_320(low, 2, 1), None);
        assert_eq!(shr_320(U256::ZERO, 1, 1), Some(U256::ONE << 255));
        assert_eq!(shr_320(U256::ZERO, u64::MAX, 64), Some(U256::MAX << 192));
        assert_eq!(shr_320(low, 0b101, 256), Some(U256::from_u64(0b101)));
        assert_eq!(shr_320(low, 0b101, 258), Some(U256::ONE));
        assert_eq!(shr_320(low, u64::MAX, 319), Some(U256::ONE));
        assert_eq!(shr_320(low, u64::MAX, 320), Some(U256::ZERO));
        assert_eq!(shr_320(low, u64::MAX, u128::MAX), Some(U256::ZERO));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_within_limit(
            anchor_height in any::<u64>(),
            anchor_time in any::<i64>(),
            bits in any::<u32>(),
            height in any::<u64>(),
            time in any::<i64>(),
        ) {
            let p = bch_params();
            let a = AsertAnchor { height: anchor_height, parent_time: anchor_time, bits: CompactTarget(bits) };
            let next = next_target(&p, &a, height, time);
            let t = next.to_target();
            prop_assert!(t.is_ok());
            prop_assert!(t.unwrap() <= limit());
            // The answer is always normalised.
            prop_assert_eq!(t.unwrap().to_compact(), next);
        }

        #[test]
        fn later_tip_never_gives_a_harder_target(
            height_delta in 0u64..1_000_000,
            time in -1_000_000_000i64..1_000_000_000,
            extra in 0i64..1_000_000,
        ) {
            let p = bch_params();
            let a = anchor(0x1802aee8);
            let h = 1 + height_delta;
            let t1 = next_target(&p, &a, h, time).to_target().unwrap();
            let t2 = next_target(&p, &a, h, time + extra).to_target().unwrap();
            prop_assert!(t1 <= t2);
        }
    }
}
