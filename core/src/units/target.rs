//! Proof-of-work targets with Bitcoin's compact ("nBits") encoding, and cumulative chain work,
//! over [`U256`].
//!
//! A block hash meets a target when its 32 bytes, read as a **big-endian** integer, are at most
//! the target. The work a target represents is `floor(2^256 / (target + 1))`, the expected
//! number of hashes needed to meet it.

use core::fmt;

use super::U256;
use crate::hash::Hash256;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a compact target or a 256-bit value is not a usable target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// The compact form has the sign bit set with a non-zero mantissa.
    Negative,
    /// The compact form encodes a value wider than 256 bits.
    Overflow,
    /// The target is zero: no hash can meet it.
    Zero,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetError::Negative => "negative compact target",
            TargetError::Overflow => "compact target overflows 256 bits",
            TargetError::Zero => "zero target",
        })
    }
}

impl core::error::Error for TargetError {}

// ---------------------------------------------------------------------------------------------
// CompactTarget
// ---------------------------------------------------------------------------------------------

/// A target in Bitcoin's compact "nBits" form: the top byte is a size in bytes, the low 23 bits
/// a mantissa and bit 23 a sign: `value = mantissa * 256^(size - 3)`.
///
/// Several compact values can decode to the same target; [`Target::to_compact`] gives the
/// normalised one (Bitcoin's `GetCompact`), which is what the difficulty rule produces and what
/// block headers must carry.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompactTarget(pub u32);

impl CompactTarget {
    /// Decodes as Bitcoin's `SetCompact`, rejecting negative, overflowing and zero targets.
    pub const fn to_target(self) -> Result<Target, TargetError> {
        let n = self.0;
        let size = n >> 24;
        let mut word = n & 0x007f_ffff;
        let value = if size <= 3 {
            word >>= 8 * (3 - size);
            U256::from_u64(word as u64)
        } else {
            // For size > 34 the shift is >= 256 and gives zero; that case is rejected below
            // as an overflow whenever the mantissa is non-zero.
            U256::from_u64(word as u64).shl_bits(8 * (size - 3))
        };
        if word != 0 && n & 0x0080_0000 != 0 {
            return Err(TargetError::Negative);
        }
        if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
            return Err(TargetError::Overflow);
        }
        Target::from_u256(value)
    }
}

impl From<Target> for CompactTarget {
    fn from(t: Target) -> CompactTarget {
        t.to_compact()
    }
}

impl fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget(0x{:08x})", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Target
// ---------------------------------------------------------------------------------------------

/// A proof-of-work target: a non-zero 256-bit value. A hash meets it when the hash, read as a
/// big-endian integer, is at most the target; a lower target is harder.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(U256);

impl Target {
    /// The easiest possible target (every hash meets it).
    pub const MAX: Target = Target(U256::MAX);
    /// The hardest possible target (only the all-zero hash meets it).
    pub const MIN: Target = Target(U256::ONE);

    /// Rejects zero.
    pub const fn from_u256(v: U256) -> Result<Target, TargetError> {
        if v.is_zero() {
            Err(TargetError::Zero)
        } else {
            Ok(Target(v))
        }
    }

    pub const fn as_u256(self) -> U256 {
        self.0
    }

    /// Big-endian bytes; rejects zero.
    pub const fn from_be_bytes(bytes: [u8; 32]) -> Result<Target, TargetError> {
        Target::from_u256(U256::from_be_bytes(bytes))
    }

    pub const fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// The normalised compact form (Bitcoin's `GetCompact` for a non-negative value). It keeps
    /// only the top 16–23 significant bits, so it may round the target down.
    pub fn to_compact(self) -> CompactTarget {
        let mut size = self.0.bits().div_ceil(8);
        let mut mantissa = if size <= 3 {
            (self.0.low_u64() << (8 * (3 - size))) as u32
        } else {
            self.0.shr_bits(8 * (size - 3)).low_u64() as u32
        };
        if mantissa & 0x0080_0000 != 0 {
            mantissa >>= 8;
            size += 1;
        }
        CompactTarget(mantissa | (size << 24))
    }

    /// Whether `hash`, read as a big-endian 256-bit integer, is at most this target.
    pub fn is_met_by(&self, hash: &Hash256) -> bool {
        U256::from_be_bytes(hash.0) <= self.0
    }

    /// Expected hashes to meet this target: `floor(2^256 / (target + 1))`, computed as
    /// `(!target / (target + 1)) + 1`. Always at least 1.
    pub fn work(&self) -> Work {
        match self.0.checked_add(U256::ONE) {
            // target == 2^256 - 1: 2^256 / 2^256 = 1.
            None => Work(U256::ONE),
            Some(divisor) => {
                let q = (!self.0)
                    .checked_div(divisor)
                    .expect("target + 1 is non-zero when it does not overflow");
                // q <= (2^256 - 2) / 2, so adding one cannot overflow.
                Work(q.saturating_add(U256::ONE))
            }
        }
    }
}

/// 64 hex digits, most significant first.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.to_be_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

// ---------------------------------------------------------------------------------------------
// Work
// ---------------------------------------------------------------------------------------------

/// An amount of proof-of-work (expected hashes), such as the cumulative work of a chain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Work(U256);

impl Work {
    pub const ZERO: Work = Work(U256::ZERO);
    pub const MAX: Work = Work(U256::MAX);

    pub const fn from_u256(v: U256) -> Work {
        Work(v)
    }

    pub const fn as_u256(self) -> U256 {
        self.0
    }

    pub const fn from_be_bytes(bytes: [u8; 32]) -> Work {
        Work(U256::from_be_bytes(bytes))
    }

    pub const fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub const fn checked_add(self, rhs: Work) -> Option<Work> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(Work(v)),
            None => None,
        }
    }

    pub const fn checked_sub(self, rhs: Work) -> Option<Work> {
        match self.0.checked_sub(rhs.0) {
            Some(v) => Some(Work(v)),
            None => None,
        }
    }

    pub const fn saturating_add(self, rhs: Work) -> Work {
        Work(self.0.saturating_add(rhs.0))
    }

    pub const fn saturating_sub(self, rhs: Work) -> Work {
        Work(self.0.saturating_sub(rhs.0))
    }

    /// Approximate value as `f64`, for display only.
    pub fn to_f64_approx(self) -> f64 {
        self.0.to_f64_approx()
    }

    /// Approximate `log2` of the work (bits of work), for display only; negative infinity for
    /// zero.
    pub fn log2(self) -> f64 {
        self.0.log2_approx()
    }
}

/// Decimal.
impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_decimal(f)
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Work({self})")
    }
}

/// Hex digits without leading zeros (`{:#x}` adds `0x`).
impl fmt::LowerHex for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::u256::tests::arb_u256;
    use alloc::format;
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn formatting() {
        assert_eq!(Work::ZERO.to_string(), "0");
        assert_eq!(
            Work::MAX.to_string(),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        assert_eq!(
            Work::from_u256(U256::from_u128(10u128.pow(19))).to_string(),
            "10000000000000000000"
        );
        assert_eq!(
            format!("{:x}", Work::from_u256(U256::from_u64(0x100))),
            "100"
        );
        assert_eq!(CompactTarget(0x1d00ffff).to_string(), "0x1d00ffff");
        assert_eq!(
            format!("{:?}", CompactTarget(0x1d00ffff).to_target().unwrap()),
            "Target(00000000ffff0000000000000000000000000000000000000000000000000000)"
        );
        assert_eq!(TargetError::Negative.to_string(), "negative compact target");
    }

    #[test]
    fn genesis_limit_compact() {
        let t = CompactTarget(0x1d00ffff).to_target().unwrap();
        let mut expected = [0u8; 32];
        expected[4] = 0xff;
        expected[5] = 0xff;
        assert_eq!(t.to_be_bytes(), expected);
        assert_eq!(Target::from_be_bytes(expected), Ok(t));
        assert_eq!(t.to_compact(), CompactTarget(0x1d00ffff));
        // Bitcoin's work for its genesis target: 0x100010001 = 4295032833.
        assert_eq!(t.work().as_u256(), U256::from_u64(0x1_0001_0001));
        assert_eq!(t.work().to_string(), "4295032833");
    }

    #[test]
    fn compact_known_values() {
        // Values and results from Bitcoin's SetCompact/GetCompact behaviour.
        let ok = |c: u32| CompactTarget(c).to_target();
        assert_eq!(ok(0x0000_0000), Err(TargetError::Zero));
        assert_eq!(ok(0x0012_3456), Err(TargetError::Zero));
        assert_eq!(ok(0x0100_3456), Err(TargetError::Zero));
        assert_eq!(ok(0x0200_0056), Err(TargetError::Zero));
        assert_eq!(ok(0x0300_0000), Err(TargetError::Zero));
        assert_eq!(ok(0x0400_0000), Err(TargetError::Zero));
        assert_eq!(ok(0x0092_3456), Err(TargetError::Zero));
        assert_eq!(ok(0x0180_3456), Err(TargetError::Zero));
        assert_eq!(ok(0x0280_0056), Err(TargetError::Zero));
        assert_eq!(ok(0x0380_0000), Err(TargetError::Zero));
        assert_eq!(ok(0x0480_0000), Err(TargetError::Zero));
        assert_eq!(ok(0xff00_0000), Err(TargetError::Zero));

        let t = ok(0x0112_3456).unwrap();
        assert_eq!(t.as_u256(), U256::from_u64(0x12));
        assert_eq!(t.to_compact(), CompactTarget(0x0112_0000));

        // Bitcoin's GetCompact of 0x80 is 0x02008000: the 0x800000 bit forces a longer form.
        assert_eq!(ok(0x0200_8000).unwrap().as_u256(), U256::from_u64(0x80));
        assert_eq!(
            ok(0x0200_8000).unwrap().to_compact(),
            CompactTarget(0x0200_8000)
        );

        assert_eq!(ok(0x0112_3456).unwrap().as_u256(), U256::from_u64(0x12));
        assert_eq!(ok(0x0212_3456).unwrap().as_u256(), U256::from_u64(0x1234));
        assert_eq!(
            ok(0x0312_3456).unwrap().as_u256(),
            U256::from_u64(0x12_3456)
        );
        assert_eq!(
            ok(0x0412_3456).unwrap().as_u256(),
            U256::from_u64(0x1234_5600)
        );
        assert_eq!(
            ok(0x0512_3456).unwrap().to_compact(),
            CompactTarget(0x0512_3456)
        );
        assert_eq!(ok(0x0492_3456), Err(TargetError::Negative));
        assert_eq!(ok(0x0181_0000), Err(TargetError::Negative));
        assert_eq!(
            ok(0x2012_3456).unwrap().to_compact(),
            CompactTarget(0x2012_3456)
        );
        assert_eq!(ok(0xff12_3456), Err(TargetError::Overflow));
        assert_eq!(ok(0x2300_0001), Err(TargetError::Overflow));
        assert_eq!(ok(0x2200_0100), Err(TargetError::Overflow));
        assert_eq!(ok(0x2101_0000), Err(TargetError::Overflow));
        // The largest encodable values.
        assert_eq!(
            ok(0x2200_00ff).unwrap().as_u256(),
            U256::from_u64(0xff) << 248
        );
        assert_eq!(
            ok(0x2100_ffff).unwrap().as_u256(),
            U256::from_u64(0xffff) << 240
        );
        assert_eq!(
            ok(0x207f_ffff).unwrap().as_u256(),
            U256::from_u64(0x7f_ffff) << 232
        );
        assert_eq!(Target::MAX.to_compact(), CompactTarget(0x2100_ffff));
        assert_eq!(Target::MIN.to_compact(), CompactTarget(0x0101_0000));
        // A non-normalised form decodes to the same target as the normalised one.
        assert_eq!(ok(0x0500_0001), ok(0x0301_0000));
        assert_eq!(
            ok(0x0500_0001).unwrap().to_compact(),
            CompactTarget(0x0301_0000)
        );
        // Normalising may drop low bits: 0xffffff needs a fourth byte and loses its last one.
        let t = Target::from_u256(U256::from_u64(0xff_ffff)).unwrap();
        assert_eq!(t.to_compact(), CompactTarget(0x0400_ffff));
        assert_eq!(
            ok(0x0400_ffff).unwrap().as_u256(),
            U256::from_u64(0xff_ff00)
        );
    }

    #[test]
    fn zero_target_rejected_everywhere() {
        assert_eq!(Target::from_be_bytes([0; 32]), Err(TargetError::Zero));
        assert_eq!(Target::from_u256(U256::ZERO), Err(TargetError::Zero));
    }

    #[test]
    fn hash_meets_target_big_endian() {
        let t = CompactTarget(0x1d00ffff).to_target().unwrap();
        let mut h = [0u8; 32];
        h[4] = 0xff;
        h[5] = 0xff;
        assert!(t.is_met_by(&Hash256(h)));
        h[31] = 1;
        assert!(!t.is_met_by(&Hash256(h)));
        // A hash with leading zero bytes in big-endian order is small.
        let mut small = [0xffu8; 32];
        small[..5].fill(0);
        assert!(t.is_met_by(&Hash256(small)));
        // The same bytes reversed (zeros at the end) are huge.
        small.reverse();
        assert!(!t.is_met_by(&Hash256(small)));
        assert!(Target::MAX.is_met_by(&Hash256([0xff; 32])));
        assert!(Target::MIN.is_met_by(&Hash256::ZERO));
    }

    #[test]
    fn work_edges() {
        assert_eq!(Target::MAX.work().as_u256(), U256::ONE);
        assert_eq!(Target::MIN.work().as_u256(), U256::ONE << 255);
        // 2^256 / 2^255 = 2.
        assert_eq!(
            Target::from_u256(U256::MAX >> 1).unwrap().work().as_u256(),
            U256::from_u64(2)
        );
        assert_eq!(Work::MAX.checked_add(Work::from_u256(U256::ONE)), None);
        assert_eq!(Work::ZERO.saturating_sub(Work::MAX), Work::ZERO);
        assert_eq!(Work::default(), Work::ZERO);
        assert_eq!(Work::ZERO.log2(), f64::NEG_INFINITY);
        let w = Work::from_u256(U256::ONE << 200);
        assert!((w.log2() - 200.0).abs() < 1e-9);
        let w = Work::from_u256(U256::from_u64(3) << 100);
        assert!((w.log2() - (100.0 + 1.584_962_500_721_156)).abs() < 1e-9);
        assert!((w.to_f64_approx() / (3.0 * 1.267_650_600_228_229_4e30) - 1.0).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn compact_round_trip(c in any::<u32>()) {
            if let Ok(t) = CompactTarget(c).to_target() {
                let normal = t.to_compact();
                // The normalised form decodes to the same target and is a fixed point.
                prop_assert_eq!(normal.to_target(), Ok(t));
                prop_assert_eq!(normal.to_target().unwrap().to_compact(), normal);
            }
        }

        #[test]
        fn target_to_compact_rounds_down(v in arb_u256()) {
            if let Ok(t) = Target::from_u256(v) {
                let back = t.to_compact().to_target().unwrap();
                prop_assert!(back <= t);
                // At least 16 significant bits are kept.
                let lost = t.as_u256().checked_sub(back.as_u256()).unwrap();
                prop_assert!(lost.bits() + 16 <= t.as_u256().bits().max(16));
                prop_assert_eq!(back.to_compact(), t.to_compact());
            }
        }

        #[test]
        fn work_is_floor_of_2_256_over_target_plus_1(v in arb_u256()) {
            if let Ok(t) = Target::from_u256(v) {
                let w = t.work().as_u256();
                // 2^256 = MAX + 1 = q*d + r + 1 with d = t + 1, so floor(2^256 / d) is q,
                // plus one when r + 1 == d.
                let expected = match t.as_u256().checked_add(U256::ONE) {
                    None => U256::ONE,
                    Some(d) => {
                        let (q, r) = U256::MAX.div_rem(d).unwrap();
                        if r.checked_add(U256::ONE) == Some(d) {
                            q.checked_add(U256::ONE).unwrap()
                        } else {
                            q
                        }
                    }
                };
                prop_assert_eq!(w, expected);
            }
        }
    }
}
