//! SHA-256d and the 32-byte hash type used for block ids, transaction ids and merkle nodes.

use core::fmt;
use sha2::{Digest, Sha256};

/// A 32-byte SHA-256d digest. Shown as hex in byte order; for proof of work the bytes are
/// read as a big-endian integer, so a block hash that meets a hard target starts with zeros.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    pub const ZERO: Hash256 = Hash256([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, HexError> {
        let mut out = [0u8; 32];
        decode_hex_into(s, &mut out)?;
        Ok(Hash256(out))
    }

    pub fn to_hex(&self) -> alloc::string::String {
        to_hex(&self.0)
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// SHA-256 of SHA-256 of `data`.
pub fn sha256d(data: &[u8]) -> Hash256 {
    let first = Sha256::digest(data);
    Hash256(Sha256::digest(first).into())
}

/// SHA-256d over several parts, as if concatenated.
pub fn sha256d_parts(parts: &[&[u8]]) -> Hash256 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let first = h.finalize();
    Hash256(Sha256::digest(first).into())
}

/// A hex string that did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HexError {
    /// The string has the wrong number of digits for the value.
    Length { expected: usize, got: usize },
    /// A character that is not a hex digit.
    Digit { position: usize },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::Length { expected, got } => {
                write!(f, "expected {expected} hex digits, got {got}")
            }
            HexError::Digit { position } => write!(f, "not a hex digit at position {position}"),
        }
    }
}

impl core::error::Error for HexError {}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> alloc::string::String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = alloc::string::String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decodes exactly `out.len()` bytes of hex.
pub fn decode_hex_into(s: &str, out: &mut [u8]) -> Result<(), HexError> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return Err(HexError::Length {
            expected: out.len() * 2,
            got: b.len(),
        });
    }
    fn nibble(c: u8, position: usize) -> Result<u8, HexError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(HexError::Digit { position }),
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(b[2 * i], 2 * i)? << 4) | nibble(b[2 * i + 1], 2 * i + 1)?;
    }
    Ok(())
}

/// Decodes hex of any even length.
pub fn decode_hex(s: &str) -> Result<alloc::vec::Vec<u8>, HexError> {
    if !s.len().is_multiple_of(2) {
        return Err(HexError::Length {
            expected: s.len() + 1,
            got: s.len(),
        });
    }
    let mut v = alloc::vec![0u8; s.len() / 2];
    decode_hex_into(s, &mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_of_empty_matches_known_value() {
        // SHA-256d("") is a widely published constant.
        assert_eq!(
            sha256d(b"").to_hex(),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
        );
    }

    #[test]
    fn parts_equal_concatenation() {
        assert_eq!(sha256d_parts(&[b"ab", b"c"]), sha256d(b"abc"));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = sha256d(b"x");
        assert_eq!(Hash256::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(
            Hash256::from_hex("00"),
            Err(HexError::Length {
                expected: 64,
                got: 2
            })
        );
        let mut bad = h.to_hex();
        bad.replace_range(3..4, "g");
        assert_eq!(
            Hash256::from_hex(&bad),
            Err(HexError::Digit { position: 3 })
        );
    }
}
