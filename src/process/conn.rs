//! Non-blocking framed connections and the outbox of cached connections to peers.
//!
//! Every process keeps one outgoing stream per peer it sends to, so messages from one sender to
//! one receiver arrive in the order they were sent. A send encodes the frame into that stream's
//! write buffer and writes at once: it leaves while the handler is still running. Only bytes the
//! kernel cannot take yet stay buffered, and they are flushed when the socket becomes writable.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Instant;

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use serde::Serialize;

use crate::address::Address;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::protocol::{Envelope, PROTOCOL_VERSION, SenderHello};
use crate::wire::{self, FrameReader, ReadStatus, strict};

/// A non-blocking framed stream with a read reassembler and a write buffer.
pub(crate) struct Conn {
    pub(crate) stream: UnixStream,
    pub(crate) reader: FrameReader,
    wbuf: Vec<u8>,
    wpos: usize,
    /// On an accepted message stream: the sender, once its [`SenderHello`] has been read.
    peer: Option<Address>,
}

impl Conn {
    pub(crate) fn new(stream: UnixStream, limit: usize) -> Conn {
        Conn {
            stream,
            reader: FrameReader::new(limit),
            wbuf: Vec::new(),
            wpos: 0,
            peer: None,
        }
    }

    /// Read every envelope available now: first the sender's hello, then one message per frame.
    /// A frame of any other shape is an error, and the connection is to be closed.
    pub(crate) fn read_envelopes(
        &mut self,
        me: &Address,
        out: &mut VecDeque<Envelope>,
    ) -> Result<ReadStatus> {
        let peer = &mut self.peer;
        self.reader.read_from(&mut self.stream, |frame| match peer {
            None => {
                *peer = Some(read_sender_hello(frame)?);
                Ok(())
            }
            Some(from) => {
                out.push_back(Envelope {
                    from: from.clone(),
                    to: me.clone(),
                    msg: Message::decode_frame_body(frame)?,
                });
                Ok(())
            }
        })
    }

    /// Read every frame available now.
    pub(crate) fn read(&mut self, on_frame: impl FnMut(&[u8]) -> Result<()>) -> Result<ReadStatus> {
        self.reader.read_from(&mut self.stream, on_frame)
    }

    /// Encode `value` as a frame and write as much of it as the kernel takes now.
    pub(crate) fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        wire::encode_into(&mut self.wbuf, value).map_err(io::Error::other)?;
        self.flush()
    }

    /// True if bytes wait for the socket to become writable.
    pub(crate) fn pending(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// How many bytes wait for the socket to become writable.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Write buffered bytes until done or the socket would block.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        } else if self.wpos > (1 << 20) {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        Ok(())
    }

    /// Flush, waiting for the socket to drain, until `deadline`.
    pub(crate) fn flush_until(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            self.flush()?;
            if !self.pending() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            crate::sys::wait_writable(&self.stream, left);
        }
    }
}

/// Open a connection to an actor's message socket. A missing socket or a refused connection
/// means the actor is gone.
pub(crate) fn connect(to: &Address) -> Result<StdUnixStream> {
    match StdUnixStream::connect(to.socket_path()) {
        Ok(s) => Ok(s),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Err(Error::DeadActor(to.clone()))
        }
        Err(e) => Err(Error::Io {
            context: format!("connecting to {to}"),
            source: e,
        }),
    }
}

/// Check the first frame of a message stream and return the sender it names.
pub(crate) fn read_sender_hello(frame: &[u8]) -> Result<Address> {
    let hello: SenderHello = strict::from_slice(frame).map_err(|e| Error::Decode {
        what: "the sender's hello (the first frame on a message socket)".into(),
        why: e.message,
    })?;
    if hello.version != PROTOCOL_VERSION {
        return Err(Error::Protocol(format!(
            "the sender {} speaks protocol version {}, this process version {PROTOCOL_VERSION}; run binaries built with the same greenroom",
            hello.from, hello.version
        )));
    }
    Ok(hello.from)
}

/// Append the hello that opens a message stream from `from`.
pub(crate) fn encode_sender_hello(out: &mut Vec<u8>, from: &Address) -> Result<()> {
    wire::encode_into(
        out,
        &SenderHello {
            version: PROTOCOL_VERSION,
            from: from.clone(),
            conn: connection_number(),
        },
    )
}

/// A number for a new connection, unique within this process and unlikely to repeat elsewhere.
fn connection_number() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.finish().max(1)
}

/// Append `msg` as one message frame, unless its frame would be longer than `limit`.
pub(crate) fn encode_message(out: &mut Vec<u8>, msg: &Message, limit: usize) -> Result<()> {
    let len = msg.frame_len();
    if len > limit {
        return Err(Error::FrameTooLarge {
            len: len as u64,
            limit,
        });
    }
    msg.encode_frame_into(out);
    Ok(())
}

/// First token the outbox hands out; callers keep their own tokens below it.
pub(crate) const OUTBOX_TOKENS: usize = 1 << 40;

/// A connection with this many bytes buffered is written at once, even in batching mode.
pub(crate) const BATCH_BYTES: usize = 32 * 1024;

/// Cached outgoing connections, one per receiver.
pub(crate) struct Outbox {
    registry: Registry,
    conns: HashMap<Address, (Token, Conn)>,
    by_token: HashMap<Token, Address>,
    /// Receivers with bytes buffered by batched sends, not yet written.
    dirty: Vec<Address>,
    next: usize,
    limit: usize,
}

impl Outbox {
    /// An outbox whose streams are watched by `registry` (a clone of the loop's registry).
    pub(crate) fn new(registry: Registry, limit: usize) -> Outbox {
        Outbox {
            registry,
            conns: HashMap::new(),
            by_token: HashMap::new(),
            dirty: Vec::new(),
            next: OUTBOX_TOKENS,
            limit,
        }
    }

    /// Send `msg` from `from` to `to`. With `batch` false the frame is written now; with `batch`
    /// true it may stay buffered (up to [`BATCH_BYTES`]) until [`flush_dirty`](Self::flush_dirty).
    /// An error means the message is over the frame limit, or the receiver is gone or
    /// unreachable; the message was not sent.
    pub(crate) fn send(
        &mut self,
        from: &Address,
        to: &Address,
        msg: &Message,
        batch: bool,
    ) -> Result<()> {
        // Refused before anything is connected or buffered: nothing of it is sent.
        let len = msg.frame_len();
        if len > self.limit {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                limit: self.limit,
            });
        }
        // One hash lookup per send: this is the hot path.
        let (_, conn) = match self.conns.entry(to.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(slot) => {
                let std = connect(to)?;
                std.set_nonblocking(true).map_err(|e| Error::Io {
                    context: "setting a socket non-blocking".into(),
                    source: e,
                })?;
                let mut stream = UnixStream::from_std(std);
                let token = Token(self.next);
                self.next += 1;
                self.registry
                    .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    .map_err(|e| Error::Io {
                        context: "registering a socket".into(),
                        source: e,
                    })?;
                self.by_token.insert(token, to.clone());
                let mut conn = Conn::new(stream, self.limit);
                encode_sender_hello(&mut conn.wbuf, from)?;
                slot.insert((token, conn))
            }
        };
        let was_buffered = !conn.wbuf.is_empty();
        msg.encode_frame_into(&mut conn.wbuf);
        let result = if batch && conn.wbuf.len() < BATCH_BYTES {
            if !was_buffered {
                self.dirty.push(to.clone());
            }
            Ok(())
        } else {
            conn.flush()
        };
        result.map_err(|e| self.failed(to, e))
    }

    /// Forget a connection whose write failed, and say why as an error.
    fn failed(&mut self, to: &Address, e: io::Error) -> Error {
        self.forget(to);
        if matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            Error::DeadActor(to.clone())
        } else {
            Error::Io {
                context: format!("sending to {to}"),
                source: e,
            }
        }
    }

    /// Write what batched sends left buffered (as much as the sockets take now).
    pub(crate) fn flush_dirty(&mut self) {
        for to in std::mem::take(&mut self.dirty) {
            if let Some((_, conn)) = self.conns.get_mut(&to)
                && let Err(e) = conn.flush()
            {
                log::warn!("sending to {to} failed: {}", self.failed(&to, e));
            }
        }
    }

    /// Handle a poll event if it is for one of the outbox's streams. Returns false otherwise.
    pub(crate) fn on_event(&mut self, event: &mio::event::Event) -> bool {
        let Some(to) = self.by_token.get(&event.token()).cloned() else {
            return false;
        };
        let (_, conn) = self.conns.get_mut(&to).expect("token maps to a conn");
        let closed = event.is_read_closed() || event.is_write_closed() || event.is_error();
        if conn.flush().is_err() || closed {
            if conn.pending() {
                log::warn!(
                    "connection to {to} closed with {} unsent bytes",
                    conn.wbuf.len() - conn.wpos
                );
            }
            self.forget(&to);
        }
        true
    }

    /// Drop the connection to `to`, if any.
    pub(crate) fn forget(&mut self, to: &Address) {
        if let Some((token, mut conn)) = self.conns.remove(to) {
            let _ = self.registry.deregister(&mut conn.stream);
            self.by_token.remove(&token);
        }
    }

    /// Write out everything buffered, waiting up to `deadline` (used just before a process exits).
    pub(crate) fn flush_all(&mut self, deadline: Instant) {
        self.dirty.clear();
        for (to, (_, conn)) in self.conns.iter_mut() {
            if let Err(e) = conn.flush_until(deadline) {
                log::debug!("could not deliver pending messages to {to}: {e}");
            }
        }
    }
}

/// The connections a process accepts on its message socket: each sender's stream, read into
/// envelopes in arrival order. A stream that ends, or whose sender misbehaves (oversized or
/// undecodable frames), is closed without disturbing the others.
pub(crate) struct Inbound {
    me: Address,
    conns: HashMap<Token, Conn>,
    next: usize,
    limit: usize,
}

impl Inbound {
    /// An empty set for the process at `me`, whose streams get tokens from `first_token` up
    /// (below [`OUTBOX_TOKENS`]).
    pub(crate) fn new(me: Address, first_token: usize, limit: usize) -> Inbound {
        Inbound {
            me,
            conns: HashMap::new(),
            next: first_token,
            limit,
        }
    }

    /// Accept every waiting sender and watch its stream for reading.
    pub(crate) fn accept_all(&mut self, listener: &mio::net::UnixListener, registry: &Registry) {
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let token = Token(self.next);
                    self.next += 1;
                    match registry.register(&mut stream, token, Interest::READABLE) {
                        Ok(()) => {
                            self.conns.insert(token, Conn::new(stream, self.limit));
                        }
                        Err(e) => log::warn!("cannot watch a new sender: {e}"),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Read what the stream of `token` has into `out`. Returns false if the token is not one of
    /// this set's.
    pub(crate) fn on_event(
        &mut self,
        token: Token,
        registry: &Registry,
        out: &mut VecDeque<Envelope>,
    ) -> bool {
        let Some(conn) = self.conns.get_mut(&token) else {
            return false;
        };
        let close = match conn.read_envelopes(&self.me, out) {
            Ok(ReadStatus::Drained) => false,
            Ok(ReadStatus::Eof) => true,
            Err(e) => {
                crate::logging::bad_input(format_args!(
                    "closing a connection from a misbehaving sender: {e}"
                ));
                true
            }
        };
        if close && let Some(mut conn) = self.conns.remove(&token) {
            let _ = registry.deregister(&mut conn.stream);
        }
        true
    }

    /// Read every stream once, whatever its readiness (for a last sweep before exiting).
    pub(crate) fn read_all(&mut self, out: &mut VecDeque<Envelope>) {
        for conn in self.conns.values_mut() {
            let _ = conn.read_envelopes(&self.me, out);
        }
    }
}
