//! Misbehaviour the node judges itself: each kind with its verdict and the reason it gives
//! the peer. These are the rows of `docs/PROTOCOL.md` §9.4 "Connections and messages" that
//! cost a peer something; rejected headers, blocks and transactions carry their verdicts
//! from validation instead.

use alloc::format;
use alloc::string::{String, ToString};

use crate::primitives::{BlockHash, Txid};
use crate::validation::Conduct;
use crate::wire::WireError;

use super::{DisconnectReason, GETHEADERS_TIMEOUT_PENALTY, STALL_PENALTY};

/// A kind of misbehaviour by a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Offence {
    /// A message that does not decode: empty, unknown type, above its cap, malformed.
    Undecodable(WireError),
    /// A message other than `hello`, `auth` or `notice` before the handshake.
    MessageBeforeHandshake,
    SecondHello,
    AuthBeforeHello,
    SecondAuth,
    /// An `auth` whose signature does not prove the node id.
    BadAuth,
    /// A `nodes` message that answers nothing with more records than a forward holds.
    UnsolicitedNodes,
    /// A relay record whose signature does not verify (or that claims too long a life), in a
    /// `nodes` message or a `hello`: honest nodes check records before passing them on.
    ForgedRecord,
    /// A relay record that expired more than the clock grace ago.
    ExpiredRecord,
    /// `headers` attaching to nothing we know, beyond the few allowed in a row.
    UnconnectingHeaders,
    /// `headers` that do not link to each other.
    HeadersNotAChain,
    /// More low-work headers held for one peer than it may have pending.
    TooManyPendingHeaders,
    /// An answer to `getheaders` that ends without the work the peer claimed.
    UnbackedWorkClaim,
    /// A `getheaders` not answered in time.
    HeadersTimeout,
    /// A `getheaders` to a peer believed to have more work than ours not answered in time.
    ClaimNotBacked,
    /// Block requests timing out (once per tick at which any do).
    BlockRequestsTimedOut,
    /// A block nobody asked this peer for (and not late).
    UnsolicitedBlock(BlockHash),
    /// A transaction nobody asked this peer for (and not late).
    UnsolicitedTx(Txid),
    /// A `cmpctblock` that breaks its own rules (no coinbase first, prefilled indexes out of
    /// order or beyond the block, too many transactions) or whose header lacks its work.
    BadCompactBlock(String),
    /// A `getblocktxn` whose indexes are not increasing or go beyond the block.
    BadGetBlockTxn(BlockHash),
    /// A `blocktxn` that answers no request of ours, or whose transactions are not the ones
    /// the short ids named.
    WrongBlockTxn(BlockHash),
}

impl Offence {
    /// What it costs the peer.
    pub(super) fn conduct(&self) -> Conduct {
        match self {
            Offence::Undecodable(_)
            | Offence::MessageBeforeHandshake
            | Offence::SecondHello
            | Offence::AuthBeforeHello
            | Offence::SecondAuth
            | Offence::BadAuth
            | Offence::HeadersNotAChain
            | Offence::TooManyPendingHeaders
            | Offence::UnbackedWorkClaim
            | Offence::ClaimNotBacked
            | Offence::BadCompactBlock(_) => Conduct::Disconnect,
            Offence::ForgedRecord => Conduct::Penalise(50),
            Offence::ExpiredRecord => Conduct::Penalise(10),
            Offence::UnsolicitedNodes
            | Offence::UnconnectingHeaders
            | Offence::UnsolicitedBlock(_) => Conduct::Penalise(20),
            Offence::HeadersTimeout => Conduct::Penalise(GETHEADERS_TIMEOUT_PENALTY),
            Offence::BlockRequestsTimedOut => Conduct::Penalise(STALL_PENALTY),
            Offence::UnsolicitedTx(_) => Conduct::Penalise(10),
            Offence::BadGetBlockTxn(_) => Conduct::Penalise(20),
            Offence::WrongBlockTxn(_) => Conduct::Penalise(50),
        }
    }

    /// Why, as the peer is told in a `notice` and the UI in an event.
    pub(super) fn reason(&self) -> String {
        match self {
            Offence::Undecodable(e) => e.to_string(),
            Offence::MessageBeforeHandshake => String::from("message before handshake"),
            Offence::SecondHello => String::from("second hello"),
            Offence::AuthBeforeHello => String::from("auth before hello"),
            Offence::SecondAuth => String::from("second auth"),
            Offence::BadAuth => DisconnectReason::BadAuth.to_string(),
            Offence::UnsolicitedNodes => String::from("unsolicited node list"),
            Offence::ForgedRecord => crate::record::RecordError::Forged.to_string(),
            Offence::ExpiredRecord => crate::record::RecordError::Expired.to_string(),
            Offence::UnconnectingHeaders => String::from("headers do not connect"),
            Offence::HeadersNotAChain => String::from("headers are not a chain"),
            Offence::TooManyPendingHeaders => String::from("too many low-work headers"),
            Offence::UnbackedWorkClaim => String::from("claimed more work than its headers show"),
            Offence::HeadersTimeout => String::from("headers request timed out"),
            Offence::ClaimNotBacked => String::from("claimed work not shown in time"),
            Offence::BlockRequestsTimedOut => String::from("block requests timed out"),
            Offence::UnsolicitedBlock(hash) => format!("unsolicited block {hash}"),
            Offence::UnsolicitedTx(txid) => format!("unsolicited transaction {txid}"),
            Offence::BadCompactBlock(why) => format!("bad compact block: {why}"),
            Offence::BadGetBlockTxn(hash) => format!("bad getblocktxn for {hash}"),
            Offence::WrongBlockTxn(hash) => format!("wrong blocktxn for {hash}"),
        }
    }

    /// The reason a connection is closed for it: breaking the protocol's grammar or order
    /// and failing the id proof are named as such, everything else is misbehaviour.
    pub(super) fn disconnect_reason(&self) -> DisconnectReason {
        match self {
            Offence::Undecodable(_)
            | Offence::MessageBeforeHandshake
            | Offence::SecondHello
            | Offence::AuthBeforeHello
            | Offence::SecondAuth => DisconnectReason::Protocol(self.reason()),
            Offence::BadAuth => DisconnectReason::BadAuth,
            _ => DisconnectReason::Misbehaved(self.reason()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use alloc::vec::Vec;

    /// Every offence, its verdict, and the first column of its row in PROTOCOL.md §9.4.
    fn table() -> Vec<(Offence, Conduct, &'static str)> {
        let h = BlockHash::from_bytes([7; 32]);
        let t = Txid::from_bytes([7; 32]);
        let undecodable = crate::wire::Message::from_bytes(&[]).expect_err("empty is refused");
        alloc::vec![
            (
                Offence::Undecodable(undecodable),
                Conduct::Disconnect,
                "Message that does not decode: empty, unknown type, above its cap, malformed",
            ),
            (
                Offence::MessageBeforeHandshake,
                Conduct::Disconnect,
                "Message other than `hello`/`auth`/`notice` before the handshake",
            ),
            (Offence::SecondHello, Conduct::Disconnect, HANDSHAKE_ROW),
            (Offence::AuthBeforeHello, Conduct::Disconnect, HANDSHAKE_ROW),
            (Offence::SecondAuth, Conduct::Disconnect, HANDSHAKE_ROW),
            (Offence::BadAuth, Conduct::Disconnect, HANDSHAKE_ROW),
            (
                Offence::UnsolicitedNodes,
                Conduct::Penalise(20),
                "Unsolicited `nodes` (not an answer, §5.3) with more than 10 records",
            ),
            (
                Offence::ForgedRecord,
                Conduct::Penalise(50),
                "A relay record (in `nodes` or `hello`) whose signature does not verify or that \
                 claims a life over 24 h",
            ),
            (
                Offence::ExpiredRecord,
                Conduct::Penalise(10),
                "A relay record in `nodes` that expired more than 10 min ago",
            ),
            (
                Offence::UnconnectingHeaders,
                Conduct::Penalise(20),
                "`headers` attaching to nothing we know: the 9th in a row and each after it",
            ),
            (
                Offence::HeadersNotAChain,
                Conduct::Disconnect,
                "`headers` whose headers do not link to each other",
            ),
            (
                Offence::TooManyPendingHeaders,
                Conduct::Disconnect,
                "More than 40,000 pending low-work headers from one peer",
            ),
            (
                Offence::UnbackedWorkClaim,
                Conduct::Disconnect,
                "An answer to `getheaders` that ends without showing the work the peer was \
                 believed to have",
            ),
            (
                Offence::HeadersTimeout,
                Conduct::Penalise(10),
                "A `getheaders` not answered within 30 s",
            ),
            (
                Offence::ClaimNotBacked,
                Conduct::Disconnect,
                "A `getheaders` not answered within 30 s while the peer is believed to have \
                 more work than our best header",
            ),
            (
                Offence::BlockRequestsTimedOut,
                Conduct::Penalise(10),
                "Block requests timing out (once per tick at which any do)",
            ),
            (
                Offence::UnsolicitedBlock(h),
                Conduct::Penalise(20),
                "Unsolicited `block` (not requested from that peer, and not late)",
            ),
            (
                Offence::UnsolicitedTx(t),
                Conduct::Penalise(10),
                "Unsolicited `tx` (not requested from that peer, and not late)",
            ),
            (
                Offence::BadCompactBlock(String::from("x")),
                Conduct::Disconnect,
                "A `cmpctblock` without the coinbase prefilled first, with prefilled indexes out \
                 of order or beyond the block, with more transactions than a block may hold, or \
                 whose header fails its proof of work",
            ),
            (
                Offence::BadGetBlockTxn(h),
                Conduct::Penalise(20),
                "A `getblocktxn` whose indexes are not strictly increasing or go beyond the block",
            ),
            (
                Offence::WrongBlockTxn(h),
                Conduct::Penalise(50),
                "A `blocktxn` that answers no `getblocktxn` of ours, or whose transactions do not \
                 match the short ids they fill",
            ),
        ]
    }

    const HANDSHAKE_ROW: &str =
        "Second `hello`; `auth` before `hello`; second `auth`; bad `auth` signature";

    /// The doc's spelling of a verdict.
    fn spelled(c: Conduct) -> String {
        match c {
            Conduct::Ignore => String::from("ignored"),
            Conduct::Penalise(n) => format!("Penalise({n})"),
            Conduct::Disconnect => String::from("Disconnect"),
        }
    }

    #[test]
    fn each_offence_costs_what_the_table_says() {
        for (offence, conduct, _) in table() {
            assert_eq!(offence.conduct(), conduct, "{offence:?}");
        }
    }

    #[test]
    fn the_table_is_protocol_section_9_4() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        let start = doc.find("### 9.4").expect("PROTOCOL.md has §9.4");
        let end = start + doc[start..].find("\n## ").expect("a section follows §9");
        let section = &doc[start..end];
        for (offence, conduct, row) in table() {
            let line = format!("| {row} | {} |", spelled(conduct));
            assert!(
                section.lines().any(|l| l == line),
                "{offence:?}: PROTOCOL.md §9.4 has no row\n{line}"
            );
        }
    }

    #[test]
    fn protocol_breaches_close_with_their_own_reason() {
        for (offence, conduct, _) in table() {
            let closing = offence.disconnect_reason();
            match &offence {
                Offence::BadAuth => assert_eq!(closing, DisconnectReason::BadAuth),
                Offence::Undecodable(_)
                | Offence::MessageBeforeHandshake
                | Offence::SecondHello
                | Offence::AuthBeforeHello
                | Offence::SecondAuth => {
                    assert_eq!(closing, DisconnectReason::Protocol(offence.reason()));
                    assert_eq!(conduct, Conduct::Disconnect);
                }
                _ => assert_eq!(closing, DisconnectReason::Misbehaved(offence.reason())),
            }
        }
    }

    #[test]
    fn reasons_name_the_offence() {
        let h = BlockHash::from_bytes([7; 32]);
        assert_eq!(
            Offence::UnsolicitedBlock(h).reason(),
            format!("unsolicited block {h}")
        );
        assert_eq!(Offence::BadAuth.reason(), "node id proof failed");
        let e = crate::wire::Message::from_bytes(&[0xff]).expect_err("unknown type");
        assert_eq!(Offence::Undecodable(e.clone()).reason(), e.to_string());
    }
}
