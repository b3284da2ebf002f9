//! The process base's external endpoint: a program (or the CLI) attached to a system's admin,
//! with a message socket of its own so that actors can reply to it.

use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};

use crate::Address;
use crate::base::{SystemBase, SystemConfig, WhenMissing};
use crate::core::ledger::{Count, Tally};
use crate::error::{Error, IoContext, Result};
use crate::message::Message;
use crate::process::control::{ControlClient, HandedFrom};
use crate::process::inbound::{Inbound, Origin, Queue, Queued};
use crate::process::launcher::{ADMIN_START_TIMEOUT, declared_types, start_admin};
use crate::process::ledger_page::LedgerPage;
use crate::process::outbox::{Accepted, Outbox};
use crate::process::outbox::{FULL_RING_LOOK, WINDOW, send_timeout, send_when_out_ring_has_room};
use crate::protocol::{Envelope, PROTOCOL_VERSION, Request, Response, Role, SystemStatus};
use crate::registry;
use crate::sysdir;
use crate::wire;

const LISTENER: Token = Token(0);

mod program;

/// How long a program waiting for a message keeps looking (yielding the CPU between looks)
/// before it sleeps. An actor's answer usually comes within tens of µs; a process that slept
/// meanwhile pays the wake-up, which on a virtual machine with idle cores costs 20–40 µs. See
/// docs/DECISIONS.md ("A waiting program looks before it sleeps").
const SPIN: Duration = Duration::from_micros(50);

/// How long a closing endpoint waits for what it sent to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The process base's external endpoint.
///
/// It keeps the same accounts as an actor: a ledger page for what it has taken from its
/// inbox, and copies of what it sent until the receivers have settled it. When it closes,
/// messages it never took are returned as dead letters.
pub(crate) struct ProcessSystem {
    name: String,
    dir: PathBuf,
    control: ControlClient,
    me: Address,
    poll: Poll,
    events: Events,
    listener: Option<UnixListener>,
    inbound: Inbound,
    page: Arc<LedgerPage>,
    outbox: Outbox,
    inbox: Queue,
    admin: Option<Child>,
    /// Binaries this endpoint has loaded (canonical paths).
    loaded: std::collections::HashSet<PathBuf>,
    /// This program's own path, if it registers actor types (canonical).
    own_exe: Option<PathBuf>,
    max_frame: usize,
    closed: bool,
    /// The last ask id used (the first is random).
    next_ask: u64,
}

impl ProcessSystem {
    /// Attach to (or start) a system as `config` says.
    pub(crate) fn open(config: SystemConfig) -> Result<ProcessSystem> {
        let dir = match &config.dir {
            Some(d) => d.clone(),
            None => sysdir::system_dir(&config.name)?,
        };
        let socket = sysdir::admin_socket(&dir);
        let mut admin = None;
        // An admin that was killed can leave its listening socket alive for a moment in a child
        // it was forking: a client that connects then is accepted by nobody and sees the
        // connection close before any answer. It tries again, for a while, as it does when the
        // socket is missing because a new admin is just replacing it.
        let deadline = Instant::now() + ADMIN_START_TIMEOUT;
        let mut refused = None;
        let (control, me, max_frame) = loop {
            let stream = match StdUnixStream::connect(&socket) {
                Ok(s) => s,
                Err(_) if admin.is_none() && config.when_missing == WhenMissing::Start => {
                    let (stream, child) = start_admin(&config, &dir)?;
                    admin = child;
                    stream
                }
                Err(_) if refused.is_some() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                Err(_) => {
                    return Err(Error::NoAdmin {
                        system: config.name.clone(),
                        socket,
                    });
                }
            };
            let mut control =
                ControlClient::new(stream, wire::max_frame_from_env() + wire::WRAP_SLACK);
            let hello = Request::Hello {
                version: PROTOCOL_VERSION,
                role: Role::Client {
                    pid: std::process::id(),
                    owner: admin.is_some(),
                },
            };
            match control.request(&hello) {
                Ok(Response::Welcome {
                    endpoint,
                    max_frame,
                }) => break (control, endpoint, max_frame as usize),
                Ok(other) => {
                    return Err(Error::Protocol(format!(
                        "unexpected answer to hello: {other:?}"
                    )));
                }
                Err(e @ Error::AdminClosed) if admin.is_none() && Instant::now() < deadline => {
                    refused = Some(e);
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => {
                    reap_admin(admin);
                    return Err(e);
                }
            }
        };
        let ledger = me.ledger_path();
        let page = LedgerPage::create(&ledger, max_frame)
            .and_then(|f| LedgerPage::map(&f, true))
            .ctx(|| format!("creating {}", ledger.display()))?;
        let page = Arc::new(page);
        let path = me.socket_path();
        let std_listener =
            StdUnixListener::bind(&path).ctx(|| format!("binding {}", path.display()))?;
        std_listener
            .set_nonblocking(true)
            .ctx(|| "setting a socket non-blocking".into())?;
        let mut listener = UnixListener::from_std(std_listener);
        let poll = Poll::new().ctx(|| "creating an event loop".into())?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .ctx(|| "registering a socket".into())?;
        let limit = max_frame + wire::WRAP_SLACK;
        let registry = poll
            .registry()
            .try_clone()
            .ctx(|| "cloning the event registry".into())?;
        let mut system = ProcessSystem {
            name: config.name,
            dir,
            control,
            poll,
            events: Events::with_capacity(64),
            listener: Some(listener),
            inbound: Inbound::new(me.clone(), 1, limit, page.clone()),
            page: page.clone(),
            outbox: Outbox::new(&me, registry, limit, Some(page.clone())),
            me,
            inbox: Queue::indexed(),
            admin,
            loaded: Default::default(),
            own_exe: None,
            max_frame,
            closed: false,
            next_ask: random_u64(),
        };
        let types = registry::registered_types();
        if !types.is_empty() {
            let exe = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .ctx(|| "finding this program's path".into())?;
            let requires = types
                .iter()
                .map(|t| (t.clone(), registry::requirements_of(t)))
                .filter(|(_, r)| !r.is_empty())
                .collect();
            system.control.request(&Request::Load {
                path: exe.to_string_lossy().into_owned(),
                types,
                requires,
            })?;
            system.loaded.insert(exe.clone());
            system.own_exe = Some(exe);
        }
        Ok(system)
    }

    /// Wait up to `timeout` for events: take in messages, write what waits, and carry out what
    /// came back from receivers that ended. Returns true if any message was queued.
    fn pump(&mut self, timeout: Duration) -> Result<bool> {
        let timeout = if self.inbound.ready(&self.inbox) {
            Duration::ZERO
        } else {
            timeout
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e).ctx(|| "waiting for messages".into()),
        }
        let before = self.inbox.len();
        let registry = self.poll.registry();
        for event in self.events.iter() {
            if event.token() == LISTENER {
                if let Some(listener) = &self.listener {
                    self.inbound.accept_all(listener, registry);
                }
            } else if !self.outbox.on_event(event) {
                self.inbound
                    .on_event(event.token(), registry, &mut self.inbox);
            }
        }
        self.inbound.resume(self.poll.registry(), &mut self.inbox);
        self.carry_out_returns();
        Ok(self.inbox.len() > before)
    }

    /// Take in events without sleeping, for up to `how_long`, yielding the CPU between looks
    /// (so that an actor on the same core runs). Returns true once a message is queued.
    fn look(&mut self, how_long: Duration) -> Result<bool> {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            if self.pump(Duration::ZERO)? {
                return Ok(true);
            }
            std::thread::yield_now();
        }
        Ok(false)
    }

    /// Carry out what came back from receivers that ended without taking it: dead letters.
    fn carry_out_returns(&mut self) {
        let returns = self.outbox.take_returns();
        for r in &returns {
            self.control
                .dead_letter(&r.to, &r.from, r.msg.clone(), HandedFrom::OutRing(r.kept));
        }
        self.outbox.handed_on(&returns);
    }

    /// Before a send to `to`: while too much to it is unwritten, take in events until its
    /// receiver has taken enough, or fail after a while.
    fn wait_for_room(&mut self, to: &Address) -> Result<()> {
        if self.outbox.backlog(to) <= WINDOW {
            return Ok(());
        }
        let (started, timeout) = (Instant::now(), send_timeout());
        while self.outbox.backlog(to) > WINDOW / 2 {
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::Backpressure {
                    to: to.clone(),
                    waited,
                });
            }
            self.pump((timeout - waited).min(Duration::from_millis(100)))?;
        }
        Ok(())
    }

    /// Send through the outbox, waiting while its out ring is full (see
    /// [`send_when_out_ring_has_room`]).
    fn send_waiting(&mut self, to: &Address, msg: &Message) -> Result<Accepted> {
        send_when_out_ring_has_room(
            self,
            to,
            |p| {
                let sent = p.outbox.send(&p.me, to, msg, false);
                (sent.is_ok() || !p.outbox.out_ring_was_full()).then_some(sent)
            },
            |p| {
                p.pump(FULL_RING_LOOK)?;
                p.outbox.trim_all();
                Ok(())
            },
        )
    }

    fn shutdown_inner(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.close_endpoint();
        self.control.post(&Request::Shutdown)?;
        let result = match self.control.read_response(Some(Duration::from_secs(60))) {
            Ok(Response::Ok) => Ok(()),
            Ok(answer @ Response::Error { .. }) => Err(answer.into_error()),
            Ok(other) => Err(Error::Protocol(format!(
                "unexpected answer to shutdown: {other:?}"
            ))),
            Err(e) => Err(e),
        };
        // Wait for the admin to close the connection: it has finished once it has.
        let _ = self.control.read_response(Some(Duration::from_secs(10)));
        reap_admin(self.admin.take());
        result
    }

    /// Stop receiving: no new senders get in, messages sent here that the program never took
    /// go to the dead-letter handler, and what this endpoint sent is written out.
    fn close_endpoint(&mut self) {
        let _ = std::fs::remove_file(self.me.socket_path());
        self.listener = None;
        self.inbound.read_all(self.poll.registry(), &mut self.inbox);
        let deadline = Instant::now() + WRITE_TIMEOUT;
        loop {
            self.carry_out_returns();
            let me = self.me.clone();
            while let Some(Queued { env, origin }) = self.inbox.pop() {
                // Named by its place in the ring, as an exiting actor does.
                let from = HandedFrom::QueueRing(origin.ring_at());
                self.control.dead_letter(&me, &env.from, env.msg, from);
                self.inbound.done(origin);
            }
            if !self.outbox.pending() {
                break;
            }
            if Instant::now() >= deadline {
                self.outbox.abandon_unwritten();
                self.carry_out_returns();
                break;
            }
            let _ = self.pump(Duration::from_millis(100));
        }
    }
}

impl Drop for ProcessSystem {
    fn drop(&mut self) {
        if self.admin.is_some() {
            if let Err(e) = self.shutdown_inner() {
                log::warn!("shutting down the embedded admin: {e}");
            }
        } else {
            self.close_endpoint();
        }
    }
}

/// A random number (the standard library's hash keys are seeded randomly per process).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

fn reap_admin(admin: Option<Child>) {
    if let Some(mut child) = admin {
        let _ = child.wait();
    }
}
