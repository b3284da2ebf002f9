//! Outgoing message connections, one per receiver, each keeping a copy of every message until
//! the receiver has taken it into its queue ring.
//!
//! A send appends the message's frame to the connection's buffer and writes at once (or, in a
//! burst, when 32 KiB have gathered or the handler returns): it leaves while the handler still
//! runs. Written frames are not thrown away: they stay in the buffer until the receiver's
//! ledger page says they are taken (the receiver's ring keeps them from then on, see
//! `ledger_page`), and are then dropped from the front, a batch at a time. When the connection
//! ends (the receiver exited, was killed, or refused it), what the receiver had not taken comes
//! back as [`Returned`] messages for the owner to hand on as dead letters. So a message whose
//! send returned `Ok` is never lost because its receiver died.
//!
//! The copies are also in the owner's *out ring* (in its own ledger page), with a peer entry
//! per connection saying how far it is written: if the owner dies first, the admin finds there
//! what it had not handed over. A copy leaves the out ring when its receiver takes it, or once
//! the owner has handed it on as a dead letter (the dead letter names it, so that the admin
//! never returns it a second time).
//!
//! A receiver that keeps no ledger page (a program in another language may not) gets its
//! messages at most once: nothing is kept for it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

use crate::address::Address;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::process::conn::{connect, encode_sender_hello};
use crate::process::ledger_page::{LedgerPage, PEERS};

/// First token the outbox hands out; callers keep their own tokens below it.
pub(crate) const OUTBOX_TOKENS: usize = 1 << 40;

/// A connection with this many bytes buffered is written at once, even in batching mode.
pub(crate) const BATCH_BYTES: usize = 32 * 1024;

/// A send waits while more than this many bytes to its receiver are not yet written: the
/// receiver is not keeping up.
pub(crate) const WINDOW: usize = 1 << 20;

/// How long a send waits for a receiver that takes nothing before it fails: 30 s, or
/// `GREENROOM_SEND_TIMEOUT_MS`.
pub(crate) fn send_timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("GREENROOM_SEND_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&ms: &u64| ms <= 3_600_000)
            .map_or(Duration::from_secs(30), Duration::from_millis)
    })
}

/// Settled frames are dropped from a connection's buffer once this many bytes are kept.
const TRIM_BYTES: usize = 64 * 1024;

/// A message its receiver never took, back from a connection that ended: from whom, to whom.
/// It becomes a dead letter; once the owner has handed it on, it tells the outbox
/// ([`Outbox::handed_on`]) so that its copy leaves the out ring.
#[derive(Debug)]
pub(crate) struct Returned {
    pub(crate) from: Address,
    pub(crate) to: Address,
    pub(crate) msg: Message,
    /// Its connection and number there, if a copy is in the out ring: the dead letter names
    /// it.
    pub(crate) kept: Option<(u64, u64)>,
    /// Its out ring entry, and its connection's peer entry.
    mirror: Option<(u64, u32)>,
}

/// How a send was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Kept until the receiver takes it.
    Kept,
    /// The receiver keeps no ledger: delivered at most once, and counted as handled now.
    AtMostOnce,
}

/// Where the written-up-to mark of a connection goes.
struct Mark {
    page: Arc<LedgerPage>,
    peer: u32,
}

/// One receiver's connection.
struct Peer {
    token: Token,
    stream: UnixStream,
    from: Address,
    /// Frames from `base` on: first those written and not yet taken, then those not written.
    buf: Vec<u8>,
    base: usize,
    /// The sequence number of the frame at `base` (0 is the hello).
    base_seq: u64,
    /// Bytes written up to here.
    wpos: usize,
    /// The first frame not wholly written, and its sequence number.
    wframe: usize,
    wframe_seq: u64,
    /// The last frame the peer entry says may have been written.
    marked: u64,
    /// The sequence number the next frame gets.
    next_seq: u64,
    /// This connection's number, as its hello told the receiver.
    conn: u64,
    /// The receiver's ledger page, and this connection's slot in it once found.
    ledger: Option<LedgerPage>,
    slot: Option<u32>,
    /// The owner's peer entry for this connection, if its copies are in the out ring.
    mark: Option<Mark>,
    /// The out ring entries of the kept frames, by sequence number, oldest first.
    mirrored: VecDeque<(u64, u64)>,
    /// Whether the event loop reports this stream writable (see [`Peer::watch_writes`]).
    watching_writes: bool,
}

impl Peer {
    fn unwritten(&self) -> usize {
        self.buf.len() - self.wpos
    }

    /// Write buffered bytes until done or the socket would block.
    fn flush(&mut self) -> io::Result<()> {
        if self.wpos < self.buf.len()
            && self.ledger.is_some()
            && self.marked < self.next_seq - 1
            && let Some(m) = &self.mark
        {
            // Before the write: if this process dies during it, the admin knows that nothing
            // after this frame can have reached the receiver.
            self.marked = self.next_seq - 1;
            m.page.written(m.peer, self.marked);
        }
        let before = self.wpos;
        let mut result = Ok(());
        while self.wpos < self.buf.len() {
            match self.stream.write(&self.buf[self.wpos..]) {
                Ok(0) => {
                    result = Err(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if self.ledger.is_none() {
            // Nothing is kept for a receiver without a ledger.
            self.base = self.wpos;
            self.wframe = self.wpos;
        } else if self.wpos > before {
            self.mark_written();
        }
        result
    }

    /// Move past the frames now wholly written.
    fn mark_written(&mut self) {
        while self.wframe + 4 <= self.wpos {
            let end = self.wframe + 4 + frame_len(&self.buf, self.wframe);
            if end > self.wpos {
                break;
            }
            self.wframe = end;
            self.wframe_seq += 1;
        }
    }

    /// The receiver's progress on this connection, if it has read the hello.
    fn progress(&mut self) -> Option<crate::process::ledger_page::Progress> {
        let ledger = self.ledger.as_ref()?;
        if self.slot.is_none() {
            self.slot = ledger.find(self.conn);
        }
        self.slot.map(|s| ledger.progress(s))
    }

    /// Ask the event loop for writable events only while bytes wait to be written. Watched
    /// always, every read by the receiver (which frees room in the socket) would wake this
    /// process for nothing: two extra wake-ups per request and reply. Re-arming the interest
    /// reports a stream that became writable meanwhile, so no wake-up is lost.
    fn watch_writes(&mut self, registry: &Registry) {
        let wanted = self.unwritten() > 0;
        if wanted == self.watching_writes {
            return;
        }
        let interest = if wanted {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if registry
            .reregister(&mut self.stream, self.token, interest)
            .is_ok()
        {
            self.watching_writes = wanted;
        }
    }

    /// Drop the written frames the receiver has taken; their out ring entries go to `out`.
    fn trim(&mut self, out: &mut Option<OutRing>) {
        // Until the receiver has a slot for this connection, only the hello is taken (once
        // written).
        let taken = self.progress().map_or(0, |p| p.taken);
        while self.ledger.is_some() && self.base + 4 <= self.wpos && self.base_seq <= taken {
            let end = self.base + 4 + frame_len(&self.buf, self.base);
            if end > self.wpos {
                break;
            }
            self.base = end;
            self.base_seq += 1;
        }
        self.let_go_to(taken, out);
        if self.base == self.buf.len() {
            self.buf.clear();
            self.wpos = 0;
            self.base = 0;
            self.wframe = 0;
        } else if self.base > TRIM_BYTES && self.base * 2 > self.buf.len() {
            self.buf.drain(..self.base);
            self.wpos -= self.base;
            self.wframe -= self.base;
            self.base = 0;
        }
    }

    /// Let the out ring entries of frames up to `seq` go.
    fn let_go_to(&mut self, seq: u64, out: &mut Option<OutRing>) {
        let Some(out) = out else {
            return;
        };
        let mut any = false;
        while let Some(&(s, id)) = self.mirrored.front() {
            if s > seq {
                break;
            }
            self.mirrored.pop_front();
            out.mark_let_go(id);
            any = true;
        }
        if any {
            out.advance();
        }
    }

    /// The kept messages from the frame at byte `at` (number `seq`) on whose number is above
    /// `after`, as returns naming their out ring copies.
    fn returned(&self, to: &Address, mut at: usize, mut seq: u64, after: u64) -> Vec<Returned> {
        let mut out = Vec::new();
        while at + 4 <= self.buf.len() {
            let end = at + 4 + frame_len(&self.buf, at);
            // Seq 0 is the hello.
            if seq > after && seq > 0 {
                let mirror = self
                    .mirrored
                    .binary_search_by_key(&seq, |m| m.0)
                    .ok()
                    .zip(self.mark.as_ref())
                    .map(|(i, m)| (self.mirrored[i].1, m.peer));
                match Message::decode_frame_body(&self.buf[at + 4..end]) {
                    Ok(msg) => out.push(Returned {
                        from: self.from.clone(),
                        to: to.clone(),
                        msg,
                        kept: mirror.map(|_| (self.conn, seq)),
                        mirror,
                    }),
                    Err(e) => log::error!("a kept frame to {to} does not decode: {e}"),
                }
            }
            at = end;
            seq += 1;
        }
        out
    }

    /// The connection has ended: what the receiver did not take.
    fn verdict(mut self, to: &Address, out: &mut Option<OutRing>) -> Vec<Returned> {
        let progress = self.progress();
        if self.ledger.is_none() {
            if self.unwritten() > 0 {
                log::warn!(
                    "{} bytes to {to}, which keeps no ledger, were not delivered",
                    self.unwritten()
                );
            }
            return Vec::new();
        }
        // No slot: the receiver never read this connection's hello, so nothing of it. A
        // refused connection's slot says how far the receiver took it, like any other.
        let taken = progress.map_or(0, |p| p.taken);
        self.let_go_to(taken, out);
        let returned = self.returned(to, self.base, self.base_seq, taken);
        if let (Some(out), Some(mark)) = (out, self.mark.take()) {
            out.closing(
                mark.peer,
                returned.iter().filter(|r| r.mirror.is_some()).count(),
            );
        }
        returned
    }
}

/// The length in a frame header at `at`.
fn frame_len(buf: &[u8], at: usize) -> usize {
    u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize
}

/// The owner's side of its out ring: which entries are still held, and which peer entries
/// are in use.
struct OutRing {
    page: Arc<LedgerPage>,
    /// Entries not yet let go of the ring's front, in ring order: start, end, still held.
    entries: VecDeque<(u64, u64, bool)>,
    /// The id of `entries[0]`.
    first: u64,
    free_peers: Vec<u32>,
    next_peer: u32,
    /// Peer entries of ended connections, with how many of their copies are still to be
    /// handed on.
    closing: HashMap<u32, usize>,
    /// The receiver of each peer entry in use.
    receivers: HashMap<u32, Address>,
}

impl OutRing {
    fn new(page: Arc<LedgerPage>) -> OutRing {
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
    fn open_peer(&mut self, conn: u64, to: &Address) -> Option<Mark> {
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
    fn closing(&mut self, peer: u32, pending: usize) {
        if pending == 0 {
            self.free_peer(peer);
        } else {
            self.closing.insert(peer, pending);
        }
    }

    fn free_peer(&mut self, peer: u32) {
        self.page.close_peer(peer);
        self.receivers.remove(&peer);
        self.free_peers.push(peer);
    }

    /// One copy of an ended connection was handed on.
    fn handed_on(&mut self, peer: u32) {
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
    fn push(&mut self, peer: u32, conn: u64, seq: u64, body: &[u8]) -> Option<u64> {
        let (start, end) = self.page.push_out(peer, conn, seq, body)?;
        self.entries.push_back((start, end, true));
        Some(self.first + self.entries.len() as u64 - 1)
    }

    /// Make room: move the held entry at the ring's front (whose receiver is slow to take it)
    /// to its tail, so that the head can pass it. Returns the move (peer entry, sequence
    /// number, new id), or `None` if nothing can move.
    fn rotate(&mut self) -> Option<(u32, u64, u64)> {
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
    fn let_go(&mut self, id: u64) {
        self.mark_let_go(id);
        self.advance();
    }

    /// Entry `id` is no longer needed (the head moves on [`advance`](Self::advance)).
    fn mark_let_go(&mut self, id: u64) {
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
    fn advance(&mut self) {
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

/// Cached outgoing connections, one per receiver.
pub(crate) struct Outbox {
    registry: Registry,
    peers: HashMap<Address, Peer>,
    by_token: HashMap<Token, Address>,
    /// Receivers with bytes buffered by batched sends, not yet written.
    dirty: Vec<Address>,
    next: usize,
    limit: usize,
    /// Messages that came back from receivers whose connection ended.
    returns: Vec<Returned>,
    /// The owner's out ring, if it has a ledger page (the admin has none).
    out: Option<OutRing>,
    /// How long a receiver whose connection backlog is full is tried again (see `conn::connect`).
    connect_patience: Duration,
}

impl Outbox {
    /// An outbox whose streams are watched by `registry` (a clone of the loop's registry),
    /// refusing frames longer than `limit`, with copies in the out ring of `page` if given.
    pub(crate) fn new(registry: Registry, limit: usize, page: Option<Arc<LedgerPage>>) -> Outbox {
        Outbox {
            registry,
            peers: HashMap::new(),
            by_token: HashMap::new(),
            dirty: Vec::new(),
            next: OUTBOX_TOKENS,
            limit,
            returns: Vec::new(),
            out: page.map(OutRing::new),
            connect_patience: send_timeout(),
        }
    }

    /// Refuse at once a receiver whose backlog of unaccepted connections is full, rather than
    /// waiting up to the send timeout for it (for the admin, which must serve everyone).
    pub(crate) fn without_connect_patience(mut self) -> Outbox {
        self.connect_patience = Duration::ZERO;
        self
    }

    /// Send `msg` from `from` to `to`. With `batch` false the frame is written now; with `batch`
    /// true it may stay buffered (up to [`BATCH_BYTES`]) until [`flush_dirty`](Self::flush_dirty).
    ///
    /// `Ok` means the message is taken: it will be taken by the receiver or come back through
    /// [`take_returns`](Self::take_returns). An error means it was not taken: it is over the
    /// frame limit, the receiver is not running ([`Error::DeadActor`]), or this process holds
    /// as many copies as its out ring takes ([`Error::Backpressure`]).
    pub(crate) fn send(
        &mut self,
        from: &Address,
        to: &Address,
        msg: &Message,
        batch: bool,
    ) -> Result<Accepted> {
        let len = msg.frame_len();
        if len > self.limit {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                limit: self.limit,
            });
        }
        // One hash lookup per send: this is the hot path.
        let peer = match self.peers.entry(to.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(slot) => {
                let mut peer = open_peer(
                    &self.registry,
                    Token(self.next),
                    from,
                    to,
                    self.connect_patience,
                )?;
                if peer.ledger.is_some() {
                    peer.mark = self.out.as_mut().and_then(|o| o.open_peer(peer.conn, to));
                }
                self.next += 1;
                self.by_token.insert(peer.token, to.clone());
                slot.insert(peer)
            }
        };
        let was_buffered = peer.unwritten() > 0;
        let at = peer.buf.len();
        msg.encode_frame_into(&mut peer.buf);
        if let (Some(mark), Some(out)) = (&peer.mark, &mut self.out) {
            match out.push(mark.peer, peer.conn, peer.next_seq, &peer.buf[at + 4..]) {
                Some(id) => peer.mirrored.push_back((peer.next_seq, id)),
                None => self.mirror_when_out_ring_full(to, at)?,
            }
        }
        let peer = self.peers.get_mut(to).expect("just sent to");
        peer.next_seq += 1;
        let accepted = if peer.ledger.is_some() {
            Accepted::Kept
        } else {
            Accepted::AtMostOnce
        };
        let written = if batch && peer.unwritten() < BATCH_BYTES {
            if !was_buffered {
                self.dirty.push(to.clone());
            }
            Ok(())
        } else {
            peer.flush()
        };
        match written {
            Ok(()) => {
                peer.watch_writes(&self.registry);
                if peer.wpos - peer.base > TRIM_BYTES {
                    peer.trim(&mut self.out);
                }
            }
            // Taken all the same: the verdict returns it.
            Err(_) => self.ended(to),
        }
        Ok(accepted)
    }

    /// The out ring had no room for the frame just added to `to`'s buffer at `at`: move the
    /// copies that hold its front to its tail and try again. If it is full of copies no
    /// receiver has taken, the frame is taken back out and the send refused.
    fn mirror_when_out_ring_full(&mut self, to: &Address, at: usize) -> Result<()> {
        let out = self.out.as_mut().expect("only with an out ring");
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
        Err(Error::Backpressure {
            to: to.clone(),
            waited: std::time::Duration::ZERO,
        })
    }

    /// True if a connection to `to` is open.
    pub(crate) fn connected(&self, to: &Address) -> bool {
        self.peers.contains_key(to)
    }

    /// Bytes waiting to be written to `to`: how far its receiver is behind.
    pub(crate) fn backlog(&self, to: &Address) -> usize {
        self.peers.get(to).map_or(0, Peer::unwritten)
    }

    /// The connection to `to` has ended: work out what comes back.
    fn ended(&mut self, to: &Address) {
        if let Some(mut peer) = self.peers.remove(to) {
            let _ = self.registry.deregister(&mut peer.stream);
            self.by_token.remove(&peer.token);
            let returned = peer.verdict(to, &mut self.out);
            self.returns.extend(returned);
        }
    }

    /// Messages that came back since the last call, for the owner to hand on as dead letters
    /// (then to report with [`handed_on`](Self::handed_on)).
    pub(crate) fn take_returns(&mut self) -> Vec<Returned> {
        std::mem::take(&mut self.returns)
    }

    /// True if messages came back and wait for [`take_returns`](Self::take_returns).
    pub(crate) fn has_returns(&self) -> bool {
        !self.returns.is_empty()
    }

    /// The owner has handed these returned messages on: their copies leave the out ring.
    pub(crate) fn handed_on<'a>(&mut self, returned: impl IntoIterator<Item = &'a Returned>) {
        let Some(out) = &mut self.out else {
            return;
        };
        for r in returned {
            if let Some((id, peer)) = r.mirror {
                out.let_go(id);
                out.handed_on(peer);
            }
        }
    }

    /// Write what batched sends left buffered (as much as the sockets take now), and drop what
    /// receivers have taken.
    pub(crate) fn flush_dirty(&mut self) {
        for to in std::mem::take(&mut self.dirty) {
            let failed = match self.peers.get_mut(&to) {
                Some(peer) => {
                    let failed = peer.flush().is_err();
                    if !failed {
                        peer.watch_writes(&self.registry);
                        peer.trim(&mut self.out);
                    }
                    failed
                }
                None => false,
            };
            if failed {
                self.ended(&to);
            }
        }
    }

    /// Handle a poll event if it is for one of the outbox's streams. Returns false otherwise.
    pub(crate) fn on_event(&mut self, event: &mio::event::Event) -> bool {
        let Some(to) = self.by_token.get(&event.token()).cloned() else {
            return false;
        };
        let peer = self.peers.get_mut(&to).expect("token maps to a peer");
        // A receiver never writes back: anything readable is the end of the stream.
        let closed = event.is_read_closed()
            || event.is_write_closed()
            || event.is_error()
            || event.is_readable();
        if peer.flush().is_err() || closed {
            self.ended(&to);
        } else {
            peer.watch_writes(&self.registry);
            peer.trim(&mut self.out);
        }
        true
    }

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

    /// True if any bytes wait to be written.
    pub(crate) fn pending(&self) -> bool {
        self.peers.values().any(|p| p.unwritten() > 0)
    }
}

/// Open a connection to `to`'s message socket, with its ledger page if it keeps one. The page
/// is opened first: a receiver that is running has it, so a missing page with a working socket
/// means a receiver that keeps no ledger.
fn open_peer(
    registry: &Registry,
    token: Token,
    from: &Address,
    to: &Address,
    patience: Duration,
) -> Result<Peer> {
    let ledger = match LedgerPage::open(&to.ledger_path()) {
        Ok(page) => Some(page),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(
                Error::exhausted("opening a receiver's ledger", &e).unwrap_or(Error::Io {
                    context: format!("opening the ledger page of {to}"),
                    source: e,
                }),
            );
        }
    };
    let std = connect(to, patience)?;
    std.set_nonblocking(true).map_err(|e| Error::Io {
        context: "setting a socket non-blocking".into(),
        source: e,
    })?;
    let mut stream = UnixStream::from_std(std);
    registry
        .register(&mut stream, token, Interest::READABLE)
        .map_err(|e| Error::Io {
            context: "registering a socket".into(),
            source: e,
        })?;
    let mut buf = Vec::new();
    let conn = encode_sender_hello(&mut buf, from)?;
    Ok(Peer {
        token,
        stream,
        from: from.clone(),
        buf,
        base: 0,
        base_seq: 0,
        wpos: 0,
        wframe: 0,
        wframe_seq: 0,
        marked: 0,
        next_seq: 1,
        conn,
        ledger,
        slot: None,
        mark: None,
        mirrored: VecDeque::new(),
        watching_writes: false,
    })
}
