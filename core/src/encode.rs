//! Canonical binary encoding.
//!
//! Every value has exactly one encoding. Integers of fixed width are little-endian; lengths and
//! counts are unsigned LEB128 varints in their shortest form; booleans and option tags are the
//! bytes 0 or 1; strings are UTF-8. Decoders check every declared length against a limit
//! *before* allocating, reject overlong varints, unknown tags and trailing bytes, so that
//! `encode(decode(b)) == b` for every `b` that decodes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    UnexpectedEnd { needed: usize, available: usize },
    /// Bytes remained after a complete value.
    TrailingBytes { remaining: usize },
    /// A varint used more bytes than its value needs, or overflowed 64 bits.
    NonCanonicalVarint,
    /// A declared length or count exceeds what this field allows.
    TooLong {
        field: &'static str,
        len: u64,
        max: u64,
    },
    /// A tag or flag byte with no meaning.
    InvalidTag { field: &'static str, tag: u8 },
    /// A string field that is not UTF-8.
    InvalidUtf8 { field: &'static str },
    /// A value outside its allowed range (for example an amount above the supply cap).
    OutOfRange { field: &'static str },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd { needed, available } => {
                write!(
                    f,
                    "unexpected end of input: needed {needed} bytes, {available} left"
                )
            }
            DecodeError::TrailingBytes { remaining } => {
                write!(f, "{remaining} trailing bytes after value")
            }
            DecodeError::NonCanonicalVarint => write!(f, "non-canonical varint"),
            DecodeError::TooLong { field, len, max } => {
                write!(f, "{field}: length {len} exceeds maximum {max}")
            }
            DecodeError::InvalidTag { field, tag } => write!(f, "{field}: invalid tag {tag}"),
            DecodeError::InvalidUtf8 { field } => write!(f, "{field}: invalid utf-8"),
            DecodeError::OutOfRange { field } => write!(f, "{field}: value out of range"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// A cursor over untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Shortest-form unsigned LEB128.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            let part = u64::from(byte & 0x7f);
            if i == 9 && byte > 1 {
                return Err(DecodeError::NonCanonicalVarint);
            }
            value |= part << (7 * i);
            if byte & 0x80 == 0 {
                // A zero final byte after the first means the value fitted in fewer bytes.
                if i > 0 && byte == 0 {
                    return Err(DecodeError::NonCanonicalVarint);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::NonCanonicalVarint)
    }

    /// A length or count, checked against `max` before anything is allocated for it.
    pub fn len(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        if len > max as u64 {
            return Err(DecodeError::TooLong {
                field,
                len,
                max: max as u64,
            });
        }
        Ok(len as usize)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn var_bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.len(field, max)?;
        self.bytes(n)
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let b = self.var_bytes(field, max)?;
        core::str::from_utf8(b)
            .map(String::from)
            .map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { field, tag }),
        }
    }

    /// A count-prefixed list of at most `max` items. Capacity is bounded by the bytes left so
    /// a lying count cannot make us reserve memory the input could never fill.
    pub fn list<T>(
        &mut self,
        field: &'static str,
        max: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.len(field, max)?;
        let mut v = Vec::with_capacity(n.min(self.remaining()));
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(v)
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(DecodeError::TrailingBytes { remaining }),
        }
    }
}

/// Appends the canonical varint of `v`.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Bytes [`put_varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).div_ceil(7).max(1)
}

/// Bytes [`put_var_bytes`] writes for `len` bytes.
pub fn var_bytes_len(len: usize) -> usize {
    varint_len(len as u64) + len
}

pub fn put_var_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A value with one canonical byte encoding.
pub trait Encode {
    fn encode_to(&self, out: &mut Vec<u8>);

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_to(&mut v);
        v
    }

    /// Size of the encoding in bytes.
    fn encoded_len(&self) -> usize {
        self.encode().len()
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a whole buffer: trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn varint_bytes(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varint_len_counts_what_put_varint_writes() {
        let mut edges = alloc::vec![0u64, u64::MAX];
        for bits in 1..64 {
            edges.extend([(1u64 << bits) - 1, 1u64 << bits]);
        }
        for v in edges {
            assert_eq!(varint_len(v), varint_bytes(v).len(), "{v}");
        }
        assert_eq!(var_bytes_len(300), 2 + 300);
    }

    #[test]
    fn varint_rejects_overlong_and_overflow() {
        assert_eq!(
            Reader::new(&[0x80, 0x00]).varint(),
            Err(DecodeError::NonCanonicalVarint)
        );
        assert_eq!(
            Reader::new(&[0x81, 0x00]).varint(),
            Err(DecodeError::NonCanonicalVarint)
        );
        let mut too_big = [0xffu8; 10];
        too_big[9] = 0x02;
        assert_eq!(
            Reader::new(&too_big).varint(),
            Err(DecodeError::NonCanonicalVarint)
        );
        let mut max = [0xffu8; 10];
        max[9] = 0x01;
        assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
        assert_eq!(
            Reader::new(&[0x80]).varint().unwrap_err(),
            DecodeError::UnexpectedEnd {
                needed: 1,
                available: 0
            }
        );
    }

    #[test]
    fn length_is_checked_before_allocation() {
        let mut b = varint_bytes(u64::MAX >> 1);
        b.push(0);
        let err = Reader::new(&b).list("items", 10, |r| r.u8()).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooLong {
                field: "items",
                max: 10,
                ..
            }
        ));
    }

    #[test]
    fn bool_and_utf8_are_strict() {
        assert_eq!(
            Reader::new(&[2]).bool("flag"),
            Err(DecodeError::InvalidTag {
                field: "flag",
                tag: 2
            })
        );
        assert_eq!(
            Reader::new(&[2, 0xc3, 0x28]).string("text", 10),
            Err(DecodeError::InvalidUtf8 { field: "text" })
        );
    }

    proptest! {
        #[test]
        fn varint_round_trip(v: u64) {
            let b = varint_bytes(v);
            let mut r = Reader::new(&b);
            prop_assert_eq!(r.varint().unwrap(), v);
            prop_assert!(r.finish().is_ok());
        }

        #[test]
        fn varint_decode_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 1..12)) {
            let mut r = Reader::new(&bytes);
            if let Ok(v) = r.varint() {
                let used = r.position();
                prop_assert_eq!(varint_bytes(v), bytes[..used].to_vec());
            }
        }
    }
}
