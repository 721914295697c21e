//! Newtypes for consensus quantities, with checked arithmetic only.

use core::fmt;

mod target;
mod u256;
pub use target::*;
pub use u256::U256;

/// Base units per coin (1 TAB = 10^8 base units).
pub const COIN: u64 = 100_000_000;

/// Hard cap on any amount: no value, sum or output may exceed the total supply.
pub const MAX_MONEY: u64 = 210_000_000 * COIN;

/// An amount of base units, always within `0..=MAX_MONEY`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(MAX_MONEY);

    /// `None` when above the supply cap.
    pub const fn from_units(units: u64) -> Option<Amount> {
        if units <= MAX_MONEY {
            Some(Amount(units))
        } else {
            None
        }
    }

    pub const fn units(self) -> u64 {
        self.0
    }

    /// Sum, or `None` if it would pass the supply cap.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).and_then(Amount::from_units)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Sum of many amounts, `None` on passing the cap.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(iter: I) -> Option<Amount> {
        iter.into_iter().try_fold(Amount::ZERO, Amount::checked_add)
    }

    /// Parses a decimal coin amount such as `12.5` or `0.00000001`.
    pub fn parse_coins(s: &str) -> Option<Amount> {
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        if whole.is_empty() && frac.is_empty() || frac.len() > 8 {
            return None;
        }
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(frac) {
            return None;
        }
        let w: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut f: u64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            f += u64::from(b - b'0') * 10u64.pow(7 - i as u32);
        }
        w.checked_mul(COIN)?
            .checked_add(f)
            .and_then(Amount::from_units)
    }
}

impl fmt::Display for Amount {
    /// Coins with up to eight decimals, trailing zeros trimmed: `12.5`, `0.00000001`, `3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / COIN;
        let frac = self.0 % COIN;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let mut digits = [0u8; 8];
        let mut x = frac;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (x % 10) as u8;
            x /= 10;
        }
        let mut end = 8;
        while digits[end - 1] == b'0' {
            end -= 1;
        }
        let s = core::str::from_utf8(&digits[..end]).map_err(|_| fmt::Error)?;
        write!(f, "{whole}.{s}")
    }
}

/// A block height: genesis is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl Height {
    pub const GENESIS: Height = Height(0);

    pub fn next(self) -> Height {
        Height(self.0.checked_add(1).expect("height cannot reach u64::MAX"))
    }

    /// The parent height; `None` for genesis.
    pub fn prev(self) -> Option<Height> {
        self.0.checked_sub(1).map(Height)
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn amount_cap_and_checked_arithmetic() {
        assert!(Amount::from_units(MAX_MONEY).is_some());
        assert!(Amount::from_units(MAX_MONEY + 1).is_none());
        assert_eq!(
            Amount::MAX.checked_add(Amount::from_units(1).unwrap()),
            None
        );
        assert_eq!(
            Amount::ZERO.checked_sub(Amount::from_units(1).unwrap()),
            None
        );
        assert_eq!(
            Amount::checked_sum([Amount::MAX, Amount::ZERO]),
            Some(Amount::MAX)
        );
    }

    #[test]
    fn amount_text_round_trip() {
        for (text, units) in [("12.5", 1_250_000_000), ("0.00000001", 1), ("3", 3 * COIN)] {
            let a = Amount::parse_coins(text).unwrap();
            assert_eq!(a.units(), units);
            assert_eq!(a.to_string(), text);
        }
        for bad in ["", ".", "1.000000001", "-1", "1e5", "210000001", "1..2"] {
            assert_eq!(Amount::parse_coins(bad), None, "{bad}");
        }
    }
}
