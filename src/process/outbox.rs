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
//! A receiver that keeps no ledger page (a program in another language may not) gets its
//! messages at most once: nothing is kept for it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, Write};
use std::time::Instant;

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

use crate::address::Address;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::process::conn::{connect, encode_sender_hello};
use crate::process::ledger_page::LedgerPage;

/// First token the outbox hands out; callers keep their own tokens below it.
pub(crate) const OUTBOX_TOKENS: usize = 1 << 40;

/// A connection with this many bytes buffered is written at once, even in batching mode.
pub(crate) const BATCH_BYTES: usize = 32 * 1024;

/// Settled frames are dropped from a connection's buffer once this many bytes are kept.
const TRIM_BYTES: usize = 64 * 1024;

/// A message its receiver never took, back from a connection that ended: from whom, to whom.
/// It becomes a dead letter.
#[derive(Debug)]
pub(crate) struct Returned {
    pub(crate) from: Address,
    pub(crate) to: Address,
    pub(crate) msg: Message,
}

/// How a send was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Kept until the receiver takes it.
    Kept,
    /// The receiver keeps no ledger: delivered at most once, and counted as handled now.
    AtMostOnce,
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
    /// The sequence number the next frame gets.
    next_seq: u64,
    /// This connection's number, as its hello told the receiver.
    conn: u64,
    /// The receiver's ledger page, and this connection's slot in it once found.
    ledger: Option<LedgerPage>,
    slot: Option<u32>,
}

impl Peer {
    fn unwritten(&self) -> usize {
        self.buf.len() - self.wpos
    }

    /// Write buffered bytes until done or the socket would block.
    fn flush(&mut self) -> io::Result<()> {
        while self.wpos < self.buf.len() {
            match self.stream.write(&self.buf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.ledger.is_none() {
            // Nothing is kept for a receiver without a ledger.
            self.base = self.wpos;
        }
        Ok(())
    }

    /// The receiver's progress on this connection, if it has read the hello.
    fn progress(&mut self) -> Option<crate::process::ledger_page::Progress> {
        let ledger = self.ledger.as_ref()?;
        if self.slot.is_none() {
            self.slot = ledger.find(self.conn);
        }
        self.slot.map(|s| ledger.progress(s))
    }

    /// Drop the written frames the receiver has taken.
    fn trim(&mut self) {
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
        if self.base == self.buf.len() {
            self.buf.clear();
            self.wpos = 0;
            self.base = 0;
        } else if self.base > TRIM_BYTES && self.base * 2 > self.buf.len() {
            self.buf.drain(..self.base);
            self.wpos -= self.base;
            self.base = 0;
        }
    }

    /// The connection has ended: what the receiver did not take.
    fn verdict(mut self, to: &Address) -> Vec<Returned> {
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
        let mut out = Vec::new();
        let (mut at, mut seq) = (self.base, self.base_seq);
        while at + 4 <= self.buf.len() {
            let len = frame_len(&self.buf, at);
            let body = &self.buf[at + 4..at + 4 + len];
            if seq > taken {
                match Message::decode_frame_body(body) {
                    Ok(msg) => out.push(Returned {
                        from: self.from.clone(),
                        to: to.clone(),
                        msg,
                    }),
                    // The hello (seq 0) is never above `taken`; frames were written here.
                    Err(e) => log::error!("a kept frame to {to} does not decode: {e}"),
                }
            }
            at += 4 + len;
            seq += 1;
        }
        out
    }
}

/// The length in a frame header at `at`.
fn frame_len(buf: &[u8], at: usize) -> usize {
    u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize
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
}

impl Outbox {
    /// An outbox whose streams are watched by `registry` (a clone of the loop's registry),
    /// refusing frames longer than `limit`.
    pub(crate) fn new(registry: Registry, limit: usize) -> Outbox {
        Outbox {
            registry,
            peers: HashMap::new(),
            by_token: HashMap::new(),
            dirty: Vec::new(),
            next: OUTBOX_TOKENS,
            limit,
            returns: Vec::new(),
        }
    }

    /// Send `msg` from `from` to `to`. With `batch` false the frame is written now; with `batch`
    /// true it may stay buffered (up to [`BATCH_BYTES`]) until [`flush_dirty`](Self::flush_dirty).
    ///
    /// `Ok` means the message is taken: it will be settled by the receiver or come back through
    /// [`take_returns`](Self::take_returns). An error means it was not taken: it is over the
    /// frame limit, or the receiver is not running ([`Error::DeadActor`]).
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
                let peer = open_peer(&self.registry, Token(self.next), from, to)?;
                self.next += 1;
                self.by_token.insert(peer.token, to.clone());
                slot.insert(peer)
            }
        };
        let was_buffered = peer.unwritten() > 0;
        msg.encode_frame_into(&mut peer.buf);
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
                if peer.wpos - peer.base > TRIM_BYTES {
                    peer.trim();
                }
            }
            // Taken all the same: the verdict returns it.
            Err(_) => self.ended(to),
        }
        Ok(accepted)
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
            self.returns.extend(peer.verdict(to));
        }
    }

    /// Messages that came back since the last call, for the owner to carry out.
    pub(crate) fn take_returns(&mut self) -> Vec<Returned> {
        std::mem::take(&mut self.returns)
    }

    /// True if messages came back and wait for [`take_returns`](Self::take_returns).
    pub(crate) fn has_returns(&self) -> bool {
        !self.returns.is_empty()
    }

    /// Write what batched sends left buffered (as much as the sockets take now), and drop what
    /// receivers have settled.
    pub(crate) fn flush_dirty(&mut self) {
        for to in std::mem::take(&mut self.dirty) {
            let failed = match self.peers.get_mut(&to) {
                Some(peer) => {
                    let failed = peer.flush().is_err();
                    if !failed {
                        peer.trim();
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
            peer.trim();
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
    /// written come back (a frame cut short never reaches its receiver's queue).
    pub(crate) fn abandon_unwritten(&mut self) {
        let stuck: Vec<Address> = self
            .peers
            .iter()
            .filter(|(_, p)| p.unwritten() > 0)
            .map(|(to, _)| to.clone())
            .collect();
        for to in stuck {
            if let Some(mut peer) = self.peers.remove(&to) {
                let _ = self.registry.deregister(&mut peer.stream);
                self.by_token.remove(&peer.token);
                log::warn!(
                    "{} bytes to {to} could not be written before this process ended; they are returned",
                    peer.unwritten()
                );
                let (mut at, mut seq) = (peer.base, peer.base_seq);
                while at + 4 <= peer.buf.len() {
                    let end = at + 4 + frame_len(&peer.buf, at);
                    // Seq 0 is the hello.
                    if end > peer.wpos && seq > 0 {
                        match Message::decode_frame_body(&peer.buf[at + 4..end]) {
                            Ok(msg) => self.returns.push(Returned {
                                from: peer.from.clone(),
                                to: to.clone(),
                                msg,
                            }),
                            Err(e) => log::error!("a kept frame to {to} does not decode: {e}"),
                        }
                    }
                    at = end;
                    seq += 1;
                }
            }
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
fn open_peer(registry: &Registry, token: Token, from: &Address, to: &Address) -> Result<Peer> {
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
    let std = connect(to)?;
    std.set_nonblocking(true).map_err(|e| Error::Io {
        context: "setting a socket non-blocking".into(),
        source: e,
    })?;
    let mut stream = UnixStream::from_std(std);
    registry
        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
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
        next_seq: 1,
        conn,
        ledger,
        slot: None,
    })
}
