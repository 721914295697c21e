//! Pruned peers (`docs/PROTOCOL.md` §3.2, §6.5): a peer whose `hello` says it keeps bodies
//! only from some height up is asked only for those. A body it dropped since its `hello`
//! is answered `notfound`, which is remembered per peer like any other (`Peer::lacks`).

use super::peer::Peer;
use crate::units::Height;

impl Peer {
    /// Whether the peer keeps the body of a block at `height`, as far as its `hello` said
    /// (the lowest height it keeps; 0 for a node that keeps every body).
    pub(super) fn holds_body(&self, height: Height) -> bool {
        self.hello.as_ref().is_none_or(|h| height >= h.kept_from)
    }
}
