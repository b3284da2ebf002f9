//! One admin-to-admin link: a TCP stream, a Noise handshake authenticated by the convention's
//! secret, then encrypted frames both ways.
//!
//! On the wire every Noise message is a 2-byte big-endian length and the message (at most
//! 65535 bytes). The initiator sends the first handshake message (`psk, e`), the responder the
//! second (`e, ee`); a peer without the secret fails on the first, before anything else is read
//! from it. After the handshake, each side's plaintext is a stream of greenroom frames (4-byte
//! big-endian length, MessagePack body) cut into Noise transport messages of at most 65519
//! bytes of plaintext each. The first frame each way is a `Hello`.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::Secret;
use super::wire::LinkMsg;
use crate::wire;

mod read;

/// The Noise protocol of every link.
pub(crate) const NOISE: &str = "Noise_NNpsk0_25519_AESGCM_BLAKE2s";
/// Bound into the handshake: a peer of another protocol version cannot complete it.
pub(crate) const PROLOGUE: &[u8] = b"greenroom convention 1";

const NOISE_MAX: usize = 65535;
const TAG: usize = 16;
const PLAIN_MAX: usize = NOISE_MAX - TAG;
/// Bytes read from one link per turn of the loop, so that one busy peer cannot starve others.
const READ_BUDGET: usize = 256 * 1024;
/// Bytes waiting to be written to a peer before the link is given up (the peer does not read).
const OUT_LIMIT: usize = 16 << 20;

enum State {
    /// An outgoing connection not yet established.
    Connecting,
    Handshake(Box<snow::HandshakeState>),
    Open(Box<snow::TransportState>),
}

/// Why a link ended.
pub(crate) type Broken = String;

/// One link, in any state.
pub(crate) struct Link {
    pub(crate) stream: TcpStream,
    pub(crate) token: Token,
    state: State,
    secret: Secret,
    /// Raw bytes read and not yet taken as Noise messages.
    raw: Vec<u8>,
    /// Decrypted bytes not yet taken as frames.
    plain: Vec<u8>,
    /// Encrypted bytes waiting to be written.
    out: Vec<u8>,
    /// Frames queued and not yet encrypted.
    unsealed: Vec<u8>,
    /// The last read stopped at its budget with bytes left (see [`Link::read_more`]).
    pub(crate) unread: bool,
    /// Writable interest is armed (bytes wait).
    watching_writes: bool,
    /// The first frame to send once the handshake is done.
    hello: Vec<u8>,
    /// The largest frame accepted from the peer.
    limit: usize,
    /// When the link was made (the handshake must end soon after).
    pub(crate) made: Instant,
    /// The peer's address, as TCP sees it.
    pub(crate) remote: Option<SocketAddr>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("token", &self.token)
            .field("remote", &self.remote)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

fn builder(secret: &Secret) -> Result<snow::Builder<'_>, Broken> {
    let params = NOISE
        .parse()
        .map_err(|e| format!("noise parameters: {e}"))?;
    snow::Builder::new(params)
        .psk(0, secret.bytes())
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(|e| format!("noise setup: {e}"))
}

/// What every link an admin makes or takes is made with.
pub(crate) struct Terms<'a> {
    /// Where its socket is watched.
    pub(crate) registry: &'a Registry,
    /// The convention's shared secret.
    pub(crate) secret: &'a Secret,
    /// The first frame it sends once the handshake is done.
    pub(crate) hello: LinkMsg,
    /// The largest frame the peer may send.
    pub(crate) limit: usize,
}

impl Link {
    fn new(stream: TcpStream, token: Token, state: State, terms: &Terms<'_>) -> Link {
        let now = Instant::now();
        let remote = stream.peer_addr().ok();
        Link {
            stream,
            token,
            state,
            secret: terms.secret.clone(),
            raw: Vec::new(),
            plain: Vec::new(),
            out: Vec::new(),
            unsealed: Vec::new(),
            unread: false,
            watching_writes: false,
            hello: wire::encode(&terms.hello).expect("a hello encodes"),
            limit: terms.limit,
            made: now,
            remote,
        }
    }

    /// Start connecting to `to`; the handshake begins once the connection is made.
    pub(crate) fn connect(
        to: SocketAddr,
        token: Token,
        terms: &Terms<'_>,
    ) -> std::io::Result<Link> {
        let mut stream = TcpStream::connect(to)?;
        terms
            .registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let mut link = Link::new(stream, token, State::Connecting, terms);
        link.remote = Some(to);
        link.watching_writes = true;
        Ok(link)
    }

    /// Take a connection a peer made; it must open the handshake.
    pub(crate) fn accept(
        mut stream: TcpStream,
        token: Token,
        terms: &Terms<'_>,
    ) -> Result<Link, Broken> {
        terms
            .registry
            .register(&mut stream, token, Interest::READABLE)
            .map_err(|e| format!("registering: {e}"))?;
        let _ = stream.set_nodelay(true);
        let responder = builder(terms.secret)?
            .build_responder()
            .map_err(|e| format!("noise: {e}"))?;
        let state = State::Handshake(Box::new(responder));
        Ok(Link::new(stream, token, state, terms))
    }

    /// True once the handshake is done.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Carry out an event: finish connecting, read (returning the peer's frames, decoded), write
    /// what waits. An error means the link is over.
    pub(crate) fn on_event(
        &mut self,
        event: &mio::event::Event,
        registry: &Registry,
    ) -> Result<Vec<LinkMsg>, Broken> {
        if let State::Connecting = self.state {
            if !(event.is_writable() || event.is_error() || event.is_write_closed()) {
                return Ok(Vec::new());
            }
            if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
                return Err(format!("cannot connect: {e}"));
            }
            match self.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(Vec::new()),
                Err(e) => return Err(format!("cannot connect: {e}")),
            }
            let _ = self.stream.set_nodelay(true);
            let mut initiator = builder(&self.secret)?
                .build_initiator()
                .map_err(|e| format!("noise: {e}"))?;
            let mut msg = vec![0u8; NOISE_MAX];
            let n = initiator
                .write_message(&[], &mut msg)
                .map_err(|e| format!("noise: {e}"))?;
            self.push_noise(&msg[..n]);
            self.state = State::Handshake(Box::new(initiator));
        }
        let mut frames = Vec::new();
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(&mut frames)?;
        }
        self.flush(registry)?;
        Ok(frames)
    }

    /// Send `msg` to the peer now, after what is queued (only once the link is open; before,
    /// it is dropped).
    pub(crate) fn send(&mut self, msg: &LinkMsg, registry: &Registry) -> Result<(), Broken> {
        self.queue(msg)?;
        self.seal()?;
        self.flush(registry)
    }

    /// Queue `msg` to be sealed with what else is queued by the next [`seal`](Self::seal):
    /// frames that wait together share Noise messages (only once the link is open; before, it
    /// is dropped).
    pub(crate) fn queue(&mut self, msg: &LinkMsg) -> Result<(), Broken> {
        if !self.is_open() {
            return Ok(());
        }
        wire::encode_into(&mut self.unsealed, msg).map_err(|e| e.to_string())?;
        if self.unsealed.len() >= PLAIN_MAX {
            self.seal()?;
        }
        Ok(())
    }

    /// Encrypt what is queued into Noise messages waiting to be written.
    pub(crate) fn seal(&mut self) -> Result<(), Broken> {
        let plain = std::mem::take(&mut self.unsealed);
        self.encrypt(&plain)?;
        self.unsealed = plain;
        self.unsealed.clear();
        Ok(())
    }

    /// Bytes queued or sealed and not yet written: how far the peer is behind.
    pub(crate) fn backlog(&self) -> usize {
        self.out.len() + self.unsealed.len()
    }

    /// Encrypt `plain` into Noise transport messages waiting to be written.
    fn encrypt(&mut self, plain: &[u8]) -> Result<(), Broken> {
        let State::Open(t) = &mut self.state else {
            return Ok(());
        };
        if plain.is_empty() {
            return Ok(());
        }
        // Sealed straight into the output: a length, then the message, for each chunk.
        self.out
            .reserve(plain.len() + plain.len().div_ceil(PLAIN_MAX) * (2 + TAG));
        for chunk in plain.chunks(PLAIN_MAX) {
            let at = self.out.len();
            self.out.resize(at + 2 + chunk.len() + TAG, 0);
            let n = t
                .write_message(chunk, &mut self.out[at + 2..])
                .map_err(|e| format!("noise: {e}"))?;
            self.out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
            self.out.truncate(at + 2 + n);
        }
        if self.out.len() > OUT_LIMIT {
            return Err(format!(
                "the peer does not read: {} bytes wait for it",
                self.out.len()
            ));
        }
        Ok(())
    }

    fn push_noise(&mut self, msg: &[u8]) {
        self.out
            .extend_from_slice(&(msg.len() as u16).to_be_bytes());
        self.out.extend_from_slice(msg);
    }

    /// Write what waits, and watch for room only while something still waits.
    pub(crate) fn flush(&mut self, registry: &Registry) -> Result<(), Broken> {
        if matches!(self.state, State::Connecting) {
            return Ok(());
        }
        let mut written = 0;
        while written < self.out.len() {
            match self.stream.write(&self.out[written..]) {
                Ok(0) => return Err("the peer closed the link".into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("writing: {e}")),
            }
        }
        self.out.drain(..written);
        let want = !self.out.is_empty();
        if want != self.watching_writes {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry
                .reregister(&mut self.stream, self.token, interest)
                .map_err(|e| format!("registering: {e}"))?;
            self.watching_writes = want;
        }
        Ok(())
    }

    /// Write what waits for up to `until` (before the admin ends), without the event loop.
    pub(crate) fn flush_until(&mut self, registry: &Registry, until: Instant) {
        while !self.out.is_empty() && Instant::now() < until {
            if self.flush(registry).is_err() {
                return;
            }
            if !self.out.is_empty() {
                crate::sys::wait_writable(
                    &self.stream,
                    until.saturating_duration_since(Instant::now()),
                );
            }
        }
    }

    /// Stop watching the link.
    pub(crate) fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}
