//! 256-bit unsigned integers, proof-of-work targets with Bitcoin's compact ("nBits") encoding,
//! and cumulative chain work.
//!
//! A block hash meets a target when its 32 bytes, read as a **big-endian** integer, are at most
//! the target. The work a target represents is `floor(2^256 / (target + 1))`, the expected
//! number of hashes needed to meet it.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Not, Shl, Shr};

use crate::hash::Hash256;

// ---------------------------------------------------------------------------------------------
// U256
// ---------------------------------------------------------------------------------------------

/// A 256-bit unsigned integer held as four 64-bit limbs, least significant limb first.
///
/// Arithmetic is explicit: `checked_*` / `overflowing_*` / `saturating_*` methods, shifts that
/// drop bits shifted out (and give zero for shifts of 256 or more), and division that returns
/// `None` for a zero divisor. Nothing here panics.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct U256([u64; 4]);

impl U256 {
    pub const ZERO: U256 = U256([0; 4]);
    pub const ONE: U256 = U256([1, 0, 0, 0]);
    pub const MAX: U256 = U256([u64::MAX; 4]);
    /// Width in bits.
    pub const BITS: u32 = 256;

    pub const fn from_u64(v: u64) -> U256 {
        U256([v, 0, 0, 0])
    }

    pub const fn from_u128(v: u128) -> U256 {
        U256([v as u64, (v >> 64) as u64, 0, 0])
    }

    /// The value as a `u128`, or `None` if it does not fit.
    pub const fn to_u128(self) -> Option<u128> {
        if self.0[2] == 0 && self.0[3] == 0 {
            Some(self.0[0] as u128 | ((self.0[1] as u128) << 64))
        } else {
            None
        }
    }

    /// The least significant 64 bits.
    pub const fn low_u64(self) -> u64 {
        self.0[0]
    }

    /// The limbs, least significant first.
    pub const fn to_limbs(self) -> [u64; 4] {
        self.0
    }

    pub const fn from_be_bytes(bytes: [u8; 32]) -> U256 {
        let mut limbs = [0u64; 4];
        let mut i = 0;
        while i < 4 {
            // Limb i (least significant first) is the i-th group of 8 bytes from the end.
            let start = 32 - 8 * (i + 1);
            let mut chunk = [0u8; 8];
            let mut j = 0;
            while j < 8 {
                chunk[j] = bytes[start + j];
                j += 1;
            }
            limbs[i] = u64::from_be_bytes(chunk);
            i += 1;
        }
        U256(limbs)
    }

    pub const fn to_be_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 4 {
            let chunk = self.0[i].to_be_bytes();
            let start = 32 - 8 * (i + 1);
            let mut j = 0;
            while j < 8 {
                out[start + j] = chunk[j];
                j += 1;
            }
            i += 1;
        }
        out
    }

    pub const fn is_zero(self) -> bool {
        self.0[0] == 0 && self.0[1] == 0 && self.0[2] == 0 && self.0[3] == 0
    }

    /// Number of significant bits: 0 for zero, 256 for values with the top bit set.
    pub const fn bits(self) -> u32 {
        let mut i = 4;
        while i > 0 {
            i -= 1;
            if self.0[i] != 0 {
                return 64 * i as u32 + (64 - self.0[i].leading_zeros());
            }
        }
        0
    }

    /// Whether bit `n` (0 = least significant) is set; `false` for `n >= 256`.
    pub const fn bit(self, n: u32) -> bool {
        n < 256 && (self.0[(n / 64) as usize] >> (n % 64)) & 1 == 1
    }

    /// Left shift; bits shifted past bit 255 are dropped, and `n >= 256` gives zero.
    pub const fn shl_bits(self, n: u32) -> U256 {
        if n >= 256 {
            return U256::ZERO;
        }
        let limbs = (n / 64) as usize;
        let bits = n % 64;
        let mut out = [0u64; 4];
        let mut i = limbs;
        while i < 4 {
            let src = i - limbs;
            let mut v = self.0[src] << bits;
            if bits > 0 && src > 0 {
                v |= self.0[src - 1] >> (64 - bits);
            }
            out[i] = v;
            i += 1;
        }
        U256(out)
    }

    /// Logical right shift; `n >= 256` gives zero.
    pub const fn shr_bits(self, n: u32) -> U256 {
        if n >= 256 {
            return U256::ZERO;
        }
        let limbs = (n / 64) as usize;
        let bits = n % 64;
        let mut out = [0u64; 4];
        let mut i = 0;
        while i + limbs < 4 {
            let src = i + limbs;
            let mut v = self.0[src] >> bits;
            if bits > 0 && src + 1 < 4 {
                v |= self.0[src + 1] << (64 - bits);
            }
            out[i] = v;
            i += 1;
        }
        U256(out)
    }

    /// Left shift that fails instead of dropping a set bit.
    pub const fn checked_shl(self, n: u32) -> Option<U256> {
        if self.is_zero() {
            return Some(U256::ZERO);
        }
        if self.bits() as u64 + n as u64 > 256 {
            return None;
        }
        Some(self.shl_bits(n))
    }

    pub const fn overflowing_add(self, rhs: U256) -> (U256, bool) {
        let mut out = [0u64; 4];
        let mut carry = false;
        let mut i = 0;
        while i < 4 {
            let (s1, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            out[i] = s2;
            carry = c1 || c2;
            i += 1;
        }
        (U256(out), carry)
    }

    pub const fn overflowing_sub(self, rhs: U256) -> (U256, bool) {
        let mut out = [0u64; 4];
        let mut borrow = false;
        let mut i = 0;
        while i < 4 {
            let (d1, b1) = self.0[i].overflowing_sub(rhs.0[i]);
            let (d2, b2) = d1.overflowing_sub(borrow as u64);
            out[i] = d2;
            borrow = b1 || b2;
            i += 1;
        }
        (U256(out), borrow)
    }

    pub const fn checked_add(self, rhs: U256) -> Option<U256> {
        match self.overflowing_add(rhs) {
            (v, false) => Some(v),
            (_, true) => None,
        }
    }

    pub const fn checked_sub(self, rhs: U256) -> Option<U256> {
        match self.overflowing_sub(rhs) {
            (v, false) => Some(v),
            (_, true) => None,
        }
    }

    pub const fn saturating_add(self, rhs: U256) -> U256 {
        match self.overflowing_add(rhs) {
            (v, false) => v,
            (_, true) => U256::MAX,
        }
    }

    pub const fn saturating_sub(self, rhs: U256) -> U256 {
        match self.overflowing_sub(rhs) {
            (v, false) => v,
            (_, true) => U256::ZERO,
        }
    }

    /// Full product by a `u64`: the low 256 bits and the limb above them.
    pub const fn mul_u64_wide(self, rhs: u64) -> (U256, u64) {
        let mut out = [0u64; 4];
        let mut carry: u128 = 0;
        let mut i = 0;
        while i < 4 {
            let t = self.0[i] as u128 * rhs as u128 + carry;
            out[i] = t as u64;
            carry = t >> 64;
            i += 1;
        }
        (U256(out), carry as u64)
    }

    pub const fn checked_mul_u64(self, rhs: u64) -> Option<U256> {
        match self.mul_u64_wide(rhs) {
            (v, 0) => Some(v),
            _ => None,
        }
    }

    pub const fn checked_mul(self, rhs: U256) -> Option<U256> {
        let mut out = [0u64; 8];
        let mut i = 0;
        while i < 4 {
            let mut carry: u128 = 0;
            let mut j = 0;
            while j < 4 {
                // (2^64-1)^2 + 2*(2^64-1) = 2^128 - 1: never overflows u128.
                let t = self.0[i] as u128 * rhs.0[j] as u128 + out[i + j] as u128 + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
                j += 1;
            }
            out[i + 4] = carry as u64;
            i += 1;
        }
        if out[4] != 0 || out[5] != 0 || out[6] != 0 || out[7] != 0 {
            None
        } else {
            Some(U256([out[0], out[1], out[2], out[3]]))
        }
    }

    /// Quotient and remainder, or `None` when dividing by zero (binary long division).
    pub fn div_rem(self, rhs: U256) -> Option<(U256, U256)> {
        if rhs.is_zero() {
            return None;
        }
        if self < rhs {
            return Some((U256::ZERO, self));
        }
        let shift = self.bits() - rhs.bits();
        // rhs.bits() + shift == self.bits() <= 256, so no bit is lost here.
        let mut divisor = rhs.shl_bits(shift);
        let mut quotient = [0u64; 4];
        let mut rem = self;
        let mut i = shift + 1;
        while i > 0 {
            i -= 1;
            if rem >= divisor {
                // rem >= divisor, so the subtraction cannot borrow.
                rem = rem.overflowing_sub(divisor).0;
                quotient[(i / 64) as usize] |= 1 << (i % 64);
            }
            divisor = divisor.shr_bits(1);
        }
        Some((U256(quotient), rem))
    }

    pub fn checked_div(self, rhs: U256) -> Option<U256> {
        self.div_rem(rhs).map(|(q, _)| q)
    }

    /// Quotient and remainder by a `u64`, or `None` when dividing by zero.
    pub const fn div_rem_u64(self, rhs: u64) -> Option<(U256, u64)> {
        if rhs == 0 {
            return None;
        }
        let mut out = [0u64; 4];
        let mut rem: u128 = 0;
        let mut i = 4;
        while i > 0 {
            i -= 1;
            let cur = (rem << 64) | self.0[i] as u128;
            out[i] = (cur / rhs as u128) as u64;
            rem = cur % rhs as u128;
        }
        Some((U256(out), rem as u64))
    }

    /// The nearest-ish `f64` (for display only, never for consensus).
    pub fn to_f64_approx(self) -> f64 {
        let mut x = 0.0f64;
        for limb in self.0.iter().rev() {
            x = x * 18_446_744_073_709_551_616.0 + *limb as f64;
        }
        x
    }

    /// An approximation of `log2(self)` for display; negative infinity for zero.
    pub fn log2_approx(self) -> f64 {
        let bits = self.bits();
        if bits == 0 {
            return f64::NEG_INFINITY;
        }
        // The top 64 significant bits, normalised so that bit 63 is set.
        let top = if bits > 64 {
            self.shr_bits(bits - 64).low_u64()
        } else {
            self.low_u64() << (64 - bits)
        };
        // mantissa in [1, 2]; log2 of it bit by bit by repeated squaring.
        let mut y = top as f64 / 9_223_372_036_854_775_808.0;
        let mut frac = 0.0f64;
        let mut weight = 0.5f64;
        for _ in 0..53 {
            y *= y;
            if y >= 2.0 {
                y /= 2.0;
                frac += weight;
            }
            weight /= 2.0;
        }
        f64::from(bits - 1) + frac
    }

    fn fmt_hex(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut started = false;
        for limb in self.0.iter().rev() {
            if started {
                write!(f, "{limb:016x}")?;
            } else if *limb != 0 {
                write!(f, "{limb:x}")?;
                started = true;
            }
        }
        if !started {
            f.write_str("0")?;
        }
        Ok(())
    }

    fn fmt_decimal(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CHUNK: u64 = 10_000_000_000_000_000_000; // 10^19 < 2^64
        // 2^256 < 10^78 needs at most 5 chunks of 19 digits.
        let mut chunks = [0u64; 5];
        let mut n = 0;
        let mut v = *self;
        loop {
            let (q, r) = v
                .div_rem_u64(CHUNK)
                .expect("divisor is a non-zero constant");
            chunks[n] = r;
            n += 1;
            v = q;
            if v.is_zero() || n == chunks.len() {
                break;
            }
        }
        write!(f, "{}", chunks[n - 1])?;
        for c in chunks[..n - 1].iter().rev() {
            write!(f, "{c:019}")?;
        }
        Ok(())
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> Ordering {
        for i in (0..4).rev() {
            match self.0[i].cmp(&other.0[i]) {
                Ordering::Equal => continue,
                ord => return ord,
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Not for U256 {
    type Output = U256;
    fn not(self) -> U256 {
        U256([!self.0[0], !self.0[1], !self.0[2], !self.0[3]])
    }
}

/// Same as [`U256::shl_bits`]: never panics, `n >= 256` gives zero.
impl Shl<u32> for U256 {
    type Output = U256;
    fn shl(self, n: u32) -> U256 {
        self.shl_bits(n)
    }
}

/// Same as [`U256::shr_bits`]: never panics, `n >= 256` gives zero.
impl Shr<u32> for U256 {
    type Output = U256;
    fn shr(self, n: u32) -> U256 {
        self.shr_bits(n)
    }
}

impl From<u64> for U256 {
    fn from(v: u64) -> U256 {
        U256::from_u64(v)
    }
}

impl From<u128> for U256 {
    fn from(v: u128) -> U256 {
        U256::from_u128(v)
    }
}

/// `0x` followed by the hex digits without leading zeros.
impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.fmt_hex(f)
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U256({self})")
    }
}

/// Hex digits without leading zeros (`{:#x}` adds `0x`).
impl fmt::LowerHex for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str("0x")?;
        }
        self.fmt_hex(f)
    }
}

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
    use alloc::format;
    use alloc::string::ToString;
    use proptest::prelude::*;

    fn u(v: u128) -> U256 {
        U256::from_u128(v)
    }

    fn arb_u256() -> impl Strategy<Value = U256> {
        prop_oneof![
            any::<[u64; 4]>().prop_map(U256),
            any::<u128>().prop_map(U256::from_u128),
            any::<u64>().prop_map(U256::from_u64),
            // Values with only a few significant bits at a random position.
            (any::<u16>(), 0u32..256).prop_map(|(v, s)| U256::from_u64(v.into()) << s),
        ]
    }

    #[test]
    fn bytes_and_limbs() {
        let mut bytes = [0u8; 32];
        bytes[31] = 1;
        assert_eq!(U256::from_be_bytes(bytes), U256::ONE);
        bytes[0] = 0x80;
        let v = U256::from_be_bytes(bytes);
        assert_eq!(v.to_limbs(), [1, 0, 0, 0x8000_0000_0000_0000]);
        assert_eq!(v.bits(), 256);
        assert_eq!(v.to_be_bytes(), bytes);
        assert_eq!(U256::ZERO.bits(), 0);
        assert_eq!(U256::MAX.bits(), 256);
        assert!(U256::MAX.bit(255) && !U256::ZERO.bit(0) && !U256::MAX.bit(256));
    }

    #[test]
    fn shifts_at_the_edges() {
        assert_eq!(U256::ONE << 255 >> 255, U256::ONE);
        assert_eq!(U256::ONE << 256, U256::ZERO);
        assert_eq!(U256::MAX >> 256, U256::ZERO);
        assert_eq!(U256::MAX << u32::MAX, U256::ZERO);
        assert_eq!(U256::MAX >> 0, U256::MAX);
        assert_eq!(U256::ONE.checked_shl(255), Some(U256::ONE << 255));
        assert_eq!(U256::ONE.checked_shl(256), None);
        assert_eq!(U256::ZERO.checked_shl(u32::MAX), Some(U256::ZERO));
        assert_eq!(U256::MAX.checked_shl(1), None);
        assert_eq!((U256::ONE << 64).to_limbs(), [0, 1, 0, 0]);
        assert_eq!((U256::from_u64(3) << 63).to_limbs(), [1 << 63, 1, 0, 0]);
    }

    #[test]
    fn overflow_detection() {
        assert_eq!(U256::MAX.checked_add(U256::ONE), None);
        assert_eq!(U256::ZERO.checked_sub(U256::ONE), None);
        assert_eq!(U256::MAX.checked_mul_u64(2), None);
        let max_minus_1 = U256::MAX.checked_sub(U256::ONE).unwrap();
        assert_eq!(U256::MAX.mul_u64_wide(2), (max_minus_1, 1));
        assert_eq!(U256::MAX.checked_mul(U256::ONE), Some(U256::MAX));
        assert_eq!((U256::ONE << 128).checked_mul(U256::ONE << 128), None);
        assert_eq!(
            (U256::ONE << 127).checked_mul(U256::ONE << 128),
            Some(U256::ONE << 255)
        );
        assert_eq!(U256::ONE.div_rem(U256::ZERO), None);
        assert_eq!(U256::ONE.div_rem_u64(0), None);
        assert_eq!(U256::MAX.div_rem(U256::MAX), Some((U256::ONE, U256::ZERO)));
        assert_eq!(U256::MAX.div_rem(U256::ONE), Some((U256::MAX, U256::ZERO)));
    }

    #[test]
    fn formatting() {
        assert_eq!(U256::ZERO.to_string(), "0x0");
        assert_eq!(U256::from_u64(0xabc).to_string(), "0xabc");
        assert_eq!(format!("{:x}", U256::ONE << 64), "10000000000000000");
        assert_eq!(format!("{:#x}", U256::from_u64(255)), "0xff");
        assert_eq!(format!("{:?}", U256::ONE), "U256(0x1)");
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
        fn add_sub_match_u128(a in any::<u128>(), b in any::<u128>()) {
            let sum = u(a).checked_add(u(b)).unwrap();
            let expected = match a.checked_add(b) {
                Some(s) => u(s),
                None => u(a.wrapping_add(b)).checked_add(U256::ONE << 128).unwrap(),
            };
            prop_assert_eq!(sum, expected);
            prop_assert_eq!(u(a).checked_sub(u(b)), a.checked_sub(b).map(u));
            prop_assert_eq!(u(a).saturating_sub(u(b)), u(a.saturating_sub(b)));
        }

        #[test]
        fn mul_matches_u128(a in any::<u64>(), b in any::<u64>(), c in any::<u128>(), d in any::<u64>()) {
            let p = u128::from(a) * u128::from(b);
            prop_assert_eq!(U256::from_u64(a).checked_mul_u64(b), Some(u(p)));
            prop_assert_eq!(U256::from_u64(a).checked_mul(U256::from_u64(b)), Some(u(p)));
            // c * d may exceed u128 but always fits in 256 bits; check it via the limbs.
            let (lo, hi) = u(c).mul_u64_wide(d);
            prop_assert_eq!(hi, 0);
            if let Some(exact) = c.checked_mul(u128::from(d)) {
                prop_assert_eq!(lo, u(exact));
            }
            prop_assert_eq!(lo.div_rem_u64(d.max(1)).map(|(q, _)| q), if d == 0 { Some(U256::ZERO) } else { Some(u(c)) });
        }

        #[test]
        fn shifts_match_u128(a in any::<u128>(), s in 0u32..128) {
            prop_assert_eq!(u(a) >> s, u(a >> s));
            // Left shifts in u128 lose bits; U256 keeps them.
            prop_assert_eq!((u(a) << s) >> s, u(a));
            prop_assert_eq!(((u(a) << s).to_limbs()[0..2]).to_vec(), {
                let v = a << s;
                alloc::vec![v as u64, (v >> 64) as u64]
            });
            prop_assert_eq!(u(a).bits(), 128 - a.leading_zeros());
        }

        #[test]
        fn div_matches_u128(a in any::<u128>(), b in 1u128..) {
            let (q, r) = u(a).div_rem(u(b)).unwrap();
            prop_assert_eq!(q, u(a / b));
            prop_assert_eq!(r, u(a % b));
            let small = (b as u64).max(1);
            let (q, r) = u(a).div_rem_u64(small).unwrap();
            prop_assert_eq!(q, u(a / u128::from(small)));
            prop_assert_eq!(u128::from(r), a % u128::from(small));
        }

        #[test]
        fn order_matches_u128(a in any::<u128>(), b in any::<u128>()) {
            prop_assert_eq!(u(a).cmp(&u(b)), a.cmp(&b));
            prop_assert_eq!(u(a).to_u128(), Some(a));
        }

        #[test]
        fn division_identity(a in arb_u256(), b in arb_u256()) {
            match a.div_rem(b) {
                None => prop_assert!(b.is_zero()),
                Some((q, r)) => {
                    prop_assert!(r < b);
                    let back = q.checked_mul(b).and_then(|p| p.checked_add(r));
                    prop_assert_eq!(back, Some(a));
                }
            }
        }

        #[test]
        fn bytes_round_trip(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let v = U256::from_be_bytes(a);
            prop_assert_eq!(v.to_be_bytes(), a);
            // Big-endian byte order and numeric order agree.
            prop_assert_eq!(v.cmp(&U256::from_be_bytes(b)), a.cmp(&b));
        }

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
