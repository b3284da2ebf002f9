//! The actor process: one single-threaded mio loop around one actor.
//!
//! The admin starts the process with its listening socket already bound (so the address worked
//! before this process existed) and one end of a control socket pair. The loop accepts senders,
//! reassembles frames, and calls the handler for one message at a time, in arrival order per
//! sender. EOF on the control socket means the admin is gone, and the process exits (the kernel's
//! parent-death signal is the second line of defence).

use std::collections::{HashMap, VecDeque};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::actor::{Actor, Context, ContextOps};
use crate::address::Address;
use crate::conn::{Conn, Outbox};
use crate::control::ControlClient;
use crate::error::{Error, Result};
use crate::message::{ExitReason, ExitRequest, Message, Poison};
use crate::protocol::{Envelope, Request, Response};
use crate::registry;
use crate::wire::ReadStatus;

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
/// fills, when the handler returns, or by the flusher thread within [`FLUSH_INTERVAL`] — so a
/// send never waits for a long handler to return.
const IMMEDIATE_SENDS: u32 = 4;

/// How long a batched send may wait while its handler is still running.
const FLUSH_INTERVAL: Duration = Duration::from_micros(200);

/// Everything the actor's handler can reach through its [`Context`].
struct Runtime {
    me: Address,
    exe: Option<String>,
    poll: Poll,
    control: ControlClient,
    outbox: Arc<Mutex<Outbox>>,
    flusher: Option<Arc<Flusher>>,
    sends_this_call: u32,
    children: Vec<Address>,
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
        self.sends_this_call += 1;
        let batch = self.sends_this_call > IMMEDIATE_SENDS;
        if self.sends_this_call == IMMEDIATE_SENDS + 1 {
            self.flusher
                .get_or_insert_with(|| Flusher::start(self.outbox.clone()))
                .set(true);
        }
        lock(&self.outbox).send(&self.me, to, &msg, batch)
    }

    fn create(&mut self, type_name: &str) -> Result<Address> {
        let binary = if registry::provides(type_name) {
            self.exe.clone()
        } else {
            None
        };
        let req = Request::Create {
            type_name: type_name.to_string(),
            binary,
            parent: self.me.clone(),
        };
        match self.control.request(&req)? {
            Response::Created { address } => {
                self.children.push(address.clone());
                Ok(address)
            }
            other => Err(Error::Protocol(format!(
                "unexpected answer to create: {other:?}"
            ))),
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
    let mut control = ControlClient::new(control, args.max_frame);
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
    // SAFETY: the admin handed this descriptor to this process on its command line; nothing
    // else in the process owns it.
    let listener = unsafe { StdUnixListener::from_raw_fd(args.listen_fd) };
    let socket = args.me.socket_path();

    let mut actor = match catch_unwind(A::default) {
        Ok(actor) => actor,
        Err(panic) => {
            let error = format!(
                "constructor of {} panicked: {}",
                args.type_name,
                panic_text(&*panic)
            );
            fail_start(&mut control, &socket, error)
        }
    };

    let mut rt = match Runtime::new(args.me.clone(), control, args.max_frame) {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start the event loop: {e}");
            std::process::exit(1)
        }
    };
    let listener = match setup_listener(&rt.poll, listener) {
        Ok(l) => l,
        Err(e) => fail_start(&mut rt.control, &socket, e.to_string()),
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

/// Tell the admin the actor cannot start, and exit.
pub(crate) fn fail_start(control: &mut ControlClient, socket: &PathBuf, error: String) -> ! {
    log::error!("{error}");
    let _ = std::fs::remove_file(socket);
    let _ = control.post(&Request::Exiting {
        reason: ExitReason::FailedToStart { error },
    });
    std::process::exit(3)
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
    fn new(me: Address, control: ControlClient, max_frame: usize) -> Result<Runtime> {
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
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            poll,
            control,
            outbox: Arc::new(Mutex::new(Outbox::new(registry, max_frame))),
            flusher: None,
            sends_this_call: 0,
            children: Vec::new(),
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
        let mut inbound: HashMap<Token, Conn> = HashMap::new();
        let mut next_token = FIRST_INBOUND;
        let mut queue: VecDeque<Envelope> = VecDeque::new();
        loop {
            if let Err(e) = self.poll.poll(&mut events, None) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("event loop failed: {e}");
                return None;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => loop {
                        match listener.accept() {
                            Ok((mut stream, _)) => {
                                let token = Token(next_token);
                                next_token += 1;
                                if self
                                    .poll
                                    .registry()
                                    .register(&mut stream, token, Interest::READABLE)
                                    .is_ok()
                                {
                                    inbound.insert(token, Conn::new(stream, max_frame));
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                log::warn!("accept failed: {e}");
                                break;
                            }
                        }
                    },
                    CONTROL => {
                        if admin_gone(&self.control.stream) {
                            log::debug!("admin is gone; exiting");
                            return None;
                        }
                    }
                    token => {
                        if lock(&self.outbox).on_event(event) {
                            continue;
                        }
                        let Some(conn) = inbound.get_mut(&token) else {
                            continue;
                        };
                        let result = conn.read_envelopes(&mut queue);
                        let close = match result {
                            Ok(ReadStatus::Drained) => false,
                            Ok(ReadStatus::Eof) => true,
                            Err(e) => {
                                log::error!("closing a connection from a misbehaving sender: {e}");
                                true
                            }
                        };
                        if close && let Some(mut conn) = inbound.remove(&token) {
                            let _ = self.poll.registry().deregister(&mut conn.stream);
                        }
                    }
                }
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
        let exit = env.msg.is::<ExitRequest>();
        if let Some(ce) = env.msg.get::<crate::ChildExited>() {
            self.children.retain(|c| *c != ce.child);
        }
        let retry_allowed = !exit && !env.msg.is::<Poison>();
        let mut failure = None;
        for _attempt in 0..2 {
            let mut ctx = Context {
                ops: self,
                sender: env.from.clone(),
            };
            failure = match catch_unwind(AssertUnwindSafe(|| actor.receive(&env.msg, &mut ctx))) {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(panic) => Some(format!("handler panicked: {}", panic_text(&*panic))),
            };
            if failure.is_none() || !retry_allowed {
                break;
            }
        }
        self.end_of_call();
        if let Some(details) = failure {
            log::warn!(
                "handler failed on a {} message from {}: {details}",
                env.msg.type_name(),
                env.from
            );
            if retry_allowed {
                let poison = Poison {
                    original: env.msg,
                    details,
                };
                match Message::new(&poison) {
                    Ok(m) => {
                        if let Err(e) = self.send_message(&env.from, m) {
                            log::warn!("could not return poison to {}: {e}", env.from);
                        }
                    }
                    Err(e) => log::warn!("could not encode poison: {e}"),
                }
            }
        }
        if exit {
            let children = std::mem::take(&mut self.children);
            let request = Message::new(&ExitRequest {}).expect("ExitRequest encodes");
            for child in children {
                let _ = self.send_message(&child, request.clone());
            }
            return Some(ExitReason::Requested);
        }
        None
    }
}

impl Runtime {
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

/// The text of a panic payload.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic payload)".to_string()
    }
}
