//! What an outbox does before its process exits: write out what it can within a deadline, give
//! up on the rest (it comes back, to be handed on), and settle connections whose receivers have
//! already gone.

use super::*;

impl Outbox {
    /// Write out everything buffered, waiting up to `deadline` (used before a process exits).
    pub(crate) fn flush_all(&mut self, deadline: Instant) {
        self.dirty.clear();
        for (to, peer) in self.peers.iter_mut() {
            loop {
                if let Err(e) = peer.flush() {
                    log::debug!("could not deliver pending messages to {to}: {e}");
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if peer.unwritten() == 0 || left.is_zero() {
                    break;
                }
                crate::sys::wait_writable(&peer.stream, left);
            }
        }
    }

    /// Give up on what is still unwritten (before a process exits, once `flush_all` has waited
    /// long enough): each connection with bytes left is closed, and the messages not wholly
    /// written come back (a frame cut short never reaches its receiver's queue). What was
    /// written its receiver may still take: its copies stay in the out ring, for the admin.
    pub(crate) fn abandon_unwritten(&mut self) {
        let stuck: Vec<Address> = self
            .peers
            .iter()
            .filter(|(_, p)| p.unwritten() > 0)
            .map(|(to, _)| to.clone())
            .collect();
        for to in stuck {
            let Some(mut peer) = self.peers.remove(&to) else {
                continue;
            };
            let _ = self.registry.deregister(&mut peer.stream);
            self.by_token.remove(&peer.token);
            log::warn!(
                "{} bytes to {to} could not be written before this process ended; they are returned",
                peer.unwritten()
            );
            let returned = peer.returned(&to, peer.wframe, peer.wframe_seq, 0);
            self.returns.extend(returned);
        }
    }

    /// Work out what comes back from every connection whose receiver has already gone, without
    /// waiting for its event (used before a process exits, when no more events will be read).
    pub(crate) fn settle_ended(&mut self) {
        let ended: Vec<Address> = self
            .peers
            .iter()
            .filter(|(_, p)| crate::sys::peer_closed(&p.stream))
            .map(|(to, _)| to.clone())
            .collect();
        for to in ended {
            self.ended(&to);
        }
    }
}
