//! The actor process: one single-threaded mio loop around one actor.
//!
//! The admin starts the process with its listening socket already bound (so the address worked
//! before this process existed), its ledger page, and one end of a control socket pair. The
//! loop accepts senders, reassembles frames, and calls the handler for one message at a time,
//! in arrival order per sender, recording in the ledger page which message it is handling and
//! which it has settled. EOF on the control socket means the admin is gone, and the process
//! exits (the kernel's parent-death signal is the second line of defence).
//!
//! Nothing sent to it is lost when it ends: on a requested exit it returns every message it
//! did not handle as a dead letter (those still arriving are returned by their senders, which
//! keep copies until the ledger page covers them); if it cannot start, it poisons back what
//! it has read and its senders dead-letter the rest; if it is killed, its senders return what
//! the page does not cover.

use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::actor::{Actor, ContextOps};
use crate::address::Address;
use crate::core::cell::Cell;
use crate::core::ledger::{Count, Tally};
use crate::core::stage;
use crate::error::{Error, IoContext, Result};
use crate::message::{ExitReason, Message};
use crate::process::control::{ControlClient, HandedFrom};
use crate::process::inbound::{Inbound, Origin, Queue, Queued};
use crate::process::ledger_page::LedgerPage;

mod context;
mod exit;
mod flusher;
mod start;

pub(crate) use start::{control_and_assignment, refuse, run};

use crate::process::outbox::{
    Accepted, FULL_RING_LOOK, Outbox, WINDOW, send_timeout, send_when_out_ring_has_room,
};
pub(crate) use crate::protocol::{ActorArgs, SPARE};
use crate::protocol::{Envelope, PROTOCOL_VERSION, Request, Response, Role};
use crate::registry;
use crate::sys::{self, Handed};
use crate::wire;
use flusher::Flusher;

const LISTENER: Token = Token(0);
const CONTROL: Token = Token(1);
const FIRST_INBOUND: usize = 2;

/// The first sends of each handler call are written at once, so that request/reply traffic
/// has no added latency. Further sends in the same call are batched: written when a buffer
/// fills, when the handler returns, or by the flusher thread within [`FLUSH_INTERVAL`] — so a
/// send never waits for a long handler to return.
const IMMEDIATE_SENDS: u32 = 4;

/// How long a batched send may wait while its handler is still running.
const FLUSH_INTERVAL: Duration = Duration::from_micros(200);

/// How long an exiting process waits for its last messages to be written.
const EXIT_FLUSH: Duration = Duration::from_secs(2);

/// Everything the actor's handler can reach through its [`Context`](crate::Context).
struct Runtime {
    cell: Cell<Instant>,
    page: Arc<LedgerPage>,
    exe: Option<String>,
    poll: Poll,
    events: Events,
    control: ControlClient,
    outbox: Arc<Mutex<Outbox>>,
    flusher: Option<Arc<Flusher>>,
    sends_this_call: u32,
    /// The ask of the message being handled: everything sent meanwhile carries it.
    current_ask: Option<u64>,
    /// What this actor was created with (see `Context::start_args`).
    start_args: Option<Vec<u8>>,
    listener: Option<UnixListener>,
    inbound: Inbound,
    queue: Queue,
    /// The largest frame a handler may send.
    max_frame: usize,
    /// The admin is gone: the process exits as soon as it can.
    orphaned: bool,
    /// A buffer for encoding messages to itself.
    scratch: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime {
    /// Set up the runtime from what the admin handed over; on failure, say why and exit.
    fn start(args: &ActorArgs, control: ControlClient) -> Runtime {
        match Runtime::new(args, control) {
            Ok(rt) => rt,
            Err(e) => {
                log::error!("cannot start actor {}: {e}", args.me);
                std::process::exit(1)
            }
        }
    }

    fn new(args: &ActorArgs, control: ControlClient) -> Result<Runtime> {
        let page = sys::adopt(args.ledger_fd, Handed::File)
            .map(std::fs::File::from)
            .and_then(|f| LedgerPage::map(&f, true))
            .ctx(|| "taking the ledger page the admin handed over".into())?;
        let listener = sys::adopt(args.listen_fd, Handed::Listener)
            .map(StdUnixListener::from)
            .ctx(|| "taking the socket the admin handed over".into())?;
        listener
            .set_nonblocking(true)
            .ctx(|| "setting the listener non-blocking".into())?;
        let mut listener = UnixListener::from_std(listener);
        let poll = Poll::new().ctx(|| "creating the event loop".into())?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .ctx(|| "registering the listener".into())?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&control.stream);
        poll.registry()
            .register(&mut SourceFd(&fd), CONTROL, Interest::READABLE)
            .ctx(|| "registering the control socket".into())?;
        let registry = poll
            .registry()
            .try_clone()
            .ctx(|| "cloning the event registry".into())?;
        let page = Arc::new(page);
        let limit = args.max_frame + wire::WRAP_SLACK;
        Ok(Runtime {
            cell: Cell::new(args.me.clone(), args.type_name.clone(), args.parent.clone()),
            inbound: Inbound::new(args.me.clone(), FIRST_INBOUND, limit, page.clone()),
            page: page.clone(),
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            poll,
            events: Events::with_capacity(256),
            control,
            outbox: Arc::new(Mutex::new(Outbox::new(
                &args.me,
                registry,
                limit,
                Some(page.clone()),
            ))),
            flusher: None,
            sends_this_call: 0,
            current_ask: None,
            start_args: args.start_args.clone(),
            listener: Some(listener),
            queue: Queue::default(),
            max_frame: args.max_frame,
            orphaned: false,
            scratch: Vec::new(),
        })
    }

    /// Wait up to `timeout` for events and take them in: accept senders, read their streams
    /// into the queue (while it has room), write what waits, and carry out what came back from
    /// receivers that ended. Never runs the handler.
    fn service(&mut self, timeout: Option<Duration>) {
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("event loop failed: {e}");
                self.orphaned = true;
            }
            return;
        }
        let registry = self.poll.registry();
        for event in self.events.iter() {
            match event.token() {
                LISTENER => {
                    if let Some(listener) = &self.listener {
                        self.inbound.accept_all(listener, registry);
                    }
                }
                CONTROL => {
                    if sys::peer_closed(&self.control.stream) {
                        log::debug!("admin is gone; exiting");
                        self.orphaned = true;
                    }
                }
                token => {
                    if !lock(&self.outbox).on_event(event) {
                        self.inbound.on_event(token, registry, &mut self.queue);
                    }
                }
            }
        }
        self.inbound.resume(registry, &mut self.queue);
        self.carry_out_returns();
    }

    /// The loop. Returns the exit reason to report, or `None` if the admin is gone.
    fn serve(&mut self, actor: &mut dyn Actor) -> Option<ExitReason> {
        loop {
            // Messages the last round read in (resuming a paused stream) must not wait for a
            // new event: there may never be one.
            let timeout = if self.queue.len() > 0 || self.inbound.ready(&self.queue) {
                Some(Duration::ZERO)
            } else {
                self.cell
                    .timers
                    .next_due()
                    .map(|due| due.saturating_duration_since(Instant::now()))
            };
            self.service(timeout);
            if self.orphaned {
                return None;
            }
            // Timers that are due join the queue behind the messages that arrived with them, so
            // a flood of wakeups cannot hold back an ExitRequest.
            let now = Instant::now();
            while let Some(msg) = self.cell.due_wakeup(now) {
                let me = self.cell.me.clone();
                self.queue.push(Queued {
                    env: Envelope {
                        from: me.clone(),
                        to: me,
                        msg,
                    },
                    origin: Origin::Timer,
                });
            }
            while let Some(queued) = self.queue.pop() {
                if let Some(reason) = self.deliver(actor, queued) {
                    return Some(reason);
                }
                if self.orphaned {
                    return None;
                }
            }
            self.inbound.resume(self.poll.registry(), &mut self.queue);
        }
    }

    /// Hand one message to the handler, and record that it is settled. Returns an exit reason
    /// if the actor must now exit.
    fn deliver(&mut self, actor: &mut dyn Actor, queued: Queued) -> Option<ExitReason> {
        let Queued { env, origin } = queued;
        stage::deliver(self, actor, &env, origin, origin != Origin::Timer)
    }

    /// The handler has returned: write what it batched, and stand the flusher down.
    fn end_of_call(&mut self) {
        if self.sends_this_call > IMMEDIATE_SENDS {
            lock(&self.outbox).flush_dirty();
            if let Some(f) = &self.flusher {
                f.set(false);
            }
        }
        self.sends_this_call = 0;
        self.carry_out_returns();
    }

    /// Send a message the framework or the handler produced (the handler's own are checked
    /// against the frame limit first). A receiver that is not running gets it as a dead letter,
    /// and that is not an error: it is not the sender's failure.
    fn post(&mut self, to: &Address, mut msg: Message) -> Result<()> {
        if msg.ask.is_none() {
            msg.ask = self.current_ask;
        }
        if *to == self.cell.me {
            let me = self.cell.me.clone();
            return self.send_to_self(me, msg);
        }
        self.wait_for_room(to)?;
        self.sends_this_call += 1;
        let batch = self.sends_this_call > IMMEDIATE_SENDS;
        if self.sends_this_call == IMMEDIATE_SENDS + 1 {
            self.flusher
                .get_or_insert_with(|| Flusher::start(self.outbox.clone()))
                .set(true);
        }
        let sent = self.send_waiting(to, &msg, batch);
        let mut page: &LedgerPage = &self.page;
        match sent {
            Ok(accepted) => {
                page.count(Count::Sent);
                if accepted == Accepted::AtMostOnce {
                    page.count(Count::Handled);
                }
                Ok(())
            }
            Err(Error::DeadActor(_)) => {
                page.count(Count::Sent);
                self.dead_letter(to, &self.cell.me.clone(), msg);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A message to this actor itself goes straight to its queue, through the ring of its
    /// ledger page: if the process is killed, the admin finds it there and returns it. `from`
    /// is this actor, or the receiver a returned message was for.
    fn send_to_self(&mut self, from: Address, msg: Message) -> Result<()> {
        if self.queue.is_full() {
            return Err(Error::SelfBacklog);
        }
        self.scratch.clear();
        msg.encode_frame_into(&mut self.scratch);
        let env = Envelope {
            from,
            to: self.cell.me.clone(),
            msg,
        };
        if !self
            .inbound
            .push_own(&mut self.queue, env, &self.scratch[4..])
        {
            return Err(Error::SelfBacklog);
        }
        (&*self.page).count(Count::Sent);
        Ok(())
    }

    /// Before a send to `to`: if too much to it is still unwritten, take in events (without
    /// running the handler) until its receiver has taken enough, or fail after a while. Reading
    /// this process's own streams meanwhile is what lets two actors that flood each other, or
    /// an actor that floods itself, go on.
    fn wait_for_room(&mut self, to: &Address) -> Result<()> {
        if lock(&self.outbox).backlog(to) <= WINDOW {
            return Ok(());
        }
        let (started, timeout) = (Instant::now(), send_timeout());
        while lock(&self.outbox).backlog(to) > WINDOW / 2 {
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::Backpressure {
                    to: to.clone(),
                    waited,
                });
            }
            if self.orphaned {
                return Err(Error::AdminClosed);
            }
            let left = timeout - waited;
            self.service(Some(left.min(Duration::from_millis(100))));
        }
        Ok(())
    }

    /// Send through the outbox, waiting while its out ring is full (see
    /// [`send_when_out_ring_has_room`]).
    fn send_waiting(&mut self, to: &Address, msg: &Message, batch: bool) -> Result<Accepted> {
        send_when_out_ring_has_room(
            self,
            to,
            |r| {
                let mut outbox = lock(&r.outbox);
                let sent = outbox.send(&r.cell.me, to, msg, batch);
                (sent.is_ok() || !outbox.out_ring_was_full()).then_some(sent)
            },
            |r| {
                if r.orphaned {
                    return Err(Error::AdminClosed);
                }
                r.service(Some(FULL_RING_LOOK));
                lock(&r.outbox).trim_all();
                Ok(())
            },
        )
    }

    /// Carry out what came back from receivers whose connection ended: the message that was
    /// being handled comes back here as a `Poison`, possibly handled; the others go to the
    /// dead-letter handler.
    fn carry_out_returns(&mut self) {
        let returns = {
            let mut outbox = lock(&self.outbox);
            if !outbox.has_returns() {
                return;
            }
            outbox.take_returns()
        };
        for r in &returns {
            self.control
                .dead_letter(&r.to, &r.from, r.msg.clone(), HandedFrom::OutRing(r.kept));
        }
        lock(&self.outbox).handed_on(&returns);
    }

    /// Hand a message whose target is not running to the admin, for the dead-letter handler
    /// (the admin counts what becomes of it).
    fn dead_letter(&mut self, target: &Address, sender: &Address, message: Message) {
        self.control
            .dead_letter(target, sender, message, HandedFrom::Nowhere);
    }
}
