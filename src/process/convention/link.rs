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

impl Link {
    fn new(
        stream: TcpStream,
        token: Token,
        state: State,
        secret: &Secret,
        hello: &LinkMsg,
        limit: usize,
    ) -> Link {
        let now = Instant::now();
        let remote = stream.peer_addr().ok();
        Link {
            stream,
            token,
            state,
            secret: secret.clone(),
            raw: Vec::new(),
            plain: Vec::new(),
            out: Vec::new(),
            watching_writes: false,
            hello: wire::encode(hello).expect("a hello encodes"),
            limit,
            made: now,
            remote,
        }
    }

    /// Start connecting to `to`; the handshake begins once the connection is made.
    pub(crate) fn connect(
        to: SocketAddr,
        token: Token,
        registry: &Registry,
        secret: &Secret,
        hello: &LinkMsg,
        limit: usize,
    ) -> std::io::Result<Link> {
        let mut stream = TcpStream::connect(to)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let mut link = Link::new(stream, token, State::Connecting, secret, hello, limit);
        link.remote = Some(to);
        link.watching_writes = true;
        Ok(link)
    }

    /// Take a connection a peer made; it must open the handshake.
    pub(crate) fn accept(
        mut stream: TcpStream,
        token: Token,
        registry: &Registry,
        secret: &Secret,
        hello: &LinkMsg,
        limit: usize,
    ) -> Result<Link, Broken> {
        registry
            .register(&mut stream, token, Interest::READABLE)
            .map_err(|e| format!("registering: {e}"))?;
        let _ = stream.set_nodelay(true);
        let responder = builder(secret)?
            .build_responder()
            .map_err(|e| format!("noise: {e}"))?;
        Ok(Link::new(
            stream,
            token,
            State::Handshake(Box::new(responder)),
            secret,
            hello,
            limit,
        ))
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

    /// Read what the peer sent (up to the budget), and take every whole message in it.
    fn read(&mut self, frames: &mut Vec<LinkMsg>) -> Result<(), Broken> {
        let mut buf = [0u8; 64 * 1024];
        let mut budget = READ_BUDGET;
        while budget > 0 {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.take(frames)?;
                    return Err("the peer closed the link".into());
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.raw.extend_from_slice(&buf[..n]);
                    self.take(frames)?;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
        Ok(())
    }

    /// Take whole Noise messages from `raw`: handshake steps, or plaintext for frames.
    fn take(&mut self, frames: &mut Vec<LinkMsg>) -> Result<(), Broken> {
        let mut at = 0;
        let mut clear = vec![0u8; NOISE_MAX];
        while self.raw.len() - at >= 2 {
            let len = u16::from_be_bytes([self.raw[at], self.raw[at + 1]]) as usize;
            if self.raw.len() - at - 2 < len {
                break;
            }
            let msg = self.raw[at + 2..at + 2 + len].to_vec();
            at += 2 + len;
            match &mut self.state {
                State::Connecting => return Err("the peer spoke before the handshake".into()),
                State::Handshake(hs) => {
                    hs.read_message(&msg, &mut clear).map_err(|_| {
                        "the handshake failed: the peer does not hold this convention's secret, or is not a greenroom admin"
                            .to_string()
                    })?;
                    if !hs.is_initiator() {
                        let mut reply = vec![0u8; NOISE_MAX];
                        let n = hs
                            .write_message(&[], &mut reply)
                            .map_err(|e| format!("noise: {e}"))?;
                        self.push_noise(&reply[..n]);
                    }
                    self.open()?;
                }
                State::Open(t) => {
                    let n = t
                        .read_message(&msg, &mut clear)
                        .map_err(|_| "a message on the link does not decrypt".to_string())?;
                    self.plain.extend_from_slice(&clear[..n]);
                    self.frames(frames)?;
                }
            }
        }
        self.raw.drain(..at);
        Ok(())
    }

    /// The handshake is done: switch to transport mode and say hello.
    fn open(&mut self) -> Result<(), Broken> {
        let State::Handshake(hs) = std::mem::replace(&mut self.state, State::Connecting) else {
            return Ok(());
        };
        if !hs.is_handshake_finished() {
            self.state = State::Handshake(hs);
            return Ok(());
        }
        let transport = hs
            .into_transport_mode()
            .map_err(|e| format!("noise: {e}"))?;
        self.state = State::Open(Box::new(transport));
        let hello = std::mem::take(&mut self.hello);
        self.encrypt(&hello)
    }

    /// Take whole frames from the plaintext.
    fn frames(&mut self, frames: &mut Vec<LinkMsg>) -> Result<(), Broken> {
        let mut at = 0;
        while self.plain.len() - at >= 4 {
            let len = u32::from_be_bytes(self.plain[at..at + 4].try_into().unwrap()) as usize;
            if len > self.limit {
                return Err(format!(
                    "the peer sent a frame of {len} bytes (the limit is {})",
                    self.limit
                ));
            }
            if self.plain.len() - at - 4 < len {
                break;
            }
            let body = &self.plain[at + 4..at + 4 + len];
            let msg: LinkMsg = wire::strict::from_slice(body)
                .map_err(|e| format!("the peer sent a malformed frame: {}", e.message))?;
            frames.push(msg);
            at += 4 + len;
        }
        self.plain.drain(..at);
        Ok(())
    }

    /// Send `msg` to the peer (only once the link is open; before, it is dropped).
    pub(crate) fn send(&mut self, msg: &LinkMsg, registry: &Registry) -> Result<(), Broken> {
        if !self.is_open() {
            return Ok(());
        }
        let frame = wire::encode(msg).map_err(|e| e.to_string())?;
        self.encrypt(&frame)?;
        self.flush(registry)
    }

    /// Encrypt `plain` into Noise transport messages waiting to be written.
    fn encrypt(&mut self, plain: &[u8]) -> Result<(), Broken> {
        let State::Open(t) = &mut self.state else {
            return Ok(());
        };
        let mut msg = vec![0u8; NOISE_MAX];
        let mut sealed = Vec::with_capacity(plain.len() + plain.len() / PLAIN_MAX * 18 + 18);
        for chunk in plain.chunks(PLAIN_MAX) {
            let n = t
                .write_message(chunk, &mut msg)
                .map_err(|e| format!("noise: {e}"))?;
            sealed.extend_from_slice(&(n as u16).to_be_bytes());
            sealed.extend_from_slice(&msg[..n]);
        }
        self.out.extend_from_slice(&sealed);
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
