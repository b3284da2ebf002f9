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

mod leaving;
mod out_ring;
mod peer;

use out_ring::OutRing;
pub(crate) use out_ring::{FULL_RING_LOOK, send_when_out_ring_has_room};
use peer::{Mark, Peer, open_peer};

/// The gateway's message socket and ledger page in a system directory: a stream to a receiver
/// on another member goes there, its hello naming the receiver.
pub(crate) const GATEWAY_SOCKET: &str = "gateway.sock";
pub(crate) const GATEWAY_LEDGER: &str = "gateway.ledger";

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

/// Cached outgoing connections, one per receiver.
pub(crate) struct Outbox {
    registry: Registry,
    /// An address of the owner's system on its member: receivers beside it are reached through
    /// their own sockets, the others through the member's gateway.
    home: Address,
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
    /// The last send was refused for want of room in the out ring.
    out_ring_full: bool,
}

impl Outbox {
    /// An outbox of a process of the system at `home` whose streams are watched by `registry`
    /// (a clone of the loop's registry), refusing frames longer than `limit`, with copies in the
    /// out ring of `page` if given.
    pub(crate) fn new(
        home: &Address,
        registry: Registry,
        limit: usize,
        page: Option<Arc<LedgerPage>>,
    ) -> Outbox {
        Outbox {
            home: home.clone(),
            registry,
            peers: HashMap::new(),
            by_token: HashMap::new(),
            dirty: Vec::new(),
            next: OUTBOX_TOKENS,
            limit,
            returns: Vec::new(),
            out: page.map(OutRing::new),
            connect_patience: send_timeout(),
            out_ring_full: false,
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
        self.out_ring_full = false;
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
                    (from, to),
                    &self.home,
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

    /// Drop what receivers have taken, on every connection.
    pub(crate) fn trim_all(&mut self) {
        for peer in self.peers.values_mut() {
            peer.trim(&mut self.out);
        }
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

    /// True if any bytes wait to be written.
    pub(crate) fn pending(&self) -> bool {
        self.peers.values().any(|p| p.unwritten() > 0)
    }
}
