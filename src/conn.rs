//! Non-blocking framed connections and the outbox of cached connections to peers.
//!
//! Every process keeps one outgoing stream per peer it sends to, so messages from one sender to
//! one receiver arrive in the order they were sent. A send encodes the frame into that stream's
//! write buffer and writes at once: it leaves while the handler is still running. Only bytes the
//! kernel cannot take yet stay buffered, and they are flushed when the socket becomes writable.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Instant;

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use serde::Serialize;

use crate::address::Address;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::wire::{self, FrameReader, ReadStatus};

/// A non-blocking framed stream with a read reassembler and a write buffer.
pub(crate) struct Conn {
    pub(crate) stream: UnixStream,
    pub(crate) reader: FrameReader,
    wbuf: Vec<u8>,
    wpos: usize,
}

impl Conn {
    pub(crate) fn new(stream: UnixStream, limit: usize) -> Conn {
        Conn {
            stream,
            reader: FrameReader::new(limit),
            wbuf: Vec::new(),
            wpos: 0,
        }
    }

    /// Read every frame available now.
    pub(crate) fn read(&mut self, on_frame: impl FnMut(&[u8])) -> Result<ReadStatus> {
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
            wait_writable(self.stream.as_raw_fd(), left);
        }
    }
}

fn wait_writable(fd: i32, timeout: std::time::Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) };
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

/// The wire form of an envelope, borrowed so that a send copies nothing before encoding.
#[derive(Serialize)]
pub(crate) struct EnvelopeRef<'a> {
    pub(crate) from: &'a Address,
    pub(crate) to: &'a Address,
    pub(crate) msg: &'a Message,
}

/// First token the outbox hands out; callers keep their own tokens below it.
pub(crate) const OUTBOX_TOKENS: usize = 1 << 40;

/// Cached outgoing connections, one per receiver.
pub(crate) struct Outbox {
    conns: HashMap<Address, (Token, Conn)>,
    by_token: HashMap<Token, Address>,
    next: usize,
    limit: usize,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Outbox {
        Outbox {
            conns: HashMap::new(),
            by_token: HashMap::new(),
            next: OUTBOX_TOKENS,
            limit,
        }
    }

    /// Send `msg` from `from` to `to`. An error means the receiver is gone or unreachable; the
    /// message was not sent.
    pub(crate) fn send(
        &mut self,
        registry: &Registry,
        from: &Address,
        to: &Address,
        msg: &Message,
    ) -> Result<()> {
        if !self.conns.contains_key(to) {
            let std = connect(to)?;
            std.set_nonblocking(true).map_err(|e| Error::Io {
                context: "setting a socket non-blocking".into(),
                source: e,
            })?;
            let mut stream = UnixStream::from_std(std);
            let token = Token(self.next);
            self.next += 1;
            registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| Error::Io {
                    context: "registering a socket".into(),
                    source: e,
                })?;
            self.by_token.insert(token, to.clone());
            self.conns
                .insert(to.clone(), (token, Conn::new(stream, self.limit)));
        }
        let (_, conn) = self.conns.get_mut(to).expect("inserted above");
        let env = EnvelopeRef { from, to, msg };
        match conn.send(&env) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.forget(registry, to);
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) {
                    Err(Error::DeadActor(to.clone()))
                } else {
                    Err(Error::Io {
                        context: format!("sending to {to}"),
                        source: e,
                    })
                }
            }
        }
    }

    /// Handle a poll event if it is for one of the outbox's streams. Returns false otherwise.
    pub(crate) fn on_event(&mut self, registry: &Registry, event: &mio::event::Event) -> bool {
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
            self.forget(registry, &to);
        }
        true
    }

    /// Drop the connection to `to`, if any.
    pub(crate) fn forget(&mut self, registry: &Registry, to: &Address) {
        if let Some((token, mut conn)) = self.conns.remove(to) {
            let _ = registry.deregister(&mut conn.stream);
            self.by_token.remove(&token);
        }
    }

    /// Write out everything buffered, waiting up to `deadline` (used just before a process exits).
    pub(crate) fn flush_all(&mut self, deadline: Instant) {
        for (to, (_, conn)) in self.conns.iter_mut() {
            if let Err(e) = conn.flush_until(deadline) {
                log::warn!("could not deliver pending messages to {to}: {e}");
            }
        }
    }
}
