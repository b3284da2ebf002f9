//! The admin: the one process per system that starts, supervises and reaps actor processes.
//!
//! It owns the child table, the registry of actor binaries, and the system directory. It is the
//! parent of every actor process, so it alone reaps them (SIGCHLD, then `waitpid` in a loop) and
//! turns each exit status into a [`ChildExited`] for the actor's logical
//! parent. Messages between actors do not pass through it.
//!
//! For each actor it binds the actor's listening socket *before* starting the process and hands
//! it over, so the address works the moment `create` returns: the kernel queues connections and
//! bytes until the actor accepts them.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

use crate::address::{ADMIN_ID, Address};
use crate::error::{Error, IoContext, Result};
use crate::message::{ChildExited, DeadEnvelope, ExitReason, ExitRequest, Message};
use crate::process::conn::{Conn, Outbox};
use crate::process::runtime::{ActorArgs, SPARE};
use crate::process::spawn::{self, Reaped};
use crate::protocol::{
    ActorInfo, Counters, PROTOCOL_VERSION, Request, Response, Role, SystemStatus,
};
use crate::sysdir::{self, FileHow, PrivateDir};
use crate::wire::strict::{self, Fault};
use crate::wire::{self, ReadStatus};

/// How an admin is set up.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// The system's name.
    pub system: String,
    /// If true, the admin shuts down when its owner (the first client that says so) disconnects.
    pub owned: bool,
    /// How long shutdown waits for actors to honour `ExitRequest` before SIGTERM.
    pub exit_grace: Duration,
    /// The largest frame accepted.
    pub max_frame: usize,
    /// The system directory, if not the one derived from the name and `XDG_RUNTIME_DIR`.
    pub dir: Option<PathBuf>,
}

impl AdminConfig {
    /// Defaults for system `name`: not owned, 3 s exit grace, frame limit from the environment.
    pub fn new(name: &str) -> AdminConfig {
        AdminConfig {
            system: name.to_string(),
            owned: false,
            exit_grace: Duration::from_millis(
                std::env::var("GREENROOM_EXIT_GRACE_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .filter(|&ms: &u64| ms <= MAX_EXIT_GRACE_MS)
                    .unwrap_or(3000),
            ),
            max_frame: wire::max_frame_from_env(),
            dir: None,
        }
    }
}

/// The longest exit grace accepted (an hour); longer values are refused by `greenroom-admin`
/// and ignored in the environment of an embedded admin.
const MAX_EXIT_GRACE_MS: u64 = 3_600_000;

/// Entry point of an embedded admin (`BINARY --greenroom-admin --system NAME [--dir DIR] [--owned]`).
pub(crate) fn main_from_args(args: &[String]) -> i32 {
    let mut cfg = AdminConfig::new(&sysdir::system_name_from_env());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--system" => cfg.system = it.next().cloned().unwrap_or_default(),
            "--owned" => cfg.owned = true,
            "--dir" => cfg.dir = it.next().map(PathBuf::from),
            other => {
                eprintln!("greenroom admin: unknown argument {other}");
                return 2;
            }
        }
    }
    match run(cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("greenroom admin: {e}");
            if matches!(e, Error::AlreadyRunning { .. }) {
                4
            } else {
                1
            }
        }
    }
}

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

/// How long the admin must be idle before it starts spare processes.
const SPARE_IDLE: Duration = Duration::from_millis(3);

struct Client {
    conn: Conn,
    endpoint: Option<u64>,
    /// Whether it has said `Hello` (the first request on every control connection).
    greeted: bool,
}

/// A client whose answers wait unread beyond this many bytes is not read from until they drain.
const CLIENT_BACKLOG_LOW: usize = 1 << 20;

/// A client whose unread answers pass this many bytes is disconnected.
const CLIENT_BACKLOG_CAP: usize = 16 << 20;

/// A control frame, decoded strictly.
enum Incoming {
    Request(Request),
    /// Not a request greenroom accepts: answer it (if the request expects an answer) with this
    /// message, and close the connection if the frame's shape was wrong.
    Refused {
        message: String,
        answer: bool,
        close: bool,
    },
}

impl Incoming {
    fn decode(frame: &[u8]) -> Incoming {
        match strict::from_slice::<Request>(frame) {
            Ok(req) => Incoming::Request(req),
            Err(e) => {
                // A well-formed request with a value its type refuses (an address that does not
                // parse, say) is refused; the connection stays. Requests that are never
                // answered must not be answered when refused either.
                let variant = request_variant(frame);
                Incoming::Refused {
                    message: format!("could not decode a control request: {e}"),
                    answer: e.fault == Fault::Shape
                        || !matches!(variant, Some("DeadLetter" | "Exiting")),
                    close: e.fault == Fault::Shape,
                }
            }
        }
    }
}

/// The variant a control frame names (its one map key), if it has that shape.
fn request_variant(frame: &[u8]) -> Option<&str> {
    let mut rest = frame;
    if rmp::decode::read_map_len(&mut rest).ok()? != 1 {
        return None;
    }
    rmp::decode::read_str_from_slice(rest).ok().map(|(s, _)| s)
}

struct ActorRec {
    /// Empty while the process is a spare.
    type_name: String,
    binary: String,
    spare: bool,
    pid: u32,
    parent: Address,
    control: Option<(Token, Conn)>,
    exiting: Option<ExitReason>,
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Phase {
    Asked,
    Terminated,
    Killed,
}

struct Shutdown {
    phase: Phase,
    deadline: Instant,
    waiters: Vec<Token>,
}

struct Admin {
    cfg: AdminConfig,
    dir: PathBuf,
    me: Address,
    poll: Poll,
    listener: UnixListener,
    signals: UnixStream,
    terminate: Arc<AtomicBool>,
    clients: HashMap<Token, Client>,
    owner: Option<Token>,
    actors: BTreeMap<u64, ActorRec>,
    control_tokens: HashMap<Token, u64>,
    pids: HashMap<u32, u64>,
    types: BTreeMap<String, String>,
    binaries: BTreeMap<String, Vec<String>>,
    /// Global names of live actors.
    names: BTreeMap<String, u64>,
    /// The actor that receives `DeadEnvelope`s.
    dead_letters: Option<u64>,
    counters: Counters,
    /// Per binary, the id of a started process waiting to be assigned a type.
    spares: HashMap<String, u64>,
    /// Binaries whose spare was used (or that were just loaded): start one after this round of
    /// events, once the answers are out.
    replenish: Vec<String>,
    outbox: Outbox,
    ids: Ids,
    next_token: usize,
    shutdown: Option<Shutdown>,
    _lock: Flock<File>,
    /// The system directory, opened safely; removed (contents first) when the admin finishes.
    private: Option<PrivateDir>,
}

/// Run an admin in this process until it is shut down. The process must be single-threaded:
/// the admin forks.
pub fn run(cfg: AdminConfig) -> Result<()> {
    let mut admin = Admin::open(cfg)?;
    log::info!("admin listening in {}", admin.dir.display());
    let result = admin.serve();
    admin.finish();
    result
}

impl Admin {
    fn open(cfg: AdminConfig) -> Result<Admin> {
        let dir = match &cfg.dir {
            Some(d) => d.clone(),
            None => sysdir::system_dir(&cfg.system)?,
        };
        let private = sysdir::create_private_dir(&dir)?;
        crate::logging::init_admin(&cfg.system, &dir);
        let file = private.file("admin.lock", FileHow::ReadWrite)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
            Error::AlreadyRunning {
                system: cfg.system.clone(),
                pidfile: sysdir::pid_file(&dir),
            }
        })?;
        private.remove_files(is_stale);
        // The pid file is complete before the socket exists: whoever sees the socket can read it.
        std::io::Write::write_all(
            &mut private.file("admin.pid", FileHow::Truncate)?,
            format!("{}\n", std::process::id()).as_bytes(),
        )
        .ctx(|| "writing the pid file".into())?;
        let sock = sysdir::admin_socket(&dir);
        let std_listener =
            StdUnixListener::bind(&sock).ctx(|| format!("binding {}", sock.display()))?;
        std_listener
            .set_nonblocking(true)
            .ctx(|| "setting the listener non-blocking".into())?;
        let mut listener = UnixListener::from_std(std_listener);

        let poll = Poll::new().ctx(|| "creating the event loop".into())?;
        let (sig_read, sig_write) = StdUnixStream::pair().ctx(|| "creating a pipe".into())?;
        for end in [&sig_read, &sig_write] {
            end.set_nonblocking(true)
                .ctx(|| "setting the signal pipe non-blocking".into())?;
        }
        let mut signals = UnixStream::from_std(sig_read);
        let terminate = Arc::new(AtomicBool::new(false));
        for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            let w = sig_write
                .try_clone()
                .ctx(|| "cloning the signal pipe".into())?;
            signal_hook::low_level::pipe::register(sig, w)
                .ctx(|| "installing a signal handler".into())?;
            if sig != libc::SIGCHLD {
                signal_hook::flag::register(sig, terminate.clone())
                    .ctx(|| "installing a signal handler".into())?;
            }
        }
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .ctx(|| "registering the listener".into())?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .ctx(|| "registering the signal pipe".into())?;
        let ids = Ids::reserve(&private, &dir);
        Ok(Admin {
            ids,
            me: Address::new(&dir, ADMIN_ID),
            outbox: Outbox::new(
                poll.registry()
                    .try_clone()
                    .ctx(|| "cloning the event registry".into())?,
                cfg.max_frame + wire::WRAP_SLACK,
            ),
            cfg,
            dir,
            poll,
            listener,
            signals,
            terminate,
            clients: HashMap::new(),
            owner: None,
            actors: BTreeMap::new(),
            control_tokens: HashMap::new(),
            pids: HashMap::new(),
            types: BTreeMap::new(),
            binaries: BTreeMap::new(),
            names: BTreeMap::new(),
            dead_letters: None,
            counters: Counters::default(),
            spares: HashMap::new(),
            replenish: Vec::new(),
            next_token: 2,
            shutdown: None,
            _lock: lock,
            private: Some(private),
        })
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn serve(&mut self) -> Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let deadline = self
                .shutdown
                .as_ref()
                .map(|s| s.deadline.saturating_duration_since(Instant::now()));
            // Spares are started once the admin has been idle for a moment, so that a spare's
            // exec does not compete for CPU with the actor a create has just started.
            let spare_wait = (!self.replenish.is_empty()).then_some(SPARE_IDLE);
            let timeout = match (deadline, spare_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).ctx(|| "waiting for events".into()),
            }
            if events.is_empty() {
                self.start_spares();
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    SIGNALS => self.on_signal(),
                    t if self.clients.contains_key(&t) => self.on_client(t),
                    t if self.control_tokens.contains_key(&t) => self.on_actor_control(t),
                    _ => {
                        self.outbox.on_event(event);
                    }
                }
            }
            if self.shutdown_progress() {
                return Ok(());
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let token = self.token();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("cannot watch a new client: {e}");
                        continue;
                    }
                    let conn = Conn::new(stream, self.cfg.max_frame + wire::WRAP_SLACK);
                    self.clients.insert(
                        token,
                        Client {
                            conn,
                            endpoint: None,
                            greeted: false,
                        },
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn on_signal(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.signals.read(&mut buf), Ok(n) if n > 0) {}
        for (pid, how) in spawn::reap_all() {
            self.reaped(pid, how);
        }
        if self.terminate.swap(false, Ordering::SeqCst) {
            log::info!("signal received; shutting down");
            self.begin_shutdown(None);
        }
    }

    /// Read every request a client has sent; answer each in order. A client whose answers pile
    /// up unread is not read from until they drain, and is disconnected past a cap.
    fn on_client(&mut self, token: Token) {
        let client = self.clients.get_mut(&token).expect("checked by caller");
        if client.conn.flush().is_err() {
            return self.drop_client(token);
        }
        if client.conn.pending_bytes() > CLIENT_BACKLOG_LOW {
            return;
        }
        let mut incoming = Vec::new();
        let status = client.conn.read(|frame| {
            let item = Incoming::decode(frame);
            let stop = matches!(item, Incoming::Refused { close: true, .. });
            incoming.push(item);
            if stop {
                return Err(Error::Protocol("a malformed control frame".into()));
            }
            Ok(())
        });
        let mut close = false;
        for item in incoming {
            let greeted = self.clients.get(&token).is_some_and(|c| c.greeted);
            let resp = match item {
                Incoming::Request(req @ Request::Hello { .. }) if !greeted => {
                    self.handle(Source::Client(token), req)
                }
                Incoming::Request(_) if !greeted => {
                    close = true;
                    Some(bad_request(&format!(
                        "the first request on a connection must be Hello naming protocol version {PROTOCOL_VERSION}"
                    )))
                }
                Incoming::Request(req) => self.handle(Source::Client(token), req),
                Incoming::Refused {
                    message,
                    answer,
                    close: fatal,
                } => {
                    crate::logging::bad_input(format_args!("a client sent {message}"));
                    close |= fatal;
                    answer.then(|| bad_request(&message))
                }
            };
            if let Some(resp) = resp {
                self.respond(token, &resp);
            }
            let backlog = self
                .clients
                .get(&token)
                .map_or(0, |c| c.conn.pending_bytes());
            if backlog > CLIENT_BACKLOG_CAP {
                log::warn!("disconnecting a client that left {backlog} bytes of answers unread");
                close = true;
            }
            if close {
                break;
            }
        }
        match status {
            Ok(ReadStatus::Drained) => {}
            Ok(ReadStatus::Eof) => close = true,
            Err(Error::FrameTooLarge { len, limit }) => {
                let e = Error::FrameTooLarge { len, limit };
                crate::logging::bad_input(format_args!("closing a client connection: {e}"));
                self.respond(token, &error_response("BadRequest", &e));
                close = true;
            }
            // A malformed frame has been answered above.
            Err(Error::Protocol(_)) => close = true,
            Err(e) => {
                log::debug!("closing a client connection: {e}");
                close = true;
            }
        }
        if close {
            self.drop_client(token);
        }
    }

    fn respond(&mut self, token: Token, resp: &Response) {
        if let Some(client) = self.clients.get_mut(&token)
            && let Err(e) = client.conn.send(resp)
        {
            log::debug!("client went away before its answer: {e}");
        }
    }

    fn drop_client(&mut self, token: Token) {
        let Some(mut client) = self.clients.remove(&token) else {
            return;
        };
        // Give a misbehaving client its error message if its socket takes it now; never wait.
        let _ = client.conn.flush();
        let _ = self.poll.registry().deregister(&mut client.conn.stream);
        if let Some(id) = client.endpoint {
            let _ = std::fs::remove_file(Address::new(&self.dir, id).socket_path());
        }
        if self.owner == Some(token) {
            log::info!("the program that owns this admin has gone; shutting down");
            self.owner = None;
            self.begin_shutdown(None);
        }
    }

    fn on_actor_control(&mut self, token: Token) {
        let id = self.control_tokens[&token];
        let requests = self.read_actor_control(id);
        self.handle_actor_requests(id, requests);
    }

    /// Carry out what an actor asked on its control connection, answering where the request
    /// expects an answer.
    fn handle_actor_requests(&mut self, id: u64, requests: Vec<Incoming>) {
        for item in requests {
            let resp = match item {
                Incoming::Request(req) => self.handle(Source::Actor(id), req),
                Incoming::Refused {
                    message, answer, ..
                } => {
                    crate::logging::bad_input(format_args!("actor {id} sent {message}"));
                    answer.then(|| bad_request(&message))
                }
            };
            if let Some(resp) = resp
                && let Some((_, conn)) = self.actors.get_mut(&id).and_then(|a| a.control.as_mut())
                && let Err(e) = conn.send(&resp)
            {
                log::debug!("actor {id} went away before its answer: {e}");
            }
        }
    }

    /// Stop listening to an actor's control connection and close it: the actor exits, as it does
    /// when the admin goes, and is reported when it is reaped.
    fn close_actor_control(&mut self, id: u64) {
        if let Some(rec) = self.actors.get_mut(&id)
            && let Some((token, mut conn)) = rec.control.take()
        {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.control_tokens.remove(&token);
        }
    }

    /// Read what an actor said on its control connection; close it at EOF or on a malformed
    /// frame (the actor then exits, as it does when the admin goes).
    fn read_actor_control(&mut self, id: u64) -> Vec<Incoming> {
        let Some(rec) = self.actors.get_mut(&id) else {
            return Vec::new();
        };
        let Some((token, conn)) = rec.control.as_mut() else {
            return Vec::new();
        };
        let mut requests = Vec::new();
        let status = conn.read(|frame| {
            let item = Incoming::decode(frame);
            let stop = matches!(item, Incoming::Refused { close: true, .. });
            requests.push(item);
            if stop {
                return Err(Error::Protocol("a malformed control frame".into()));
            }
            Ok(())
        });
        if !matches!(status, Ok(ReadStatus::Drained)) {
            if let Err(e @ Error::FrameTooLarge { .. }) = &status {
                crate::logging::bad_input(format_args!("actor {id}: {e}"));
            }
            let token = *token;
            let (_, mut conn) = rec.control.take().expect("checked above");
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.control_tokens.remove(&token);
        }
        requests
    }

    fn handle(&mut self, source: Source, req: Request) -> Option<Response> {
        Some(match req {
            Request::Hello { version, .. } if version != PROTOCOL_VERSION => {
                let message = format!(
                    "this admin speaks greenroom protocol version {PROTOCOL_VERSION}, not {version}; use a greenroom built from the same version"
                );
                if let Source::Actor(id) = source {
                    log::error!("actor {id}: {message}");
                    self.close_actor_control(id);
                    return None;
                }
                return Some(Response::Error {
                    kind: "BadVersion".into(),
                    message,
                });
            }
            Request::Hello {
                role: Role::Actor { .. },
                ..
            } => {
                return match source {
                    Source::Actor(_) => None,
                    Source::Client(_) => Some(bad_request(
                        "Hello with role Actor is for actor processes, on the socket the admin handed them",
                    )),
                };
            }
            Request::Hello {
                role: Role::Client { pid, owner },
                ..
            } => {
                let Source::Client(token) = source else {
                    return Some(bad_request("Hello with role Client is for admin.sock"));
                };
                if self.clients.get(&token).is_some_and(|c| c.greeted) {
                    return Some(bad_request("Hello was already said on this connection"));
                }
                if self.shutdown.is_some() {
                    return Some(error_response("ShuttingDown", &Error::ShuttingDown));
                }
                let id = self.ids.take();
                if let Some(c) = self.clients.get_mut(&token) {
                    c.endpoint = Some(id);
                    c.greeted = true;
                }
                if owner && self.cfg.owned && self.owner.is_none() {
                    self.owner = Some(token);
                }
                log::debug!("client pid {pid} attached as {id}");
                Response::Welcome {
                    endpoint: Address::new(&self.dir, id),
                    max_frame: self.cfg.max_frame as u64,
                }
            }
            Request::Load { path, types } => self.load(&path, types),
            Request::Create {
                type_name,
                binary,
                parent,
                name,
            } => {
                if let Some(&id) = name.as_ref().and_then(|n| self.names.get(n)) {
                    return Some(Response::Created {
                        address: Address::new(&self.dir, id),
                    });
                }
                match self.create(&type_name, binary, parent) {
                    Ok(address) => {
                        self.counters.created += 1;
                        if let Some(name) = name {
                            self.names.insert(name, address.id());
                        }
                        Response::Created { address }
                    }
                    Err(e) => error_response(error_kind(&e), &e),
                }
            }
            Request::DeadLetters { on } => {
                let Source::Actor(id) = source else {
                    return Some(bad_request("only actors can handle dead letters"));
                };
                if on {
                    self.dead_letters = Some(id);
                } else if self.dead_letters == Some(id) {
                    self.dead_letters = None;
                }
                Response::Ok
            }
            Request::DeadLetter {
                target,
                sender,
                message,
            } => {
                self.dead_letter(target, sender, message);
                return None;
            }
            Request::Status => Response::Status(self.status()),
            Request::Shutdown => {
                let waiter = match source {
                    Source::Client(t) => Some(t),
                    Source::Actor(_) => None,
                };
                self.begin_shutdown(waiter);
                return None;
            }
            Request::Exiting { reason } => {
                if let Source::Actor(id) = source
                    && let Some(rec) = self.actors.get_mut(&id)
                {
                    rec.exiting = Some(reason);
                }
                return None;
            }
        })
    }

    fn status(&self) -> SystemStatus {
        let address = |id: u64| Address::new(&self.dir, id);
        SystemStatus {
            actors: self
                .actors
                .iter()
                .filter(|(_, a)| !a.spare)
                .map(|(&id, a)| ActorInfo {
                    address: address(id),
                    type_name: a.type_name.clone(),
                    pid: a.pid,
                    parent: a.parent.clone(),
                })
                .collect(),
            names: self
                .names
                .iter()
                .map(|(n, &id)| (n.clone(), address(id)))
                .collect(),
            dead_letter_handler: self.dead_letters.map(address),
            binaries: self.binaries.clone(),
            counters: self.counters.clone(),
        }
    }

    fn load(&mut self, path: &str, types: Vec<String>) -> Response {
        let path = match std::fs::canonicalize(path) {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => return bad_request(&format!("cannot load {path}: {e}")),
        };
        for t in &types {
            self.types.insert(t.clone(), path.clone());
        }
        if !types.is_empty() && !self.spares.contains_key(&path) {
            self.replenish.push(path.clone());
        }
        self.binaries.insert(path, types.clone());
        Response::Loaded { types }
    }

    fn create(
        &mut self,
        type_name: &str,
        binary: Option<String>,
        parent: Address,
    ) -> Result<Address> {
        if self.shutdown.is_some() {
            return Err(Error::ShuttingDown);
        }
        let unknown = |known: &BTreeMap<String, String>| Error::UnknownType {
            type_name: type_name.to_string(),
            known: known.keys().cloned().collect(),
        };
        let binary = match binary {
            Some(b) => {
                let canon = std::fs::canonicalize(&b).map_err(|e| Error::NotActorBinary {
                    path: PathBuf::from(&b),
                    why: e.to_string(),
                })?;
                let canon = canon.to_string_lossy().into_owned();
                if let Some(provided) = self.binaries.get(&canon)
                    && !provided.iter().any(|t| t == type_name)
                {
                    return Err(Error::UnknownType {
                        type_name: format!("{type_name}' in '{canon}"),
                        known: provided.clone(),
                    });
                }
                canon
            }
            None => self
                .types
                .get(type_name)
                .cloned()
                .ok_or_else(|| unknown(&self.types))?,
        };
        if self.binaries.contains_key(&binary) {
            self.replenish.push(binary.clone());
            if let Some(id) = self.spares.remove(&binary)
                && let Some(address) = self.assign(id, type_name, &parent)
            {
                self.counters.spares_used += 1;
                return Ok(address);
            }
        }
        let id = self.spawn(&binary, type_name, &parent)?;
        Ok(Address::new(&self.dir, id))
    }

    /// Turn spare `id` into an actor of `type_name`. `None` if the spare has died meanwhile.
    fn assign(&mut self, id: u64, type_name: &str, parent: &Address) -> Option<Address> {
        let rec = self.actors.get_mut(&id)?;
        let (_, conn) = rec.control.as_mut()?;
        let assign = Response::Assign {
            type_name: type_name.to_string(),
            parent: parent.clone(),
        };
        if conn.send(&assign).is_err() {
            return None;
        }
        rec.spare = false;
        rec.type_name = type_name.to_string();
        rec.parent = parent.clone();
        let address = Address::new(&self.dir, id);
        log::debug!("assigned {type_name} to spare {address}, pid {}", rec.pid);
        Some(address)
    }

    /// Start a spare for each binary whose spare was used, so that the next create of one of
    /// its types needs no fork and exec.
    fn start_spares(&mut self) {
        for binary in std::mem::take(&mut self.replenish) {
            if self.shutdown.is_some() || self.spares.contains_key(&binary) {
                continue;
            }
            let admin = self.me.clone();
            match self.spawn(&binary, SPARE, &admin) {
                Ok(id) => {
                    if let Some(rec) = self.actors.get_mut(&id) {
                        rec.spare = true;
                        rec.type_name.clear();
                    }
                    self.spares.insert(binary, id);
                }
                Err(e) => log::warn!("could not start a spare of {binary}: {e}"),
            }
        }
    }

    /// Bind a new actor's socket, start its process, and record it.
    fn spawn(&mut self, binary: &str, type_name: &str, parent: &Address) -> Result<u64> {
        let id = self.ids.take();
        let address = Address::new(&self.dir, id);
        let socket = address.socket_path();
        let listener =
            StdUnixListener::bind(&socket).ctx(|| format!("binding {}", socket.display()))?;
        let (ours, theirs) =
            StdUnixStream::pair().ctx(|| "creating a control socket pair".into())?;
        let args = ActorArgs {
            type_name: type_name.to_string(),
            me: address.clone(),
            parent: parent.clone(),
            listen_fd: std::os::fd::AsRawFd::as_raw_fd(&listener),
            control_fd: std::os::fd::AsRawFd::as_raw_fd(&theirs),
            max_frame: self.cfg.max_frame,
        };
        let pid = match spawn::spawn(binary, &args.to_argv(), &[&listener, &theirs]) {
            Ok(pid) => pid,
            Err(e) => {
                let _ = std::fs::remove_file(&socket);
                if e.raw_os_error() == Some(libc::EAGAIN) {
                    return Err(Error::Exhausted {
                        context: "starting an actor process".into(),
                        source: e,
                        fix: "too many processes: raise the limit (`ulimit -u`) or end some actors",
                    });
                }
                return Err(Error::exhausted("starting an actor process", &e).unwrap_or(
                    Error::NotActorBinary {
                        path: PathBuf::from(binary),
                        why: format!("it cannot be started: {e}"),
                    },
                ));
            }
        };
        drop((listener, theirs));
        ours.set_nonblocking(true)
            .ctx(|| "setting a socket non-blocking".into())?;
        let mut stream = UnixStream::from_std(ours);
        let token = self.token();
        self.poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
            .ctx(|| "registering a control socket".into())?;
        self.control_tokens.insert(token, id);
        self.pids.insert(pid, id);
        self.actors.insert(
            id,
            ActorRec {
                type_name: type_name.to_string(),
                binary: binary.to_string(),
                spare: false,
                pid,
                parent: parent.clone(),
                control: Some((
                    token,
                    Conn::new(stream, self.cfg.max_frame + wire::WRAP_SLACK),
                )),
                exiting: None,
            },
        );
        log::debug!("started {type_name} as {address}, pid {pid}");
        Ok(id)
    }

    /// A child process has ended: tell its parent why, and forget it.
    fn reaped(&mut self, pid: u32, how: Reaped) {
        let Some(id) = self.pids.remove(&pid) else {
            return;
        };
        // The actor may have said why just before it exited (and asked for other things): read
        // and carry that out first, whether its control socket or its exit status came first.
        let last_words = self.read_actor_control(id);
        self.handle_actor_requests(id, last_words);
        let Some(mut rec) = self.actors.remove(&id) else {
            return;
        };
        if let Some((token, mut conn)) = rec.control.take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.control_tokens.remove(&token);
        }
        let address = Address::new(&self.dir, id);
        let _ = std::fs::remove_file(address.socket_path());
        self.outbox.forget(&address);
        if rec.spare {
            if self.spares.get(&rec.binary) == Some(&id) {
                self.spares.remove(&rec.binary);
            }
            log::debug!("spare {address} (pid {pid}) ended");
            return;
        }
        self.names.retain(|_, v| *v != id);
        if self.dead_letters == Some(id) {
            self.dead_letters = None;
        }
        let reason = match how {
            Reaped::Signaled(signal) => ExitReason::Killed {
                signal,
                name: spawn::signal_name(signal),
            },
            Reaped::Exited(code) => rec.exiting.take().unwrap_or(ExitReason::Exited { code }),
        };
        log::debug!("{} {address} (pid {pid}) {reason}", rec.type_name);
        self.counters.exited += 1;
        match reason {
            ExitReason::Killed { .. } => self.counters.killed += 1,
            ExitReason::FailedToStart { .. } => self.counters.failed_starts += 1,
            _ => {}
        }
        if rec.parent.id() == ADMIN_ID && rec.parent.system_dir() == self.dir {
            return;
        }
        let notice = ChildExited {
            child: address,
            reason,
        };
        let msg = Message::new(&notice).expect("ChildExited encodes");
        if let Err(e) = self.outbox.send(&self.me, &rec.parent, &msg, false) {
            log::debug!("parent {} did not get ChildExited: {e}", rec.parent);
        }
    }

    /// Pass a message whose target is not running to the dead-letter handler, if there is one.
    /// Dead letters about dead letters, and `ChildExited` notices, are dropped.
    fn dead_letter(&mut self, target: Address, sender: Address, message: Message) {
        let handler = match self.dead_letters {
            Some(id) if !message.is::<DeadEnvelope>() && !message.is::<ChildExited>() => id,
            _ => {
                log::debug!("dropped a {} message to {target}", message.type_name());
                self.counters.dead_letters_dropped += 1;
                return;
            }
        };
        self.counters.dead_letters_delivered += 1;
        let envelope = DeadEnvelope {
            target,
            sender,
            message,
        };
        let to = Address::new(&self.dir, handler);
        let sent =
            Message::new(&envelope).and_then(|msg| self.outbox.send(&self.me, &to, &msg, false));
        if let Err(e) = sent {
            log::debug!("dead-letter handler {to} did not get a dead letter: {e}");
        }
    }

    fn begin_shutdown(&mut self, waiter: Option<Token>) {
        if let Some(s) = self.shutdown.as_mut() {
            s.waiters.extend(waiter);
            return;
        }
        log::info!("shutting down {} actors", self.actors.len());
        let exit = Message::new(&ExitRequest::default()).expect("ExitRequest encodes");
        // Spares exit when their control socket closes; actors get an ExitRequest.
        for id in std::mem::take(&mut self.spares).into_values() {
            if let Some(rec) = self.actors.get_mut(&id)
                && let Some((token, mut conn)) = rec.control.take()
            {
                let _ = self.poll.registry().deregister(&mut conn.stream);
                self.control_tokens.remove(&token);
            }
        }
        let ids: Vec<u64> = self
            .actors
            .iter()
            .filter(|(_, a)| !a.spare)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let to = Address::new(&self.dir, id);
            let _ = self.outbox.send(&self.me, &to, &exit, false);
        }
        self.shutdown = Some(Shutdown {
            phase: Phase::Asked,
            deadline: Instant::now() + self.cfg.exit_grace,
            waiters: waiter.into_iter().collect(),
        });
    }

    /// Move shutdown along. Returns true when the admin may exit.
    fn shutdown_progress(&mut self) -> bool {
        let Some(s) = self.shutdown.as_mut() else {
            return false;
        };
        if self.actors.is_empty() {
            return true;
        }
        if Instant::now() < s.deadline {
            return false;
        }
        let (signal, next, wait) = match s.phase {
            Phase::Asked => (Signal::SIGTERM, Phase::Terminated, Duration::from_secs(1)),
            Phase::Terminated => (Signal::SIGKILL, Phase::Killed, Duration::from_secs(5)),
            Phase::Killed => {
                log::error!(
                    "{} actor processes did not die after SIGKILL",
                    self.actors.len()
                );
                return true;
            }
        };
        log::warn!(
            "{} actors still running after the deadline; sending {signal}",
            self.actors.len()
        );
        for rec in self.actors.values() {
            spawn::signal(rec.pid, signal);
        }
        s.phase = next;
        s.deadline = Instant::now() + wait;
        false
    }

    /// Remove the system directory and answer whoever asked for the shutdown.
    fn finish(&mut self) {
        let waiters = self.shutdown.take().map(|s| s.waiters).unwrap_or_default();
        if let Some(private) = self.private.take() {
            private.remove();
        }
        for token in waiters {
            if let Some(client) = self.clients.get_mut(&token) {
                let _ = client.conn.send(&Response::Ok);
                let _ = client
                    .conn
                    .flush_until(Instant::now() + Duration::from_secs(1));
            }
        }
        log::info!("admin stopped");
    }
}

enum Source {
    Client(Token),
    Actor(u64),
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::ShuttingDown => "ShuttingDown",
        Error::UnknownType { .. } => "UnknownType",
        Error::NotActorBinary { .. } => "NotActorBinary",
        _ => "Failed",
    }
}

fn error_response(kind: &str, e: &Error) -> Response {
    Response::Error {
        kind: kind.to_string(),
        message: e.to_string(),
    }
}

fn bad_request(message: &str) -> Response {
    Response::Error {
        kind: "BadRequest".into(),
        message: message.to_string(),
    }
}

/// Actor and endpoint ids, never reused in a system directory: not while the admin runs, and
/// not by the next admin after a restart either (a `kill -9` included), so an address from
/// before the restart gets `DeadActor` instead of reaching a newcomer.
///
/// Ids are reserved in blocks: the first id not yet handed out by any admin of the directory is
/// kept in `.NAME.next-id` beside the system directory (which is removed at shutdown; this file
/// is not). If that file cannot be used, ids start from the clock in microseconds instead.
struct Ids {
    next: u64,
    ceiling: u64,
    file: Option<File>,
}

impl Ids {
    const BLOCK: u64 = 4096;

    fn reserve(private: &PrivateDir, dir: &std::path::Path) -> Ids {
        let name = format!(
            ".{}.next-id",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let opened = private.sibling_file(&name).and_then(|mut f| {
            let mut text = String::new();
            f.read_to_string(&mut text)
                .ctx(|| format!("reading {name}"))?;
            Ok((f, text.trim().parse::<u64>().unwrap_or(0)))
        });
        let (file, first) = match opened {
            Ok((f, n)) => (Some(f), n.max(ADMIN_ID + 1)),
            Err(e) => {
                log::warn!("ids will start from the clock: {e}");
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_micros() as u64);
                (None, micros)
            }
        };
        let mut ids = Ids {
            next: first,
            ceiling: first,
            file,
        };
        ids.extend();
        ids
    }

    /// Record that every id below the new ceiling may be in use.
    fn extend(&mut self) {
        self.ceiling = self.next + Self::BLOCK;
        if let Some(f) = &mut self.file {
            use std::io::{Seek, Write};
            let written = f
                .seek(std::io::SeekFrom::Start(0))
                .and_then(|_| f.set_len(0))
                .and_then(|()| writeln!(f, "{}", self.ceiling));
            if let Err(e) = written {
                log::warn!("could not reserve ids: {e}");
            }
        }
    }

    fn take(&mut self) -> u64 {
        if self.next == self.ceiling {
            self.extend();
        }
        self.next += 1;
        self.next - 1
    }
}

/// Files an admin that died without cleaning up leaves behind, which a new admin removes.
fn is_stale(name: &str) -> bool {
    name.ends_with(".sock") || name == "admin.pid"
}
