//! The system API: how a program outside the actors starts or attaches to a system, creates
//! actors, and talks to them.
//!
//! An [`ActorSystem`] is an *external endpoint*: it has an address of its own (so that actors can
//! reply to it) and a control connection to the admin. If no admin runs for the system,
//! [`ActorSystem::new`] starts one for this program (the embedded default), which goes away when
//! this handle is shut down or dropped.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::actor::Actor;
use crate::address::{ADMIN_ID, Address};
use crate::conn::{self, Inbound};
use crate::control::ControlClient;
use crate::error::{Error, IoContext, Result};
use crate::message::{ActorStatus, ExitRequest, Message, Poison, StatusRequest, type_name_of};
use crate::protocol::{
    ActorInfo, Envelope, PROTOCOL_VERSION, Request, Response, Role, SystemStatus,
};
use crate::registry::{self, LIST_TYPES_MAGIC};
use crate::sysdir;
use crate::wire;

/// What to do when no admin runs for the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhenMissing {
    /// Start an admin owned by this program (it shuts down when the program's handle goes).
    Start,
    /// Fail with [`Error::NoAdmin`].
    Fail,
}

/// How to reach a system.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// The system's name (default: `GREENROOM_SYSTEM`, else `default`).
    pub name: String,
    /// What to do if no admin runs.
    pub when_missing: WhenMissing,
    /// The admin program to start when this binary registers no actors (default: the
    /// `greenroom-admin` beside this program, else the one on `PATH`).
    pub admin_binary: Option<PathBuf>,
    /// The system directory, if not the one derived from `name` and `XDG_RUNTIME_DIR` (tests that
    /// run several systems in one process use this).
    pub dir: Option<PathBuf>,
    /// Which base runs the actors; `None` reads `GREENROOM_BASE` (`multiproc`, the default, or
    /// `simple`).
    pub base: Option<Base>,
}

/// Which base runs a system's actors. The actors themselves are the same under both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// One OS process per actor, supervised by an admin process (the default).
    Multiproc,
    /// Every actor inside the calling program, one handler at a time, in the order messages
    /// were produced, with a virtual clock: deterministic, for tests and debugging.
    Simple,
}

/// The environment variable that chooses the base: `multiproc` or `simple`.
pub const BASE_ENV: &str = "GREENROOM_BASE";

impl std::str::FromStr for Base {
    type Err = Error;

    fn from_str(s: &str) -> Result<Base> {
        match s {
            "multiproc" => Ok(Base::Multiproc),
            "simple" => Ok(Base::Simple),
            other => Err(Error::BadBase(other.to_string())),
        }
    }
}

impl Base {
    /// The base named by `GREENROOM_BASE`, or `Multiproc` if it is unset or empty.
    pub fn from_env() -> Result<Base> {
        match std::env::var(BASE_ENV) {
            Ok(v) if !v.is_empty() => v.parse(),
            _ => Ok(Base::Multiproc),
        }
    }
}

/// What each base provides behind [`ActorSystem`].
pub(crate) trait SystemBase {
    fn address(&self) -> &Address;
    fn name(&self) -> &str;
    fn dir(&self) -> &Path;
    fn load(&mut self, path: &Path) -> Result<Vec<String>>;
    fn create(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
        global_name: Option<&str>,
    ) -> Result<Address>;
    fn tell_message(&mut self, to: &Address, msg: Message) -> Result<()>;
    fn next_envelope(
        &mut self,
        timeout: Duration,
        wanted: &dyn Fn(&Message) -> bool,
    ) -> Result<Option<Envelope>>;
    fn status(&mut self) -> Result<SystemStatus>;
    fn shutdown(&mut self) -> Result<()>;
}

/// A connection to an actor system from outside the actors: an *external endpoint* with an
/// address of its own, so that actors can reply to it.
///
/// With the process base (the default) it talks to the system's admin, starting one for this
/// program if none runs; that admin goes away when this handle is shut down or dropped. With the
/// simple base ([`Base::Simple`], `GREENROOM_BASE=simple`) the actors run inside this program.
pub struct ActorSystem {
    inner: Box<dyn SystemBase>,
    base: Base,
}

impl ActorSystem {
    /// Attach to the system named by `GREENROOM_SYSTEM` (default `default`), starting an admin
    /// for this program if none runs. `GREENROOM_BASE` chooses the base.
    pub fn new() -> Result<ActorSystem> {
        ActorSystem::with_config(SystemConfig::default())
    }

    /// Attach to the running admin of system `name`; fail if there is none.
    pub fn attach(name: &str) -> Result<ActorSystem> {
        ActorSystem::with_config(SystemConfig {
            name: name.to_string(),
            when_missing: WhenMissing::Fail,
            base: Some(Base::Multiproc),
            ..SystemConfig::default()
        })
    }

    /// Attach to (or start) a system as `config` says.
    pub fn with_config(config: SystemConfig) -> Result<ActorSystem> {
        let base = match config.base {
            Some(b) => b,
            None => Base::from_env()?,
        };
        let inner: Box<dyn SystemBase> = match base {
            Base::Multiproc => Box::new(ProcessSystem::open(config)?),
            Base::Simple => {
                sysdir::validate_name(&config.name)?;
                Box::new(crate::simple::SimpleSystem::new(&config.name))
            }
        };
        Ok(ActorSystem { inner, base })
    }

    /// Which base runs this system's actors.
    pub fn base(&self) -> Base {
        self.base
    }

    /// This endpoint's own address (actors reply to it).
    pub fn address(&self) -> &Address {
        self.inner.address()
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The system's directory.
    pub fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// The address the admin uses as a sender (for example of `ChildExited`).
    pub fn admin_address(&self) -> Address {
        Address::new(self.inner.dir(), ADMIN_ID)
    }

    /// Register an actor binary: run it with `--greenroom-list-types`, and tell the admin which
    /// types it provides. Returns those types.
    pub fn load(&mut self, path: &Path) -> Result<Vec<String>> {
        self.inner.load(path)
    }

    /// Create an actor of type `A`, a child of this endpoint. The address is usable at once:
    /// messages sent to it before it is ready are delivered, in order, once it is.
    pub fn create_actor<A: Actor>(&mut self) -> Result<Address> {
        self.inner.create(type_name_of::<A>(), None, None)
    }

    /// Create an actor by type name, from `binary` if given (it is loaded first if the admin
    /// does not know it), else from this program if it registered the type, else from the
    /// binary the admin last loaded for that type.
    pub fn create_actor_by_name(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
    ) -> Result<Address> {
        self.inner.create(type_name, binary, None)
    }

    /// The actor registered under `global_name`; if there is none, create one of type
    /// `type_name` under that name. The name is freed when that actor exits.
    pub fn create_global(&mut self, type_name: &str, global_name: &str) -> Result<Address> {
        self.inner.create(type_name, None, Some(global_name))
    }

    /// Send `value` to `to`, named after its type. Fails with [`Error::DeadActor`] if `to` is not
    /// running (the message also goes to the dead-letter handler, if there is one).
    pub fn tell<T: Serialize + ?Sized>(&mut self, to: &Address, value: &T) -> Result<()> {
        let msg = Message::new(value)?;
        self.inner.tell_message(to, msg)
    }

    /// Send an already built message.
    pub fn tell_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        self.inner.tell_message(to, msg)
    }

    /// Ask an actor (and, by default, its children) to exit: send it [`ExitRequest`].
    pub fn tell_exit(&mut self, to: &Address) -> Result<()> {
        self.tell(to, &ExitRequest::default())
    }

    /// Send `value` to `to`, then wait up to `timeout` for the next message to this endpoint
    /// (which may answer an earlier `tell`). `None` if nothing came in time.
    pub fn ask<T: Serialize + ?Sized>(
        &mut self,
        to: &Address,
        value: &T,
        timeout: Duration,
    ) -> Result<Option<Message>> {
        self.tell(to, value)?;
        self.listen(timeout)
    }

    /// Wait up to `timeout` for the next message to this endpoint. System messages other than
    /// [`Poison`] (such as `ChildExited` for actors this endpoint created) are skipped.
    pub fn listen(&mut self, timeout: Duration) -> Result<Option<Message>> {
        Ok(self.listen_envelope(timeout)?.map(|e| e.msg))
    }

    /// Like [`listen`](Self::listen), but also says who sent the message.
    pub fn listen_envelope(&mut self, timeout: Duration) -> Result<Option<Envelope>> {
        self.inner
            .next_envelope(timeout, &|msg| !msg.is_system() || msg.is::<Poison>())
    }

    /// Wait up to `timeout` for the next message of any kind, system messages included.
    pub fn listen_any(&mut self, timeout: Duration) -> Result<Option<Envelope>> {
        self.inner.next_envelope(timeout, &|_| true)
    }

    /// Every live actor: address, type, pid and parent.
    pub fn status(&mut self) -> Result<Vec<ActorInfo>> {
        Ok(self.inner.status()?.actors)
    }

    /// What the system knows about itself: actors, global names, the dead-letter handler,
    /// loaded binaries and counters.
    pub fn system_status(&mut self) -> Result<SystemStatus> {
        self.inner.status()
    }

    /// Ask one actor about itself (children, pending timers, messages handled): the framework
    /// answers, not the actor's handler. Like [`ask`](Self::ask), this takes the next message
    /// that arrives; `None` if none came in time.
    pub fn actor_status(
        &mut self,
        actor: &Address,
        timeout: Duration,
    ) -> Result<Option<ActorStatus>> {
        match self.ask(actor, &StatusRequest {}, timeout)? {
            Some(reply) if reply.is::<ActorStatus>() => Ok(Some(reply.decode()?)),
            Some(other) => Err(Error::Protocol(format!(
                "expected an ActorStatus from {actor}, got a {} message",
                other.type_name()
            ))),
            None => Ok(None),
        }
    }

    /// Create an actor of a type, from a binary, under a global name: the general form of the
    /// `create_*` methods (`None` leaves each choice to the defaults).
    pub fn create(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
        global_name: Option<&str>,
    ) -> Result<Address> {
        self.inner.create(type_name, binary, global_name)
    }

    /// Shut the whole system down: every actor is asked to exit (then, for processes, SIGTERM
    /// and SIGKILL after deadlines), the system directory is removed, and the admin exits.
    pub fn shutdown(mut self) -> Result<()> {
        self.inner.shutdown()
    }
}

impl Default for SystemConfig {
    fn default() -> SystemConfig {
        SystemConfig {
            name: sysdir::system_name_from_env(),
            when_missing: WhenMissing::Start,
            admin_binary: None,
            dir: None,
            base: None,
        }
    }
}

const LISTENER: Token = Token(0);
const ADMIN_START_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The process base's external endpoint.
pub(crate) struct ProcessSystem {
    name: String,
    dir: PathBuf,
    control: ControlClient,
    me: Address,
    poll: Poll,
    listener: UnixListener,
    inbound: Inbound,
    outbound: HashMap<Address, StdUnixStream>,
    inbox: VecDeque<Envelope>,
    admin: Option<Child>,
    /// Binaries this endpoint has loaded (canonical paths).
    loaded: std::collections::HashSet<PathBuf>,
    /// This program's own path, if it registers actor types (canonical).
    own_exe: Option<PathBuf>,
    max_frame: usize,
    closed: bool,
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
        let mut system = ProcessSystem {
            name: config.name,
            dir,
            control,
            poll,
            listener,
            inbound: Inbound::new(me.clone(), 1, max_frame + wire::WRAP_SLACK),
            me,
            outbound: HashMap::new(),
            inbox: VecDeque::new(),
            admin,
            loaded: Default::default(),
            own_exe: None,
            max_frame,
            closed: false,
        };
        let types = registry::registered_types();
        if !types.is_empty() {
            let exe = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .ctx(|| "finding this program's path".into())?;
            system.control.request(&Request::Load {
                path: exe.to_string_lossy().into_owned(),
                types,
            })?;
            system.loaded.insert(exe.clone());
            system.own_exe = Some(exe);
        }
        Ok(system)
    }

    /// Hand a message whose target is not running to the admin, for the dead-letter handler.
    fn dead_letter(&mut self, to: &Address, msg: Message) {
        let _ = self.control.post(&Request::DeadLetter {
            target: to.clone(),
            sender: self.me.clone(),
            message: msg,
        });
    }

    /// Wait for incoming frames; returns true if any message was queued.
    fn pump(&mut self, timeout: Duration) -> Result<bool> {
        let mut events = Events::with_capacity(64);
        match self.poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e).ctx(|| "waiting for messages".into()),
        }
        let before = self.inbox.len();
        for event in events.iter() {
            if event.token() == LISTENER {
                self.inbound
                    .accept_all(&self.listener, self.poll.registry());
            } else {
                self.inbound
                    .on_event(event.token(), self.poll.registry(), &mut self.inbox);
            }
        }
        Ok(self.inbox.len() > before)
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
            Ok(Response::Error { message, .. }) => Err(Error::Admin(message)),
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

    fn close_endpoint(&mut self) {
        let _ = std::fs::remove_file(self.me.socket_path());
        self.outbound.clear();
    }
}

impl SystemBase for ProcessSystem {
    fn address(&self) -> &Address {
        &self.me
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn load(&mut self, path: &Path) -> Result<Vec<String>> {
        let types = list_types(path)?;
        let path = std::fs::canonicalize(path).ctx(|| format!("resolving {}", path.display()))?;
        self.loaded.insert(path.clone());
        match self.control.request(&Request::Load {
            path: path.to_string_lossy().into_owned(),
            types,
        })? {
            Response::Loaded { types } => Ok(types),
            other => Err(Error::Protocol(format!(
                "unexpected answer to load: {other:?}"
            ))),
        }
    }

    fn create(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
        global_name: Option<&str>,
    ) -> Result<Address> {
        let binary = match binary {
            Some(b) => Some(std::fs::canonicalize(b).map_err(|e| Error::NotActorBinary {
                path: b.to_path_buf(),
                why: e.to_string(),
            })?),
            None if registry::provides(type_name) => self.own_exe.clone(),
            None => None,
        };
        // A binary is checked and announced to the admin once per endpoint (this program's own
        // was announced when the endpoint opened).
        if let Some(b) = &binary
            && !self.loaded.contains(b)
        {
            self.load(b)?;
        }
        let req = Request::Create {
            type_name: type_name.to_string(),
            binary: binary.map(|b| b.to_string_lossy().into_owned()),
            parent: self.me.clone(),
            name: global_name.map(str::to_string),
        };
        match self.control.request(&req)? {
            Response::Created { address } => Ok(address),
            other => Err(Error::Protocol(format!(
                "unexpected answer to create: {other:?}"
            ))),
        }
    }

    fn tell_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        let mut frame = Vec::new();
        conn::encode_message(&mut frame, &msg, self.max_frame)?;
        for attempt in 0..2 {
            let fresh = !self.outbound.contains_key(to);
            if fresh {
                let stream = match conn::connect(to) {
                    Ok(s) => s,
                    Err(e @ Error::DeadActor(_)) => {
                        self.dead_letter(to, msg);
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                };
                stream
                    .set_write_timeout(Some(WRITE_TIMEOUT))
                    .ctx(|| "setting a write timeout".into())?;
                self.outbound.insert(to.clone(), stream);
            }
            let stream = self.outbound.get_mut(to).expect("inserted above");
            let written = if fresh {
                let mut first = Vec::with_capacity(64 + frame.len());
                conn::encode_sender_hello(&mut first, &self.me)?;
                first.extend_from_slice(&frame);
                stream.write_all(&first)
            } else {
                stream.write_all(&frame)
            };
            match written {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.outbound.remove(to);
                    let dead = matches!(
                        e.kind(),
                        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                    );
                    // A cached stream to a dead actor fails on first use; one fresh connect tells
                    // whether the address still works.
                    if dead && attempt == 0 {
                        continue;
                    }
                    return Err(if dead {
                        self.dead_letter(to, msg);
                        Error::DeadActor(to.clone())
                    } else {
                        Error::Io {
                            context: format!("sending to {to}"),
                            source: e,
                        }
                    });
                }
            }
        }
        self.dead_letter(to, msg);
        Err(Error::DeadActor(to.clone()))
    }

    fn next_envelope(
        &mut self,
        timeout: Duration,
        wanted: &dyn Fn(&Message) -> bool,
    ) -> Result<Option<Envelope>> {
        // A timeout too long to add to the clock means no deadline at all.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            while let Some(env) = self.inbox.pop_front() {
                if wanted(&env.msg) {
                    return Ok(Some(env));
                }
            }
            let left = deadline.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if !self.pump(left)? && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    fn status(&mut self) -> Result<SystemStatus> {
        match self.control.request(&Request::Status)? {
            Response::Status(status) => Ok(status),
            other => Err(Error::Protocol(format!(
                "unexpected answer to status: {other:?}"
            ))),
        }
    }

    fn shutdown(&mut self) -> Result<()> {
        self.shutdown_inner()
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

fn reap_admin(admin: Option<Child>) {
    if let Some(mut child) = admin {
        let _ = child.wait();
    }
}

/// Start an admin owned by this program and connect to it.
fn start_admin(config: &SystemConfig, dir: &Path) -> Result<(StdUnixStream, Option<Child>)> {
    let mut cmd = match &config.admin_binary {
        Some(b) => Command::new(b),
        None if registry::is_actor_binary() => {
            let mut c =
                Command::new(std::env::current_exe().ctx(|| "finding this program's path".into())?);
            c.arg("--greenroom-admin");
            c
        }
        None => Command::new(admin_binary_path()),
    };
    cmd.arg("--system")
        .arg(&config.name)
        .arg("--dir")
        .arg(dir)
        .arg("--owned");
    cmd.stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| Error::Io {
        context: format!(
            "starting an admin for system '{}' (install greenroom-admin, or start one with `greenroom start`)",
            config.name
        ),
        source: e,
    })?;
    let socket = sysdir::admin_socket(dir);
    let deadline = Instant::now() + ADMIN_START_TIMEOUT;
    let mut backoff = Duration::from_micros(100);
    loop {
        if let Ok(stream) = StdUnixStream::connect(&socket) {
            return Ok((stream, Some(child)));
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Code 4: another program started an admin for this system at the same time.
            if status.code() == Some(4)
                && let Ok(stream) = StdUnixStream::connect(&socket)
            {
                return Ok((stream, None));
            }
            if status.code() != Some(4) {
                return Err(Error::NoAdmin {
                    system: config.name.clone(),
                    socket,
                });
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout(ADMIN_START_TIMEOUT));
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(20));
    }
}

/// `greenroom-admin` beside the current program, else the one on `PATH`.
pub(crate) fn admin_binary_path() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for candidate in [dir.join("greenroom-admin"), dir.join("../greenroom-admin")] {
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("greenroom-admin")
}

/// How long a binary may take to answer `--greenroom-list-types`.
const LIST_TYPES_TIMEOUT: Duration = Duration::from_secs(5);

/// The most a binary may print in answer to `--greenroom-list-types`.
const LIST_TYPES_MAX_OUTPUT: usize = 1 << 20;

/// Ask a binary which actor types it provides: run it with `--greenroom-list-types` and read
/// its answer. The answer is what it printed by the time it exited (a child it left behind
/// holding its standard output does not make this wait), within 5 s and 1 MiB.
pub fn list_types(path: &Path) -> Result<Vec<String>> {
    let not = |why: String| Error::NotActorBinary {
        path: path.to_path_buf(),
        why,
    };
    // A bare file name means the file here, not a program looked up on PATH.
    let path = &std::fs::canonicalize(path).map_err(|e| not(format!("it cannot be found: {e}")))?;
    let mut child = Command::new(path)
        .arg("--greenroom-list-types")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            match Error::exhausted(
                &format!("running {} --greenroom-list-types", path.display()),
                &e,
            ) {
                Some(exhausted) => exhausted,
                None => not(format!("it cannot be run: {e}")),
            }
        })?;
    let mut stdout = child.stdout.take().expect("piped above");
    crate::sys::set_nonblocking(&stdout).ctx(|| "reading the binary's answer".into())?;
    let deadline = Instant::now() + LIST_TYPES_TIMEOUT;
    let mut out = Vec::new();
    let give_up = |child: &mut Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(not(why))
    };
    let status = loop {
        let exited = child.try_wait().ctx(|| "waiting for the binary".into())?;
        // What it wrote before it exited is in the pipe now.
        let open = read_available(&mut stdout, &mut out, LIST_TYPES_MAX_OUTPUT)
            .ctx(|| "reading the binary's answer".into())?;
        if out.len() > LIST_TYPES_MAX_OUTPUT {
            return give_up(&mut child, "it printed more than 1 MiB".into());
        }
        if let Some(status) = exited {
            break status;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return give_up(
                &mut child,
                "it did not answer --greenroom-list-types within 5 s".into(),
            );
        }
        if open {
            crate::sys::wait_readable(&stdout, left.min(Duration::from_millis(5)));
        } else {
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
    };
    let out = String::from_utf8_lossy(&out);
    let mut lines = out.lines();
    if !status.success() || lines.next() != Some(LIST_TYPES_MAGIC) {
        return Err(not(
            "it does not answer --greenroom-list-types as greenroom binaries do".into(),
        ));
    }
    Ok(lines
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect())
}

/// Read what `src` has now into `out`, stopping a little past `limit`. Returns false once `src`
/// has ended.
fn read_available(
    src: &mut impl std::io::Read,
    out: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<bool> {
    let mut buf = [0u8; 8192];
    while out.len() <= limit {
        match src.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
