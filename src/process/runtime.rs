//! The actor process: one single-threaded mio loop around one actor.
//!
//! The admin starts the process with its listening socket already bound (so the address worked
//! before this process existed) and one end of a control socket pair. The loop accepts senders,
//! reassembles frames, and calls the handler for one message at a time, in arrival order per
//! sender. EOF on the control socket means the admin is gone, and the process exits (the kernel's
//! parent-death signal is the second line of defence).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::panic::catch_unwind;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::actor::{Actor, ContextOps, invoke, panic_text};
use crate::address::Address;
use crate::error::{Error, Result};
use crate::message::{
    ActorStatus, ExitReason, ExitRequest, Message, Poison, StatusRequest, Wakeup,
};
use crate::process::conn::{Inbound, Outbox};
use crate::process::control::ControlClient;
use crate::protocol::{Envelope, PROTOCOL_VERSION, Request, Response, Role};
use crate::registry;
use crate::wire;

const LISTENER: Token = Token(0);
const CONTROL: Token = Token(1);
const FIRST_INBOUND: usize = 2;

/// The type name on the command line of a spare process: it waits for [`Response::Assign`].
pub(crate) const SPARE: &str = "?";

/// How an actor process was told who it is (its command line after `--greenroom-actor`).
pub(crate) struct ActorArgs {
    pub(crate) type_name: String,
    pub(crate) me: Address,
    pub(crate) parent: Address,
    pub(crate) listen_fd: RawFd,
    pub(crate) control_fd: RawFd,
    pub(crate) max_frame: usize,
}

impl ActorArgs {
    pub(crate) fn to_argv(&self) -> Vec<String> {
        vec![
            "--greenroom-actor".into(),
            self.type_name.clone(),
            self.me.to_string(),
            self.parent.to_string(),
            self.listen_fd.to_string(),
            self.control_fd.to_string(),
            self.max_frame.to_string(),
        ]
    }

    pub(crate) fn parse(args: &[String]) -> Option<ActorArgs> {
        let [type_name, me, parent, listen_fd, control_fd, max_frame] = args else {
            return None;
        };
        Some(ActorArgs {
            type_name: type_name.clone(),
            me: me.parse().ok()?,
            parent: parent.parse().ok()?,
            listen_fd: listen_fd.parse().ok()?,
            control_fd: control_fd.parse().ok()?,
            max_frame: max_frame.parse().ok()?,
        })
    }
}

/// The first sends of each handler call are written at once, so that request/reply traffic
/// has no added latency. Further sends in the same call are batched: written when a buffer
/// The first sends of each handler call are written at once, so that request/reply traffic
/// has no added latency. Further sends in the same call are batched: written when a buffer
/// fills, when the handler returns, or by the flusher thread within [`FLUSH_INTERVAL`] — so a
/// send never waits for a long handler to return.
const IMMEDIATE_SENDS: u32 = 4;

/// How long a batched send may wait while its handler is still running.
const FLUSH_INTERVAL: Duration = Duration::from_micros(200);

/// Everything the actor's handler can reach through its [`Context`].
struct Runtime {
    me: Address,
    type_name: String,
    parent: Address,
    handled: u64,
    exe: Option<String>,
    poll: Poll,
    control: ControlClient,
    outbox: Arc<Mutex<Outbox>>,
    flusher: Option<Arc<Flusher>>,
    sends_this_call: u32,
    children: Vec<Address>,
    timers: Timers<Instant>,
    /// The largest frame a handler may send.
    max_frame: usize,
}

/// Pending timers, earliest first; ties keep the order they were set in.
pub(crate) struct Timers<T: Ord + Copy> {
    heap: BinaryHeap<Reverse<(T, u64)>>,
    payloads: HashMap<u64, Message>,
    seq: u64,
}

impl<T: Ord + Copy> Timers<T> {
    pub(crate) fn new() -> Timers<T> {
        Timers {
            heap: BinaryHeap::new(),
            payloads: HashMap::new(),
            seq: 0,
        }
    }

    pub(crate) fn add(&mut self, due: T, payload: Message) {
        self.seq += 1;
        self.heap.push(Reverse((due, self.seq)));
        self.payloads.insert(self.seq, payload);
    }

    /// When the earliest timer is due.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn next_due(&self) -> Option<T> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// Remove and return the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: T) -> Option<Message> {
        let Reverse((due, seq)) = *self.heap.peek()?;
        if due > now {
            return None;
        }
        self.heap.pop();
        self.payloads.remove(&seq)
    }
}

/// A thread that writes batched sends while a handler runs. Started on the first batched send.
struct Flusher {
    armed: Mutex<bool>,
    wake: Condvar,
}

impl Flusher {
    fn start(outbox: Arc<Mutex<Outbox>>) -> Arc<Flusher> {
        let flusher = Arc::new(Flusher {
            armed: Mutex::new(false),
            wake: Condvar::new(),
        });
        let f = flusher.clone();
        std::thread::Builder::new()
            .name("greenroom-flusher".into())
            .spawn(move || {
                loop {
                    let mut armed = lock(&f.armed);
                    while !*armed {
                        armed = f.wake.wait(armed).unwrap_or_else(|e| e.into_inner());
                    }
                    drop(armed);
                    loop {
                        std::thread::sleep(FLUSH_INTERVAL);
                        lock(&outbox).flush_dirty();
                        if !*lock(&f.armed) {
                            break;
                        }
                    }
                }
            })
            .expect("spawning the flusher thread");
        flusher
    }

    fn set(&self, on: bool) {
        *lock(&self.armed) = on;
        if on {
            self.wake.notify_one();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ContextOps for Runtime {
    fn me(&self) -> &Address {
        &self.me
    }

    fn send_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        let len = msg.frame_len();
        if len > self.max_frame {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                limit: self.max_frame,
            });
        }
        self.post(to, msg)
    }

    fn create(&mut self, type_name: &str, global_name: Option<&str>) -> Result<Address> {
        let binary = if registry::provides(type_name) {
            self.exe.clone()
        } else {
            None
        };
        let req = Request::Create {
            type_name: type_name.to_string(),
            binary,
            parent: self.me.clone(),
            name: global_name.map(str::to_string),
        };
        match self.control.request(&req)? {
            Response::Created { address } => {
                if !self.children.contains(&address) {
                    self.children.push(address.clone());
                }
                Ok(address)
            }
            other => Err(Error::Protocol(format!(
                "unexpected answer to create: {other:?}"
            ))),
        }
    }

    fn wakeup_after(&mut self, after: Duration, payload: Message) {
        // A delay too long for the clock is a timer that never fires while anyone waits.
        let now = Instant::now();
        let due = now
            .checked_add(after)
            .unwrap_or_else(|| now + Duration::from_secs(u32::MAX as u64));
        self.timers.add(due, payload);
    }

    fn handle_dead_letters(&mut self, on: bool) -> Result<()> {
        self.control
            .request(&Request::DeadLetters { on })
            .map(|_| ())
    }
}

impl Runtime {
    /// Send a message the framework or the handler produced (the handler's own are checked
    /// against the frame limit first); a receiver that is gone gets it as a dead letter.
    fn post(&mut self, to: &Address, msg: Message) -> Result<()> {
        self.sends_this_call += 1;
        let batch = self.sends_this_call > IMMEDIATE_SENDS;
        if self.sends_this_call == IMMEDIATE_SENDS + 1 {
            self.flusher
                .get_or_insert_with(|| Flusher::start(self.outbox.clone()))
                .set(true);
        }
        let sent = lock(&self.outbox).send(&self.me, to, &msg, batch);
        match sent {
            Err(Error::DeadActor(_)) => {
                // Not the sender's failure: the admin hands it to the dead-letter handler.
                self.control.post(&Request::DeadLetter {
                    target: to.clone(),
                    sender: self.me.clone(),
                    message: msg,
                })
            }
            other => other,
        }
    }
}

/// Take the control socket the admin handed over, and if this is a spare, wait until the admin
/// assigns it a type (exit quietly if the admin closes the socket first).
pub(crate) fn control_and_assignment(args: &mut ActorArgs) -> ControlClient {
    // SAFETY: the admin handed this descriptor to this process on its command line; nothing
    // else in the process owns it.
    let control = unsafe { StdUnixStream::from_raw_fd(args.control_fd) };
    for fd in [args.listen_fd, args.control_fd] {
        // Keep them from leaking into anything this process might spawn.
        // SAFETY: fcntl on descriptors this process owns.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let mut control = ControlClient::new(control, args.max_frame + wire::WRAP_SLACK);
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        role: Role::Actor {
            pid: std::process::id(),
        },
    };
    if control.post(&hello).is_err() {
        std::process::exit(0);
    }
    if args.type_name == SPARE {
        match control.read_response(None) {
            Ok(Response::Assign { type_name, parent }) => {
                args.type_name = type_name;
                args.parent = parent;
            }
            _ => std::process::exit(0),
        }
    }
    control
}

/// Run actor `A` in this process, as the admin asked. Never returns.
pub(crate) fn run<A: Actor + Default>(args: ActorArgs, mut control: ControlClient) -> ! {
    let listener = take_listener(&args);
    let mut actor = match catch_unwind(A::default) {
        Ok(actor) => actor,
        Err(panic) => {
            let error = format!(
                "constructor of {} panicked: {}",
                args.type_name,
                panic_text(&*panic)
            );
            fail_start(&mut control, &args, error, Some(listener))
        }
    };
    let socket = args.me.socket_path();
    let mut rt = match Runtime::new(&args, control) {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start the event loop: {e}");
            std::process::exit(1)
        }
    };
    let listener = match setup_listener(&rt.poll, listener) {
        Ok(l) => l,
        Err(e) => {
            let error = e.to_string();
            fail_start(&mut rt.control, &args, error, None)
        }
    };
    log::debug!("actor {} of type {} started", rt.me, args.type_name);
    let reason = rt.serve(&mut actor, listener, args.max_frame);
    let _ = std::fs::remove_file(&socket);
    lock(&rt.outbox).flush_all(Instant::now() + Duration::from_secs(2));
    let code = match &reason {
        Some(reason) => {
            let _ = rt.control.post(&Request::Exiting {
                reason: reason.clone(),
            });
            0
        }
        None => 1,
    };
    std::process::exit(code)
}

/// The listening socket the admin handed to this process. Call once.
pub(crate) fn take_listener(args: &ActorArgs) -> StdUnixListener {
    // SAFETY: the admin handed this descriptor to this process on its command line; nothing
    // else in the process owns it, and this is called once.
    unsafe { StdUnixListener::from_raw_fd(args.listen_fd) }
}

/// The actor cannot start: return the messages already waiting for it to their senders as
/// `Poison`, tell the admin why, and exit.
pub(crate) fn fail_start(
    control: &mut ControlClient,
    args: &ActorArgs,
    error: String,
    listener: Option<StdUnixListener>,
) -> ! {
    log::error!("{error}");
    // New senders now find no socket, and their messages become dead letters.
    let _ = std::fs::remove_file(args.me.socket_path());
    if let Some(listener) = listener {
        return_waiting_as_poison(listener, &args.me, &error, args.max_frame);
    }
    let _ = control.post(&Request::Exiting {
        reason: ExitReason::FailedToStart { error },
    });
    std::process::exit(3)
}

/// How long an actor that failed to start keeps returning messages, so that a message sent
/// just before its socket was removed is returned rather than lost.
const FAILED_START_GRACE: Duration = Duration::from_millis(100);

/// For [`FAILED_START_GRACE`], accept senders on `listener` and send every message back to its
/// sender as `Poison`.
fn return_waiting_as_poison(listener: StdUnixListener, me: &Address, error: &str, limit: usize) {
    let Ok(mut poll) = Poll::new() else { return };
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let mut listener = UnixListener::from_std(listener);
    if poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .is_err()
    {
        return;
    }
    let deadline = Instant::now() + FAILED_START_GRACE;
    let mut inbound = Inbound::new(me.clone(), FIRST_INBOUND, limit + wire::WRAP_SLACK);
    let mut events = Events::with_capacity(64);
    let mut waiting = VecDeque::new();
    loop {
        inbound.accept_all(&listener, poll.registry());
        inbound.read_all(&mut waiting);
        for env in waiting.drain(..) {
            let poison = Poison {
                original: env.msg,
                details: format!("actor failed to start: {error}"),
            };
            let sent = Message::new(&poison).and_then(|msg| {
                let mut frame = Vec::new();
                crate::process::conn::encode_sender_hello(&mut frame, me)?;
                crate::process::conn::encode_message(&mut frame, &msg, limit + wire::WRAP_SLACK)?;
                let mut s = crate::process::conn::connect(&env.from)?;
                std::io::Write::write_all(&mut s, &frame).map_err(|e| Error::Io {
                    context: format!("returning a message to {}", env.from),
                    source: e,
                })
            });
            if let Err(e) = sent {
                log::warn!("could not return a message to {}: {e}", env.from);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        if let Err(e) = poll.poll(&mut events, Some(left))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return;
        }
    }
}

fn setup_listener(poll: &Poll, listener: StdUnixListener) -> Result<UnixListener> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    listener
        .set_nonblocking(true)
        .map_err(io("setting the listener non-blocking"))?;
    let mut listener = UnixListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(io("registering the listener"))?;
    Ok(listener)
}

impl Runtime {
    fn new(args: &ActorArgs, control: ControlClient) -> Result<Runtime> {
        let (me, max_frame) = (args.me.clone(), args.max_frame);
        let poll = Poll::new().map_err(|source| Error::Io {
            context: "creating the event loop".into(),
            source,
        })?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&control.stream);
        poll.registry()
            .register(&mut SourceFd(&fd), CONTROL, Interest::READABLE)
            .map_err(|source| Error::Io {
                context: "registering the control socket".into(),
                source,
            })?;
        let registry = poll.registry().try_clone().map_err(|source| Error::Io {
            context: "cloning the event registry".into(),
            source,
        })?;
        Ok(Runtime {
            me,
            type_name: args.type_name.clone(),
            parent: args.parent.clone(),
            handled: 0,
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            poll,
            control,
            outbox: Arc::new(Mutex::new(Outbox::new(
                registry,
                max_frame + wire::WRAP_SLACK,
            ))),
            max_frame,
            flusher: None,
            sends_this_call: 0,
            children: Vec::new(),
            timers: Timers::new(),
        })
    }

    /// The loop. Returns the exit reason to report, or `None` if the admin is gone.
    fn serve<A: Actor>(
        &mut self,
        actor: &mut A,
        listener: UnixListener,
        max_frame: usize,
    ) -> Option<ExitReason> {
        let mut events = Events::with_capacity(256);
        let mut inbound =
            Inbound::new(self.me.clone(), FIRST_INBOUND, max_frame + wire::WRAP_SLACK);
        let mut queue: VecDeque<Envelope> = VecDeque::new();
        loop {
            let timeout = self
                .timers
                .next_due()
                .map(|due| due.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("event loop failed: {e}");
                return None;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => inbound.accept_all(&listener, self.poll.registry()),
                    CONTROL => {
                        if admin_gone(&self.control.stream) {
                            log::debug!("admin is gone; exiting");
                            return None;
                        }
                    }
                    token => {
                        if !lock(&self.outbox).on_event(event) {
                            inbound.on_event(token, self.poll.registry(), &mut queue);
                        }
                    }
                }
            }
            // Timers that are due join the queue behind the messages that arrived with them, so
            // a flood of wakeups cannot hold back an ExitRequest.
            let now = Instant::now();
            while let Some(payload) = self.timers.pop_due(now) {
                queue.push_back(Envelope {
                    from: self.me.clone(),
                    to: self.me.clone(),
                    msg: Message::new(&Wakeup { payload }).expect("Wakeup encodes"),
                });
            }
            while let Some(env) = queue.pop_front() {
                if let Some(reason) = self.deliver(actor, env) {
                    return Some(reason);
                }
            }
        }
    }

    /// Hand one message to the handler. Returns an exit reason if the actor must now exit.
    fn deliver<A: Actor>(&mut self, actor: &mut A, env: Envelope) -> Option<ExitReason> {
        let system = env.msg.is_system();
        if system && env.msg.is::<StatusRequest>() {
            let status = ActorStatus {
                address: self.me.clone(),
                type_name: self.type_name.clone(),
                pid: std::process::id(),
                parent: self.parent.clone(),
                children: self.children.clone(),
                pending_timers: self.timers.len(),
                handled: self.handled,
            };
            let sent = Message::new(&status).and_then(|m| self.post(&env.from, m));
            if let Err(e) = sent {
                log::warn!("could not answer a status request from {}: {e}", env.from);
            }
            self.end_of_call();
            return None;
        }
        self.handled += 1;
        let exit = if system {
            env.msg.get::<ExitRequest>()
        } else {
            None
        };
        if system && let Some(ce) = env.msg.get::<crate::ChildExited>() {
            self.children.retain(|c| *c != ce.child);
        }
        let poison = invoke(actor, self, &env.from, &env.msg);
        self.end_of_call();
        if let Some(poison) = poison {
            let sent = Message::new(&poison).and_then(|m| self.post(&env.from, m));
            if let Err(e) = sent {
                log::warn!("could not return poison to {}: {e}", env.from);
            }
        }
        let exit = exit?;
        let children = std::mem::take(&mut self.children);
        if exit.recursive {
            let request = Message::new(&ExitRequest::default()).expect("ExitRequest encodes");
            for child in children {
                let _ = self.post(&child, request.clone());
            }
        }
        Some(ExitReason::Requested)
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
    }
}

/// True if the control socket has reached EOF (the admin closed it or died).
fn admin_gone(stream: &StdUnixStream) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: a valid fd and a one-byte buffer.
    let n = unsafe {
        libc::recv(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 0 || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock)
}
