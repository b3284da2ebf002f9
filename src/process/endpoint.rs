//! The process base's external endpoint: a program (or the CLI) attached to a system's admin,
//! with a message socket of its own so that actors can reply to it.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};

use crate::Address;
use crate::error::{Error, IoContext, Result};
use crate::message::Message;
use crate::process::conn::{self, Inbound};
use crate::process::control::ControlClient;
use crate::process::launcher::{ADMIN_START_TIMEOUT, list_types, start_admin};
use crate::protocol::{Envelope, PROTOCOL_VERSION, Request, Response, Role, SystemStatus};
use crate::registry;
use crate::sysdir;
use crate::system::{SystemBase, SystemConfig, WhenMissing};
use crate::wire;

const LISTENER: Token = Token(0);
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
