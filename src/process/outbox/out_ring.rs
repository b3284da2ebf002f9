//! The owner's out ring: copies of what it sent, for the admin if the owner dies first.

use super::*;

/// How often a sender whose out ring is full looks again for copies its receivers have taken.
pub(crate) const FULL_RING_LOOK: Duration = Duration::from_millis(1);

/// Send with `send`, which gives the outcome, or `None` if the owner's out ring was full of
/// copies its receivers had not taken. Then `look` takes in events for [`FULL_RING_LOOK`] and
/// drops what receivers have taken since ([`Outbox::trim_all`]), and the send is tried again,
/// for as long as a sender waits for a slow receiver ([`send_timeout`]).
pub(crate) fn send_when_out_ring_has_room<O>(
    owner: &mut O,
    to: &Address,
    mut send: impl FnMut(&mut O) -> Option<Result<Accepted>>,
    mut look: impl FnMut(&mut O) -> Result<()>,
) -> Result<Accepted> {
    let started = Instant::now();
    loop {
        if let Some(sent) = send(owner) {
            return sent;
        }
        let waited = started.elapsed();
        if waited >= send_timeout() {
            return Err(Error::Backpressure {
                to: to.clone(),
                waited,
            });
        }
        look(owner)?;
    }
}

/// The owner's side of its out ring: which entries are still held, and which peer entries
/// are in use.
pub(super) struct OutRing {
    pub(super) page: Arc<LedgerPage>,
    /// Entries not yet let go of the ring's front, in ring order: start, end, still held.
    pub(super) entries: VecDeque<(u64, u64, bool)>,
    /// The id of `entries[0]`.
    pub(super) first: u64,
    pub(super) free_peers: Vec<u32>,
    pub(super) next_peer: u32,
    /// Peer entries of ended connections, with how many of their copies are still to be
    /// handed on.
    pub(super) closing: HashMap<u32, usize>,
    /// The receiver of each peer entry in use.
    pub(super) receivers: HashMap<u32, Address>,
}

impl OutRing {
    pub(super) fn new(page: Arc<LedgerPage>) -> OutRing {
        OutRing {
            page,
            entries: VecDeque::new(),
            first: 0,
            free_peers: Vec::new(),
            next_peer: 0,
            closing: HashMap::new(),
            receivers: HashMap::new(),
        }
    }

    /// A peer entry for a new connection `conn` to `to`, if one is free and the address fits.
    pub(super) fn open_peer(&mut self, conn: u64, to: &Address) -> Option<Mark> {
        let peer = match self.free_peers.pop() {
            Some(p) => p,
            None if (self.next_peer as usize) < PEERS => {
                self.next_peer += 1;
                self.next_peer - 1
            }
            None => return None,
        };
        if !self.page.open_peer(peer, conn, to.as_str()) {
            self.free_peers.push(peer);
            return None;
        }
        self.receivers.insert(peer, to.clone());
        Some(Mark {
            page: self.page.clone(),
            peer,
        })
    }

    /// A connection has ended with `pending` copies still to be handed on: its peer entry is
    /// freed once they are.
    pub(super) fn closing(&mut self, peer: u32, pending: usize) {
        if pending == 0 {
            self.free_peer(peer);
        } else {
            self.closing.insert(peer, pending);
        }
    }

    pub(super) fn free_peer(&mut self, peer: u32) {
        self.page.close_peer(peer);
        self.receivers.remove(&peer);
        self.free_peers.push(peer);
    }

    /// One copy of an ended connection was handed on.
    pub(super) fn handed_on(&mut self, peer: u32) {
        if let Some(n) = self.closing.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.closing.remove(&peer);
                self.free_peer(peer);
            }
        }
    }

    /// Copy a frame's body into the ring. Returns its entry id, or `None` if the ring is full
    /// (of copies whose receivers have not taken them).
    pub(super) fn push(&mut self, peer: u32, conn: u64, seq: u64, body: &[u8]) -> Option<u64> {
        let (start, end) = self.page.push_out(peer, conn, seq, body)?;
        self.entries.push_back((start, end, true));
        Some(self.first + self.entries.len() as u64 - 1)
    }

    /// Make room: move the held entry at the ring's front (whose receiver is slow to take it)
    /// to its tail, so that the head can pass it. Returns the move (peer entry, sequence
    /// number, new id), or `None` if nothing can move.
    pub(super) fn rotate(&mut self) -> Option<(u32, u64, u64)> {
        let &(start, _, held) = self.entries.front()?;
        if !held {
            return None;
        }
        let entry = self.page.out_entry(start)?;
        let id = self.push(entry.peer, entry.conn, entry.seq, &entry.body)?;
        self.let_go(self.first);
        Some((entry.peer, entry.seq, id))
    }

    /// Entry `id` is no longer needed: move the ring's head past every entry let go at its
    /// front.
    pub(super) fn let_go(&mut self, id: u64) {
        self.mark_let_go(id);
        self.advance();
    }

    /// Entry `id` is no longer needed (the head moves on [`advance`](Self::advance)).
    pub(super) fn mark_let_go(&mut self, id: u64) {
        let Some(i) = id.checked_sub(self.first) else {
            return;
        };
        if let Some(e) = self.entries.get_mut(i as usize) {
            // At the front the head passes it at once: only an entry let go behind one still
            // held needs to say so itself.
            if e.2 && i > 0 {
                self.page.out_entry_let_go(e.0);
            }
            e.2 = false;
        }
    }

    /// Move the ring's head past every entry let go at its front.
    pub(super) fn advance(&mut self) {
        let mut moved = false;
        while self.entries.front().is_some_and(|e| !e.2) {
            self.entries.pop_front();
            self.first += 1;
            moved = true;
        }
        if moved {
            let head = match self.entries.front() {
                Some(e) => e.0,
                None => self.page.out_tail(),
            };
            self.page.out_let_go(head);
        }
    }
}

impl Outbox {
    /// The out ring had no room for the frame just added to `to`'s buffer at `at`: move the
    /// copies that hold its front to its tail and try again. If it is full of copies no
    /// receiver has taken, the frame is taken back out and the send refused.
    pub(super) fn mirror_when_out_ring_full(&mut self, to: &Address, at: usize) -> Result<()> {
        // Copies that receivers have taken since their streams were last trimmed go first.
        self.release_taken();
        let out = self.out.as_mut().expect("only with an out ring");
        let peer = self.peers.get_mut(to).expect("just sent to");
        let mark = peer.mark.as_ref().expect("mirrored").peer;
        if let Some(id) = out.push(mark, peer.conn, peer.next_seq, &peer.buf[at + 4..]) {
            peer.mirrored.push_back((peer.next_seq, id));
            return Ok(());
        }
        for _ in 0..out.entries.len() {
            let Some((peer_entry, seq, id)) = out.rotate() else {
                break;
            };
            if let Some(p) = out
                .receivers
                .get(&peer_entry)
                .and_then(|r| self.peers.get_mut(r))
                && let Some(m) = p.mirrored.iter_mut().find(|m| m.0 == seq)
            {
                m.1 = id;
            }
            let peer = self.peers.get_mut(to).expect("just sent to");
            let mark = peer.mark.as_ref().expect("mirrored").peer;
            if let Some(id) = out.push(mark, peer.conn, peer.next_seq, &peer.buf[at + 4..]) {
                peer.mirrored.push_back((peer.next_seq, id));
                return Ok(());
            }
        }
        let peer = self.peers.get_mut(to).expect("just sent to");
        peer.buf.truncate(at);
        self.out_ring_full = true;
        Err(Error::Backpressure {
            to: to.clone(),
            waited: std::time::Duration::ZERO,
        })
    }

    /// Let go of the out ring copies of every message its receiver has taken (read from the
    /// receivers' ledger pages), without touching the connections' buffers.
    pub(super) fn release_taken(&mut self) {
        for peer in self.peers.values_mut() {
            if let Some(taken) = peer.progress().map(|p| p.taken) {
                peer.let_go_to(taken, &mut self.out);
            }
        }
    }

    /// True if the last send was refused because the out ring was full of copies that
    /// receivers had not taken (see [`send_when_out_ring_has_room`]).
    pub(crate) fn out_ring_was_full(&self) -> bool {
        self.out_ring_full
    }
}
