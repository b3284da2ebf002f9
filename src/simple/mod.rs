//! The deterministic base: every actor of the system runs inside the calling program, one
//! handler at a time, on the caller's thread.
//!
//! Choose it with `GREENROOM_BASE=simple` or [`Base::Simple`](crate::Base::Simple); the actors,
//! the system API and the system messages are the same as with processes. What differs is only
//! *when* handlers run:
//!
//! - Messages are handled in the order they were produced (one FIFO queue for the whole system),
//!   so two runs of the same program handle the same messages in the same order.
//! - Handlers run only while the program is inside a system call: `tell` runs the system until no
//!   message is left; `ask` and `listen` also let time pass.
//! - Time is virtual. When nothing is runnable, the clock jumps to the next timer, so
//!   `wakeup_after` and `ask` timeouts take no real time.
//!
//! Every message is still encoded into a frame and decoded again, with the same size limit, so a
//! type that would fail between processes fails here too (addresses inside messages included).
//! Only the envelope's own sender and receiver addresses travel beside the frame.
//!
//! The semantics (status, children, exit, dead letters, the ledger) are the core's
//! ([`crate::core`]), as on the process base; nothing is ever killed here, so every message is
//! settled exactly once.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::actor::Spec;
use crate::actor::{Actor, ContextOps};
use crate::address::{ADMIN_ID, Address};
use crate::base::SystemBase;
use crate::core::cell::Cell;
use crate::core::directory::{DeadLetter, Directory};
use crate::core::ledger::{Count, Ledger, Tally};
use crate::core::placement;
use crate::core::stage;
use crate::error::{Error, Result};
use crate::message::{ExitReason, Message};
use crate::protocol::{ActorInfo, Envelope, SystemStatus};
use crate::registry;
use crate::wire;

mod context;
mod lifecycle;
mod program;

use context::SimpleOps;

/// One actor of the deterministic base.
struct Slot {
    cell: Cell<Duration>,
    /// `None` until its Start event has run, and while its handler runs.
    actor: Option<Box<dyn Actor>>,
    /// Its own part of the accounting.
    ledger: Ledger,
    /// What it was created with (see `Context::start_args`).
    start_args: Option<Vec<u8>>,
}

enum Event {
    /// Build the actor (creation is asynchronous, as between processes).
    Start(u64),
    /// A message, encoded as a frame; the addresses travel beside it. A timer's wakeup is not a
    /// sent message and is not counted (`counted: false`).
    Deliver {
        from: Address,
        to: Address,
        frame: Vec<u8>,
        counted: bool,
    },
}

/// The deterministic, in-process system.
pub(crate) struct SimpleSystem {
    name: String,
    dir: PathBuf,
    me: Address,
    admin: Address,
    next_id: u64,
    actors: BTreeMap<u64, Slot>,
    queue: VecDeque<Event>,
    inbox: VecDeque<Envelope>,
    clock: Duration,
    directory: Directory,
    /// The whole system's accounting.
    ledger: Ledger,
    /// Frame buffers of delivered messages, reused for the next ones.
    spare_frames: Vec<Vec<u8>>,
    max_frame: usize,
    /// This program's pid (actors' status reports it).
    pid: u32,
    closed: bool,
    /// The ask of the message being handled: everything sent meanwhile carries it.
    current_ask: Option<u64>,
    /// The last ask id this program used.
    next_ask: u64,
}

/// Frame buffers kept for reuse, and the largest one kept.
const SPARE_FRAMES: usize = 64;
const SPARE_FRAME_BYTES: usize = 4096;

/// The smallest step of the virtual clock, so that zero-delay timers still move time along.
const TICK: Duration = Duration::from_micros(1);

/// Counts for the system and for one of its actors at once.
struct Both<'a> {
    system: &'a mut Ledger,
    actor: Option<&'a mut Ledger>,
}

impl Tally for Both<'_> {
    fn count(&mut self, what: Count) {
        self.system.count(what);
        if let Some(a) = self.actor.as_deref_mut() {
            a.count(what);
        }
    }
}

impl SimpleSystem {
    pub(crate) fn new(name: &str) -> SimpleSystem {
        // Addresses need a directory; this one names the system and the program, and is never
        // created.
        let dir = PathBuf::from(format!(
            "/greenroom-simple/{name}/{}-{}",
            std::process::id(),
            unique()
        ));
        SimpleSystem {
            name: name.to_string(),
            me: Address::new(&dir, ADMIN_ID + 1),
            admin: Address::new(&dir, ADMIN_ID),
            dir,
            next_id: ADMIN_ID + 2,
            actors: BTreeMap::new(),
            queue: VecDeque::new(),
            inbox: VecDeque::new(),
            clock: Duration::ZERO,
            directory: Directory::default(),
            ledger: Ledger::default(),
            spare_frames: Vec::new(),
            max_frame: wire::max_frame_from_env(),
            pid: std::process::id(),
            closed: false,
            current_ask: None,
            next_ask: 0,
        }
    }

    /// True if `address` belongs to this system (a byte comparison: this runs per message).
    fn ours(&self, address: &Address) -> bool {
        address.system_dir().as_os_str() == self.dir.as_os_str()
    }

    /// Count `what` for the system, and for actor `id` if it is one of ours.
    fn tally(&mut self, id: Option<u64>, what: Count) {
        Both {
            system: &mut self.ledger,
            actor: id
                .and_then(|id| self.actors.get_mut(&id))
                .map(|s| &mut s.ledger),
        }
        .count(what);
    }

    /// The id of `address` if it is one of this system's actors.
    fn actor_id(&self, address: &Address) -> Option<u64> {
        (self.ours(address) && self.actors.contains_key(&address.id())).then_some(address.id())
    }

    /// Queue `msg` from `from` to `to`, refusing a frame longer than `limit`. The message is
    /// encoded into a frame now and decoded when it is delivered, exactly as between processes.
    /// A counted message is a send in the ledger.
    fn post(
        &mut self,
        from: &Address,
        to: &Address,
        msg: &Message,
        limit: usize,
        counted: bool,
    ) -> Result<()> {
        let len = msg.frame_len();
        if len > limit {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                limit,
            });
        }
        let mut frame = self.spare_frames.pop().unwrap_or_default();
        frame.clear();
        frame.reserve(4 + len + 13);
        match (msg.ask, self.current_ask) {
            // What a handler sends answers the same ask as the message it handles.
            (None, Some(ask)) => {
                let mut stamped = msg.clone();
                stamped.ask = Some(ask);
                stamped.encode_frame_into(&mut frame);
            }
            _ => msg.encode_frame_into(&mut frame),
        }
        if counted {
            self.tally(self.actor_id(from), Count::Sent);
        }
        self.queue.push_back(Event::Deliver {
            from: from.clone(),
            to: to.clone(),
            frame,
            counted,
        });
        Ok(())
    }

    /// Send a framework message (`Poison`, `ChildExited`, a status...); failures are logged
    /// (they cannot happen for these types within the room the frame limit leaves them).
    fn system_send<T: serde::Serialize>(&mut self, from: &Address, to: &Address, value: &T) {
        let limit = self.max_frame + wire::WRAP_SLACK;
        let sent = Message::new(value).and_then(|m| self.post(from, to, &m, limit, true));
        if let Err(e) = sent {
            log::error!("could not send a system message to {to}: {e}");
        }
    }

    fn create(&mut self, type_name: &str, parent: &Address, spec: Spec<'_>) -> Result<Address> {
        let (global_name, start_args) = (spec.global_name, spec.args);
        if let Some(id) = global_name.and_then(|n| self.directory.named(n)) {
            return Ok(Address::new(&self.dir, id));
        }
        if registry::constructor(type_name).is_none() {
            return Err(Error::UnknownType {
                type_name: type_name.to_string(),
                known: registry::registered_types(),
                binary: None,
            });
        }
        // The simple base has greenroom's own capabilities, and can never change them.
        let declared = registry::requirements_of(type_name);
        let requirements = placement::together(&declared, &spec.requirements);
        let unmet = placement::unmet(&crate::sys::own_capabilities(), &requirements);
        if !unmet.is_empty() {
            return Err(Error::NoCompatibleSystem { unmet });
        }
        let id = self.next_id;
        self.next_id += 1;
        let address = Address::new(&self.dir, id);
        self.actors.insert(
            id,
            Slot {
                cell: Cell::new(address.clone(), type_name.to_string(), parent.clone()),
                actor: None,
                ledger: Ledger::default(),
                start_args,
            },
        );
        self.directory.created();
        if let Some(name) = global_name {
            self.directory.name(name.to_string(), id);
        }
        self.queue.push_back(Event::Start(id));
        Ok(address)
    }

    /// Run one queued event. Returns false if the queue was empty.
    fn step(&mut self) -> bool {
        match self.queue.pop_front() {
            None => false,
            Some(Event::Start(id)) => {
                self.start(id);
                true
            }
            Some(Event::Deliver {
                from,
                to,
                frame,
                counted,
            }) => {
                let decoded = Message::decode_frame_body(&frame[4..]);
                if frame.capacity() <= SPARE_FRAME_BYTES && self.spare_frames.len() < SPARE_FRAMES {
                    self.spare_frames.push(frame);
                }
                match decoded {
                    Ok(msg) => self.deliver(Envelope { from, to, msg }, counted),
                    Err(e) => log::error!("dropping an undecodable frame: {e}"),
                }
                true
            }
        }
    }

    /// The earliest pending timer of any actor: (due, actor id).
    fn next_timer(&self) -> Option<(Duration, u64)> {
        self.actors
            .iter()
            .filter_map(|(&id, s)| s.cell.timers.next_due().map(|due| (due, id)))
            .min()
    }

    /// Run until nothing is runnable at the current virtual time.
    fn run_until_idle(&mut self) {
        while self.step() {}
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Drop for SimpleSystem {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
