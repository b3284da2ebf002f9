//! The connections a process accepts on its message socket, and the queue their messages wait
//! in.
//!
//! Each sender's stream opens with its hello; the stream then gets a slot in this process's
//! ledger page, and each message a sequence number on it (from 1). A message read is written
//! into the page's queue ring before it joins the queue, which makes the ring its keeper (the
//! slot says so to the sender, who then lets its copy go). As messages are handled the owner
//! reports them ([`Inbound::started`], [`Inbound::done`]) and the ring lets them go. A stream
//! that ends, or whose sender misbehaves (a malformed or oversized frame), is closed without
//! disturbing the others; a refused stream's slot says how much of it was read.
//!
//! The queue's memory is bounded: once it holds [`QUEUE_BYTES`], streams are not read until it
//! drains (the senders, whose writes then wait in their own buffers, are slowed down).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use mio::{Interest, Registry, Token};

use crate::address::Address;
use crate::core::ledger::{Count, Tally};
use crate::error::Error;
use crate::message::Message;
use crate::process::conn::{Conn, read_sender_hello};
use crate::process::ledger_page::{LedgerPage, SLOTS, Source};
use crate::protocol::Envelope;
use crate::wire::ReadStatus;

pub(crate) use crate::process::ledger_page::QUEUE_BYTES;

mod queue;
mod settle;

pub(crate) use queue::{Origin, Queue, Queued};

/// What a queued message costs beyond its frame and its sender's address (the envelope and its
/// bookkeeping; more than its ring entry's header).
const QUEUE_OVERHEAD: usize = 128;

/// Refused streams whose slots are kept from reuse a while (their senders read how far it went).
const QUARANTINE: usize = 1024;

/// One accepted stream.
struct Stream {
    conn: Conn,
    /// The sender, once its hello has been read.
    from: Option<Address>,
    slot: u32,
    /// The sender's number for this connection.
    conn_id: u64,
    /// Whether the sender counts its own sends.
    counts_own: bool,
    /// Messages read so far.
    seq: u64,
}

/// The accepted streams of one process.
pub(crate) struct Inbound {
    me: Address,
    streams: HashMap<Token, Stream>,
    next: usize,
    limit: usize,
    page: Arc<LedgerPage>,
    /// Freed slots, oldest first (reused only once every slot has been used).
    free: VecDeque<u32>,
    /// Slots of refused streams, oldest first, not yet free.
    quarantined: VecDeque<u32>,
    next_slot: u32,
    /// Streams not read because the queue was full.
    paused: Vec<Token>,
}

impl Inbound {
    /// An empty set for the process at `me`, whose ledger page is `page`; streams get tokens
    /// from `first_token` up (below the outbox's), and frames over `limit` are refused.
    pub(crate) fn new(
        me: Address,
        first_token: usize,
        limit: usize,
        page: Arc<LedgerPage>,
    ) -> Inbound {
        Inbound {
            me,
            streams: HashMap::new(),
            next: first_token,
            limit,
            page,
            free: VecDeque::new(),
            quarantined: VecDeque::new(),
            next_slot: 0,
            paused: Vec::new(),
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
                            let stream = Stream {
                                conn: Conn::new(stream, self.limit),
                                from: None,
                                slot: 0,
                                conn_id: 0,
                                counts_own: true,
                                seq: 0,
                            };
                            self.streams.insert(token, stream);
                        }
                        Err(e) => log::warn!("cannot watch a new sender: {e}"),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(e) = Error::exhausted("accepting a sender", &e) {
                        crate::logging::bad_input(format_args!("{e}"));
                    } else {
                        log::warn!("accept failed: {e}");
                    }
                    return;
                }
            }
        }
    }

    /// Read what the stream of `token` has into `queue`, unless the queue is full (then the
    /// stream waits for [`resume`](Self::resume)). Returns false if the token is not one of
    /// this set's.
    pub(crate) fn on_event(
        &mut self,
        token: Token,
        registry: &Registry,
        queue: &mut Queue,
    ) -> bool {
        if !self.streams.contains_key(&token) {
            return false;
        }
        if queue.is_full() {
            if !self.paused.contains(&token) {
                self.paused.push(token);
            }
        } else {
            self.read(token, registry, queue);
        }
        true
    }

    /// Read the streams that waited for room or for their turn, while the queue has room.
    pub(crate) fn resume(&mut self, registry: &Registry, queue: &mut Queue) {
        for token in std::mem::take(&mut self.paused) {
            if queue.is_full() {
                self.paused.push(token);
            } else {
                self.read(token, registry, queue);
            }
        }
    }

    /// True if streams wait to be read and the queue has room for them: the owner must not
    /// block waiting for new events.
    pub(crate) fn ready(&self, queue: &Queue) -> bool {
        !self.paused.is_empty() && !queue.is_full()
    }

    /// Read what every stream has now, whatever its readiness and however full the queue (for
    /// the last sweep before the process exits). A sender still writing gets a few turns; what
    /// it writes after that its ledger slot shows as never read.
    pub(crate) fn read_all(&mut self, registry: &Registry, queue: &mut Queue) {
        let tokens: Vec<Token> = self.streams.keys().copied().collect();
        for _turn in 0..16 {
            self.paused.clear();
            for &token in &tokens {
                self.read(token, registry, queue);
            }
            if self.paused.is_empty() {
                return;
            }
        }
    }

    fn read(&mut self, token: Token, registry: &Registry, queue: &mut Queue) {
        let Inbound {
            me,
            streams,
            page,
            free,
            quarantined,
            next_slot,
            ..
        } = self;
        let Some(s) = streams.get_mut(&token) else {
            return;
        };
        let status = s.conn.read(|frame| {
            let Some(from) = &s.from else {
                let hello = read_sender_hello(frame)?;
                // A fresh slot while there are any, then the one freed longest ago: a closed
                // slot keeps how far its connection was taken for as long as possible, for the
                // admin to read should the sender have died.
                let slot = if (*next_slot as usize) < SLOTS {
                    *next_slot += 1;
                    *next_slot - 1
                } else if let Some(slot) = free.pop_front() {
                    slot
                } else if let Some(slot) = quarantined.pop_front() {
                    slot
                } else {
                    return Err(Error::Protocol(format!(
                        "{} connections are open already; refusing one from {}",
                        SLOTS, hello.from
                    )));
                };
                page.open_slot(slot, hello.conn);
                s.from = Some(hello.from);
                s.slot = slot;
                s.conn_id = hello.conn;
                s.counts_own = hello.ledger;
                return Ok(());
            };
            let msg = Message::decode_frame_body(frame)?;
            let source = Source::Stream {
                slot: s.slot,
                conn: s.conn_id,
                seq: s.seq + 1,
            };
            // Into the ring first: from there on, the ring keeps it, not the sender.
            let Some((start, end)) = page.push(source, from.as_str().as_bytes(), frame) else {
                return Err(Error::Protocol(
                    "this process's queue ring is full; refusing the rest of the stream".into(),
                ));
            };
            s.seq += 1;
            if !s.counts_own {
                // A sender that keeps no ledger: its message counts as sent now.
                (&**page).count(Count::Sent);
            }
            queue.push(Queued {
                env: Envelope {
                    from: from.clone(),
                    to: me.clone(),
                    msg,
                },
                origin: Origin::Ring {
                    start,
                    end,
                    stream: Some((s.slot, s.seq)),
                },
            });
            Ok(())
        });
        let refused = match status {
            Ok(ReadStatus::Drained) => return,
            // Its turn is over: read the rest on the next round.
            Ok(ReadStatus::More) => {
                if !self.paused.contains(&token) {
                    self.paused.push(token);
                }
                return;
            }
            Ok(ReadStatus::Eof) => false,
            Err(e) => {
                crate::logging::bad_input(format_args!(
                    "closing a connection from a misbehaving sender: {e}"
                ));
                true
            }
        };
        let Some(mut s) = self.streams.remove(&token) else {
            return;
        };
        let _ = registry.deregister(&mut s.conn.stream);
        self.paused.retain(|t| *t != token);
        if s.from.is_some() {
            if refused {
                // Its sender reads how far the refusal went, so the slot is not reused at once.
                self.page.refused(s.slot, s.seq);
                self.quarantined.push_back(s.slot);
                if self.quarantined.len() > QUARANTINE {
                    let slot = self.quarantined.pop_front().expect("not empty");
                    self.release(slot);
                }
            } else {
                self.release(s.slot);
            }
        }
    }

    /// A message this process sends itself: into the ring (so that it outlives the process),
    /// and the queue. False if the ring has no room.
    pub(crate) fn push_own(&self, queue: &mut Queue, env: Envelope, body: &[u8]) -> bool {
        let Some((start, end)) = self
            .page
            .push(Source::Own, env.from.as_str().as_bytes(), body)
        else {
            return false;
        };
        queue.push(Queued {
            env,
            origin: Origin::Ring {
                start,
                end,
                stream: None,
            },
        });
        true
    }

    /// Free a slot whose stream has ended.
    fn release(&mut self, slot: u32) {
        self.page.close_slot(slot);
        self.free.push_back(slot);
    }
}

#[cfg(test)]
mod tests;
