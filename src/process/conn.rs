//! Non-blocking framed connections (the admin's control connections), and what opens a message
//! stream: connecting to an actor's socket, and the sender's hello. Message streams themselves
//! are in `outbox` (sending) and `inbound` (receiving).

use std::io::{self, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use serde::Serialize;

use crate::address::Address;
use crate::error::{Error, Result};
use crate::protocol::{PROTOCOL_VERSION, SenderHello};
use crate::wire::{self, FrameReader, ReadStatus, strict};

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

/// Connect to `to`'s message socket (`socket`: its own, or the gateway's). A missing socket or
/// a refused connection means the actor is gone. A receiver whose backlog of unaccepted connections is full
/// is tried again for up to `patience`, then refused with [`Error::Backpressure`]: a plain
/// `connect` would wait for as long as the receiver does not accept (the admin uses no
/// patience, so that no receiver can stall it).
pub(crate) fn connect(to: &Address, socket: &Path, patience: Duration) -> Result<StdUnixStream> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    let attempt = loop {
        match crate::sys::connect_now(socket) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let waited = started.elapsed();
                if waited >= patience {
                    return Err(Error::Backpressure {
                        to: to.clone(),
                        waited,
                    });
                }
                std::thread::sleep(pause.min(patience - waited));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => break other,
        }
    };
    match attempt {
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

/// Check the first frame of a message stream and return it.
pub(crate) fn read_sender_hello(frame: &[u8]) -> Result<SenderHello> {
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
    if hello.conn == 0 {
        return Err(Error::Protocol(format!(
            "the sender {} numbered its connection 0; use any other number",
            hello.from
        )));
    }
    Ok(hello)
}

/// Append the hello that opens a message stream from `from` (to `via_gateway` through the
/// member's gateway); returns the connection's number.
pub(crate) fn encode_sender_hello(
    out: &mut Vec<u8>,
    from: &Address,
    via_gateway: Option<&Address>,
) -> Result<u64> {
    let conn = connection_number();
    wire::encode_into(
        out,
        &SenderHello {
            version: PROTOCOL_VERSION,
            from: from.clone(),
            conn,
            ledger: true,
            to: via_gateway.cloned(),
        },
    )?;
    Ok(conn)
}

/// A number for a new connection, unique within this process and unlikely to repeat elsewhere.
fn connection_number() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(*PID.get_or_init(std::process::id));
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.finish().max(1)
}
