//! Connections: opening and closing them, bans, and applying verdicts about a peer's
//! conduct (`docs/PROTOCOL.md` §9).

use alloc::string::{String, ToString};

use crate::validation::Conduct;
use crate::wire::{Message, Notice};

use super::{
    BAN_MS, BAN_SCORE, DisconnectReason, Event, MAX_BANS, Node, Offence, Output, Peer, PeerId,
};

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
        self.peers.insert(
            peer,
            Peer::new(outbound, remote, self.now_ms, challenge, feeler),
        );
        let hello = self.hello(challenge);
        self.send(peer, &hello);
    }

    pub(super) fn on_disconnected(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.remove(&peer) {
            if p.established {
                self.event(Event::PeerDisconnected { peer });
            }
            self.after_peer_removed(peer, p);
            self.start_sync();
        }
    }

    /// Hands what a closed connection was doing for us to other peers.
    pub(super) fn after_peer_removed(&mut self, peer: PeerId, p: Peer) {
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
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
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

    fn banned(&mut self, remote: &str) -> bool {
        match self.bans.get(remote) {
            Some(&until) if until > self.now_ms => true,
            Some(_) => {
                self.bans.remove(remote);
                false
            }
            None => false,
        }
    }

    fn ban(&mut self, remote: String) {
        self.bans.insert(remote, self.now_ms + BAN_MS);
        while self.bans.len() > MAX_BANS {
            let soonest = self
                .bans
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(r, _)| r.clone());
            match soonest {
                Some(r) => {
                    self.bans.remove(&r);
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
