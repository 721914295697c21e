//! Relay records: a relay's own signed, expiring advertisement of where it can be dialed
//! (`docs/PROTOCOL.md` §3.3, §5). A relay signs its record with its node key; everyone
//! else forwards it byte for byte and checks it on receipt, so nobody can advertise a URL
//! under another node's id, change a record in transit, or keep an old one alive past its
//! expiry. The same byte layout is used on the wire, in `ChangeSet`s and in every store.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::encode::{Decode, DecodeError, Encode, Reader, put_var_bytes};
use crate::hash::{Hash256, sha256d_parts};
use crate::primitives::BlockHash;
use crate::sig::{self, Keypair, PublicKey, Signature};

/// Longest relay URL.
pub const MAX_URL: usize = 200;
/// Longest time a record may be valid for, from its signing time (seconds).
pub const RECORD_LIFETIME_S: u64 = 24 * 60 * 60;
/// A relay signs a fresh record when its current one is this old (seconds).
pub const RECORD_REFRESH_S: u64 = 60 * 60;
/// Clock difference tolerated between nodes (seconds): a record expired by less than this
/// is dropped without blaming its sender, one signed less than this ahead of our clock is
/// accepted.
pub const RECORD_CLOCK_GRACE_S: u64 = 10 * 60;
/// Bytes of one encoded record at most: id, URL (2-byte length), two times, signature.
pub const MAX_RECORD_SIZE: usize = 32 + 2 + MAX_URL + 8 + 8 + 64;

const RECORD_TAG: &[u8] = b"tabcoin/record/v1";

/// A dialable relay, as it advertised itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// The relay's node key, which signed the record.
    pub node_id: PublicKey,
    pub url: String,
    /// Seconds since the epoch when the relay signed the record (last vouched for itself).
    pub last_seen: u64,
    /// Seconds since the epoch after which the record is no longer valid.
    pub expires: u64,
    /// ed25519 by `node_id` over [`NodeRecord::signed_message`].
    pub signature: Signature,
}

/// Why a record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The signature does not verify, or the record claims a longer life than allowed: only
    /// a broken or hostile sender passes such a record on.
    Forged,
    /// Expired by more than the clock grace.
    Expired,
    /// Expired, but by less than the clock grace: the sender's clock may differ from ours.
    JustExpired,
    /// Signed further ahead of our clock than the grace allows.
    FromTheFuture,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordError::Forged => "forged relay record",
            RecordError::Expired => "expired relay record",
            RecordError::JustExpired => "relay record just expired",
            RecordError::FromTheFuture => "relay record from the future",
        })
    }
}

impl core::error::Error for RecordError {}

impl NodeRecord {
    /// A record for `url` signed by `key` at `now_s`, valid for [`RECORD_LIFETIME_S`].
    pub fn sign(key: &Keypair, network: &BlockHash, url: String, now_s: u64) -> NodeRecord {
        let mut rec = NodeRecord {
            node_id: key.public_key(),
            url,
            last_seen: now_s,
            expires: now_s.saturating_add(RECORD_LIFETIME_S),
            signature: Signature([0; 64]),
        };
        rec.signature = key.sign(&rec.signed_message(network).0);
        rec
    }

    /// A placeholder for a URL the host configured, whose node is not known yet. It carries
    /// no signature and is never sent to anyone (it expired at time zero).
    pub fn unsigned(url: String) -> NodeRecord {
        NodeRecord {
            node_id: PublicKey([0; 32]),
            url,
            last_seen: 0,
            expires: 0,
            signature: Signature([0; 64]),
        }
    }

    /// What the relay signs: the network (no record is valid on another), its id, the URL
    /// and both times.
    pub fn signed_message(&self, network: &BlockHash) -> Hash256 {
        let mut url = Vec::with_capacity(self.url.len() + 2);
        put_var_bytes(&mut url, self.url.as_bytes());
        sha256d_parts(&[
            RECORD_TAG,
            network.as_bytes(),
            &self.node_id.0,
            &url,
            &self.last_seen.to_le_bytes(),
            &self.expires.to_le_bytes(),
        ])
    }

    /// Whether the record may still be sent at `now_s`.
    pub fn is_live(&self, now_s: u64) -> bool {
        self.expires > now_s
    }

    /// Checks the record at `now_s`: its lifetime, its times against our clock (with
    /// [`RECORD_CLOCK_GRACE_S`]) and its signature (the single rule of `sig::verify`).
    pub fn verify(&self, network: &BlockHash, now_s: u64) -> Result<(), RecordError> {
        if self.expires <= self.last_seen
            || self.expires - self.last_seen > RECORD_LIFETIME_S
            || sig::verify(
                &self.node_id,
                &self.signed_message(network).0,
                &self.signature,
            )
            .is_err()
        {
            return Err(RecordError::Forged);
        }
        if self.expires <= now_s {
            return Err(if now_s - self.expires < RECORD_CLOCK_GRACE_S {
                RecordError::JustExpired
            } else {
                RecordError::Expired
            });
        }
        if self.last_seen > now_s.saturating_add(RECORD_CLOCK_GRACE_S) {
            return Err(RecordError::FromTheFuture);
        }
        Ok(())
    }
}

/// The one byte layout of a node record, on the wire (`hello`, `nodes`) and in every store:
/// the node id (32 bytes), the url (varint length, UTF-8, at most [`MAX_URL`] bytes),
/// `last_seen` and `expires` (u64 little-endian each) and the signature (64 bytes).
impl Encode for NodeRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.node_id.0);
        put_var_bytes(out, self.url.as_bytes());
        out.extend_from_slice(&self.last_seen.to_le_bytes());
        out.extend_from_slice(&self.expires.to_le_bytes());
        out.extend_from_slice(&self.signature.0);
    }
}

impl Decode for NodeRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeRecord {
            node_id: PublicKey(r.array()?),
            url: r.string("node url", MAX_URL)?,
            last_seen: r.u64()?,
            expires: r.u64()?,
            signature: Signature(r.array()?),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use alloc::string::ToString;

    fn net() -> BlockHash {
        crate::params::Params::test().genesis_hash()
    }

    fn rec() -> NodeRecord {
        NodeRecord::sign(
            &Keypair::from_seed(&[3; 32]),
            &net(),
            "ws://a.example/ws".to_string(),
            1_000_000,
        )
    }

    #[test]
    fn a_signed_record_verifies_and_round_trips() {
        let r = rec();
        assert_eq!(r.verify(&net(), 1_000_000), Ok(()));
        assert_eq!(NodeRecord::decode(&r.encode()).unwrap(), r);
        assert!(r.encode().len() <= MAX_RECORD_SIZE);
        let long = NodeRecord::sign(
            &Keypair::from_seed(&[3; 32]),
            &net(),
            "w".repeat(MAX_URL),
            1,
        );
        assert_eq!(long.encode().len(), MAX_RECORD_SIZE);
    }

    #[test]
    fn any_change_forges_it() {
        let other = crate::primitives::BlockHash::from_bytes([9; 32]);
        assert_eq!(rec().verify(&other, 1_000_000), Err(RecordError::Forged));
        let mut r = rec();
        r.url.push('x');
        assert_eq!(r.verify(&net(), 1_000_000), Err(RecordError::Forged));
        let mut r = rec();
        r.last_seen += 1;
        assert_eq!(r.verify(&net(), 1_000_000), Err(RecordError::Forged));
        let mut r = rec();
        r.node_id = Keypair::from_seed(&[4; 32]).public_key();
        assert_eq!(r.verify(&net(), 1_000_000), Err(RecordError::Forged));
        // A validly signed record may not claim a longer life than allowed.
        let key = Keypair::from_seed(&[3; 32]);
        let mut r = rec();
        r.expires = r.last_seen + RECORD_LIFETIME_S + 1;
        r.signature = key.sign(&r.signed_message(&net()).0);
        assert_eq!(r.verify(&net(), 1_000_000), Err(RecordError::Forged));
        assert_eq!(
            NodeRecord::unsigned("ws://b/ws".to_string()).verify(&net(), 5),
            Err(RecordError::Forged)
        );
    }

    #[test]
    fn time_is_checked_with_a_grace() {
        let r = rec();
        let end = r.expires;
        assert!(r.is_live(end - 1) && !r.is_live(end));
        assert_eq!(r.verify(&net(), end), Err(RecordError::JustExpired));
        assert_eq!(
            r.verify(&net(), end + RECORD_CLOCK_GRACE_S),
            Err(RecordError::Expired)
        );
        let early = r.last_seen - RECORD_CLOCK_GRACE_S;
        assert_eq!(r.verify(&net(), early), Ok(()));
        assert_eq!(r.verify(&net(), early - 1), Err(RecordError::FromTheFuture));
    }
}
