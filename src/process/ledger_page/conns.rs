//! The page's connection records: one slot per connection the process accepted (how far it has
//! taken each sender's messages) and one peer entry per connection it opened (how far it has
//! written, and to whom).

use super::*;

impl LedgerPage {
    /// Take slot `slot` for connection `conn` (the owner's free-slot list says it is free).
    pub(crate) fn open_slot(&self, slot: u32, conn: u64) {
        for w in [S_TAKEN, S_REFUSED, S_CLOSED, S_SETTLED] {
            self.words.store(slot_word(slot, w), 0);
        }
        // Written last: a reader that finds `conn` finds the other words reset.
        self.words.store(slot_word(slot, S_CONN), conn);
        if self.words.load(W_HIGH_WATER) <= slot as u64 {
            self.words.store(W_HIGH_WATER, slot as u64 + 1);
        }
    }

    /// The receiver has taken slot `slot`'s messages up to number `taken` (for a gateway, whose
    /// receivers take its streams' messages on another member; a process's own slots move as
    /// it queues messages, in `push`).
    pub(crate) fn set_taken(&self, slot: u32, taken: u64) {
        self.words.store(slot_word(slot, S_TAKEN), taken);
    }

    /// Slot `slot`'s messages up to number `seq` are settled (the owner handles a stream's
    /// messages in order).
    pub(crate) fn settled(&self, slot: u32, seq: u64) {
        self.words.store(slot_word(slot, S_SETTLED), seq);
    }

    /// Slot `slot`'s connection has ended: its `taken` is final (until the slot is reused).
    pub(crate) fn close_slot(&self, slot: u32) {
        self.words.store(slot_word(slot, S_CLOSED), 1);
    }

    /// The connection is refused after `after` messages: later ones will never be read.
    pub(crate) fn refused(&self, slot: u32, after: u64) {
        self.words.store(slot_word(slot, S_REFUSED), after + 1);
    }

    /// The slot of connection `conn`, if the receiver has opened one (and not reused it since).
    pub(crate) fn find(&self, conn: u64) -> Option<u32> {
        let high = (self.words.load(W_HIGH_WATER) as usize).min(SLOTS);
        (0..high as u32).find(|&s| self.words.load(slot_word(s, S_CONN)) == conn)
    }

    /// How far the receiver has got with the connection in `slot`.
    pub(crate) fn progress(&self, slot: u32) -> Progress {
        // `closed` and `refused` first: once either is seen, the `taken` read after it is
        // final.
        let closed = self.words.load(slot_word(slot, S_CLOSED)) != 0;
        let refused = self.words.load(slot_word(slot, S_REFUSED));
        Progress {
            settled: self.words.load(slot_word(slot, S_SETTLED)),
            taken: self.words.load(slot_word(slot, S_TAKEN)),
            refused_after: refused.checked_sub(1),
            closed,
        }
    }

    /// The progress of every connection this process had accepted (for the admin, when it has
    /// ended): each `conn` with its final `taken`.
    pub(crate) fn final_progress(&self) -> Vec<(u64, u64)> {
        let high = (self.words.load(W_HIGH_WATER) as usize).min(SLOTS);
        (0..high as u32)
            .map(|s| {
                (
                    self.words.load(slot_word(s, S_CONN)),
                    self.words.load(slot_word(s, S_TAKEN)),
                )
            })
            .filter(|&(conn, _)| conn != 0)
            .collect()
    }

    /// Record in peer entry `peer` an outgoing connection `conn` to the receiver at `to`.
    /// False if the address does not fit.
    pub(crate) fn open_peer(&self, peer: u32, conn: u64, to: &str) -> bool {
        let to = to.as_bytes();
        if to.len() > PEER_ADDRESS_BYTES || peer as usize >= PEERS {
            return false;
        }
        let mut padded = [0u8; PEER_ADDRESS_BYTES];
        padded[..to.len()].copy_from_slice(to);
        self.words
            .write_bytes(peer_word(peer, P_ADDRESS) * 8, &padded);
        self.words
            .store(peer_word(peer, P_ADDRESS_LEN), to.len() as u64);
        self.words.store(peer_word(peer, P_WRITTEN), 0);
        // Written last: a reader that finds `conn` finds the rest set.
        self.words.store(peer_word(peer, P_CONN), conn);
        true
    }

    /// No message after `seq` on peer entry `peer`'s connection is written, even in part (the
    /// owner says so before each write, so that a kill mid-write leaves it true).
    pub(crate) fn written(&self, peer: u32, seq: u64) {
        self.words.store(peer_word(peer, P_WRITTEN), seq);
    }

    /// Free peer entry `peer`.
    pub(crate) fn close_peer(&self, peer: u32) {
        self.words.store(peer_word(peer, P_CONN), 0);
    }

    /// What peer entry `peer` says, if it is in use.
    pub(crate) fn peer(&self, peer: u32) -> Option<PeerInfo> {
        if peer as usize >= PEERS {
            return None;
        }
        let conn = self.words.load(peer_word(peer, P_CONN));
        let len = self.words.load(peer_word(peer, P_ADDRESS_LEN)) as usize;
        if conn == 0 || len > PEER_ADDRESS_BYTES {
            return None;
        }
        Some(PeerInfo {
            conn,
            written: self.words.load(peer_word(peer, P_WRITTEN)),
            to: self.words.read_bytes(peer_word(peer, P_ADDRESS) * 8, len),
        })
    }
}
