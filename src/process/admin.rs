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
use std::io::Read;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};

use crate::address::{ADMIN_ID, Address};
use crate::core::directory::Directory;
use crate::core::ledger::Ledger;
use crate::error::{Error, IoContext, Result};
use crate::process::convention::Convention;
use crate::process::outbox::Outbox;
use crate::sys::spawn;
use crate::sysdir::{self, FileHow, PrivateDir};
use crate::wire;

mod answers;
mod binaries;
mod children;
mod clients;
mod config;
mod custody;
mod ids;
mod names;
mod placement;
mod remote;
mod requests;
mod shutdown;

use children::ActorRec;
use clients::Client;
pub use config::AdminConfig;
pub(crate) use config::main_from_args;
use ids::Ids;
use shutdown::Shutdown;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

/// How long the admin must be idle before it starts spare processes.
const SPARE_IDLE: Duration = Duration::from_millis(3);

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
    /// What types require of a system, by binary and type, as their binaries declared.
    declared: HashMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Global names, the dead-letter handler, counters.
    directory: Directory,
    /// The admin's own accounting: what it sent, and the dead letters it routed or dropped.
    ledger: Ledger,
    /// The final counts of every process that has ended.
    retired: Ledger,
    /// Per binary, the id of a started process waiting to be assigned a type.
    spares: HashMap<String, u64>,
    /// Binaries whose spare was used (or that were just loaded): start one after this round of
    /// events, once the answers are out.
    replenish: Vec<String>,
    outbox: Outbox,
    /// Connections whose read budget ran out with bytes left: read again next round.
    unread: Vec<Token>,
    /// The process that started this admin.
    parent_pid: u32,
    /// Messages whose sender ended after writing them, waiting for their receivers.
    orphans: custody::Orphans,
    /// How far recently ended processes took their connections.
    finals: HashMap<Address, custody::FinalProgress>,
    ids: Ids,
    next_token: usize,
    shutdown: Option<Shutdown>,
    _lock: crate::sys::FileLock,
    /// The system's log: each actor's standard output and error.
    actor_output: Option<std::fs::File>,
    /// The system directory, opened safely; removed (contents first) when the admin finishes.
    private: Option<PrivateDir>,
    /// Its part in a convention, if it takes part in one.
    convention: Option<Convention>,
    /// Actors on other members: creates awaited, and those created there.
    remote: remote::Remote,
    /// Binaries sent to other members, and fetched from them.
    binaries_sent: binaries::Binaries,
    /// Global names across the convention.
    names: names::Names,
}

/// Run an admin in this process until it is shut down. The process must be single-threaded:
/// the admin forks.
pub fn run(cfg: AdminConfig) -> Result<()> {
    let owned = cfg.owned;
    let poll = Poll::new().ctx(|| "creating the event loop".into())?;
    // A convention setting that cannot work is refused before anything is created.
    let convention = match &cfg.convention {
        Some(c) => Some(Convention::open(
            c,
            &cfg.system,
            poll.registry()
                .try_clone()
                .ctx(|| "cloning the event registry".into())?,
            cfg.max_frame + wire::WRAP_SLACK,
        )?),
        None => None,
    };
    let mut admin = Admin::open(cfg, poll, convention)?;
    log::info!("admin listening in {}", admin.dir.display());
    if owned {
        crate::logging::admin_log_file_only();
    }
    let result = admin.serve();
    admin.finish();
    result
}

impl Admin {
    fn open(cfg: AdminConfig, poll: Poll, mut convention: Option<Convention>) -> Result<Admin> {
        let dir = match &cfg.dir {
            Some(d) => d.clone(),
            None => sysdir::system_dir(&cfg.system)?,
        };
        let private = sysdir::create_private_dir(&dir)?;
        crate::logging::init_admin(&cfg.system, &dir);
        let file = private.file("admin.lock", FileHow::ReadWrite)?;
        let lock = crate::sys::try_lock(file).ok_or_else(|| Error::AlreadyRunning {
            system: cfg.system.clone(),
            pidfile: sysdir::pid_file(&dir),
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

        let (sig_read, sig_write) = StdUnixStream::pair().ctx(|| "creating a pipe".into())?;
        for end in [&sig_read, &sig_write] {
            end.set_nonblocking(true)
                .ctx(|| "setting the signal pipe non-blocking".into())?;
        }
        let mut signals = UnixStream::from_std(sig_read);
        let terminate = Arc::new(AtomicBool::new(false));
        for sig in crate::sys::spawn::CAUGHT {
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
        let actor_output = crate::logging::open_log(&dir);
        let me = Address::minted(convention.as_ref().map(|c| c.address()), &dir, ADMIN_ID);
        if let Some(c) = &mut convention {
            c.open_gateway(&dir, &me, cfg.max_frame)?;
        }
        Ok(Admin {
            ids,
            outbox: Outbox::new(
                &me,
                poll.registry()
                    .try_clone()
                    .ctx(|| "cloning the event registry".into())?,
                cfg.max_frame + wire::WRAP_SLACK,
                None,
            )
            .without_connect_patience(),
            me,
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
            declared: HashMap::new(),
            directory: Directory::default(),
            ledger: Ledger::default(),
            retired: Ledger::default(),
            spares: HashMap::new(),
            replenish: Vec::new(),
            unread: Vec::new(),
            parent_pid: std::os::unix::process::parent_id(),
            orphans: custody::Orphans::default(),
            finals: HashMap::new(),
            next_token: 2,
            shutdown: None,
            _lock: lock,
            actor_output,
            private: Some(private),
            convention,
            remote: Default::default(),
            binaries_sent: Default::default(),
            names: Default::default(),
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
            let convention = self
                .convention
                .as_ref()
                .map(|c| c.next_tick().saturating_duration_since(Instant::now()));
            let timeout = [deadline, spare_wait, convention]
                .into_iter()
                .flatten()
                .min();
            // Connections with bytes left from their last turn are read without waiting;
            // orphans are looked at often.
            // While messages cross to and from other members, the admin looks again at once
            // (yielding the CPU) instead of sleeping: see `Convention::carrying`.
            let carrying = self.convention.as_ref().is_some_and(|c| c.carrying());
            let timeout = if !self.unread.is_empty() || carrying {
                Some(Duration::ZERO)
            } else if !self.orphans.is_empty() {
                Some(timeout.map_or(custody::ORPHAN_CHECK, |t| t.min(custody::ORPHAN_CHECK)))
            } else {
                timeout
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).ctx(|| "waiting for events".into()),
            }
            if events.is_empty() && self.unread.is_empty() {
                if carrying {
                    std::thread::yield_now();
                } else {
                    self.start_spares();
                }
            }
            if !self.orphans.is_empty() {
                self.check_orphans();
            }
            for t in std::mem::take(&mut self.unread) {
                if self.clients.contains_key(&t) {
                    self.on_client(t);
                } else if self.control_tokens.contains_key(&t) {
                    self.on_actor_control(t);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    SIGNALS => self.on_signal(),
                    t if Convention::owns(t) => {
                        if let Some(c) = &mut self.convention {
                            c.on_event(event);
                        }
                    }
                    t if self.clients.contains_key(&t) => self.on_client(t),
                    t if self.control_tokens.contains_key(&t) => self.on_actor_control(t),
                    _ => {
                        if self.outbox.on_event(event) {
                            self.carry_out_returns();
                        }
                    }
                }
            }
            if let Some(c) = &mut self.convention {
                c.tick();
                for (to, update) in c.take_updates() {
                    let msg = crate::message::Message::new(&update).expect("an update encodes");
                    self.send(&to, msg);
                }
            }
            self.remote_turn();
            if self.shutdown_progress() {
                return Ok(());
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
}

/// Who sent a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    Client(Token),
    Actor(u64),
}

/// Files an admin that died without cleaning up leaves behind, which a new admin removes
/// (binaries it had fetched whole stay: their names say what they hold).
fn is_stale(name: &str) -> bool {
    name.ends_with(".sock")
        || name.ends_with(".ledger")
        || name.ends_with(".part")
        || name == "admin.pid"
}
