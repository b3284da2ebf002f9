//! The member's gateway: how messages cross between this member's actors and programs and
//! those of other members, over the links (one per pair of members, shared by every stream).
//!
//! A process that sends to an address on another member opens its stream, as to any receiver,
//! but to `DIR/gateway.sock`, with the receiver named in its hello ([`SenderHello::to`]). The
//! gateway, in the admin, gives the stream a slot in its ledger page (`DIR/gateway.ledger`),
//! tells the receiver's member over their link ([`LinkMsg::Open`]), and passes the messages on
//! in batches ([`LinkMsg::Data`]). That member's gateway writes them into the receiver's socket
//! as the sender would have, and reads the receiver's ledger page: as the receiver settles them
//! (handles them, or poisons or returns them) it says so ([`LinkMsg::Took`]), and the sending
//! gateway moves the stream's slot on. So the sender keeps every message until its receiver
//! has settled it; a message whose member was lost or whose link broke before that comes back
//! to its sender as a dead letter, by the sender's own outbox, and one whose receiver ended on
//! a member that lives is returned by that member's admin ([`LinkMsg::End`] says how far the
//! receiver took the stream).
//!
//! [`SenderHello::to`]: crate::protocol::SenderHello::to

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::wire::LinkMsg;
use crate::address::Address;
use crate::error::{Error, IoContext, Result};
use crate::process::conn::{Conn, read_sender_hello};
use crate::process::ledger_page::{LedgerPage, Progress, SLOTS};
use crate::process::outbox::{GATEWAY_LEDGER, GATEWAY_SOCKET};
use crate::wire::ReadStatus;

mod delivery;
mod reporting;
mod sending;

use delivery::In;

/// The gateway's tokens: its listener, then its streams (all among the convention's).
pub(super) const GATEWAY_TOKENS: usize = super::TOKENS | (1 << 54);
const LISTENER: Token = Token(GATEWAY_TOKENS);
/// Frames passed on in one `Data` message, at most (a larger message goes alone).
const BATCH: usize = 64 * 1024;
/// A stream with this many bytes passed on and not yet settled is not read until its receiver
/// settles some: a receiver that does not keep up slows its senders down, as one beside them
/// does, rather than filling its member's memory.
const STREAM_WINDOW: usize = 4 << 20;
/// Streams are not read while their link has this many bytes waiting to be written.
const LINK_HIGH: usize = 8 << 20;
/// How long a stream to a member this one has no link with yet waits for one.
const LINK_WAIT: Duration = Duration::from_secs(3);
/// How often a receiver's page is read while its stream presses on the sender's window (half
/// of it waits to be reported settled): the sender may be about to wait for it.
pub(super) const TOOK_EVERY: Duration = Duration::from_millis(1);
/// How long a stream's settled messages wait to be reported otherwise, unless something else
/// goes to their sender's member first (then the report goes with it): a request and its answer
/// cost no extra wake-ups.
pub(super) const TOOK_LAZY: Duration = Duration::from_millis(10);

/// The largest link frame: a `Data` of one message of `limit` bytes, or a batch.
pub(super) fn link_limit(limit: usize) -> usize {
    limit.max(BATCH) + 4096
}

/// A local sender's stream to a receiver on another member.
struct Out {
    conn: Conn,
    /// The sender's hello, once read: who sends, to whom, and the stream's slot.
    hello: Option<(Address, Address, u32)>,
    /// The stream's number on the link.
    id: u64,
    /// The receiver's member, once the hello is read.
    member: String,
    /// `Open` has been said on the link.
    opened: bool,
    accepted: Instant,
    /// Messages read so far.
    read: u64,
    /// Frames read and not yet passed on.
    batch: Vec<u8>,
    /// Bytes passed on, and the running total at the last message of each batch.
    passed: usize,
    in_flight: VecDeque<(u64, usize)>,
    /// Bytes passed on that the receiver has settled.
    taken_bytes: usize,
    /// The sender closed the stream (or misbehaved): nothing more is read.
    finished: bool,
}

impl Out {
    fn unacknowledged(&self) -> usize {
        self.passed - self.taken_bytes
    }
}

/// The gateway's state.
pub(crate) struct Gateway {
    listener: UnixListener,
    page: LedgerPage,
    /// The admin's address: the member and the system.
    home: Address,
    limit: usize,
    next_token: usize,
    next_stream: u64,
    outs: HashMap<Token, Out>,
    out_by_stream: HashMap<u64, Token>,
    ins: HashMap<(String, u64), In>,
    in_by_token: HashMap<Token, (String, u64)>,
    /// Outs to read again at once: their turn ran out with bytes left, or they are new.
    waiting: Vec<Token>,
    /// Outs that wait for room on their link, or for their receiver to take some.
    blocked: Vec<Token>,
    /// Outs whose member this admin has no link with yet.
    unopened: Vec<Token>,
    next_slot: u32,
    free_slots: VecDeque<u32>,
    last_took: Instant,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("outs", &self.outs.len())
            .field("ins", &self.ins.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Listen on `DIR/gateway.sock` with a ledger page beside it, for the system at `home`.
    pub(crate) fn open(
        dir: &Path,
        home: &Address,
        max_frame: usize,
        limit: usize,
        registry: &Registry,
    ) -> Result<Gateway> {
        let path = dir.join(GATEWAY_LEDGER);
        let page = LedgerPage::create(&path, max_frame)
            .and_then(|f| LedgerPage::map(&f, true))
            .ctx(|| format!("creating {}", path.display()))?;
        let socket = dir.join(GATEWAY_SOCKET);
        let std = std::os::unix::net::UnixListener::bind(&socket)
            .ctx(|| format!("binding {}", socket.display()))?;
        std.set_nonblocking(true)
            .ctx(|| "setting a socket non-blocking".into())?;
        let mut listener = UnixListener::from_std(std);
        registry
            .register(&mut listener, LISTENER, Interest::READABLE)
            .ctx(|| "registering the gateway's socket".into())?;
        Ok(Gateway {
            listener,
            page,
            home: home.clone(),
            limit,
            next_token: GATEWAY_TOKENS + 1,
            next_stream: 1,
            outs: HashMap::new(),
            out_by_stream: HashMap::new(),
            ins: HashMap::new(),
            in_by_token: HashMap::new(),
            waiting: Vec::new(),
            blocked: Vec::new(),
            unopened: Vec::new(),
            next_slot: 0,
            free_slots: VecDeque::new(),
            last_took: Instant::now(),
        })
    }

    /// True if `token` is the gateway's.
    pub(super) fn owns(token: Token) -> bool {
        token.0 >= GATEWAY_TOKENS
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    /// How far the receiver of the stream numbered `conn` (by its sender) has taken it, if
    /// the gateway carries it: for the admin, settling what a sender that ended left.
    pub(crate) fn progress(&self, conn: u64) -> Option<Progress> {
        self.page.find(conn).map(|s| self.page.progress(s))
    }

    /// True if the gateway has work for the next turn without waiting for an event.
    pub(super) fn busy(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// When the gateway next needs a turn without an event: while messages wait to be reported
    /// settled, soon if a stream presses on its sender's window, else lazily.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let mut due: Option<Instant> = None;
        for i in self.ins.values().filter(|i| i.awaiting()) {
            let at = if i.pressing() {
                self.last_took + TOOK_EVERY
            } else {
                i.said_at + TOOK_LAZY
            };
            due = Some(due.map_or(at, |d| d.min(at)));
        }
        due
    }

    fn take_slot(&mut self) -> Option<u32> {
        if (self.next_slot as usize) < SLOTS {
            self.next_slot += 1;
            return Some(self.next_slot - 1);
        }
        self.free_slots.pop_front()
    }

    /// End a sender's stream: its slot says `taken` finally (what came after comes back to the
    /// sender as dead letters, by its outbox, which sees the stream close).
    fn end_out(&mut self, token: Token, registry: &Registry, taken: Option<u64>) {
        let Some(mut out) = self.outs.remove(&token) else {
            return;
        };
        self.out_by_stream.remove(&out.id);
        let _ = registry.deregister(&mut out.conn.stream);
        if let Some((_, _, slot)) = out.hello {
            if let Some(taken) = taken {
                self.page.set_taken(slot, taken);
            }
            self.page.close_slot(slot);
            self.free_slots.push_back(slot);
        }
    }
}

/// The convention's side of the gateway: links, members, and the events of both.
impl super::Convention {
    /// Start carrying messages between this system (at `home`, in `dir`) and other members.
    pub(crate) fn open_gateway(
        &mut self,
        dir: &Path,
        home: &Address,
        max_frame: usize,
    ) -> Result<()> {
        self.gateway = Some(Gateway::open(
            dir,
            home,
            max_frame,
            self.limit,
            &self.registry,
        )?);
        Ok(())
    }

    /// How far the gateway's receiver has taken stream `conn`, if it carries it.
    pub(crate) fn gateway_progress(&self, conn: u64) -> Option<Progress> {
        self.gateway.as_ref().and_then(|g| g.progress(conn))
    }

    /// A gateway event: a new sender, a sender's stream, or a receiver's.
    pub(super) fn on_gateway_event(&mut self, event: &mio::event::Event) {
        let token = event.token();
        if token == LISTENER {
            return self.accept_senders();
        }
        let Some(g) = &self.gateway else {
            return;
        };
        if g.outs.contains_key(&token) {
            self.read_out(token);
        } else if g.in_by_token.contains_key(&token) {
            self.on_in_event(token, event);
        }
    }

    fn accept_senders(&mut self) {
        let Some(g) = &mut self.gateway else {
            return;
        };
        loop {
            match g.listener.accept() {
                Ok((mut stream, _)) => {
                    let token = g.token();
                    if let Err(e) = self
                        .registry
                        .register(&mut stream, token, Interest::READABLE)
                    {
                        log::warn!("gateway: cannot watch a new sender: {e}");
                        continue;
                    }
                    let id = g.next_stream;
                    g.next_stream += 1;
                    g.outs.insert(
                        token,
                        Out {
                            conn: Conn::new(stream, g.limit),
                            hello: None,
                            id,
                            member: String::new(),
                            opened: false,
                            accepted: Instant::now(),
                            read: 0,
                            batch: Vec::new(),
                            passed: 0,
                            in_flight: VecDeque::new(),
                            taken_bytes: 0,
                            finished: false,
                        },
                    );
                    g.out_by_stream.insert(id, token);
                    g.waiting.push(token);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("gateway: accepting a sender: {e}");
                    return;
                }
            }
        }
    }
}
