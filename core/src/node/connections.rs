//! Connections: opening and closing them, bans, and applying verdicts about a peer's
//! conduct (`docs/PROTOCOL.md` §9).

use alloc::format;
use alloc::string::{String, ToString};

use crate::store::ChangeSet;
use crate::validation::Conduct;
use crate::wire::{Message, Notice};

use super::{
    BAN_MS, BAN_SCORE, DisconnectReason, Event, MAX_BANS, Node, Offence, Output, Peer, PeerId,
    SCORE_DECAY_MS,
};

/// What bans, per-address limits and remembered scores apply to for a connection's remote
/// string: an IPv6 address stands for its /64 (`2001:db8:1:2::/64`, lower-case hex, no
/// leading zeros), an IPv4-mapped IPv6 address for the IPv4 address, anything else (an
/// IPv4 address, a dialed URL) for itself. Brackets around an IPv6 address are ignored.
pub fn ban_key(remote: &str) -> String {
    let host = remote
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(remote);
    match host.parse::<core::net::Ipv6Addr>() {
        Ok(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => String::from(remote),
    }
}

impl Node {
    pub(super) fn on_connected(&mut self, peer: PeerId, outbound: bool, remote: String) {
        if outbound {
            self.dialing.remove(&remote);
        }
        if self.banned(&remote) {
            self.outputs.push_back(Output::Disconnect {
                peer,
                reason: DisconnectReason::Banned,
            });
            return;
        }
        let inbound = self.peers.values().filter(|p| !p.outbound).count();
        if !outbound && inbound >= self.config.max_inbound {
            self.outputs.push_back(Output::Disconnect {
                peer,
                reason: DisconnectReason::TooManyPeers,
            });
            return;
        }
        let challenge = self.new_challenge();
        let feeler = outbound && self.feelers.remove(&remote);
        let dialed = outbound.then(|| remote.clone());
        let mut p = Peer::new(outbound, remote, self.now_ms, challenge, feeler);
        // Secret to the peer (our identity seed), distinct per connection.
        let salt = crate::hash::sha256d_parts(&[
            b"tabcoin/peer-salt",
            &self.config.identity_seed,
            &challenge,
        ]);
        p.set_salt(u64::from_le_bytes(
            salt.0[..8].try_into().expect("a hash has 32 bytes"),
        ));
        // A score earned before is not reset by reconnecting: it goes on decaying.
        if let Some((score, at)) = self.scores.remove(&ban_key(&p.remote)) {
            p.score = score;
            p.score_ms = at;
            p.decay_score(self.now_ms);
        }
        self.peers.insert(peer, p);
        let hello = self.hello(challenge, dialed);
        self.send(peer, &hello);
    }

    pub(super) fn on_disconnected(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.remove(&peer) {
            if p.established {
                self.event(Event::PeerDisconnected { peer });
            } else if p.outbound {
                // Closed by the other side before its handshake completed (a URL that is not
                // the node's own, say): backed off like a failed dial, not redialed at once.
                self.book.dial_failed(&p.remote, self.now_ms);
            }
            self.after_peer_removed(peer, p);
            self.start_sync();
        }
    }

    /// Hands what a closed connection was doing for us to other peers.
    pub(super) fn after_peer_removed(&mut self, peer: PeerId, mut p: Peer) {
        p.decay_score(self.now_ms);
        if p.score > 0 {
            self.remember_score(ban_key(&p.remote), p.score, p.score_ms);
        }
        if p.outbound {
            self.dialing.remove(&p.remote);
        }
        for txid in p.txs_in_flight.keys() {
            if self.tx_asked.get(txid) == Some(&peer) {
                self.tx_asked.remove(txid);
                self.tx_fallback(*txid);
            }
        }
        if !p.blocks_in_flight.is_empty() {
            self.request_blocks();
        }
        if p.getheaders_sent.is_some() {
            self.start_sync();
        }
    }

    /// Closes a connection with a notice saying why; bans when the reason warrants.
    pub(super) fn drop_peer(&mut self, peer: PeerId, reason: DisconnectReason, ban: bool) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        let notice = Message::Notice(Notice {
            fatal: true,
            reason: truncate(reason.to_string()),
        });
        self.send(peer, &notice);
        if ban {
            self.stats.peers_banned += 1;
            self.ban(p.remote.clone());
            // A URL is banned and forgotten only if we dialed it: an inbound peer's
            // advertised URL is not proven to be its own.
            if p.outbound {
                self.book.forget(&p.remote);
            }
            self.event(Event::PeerBanned {
                peer,
                reason: reason.to_string(),
            });
        } else if p.outbound
            && matches!(
                reason,
                DisconnectReason::WrongNetwork
                    | DisconnectReason::UnsupportedVersion(_)
                    | DisconnectReason::HandshakeTimeout
                    | DisconnectReason::PingTimeout
            )
        {
            self.book.dial_failed(&p.remote, self.now_ms);
        }
        if p.established {
            self.event(Event::PeerDisconnected { peer });
        }
        self.outputs.push_back(Output::Disconnect { peer, reason });
        self.after_peer_removed(peer, p);
    }

    /// Applies what an offence costs the peer. One that costs the connection closes it
    /// with the offence's own reason (a protocol breach is named as one).
    pub(super) fn offence(&mut self, peer: PeerId, offence: Offence) {
        match offence.conduct() {
            Conduct::Disconnect => self.drop_peer(peer, offence.disconnect_reason(), true),
            conduct => self.conduct(peer, conduct, offence.reason()),
        }
    }

    /// Applies a verdict about a peer's conduct.
    pub(super) fn conduct(&mut self, peer: PeerId, conduct: Conduct, reason: String) {
        match conduct {
            Conduct::Ignore => {}
            Conduct::Disconnect => self.drop_peer(peer, DisconnectReason::Misbehaved(reason), true),
            Conduct::Penalise(n) => {
                let now = self.now_ms;
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                p.decay_score(now);
                p.score = p.score.saturating_add(u32::from(n));
                let score = p.score;
                if score >= BAN_SCORE {
                    self.drop_peer(peer, DisconnectReason::Misbehaved(reason), true);
                } else {
                    self.event(Event::PeerPenalised {
                        peer,
                        reason: reason.clone(),
                        score,
                    });
                    self.send(
                        peer,
                        &Message::Notice(Notice {
                            fatal: false,
                            reason: truncate(reason),
                        }),
                    );
                }
            }
        }
    }

    /// Whether `remote` (an address or a dialed URL) is banned, by its [`ban_key`].
    pub(super) fn banned(&mut self, remote: &str) -> bool {
        self.expire_bans();
        self.bans.contains_key(&ban_key(remote))
    }

    /// Bans `remote`'s [`ban_key`] for [`BAN_MS`] and has the host persist it.
    fn ban(&mut self, remote: String) {
        let key = ban_key(&remote);
        let until = self.now_ms + BAN_MS;
        self.scores.remove(&key);
        self.bans.insert(key.clone(), until);
        let mut changes = ChangeSet::default();
        changes.bans.insert(key, Some(until));
        while self.bans.len() > MAX_BANS {
            let soonest = self
                .bans
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(r, _)| r.clone());
            match soonest {
                Some(r) => {
                    self.bans.remove(&r);
                    changes.bans.insert(r, None);
                }
                None => break,
            }
        }
        self.outputs.push_back(Output::Persist(changes));
    }

    /// Forgets bans that have run out, and has the host forget them too.
    pub(super) fn expire_bans(&mut self) {
        let now = self.now_ms;
        let expired: alloc::vec::Vec<String> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        let mut changes = ChangeSet::default();
        for k in expired {
            self.bans.remove(&k);
            changes.bans.insert(k, None);
        }
        self.outputs.push_back(Output::Persist(changes));
    }

    /// Keeps the score of a closed connection for its address group, so reconnecting does
    /// not reset it; forgotten once it has decayed to zero. At most [`MAX_BANS`] are kept
    /// (the lowest goes first).
    fn remember_score(&mut self, key: String, score: u32, at: u64) {
        self.scores.insert(key, (score, at));
        let now = self.now_ms;
        self.scores
            .retain(|_, (s, at)| u64::from(*s) * SCORE_DECAY_MS > now.saturating_sub(*at));
        while self.scores.len() > MAX_BANS {
            let lowest = self
                .scores
                .iter()
                .min_by_key(|(_, (s, _))| *s)
                .map(|(k, _)| k.clone());
            match lowest {
                Some(k) => {
                    self.scores.remove(&k);
                }
                None => break,
            }
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > crate::wire::MAX_REASON {
        let mut end = crate::wire::MAX_REASON;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::ban_key;

    #[test]
    fn ipv6_addresses_are_grouped_by_their_64() {
        assert_eq!(ban_key("2001:db8:1:2::5"), "2001:db8:1:2::/64");
        assert_eq!(ban_key("[2001:0DB8:1:2:ffff::9]"), "2001:db8:1:2::/64");
        assert_eq!(ban_key("2001:db8:1:3::5"), "2001:db8:1:3::/64");
        assert_eq!(ban_key("::1"), "0:0:0:0::/64");
        assert_eq!(ban_key("::ffff:10.0.0.7"), "10.0.0.7");
        assert_eq!(ban_key("10.0.0.7"), "10.0.0.7");
        assert_eq!(
            ban_key("ws://[2001:db8::1]:80/ws"),
            "ws://[2001:db8::1]:80/ws"
        );
    }
}
