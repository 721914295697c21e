//! A 256-bit unsigned integer with explicit, never-panicking arithmetic: the number type under
//! targets and chain work.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Not, Shl, Shr};

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

    pub(super) fn fmt_decimal(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use proptest::prelude::*;

    fn u(v: u128) -> U256 {
        U256::from_u128(v)
    }

    pub(in crate::units) fn arb_u256() -> impl Strategy<Value = U256> {
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

    }
}
