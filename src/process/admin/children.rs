//! The admin's children: starting actor processes (and spares), hearing from them on their
//! control sockets, reaping them, and telling parents why a child ended.

use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::PathBuf;

use mio::net::UnixStream;
use mio::{Interest, Token};

use super::clients::Incoming;
use super::{Admin, Source};
use crate::address::Address;
use crate::core::directory::DeadLetter;
use crate::core::ledger::{Count, Tally};
use crate::error::{Error, IoContext, Result};
use crate::message::{ExitReason, Message};
use crate::process::conn::Conn;
use crate::process::ledger_page::LedgerPage;
use crate::process::runtime::{ActorArgs, SPARE};
use crate::protocol::Response;
use crate::sys::spawn::{self, Reaped};
use crate::wire::{self, ReadStatus};

/// One actor process (or spare) the admin started.
pub(super) struct ActorRec {
    /// Empty while the process is a spare.
    pub(super) type_name: String,
    pub(super) binary: String,
    pub(super) spare: bool,
    pub(super) pid: u32,
    pub(super) parent: Address,
    pub(super) control: Option<(Token, Conn)>,
    pub(super) exiting: Option<ExitReason>,
    /// Its ledger page, read for the system's counts.
    pub(super) page: Option<LedgerPage>,
    /// Copies from its out ring it has handed on as dead letters itself: `(conn, seq)`.
    pub(super) handed_on: super::custody::HandedOn,
    /// The capabilities it was created requiring.
    pub(super) requirements: crate::core::placement::Requirements,
}

impl Admin {
    /// Turn spare `id` into an actor of `type_name`. `None` if the spare has died meanwhile.
    pub(super) fn assign(
        &mut self,
        id: u64,
        type_name: &str,
        parent: &Address,
        args: Option<&[u8]>,
    ) -> Option<Address> {
        let rec = self.actors.get_mut(&id)?;
        let (_, conn) = rec.control.as_mut()?;
        let assign = Response::Assign {
            type_name: type_name.to_string(),
            parent: parent.clone(),
            args: args.map(|a| serde_bytes::ByteBuf::from(a.to_vec())),
        };
        if conn.send(&assign).is_err() {
            return None;
        }
        rec.spare = false;
        rec.type_name = type_name.to_string();
        rec.parent = parent.clone();
        let address = self.me.sibling(id);
        log::debug!("assigned {type_name} to spare {address}, pid {}", rec.pid);
        Some(address)
    }

    /// Start a spare for each binary whose spare was used, so that the next create of one of
    /// its types needs no fork and exec.
    pub(super) fn start_spares(&mut self) {
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

    /// Bind a new actor's socket, make its ledger page, start its process, and record it.
    pub(super) fn spawn(&mut self, binary: &str, type_name: &str, parent: &Address) -> Result<u64> {
        let id = self.ids.take();
        let address = self.me.sibling(id);
        let (socket, ledger) = (address.socket_path(), address.ledger_path());
        let page_file = LedgerPage::create(&ledger, self.cfg.max_frame)
            .ctx(|| format!("creating {}", ledger.display()))?;
        let page = LedgerPage::view(&page_file).ctx(|| "mapping a ledger page".into());
        let listener =
            StdUnixListener::bind(&socket).ctx(|| format!("binding {}", socket.display()));
        let pair = StdUnixStream::pair().ctx(|| "creating a control socket pair".into());
        let (page, listener, (ours, theirs)) = match (page, listener, pair) {
            (Ok(p), Ok(l), Ok(pair)) => (p, l, pair),
            (p, l, pair) => {
                let _ = std::fs::remove_file(&ledger);
                let _ = std::fs::remove_file(&socket);
                return Err(p.and(l).and(pair).expect_err("one of them failed"));
            }
        };
        use std::os::fd::AsRawFd;
        let args = ActorArgs {
            type_name: type_name.to_string(),
            me: address.clone(),
            parent: parent.clone(),
            listen_fd: listener.as_raw_fd(),
            control_fd: theirs.as_raw_fd(),
            ledger_fd: page_file.as_raw_fd(),
            max_frame: self.cfg.max_frame,
            start_args: None,
        };
        let output = self
            .actor_output
            .as_ref()
            .map(|f| f as &dyn std::os::fd::AsRawFd);
        let keep: [&dyn std::os::fd::AsRawFd; 3] = [&listener, &theirs, &page_file];
        let pid = match spawn::spawn(binary, &args.to_argv(), &keep, output) {
            Ok(pid) => pid,
            Err(e) => {
                let _ = std::fs::remove_file(&socket);
                let _ = std::fs::remove_file(&ledger);
                // EAGAIN: the process limit.
                if e.kind() == std::io::ErrorKind::WouldBlock {
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
        drop((listener, theirs, page_file));
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
                page: Some(page),
                handed_on: Default::default(),
                requirements: Default::default(),
            },
        );
        log::debug!("started {type_name} as {address}, pid {pid}");
        Ok(id)
    }

    pub(super) fn on_actor_control(&mut self, token: Token) {
        let id = self.control_tokens[&token];
        let requests = self.read_actor_control(id);
        self.handle_actor_requests(id, requests);
    }

    /// Carry out what an actor asked on its control connection, answering where the request
    /// expects an answer.
    pub(super) fn handle_actor_requests(&mut self, id: u64, requests: Vec<Incoming>) {
        for item in requests {
            let resp = match item {
                Incoming::Request(req) => self.handle(Source::Actor(id), req),
                Incoming::Refused {
                    message, answer, ..
                } => {
                    crate::logging::bad_input(format_args!("actor {id} sent {message}"));
                    answer.then(|| Response::bad_request(&message))
                }
            };
            if let Some(resp) = resp {
                self.answer(Source::Actor(id), resp);
            }
        }
    }

    /// Stop listening to an actor's control connection and close it: the actor exits, as it does
    /// when the admin goes, and is reported when it is reaped.
    pub(super) fn close_actor_control(&mut self, id: u64) {
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
        let Some((_, conn)) = rec.control.as_mut() else {
            return Vec::new();
        };
        let mut requests = Vec::new();
        let status = Incoming::read_all(conn, &mut requests);
        if let Ok(ReadStatus::More) = status {
            if let Some((token, _)) = &rec.control {
                self.unread.push(*token);
            }
        } else if !matches!(status, Ok(ReadStatus::Drained)) {
            if let Err(e @ Error::FrameTooLarge { .. }) = &status {
                crate::logging::bad_input(format_args!("actor {id}: {e}"));
            }
            self.close_actor_control(id);
        }
        requests
    }

    /// A child process has ended: settle its accounts, tell its parent why, and forget it.
    pub(super) fn reaped(&mut self, pid: u32, how: Reaped) {
        let Some(id) = self.pids.remove(&pid) else {
            return;
        };
        // The actor may have said why just before it exited (and asked for other things): read
        // and carry that out first, whether its control socket or its exit status came first.
        let last_words = self.read_actor_control(id);
        self.handle_actor_requests(id, last_words);
        self.close_actor_control(id);
        let Some(mut rec) = self.actors.remove(&id) else {
            return;
        };
        let address = self.me.sibling(id);
        if let Some(c) = &mut self.convention {
            c.watch(address.clone(), false);
        }
        if rec.spare {
            self.retire(&address, rec.page.take(), &rec.handed_on);
            if self.spares.get(&rec.binary) == Some(&id) {
                self.spares.remove(&rec.binary);
            }
            log::debug!("spare {address} (pid {pid}) ended");
            return;
        }
        let reason = match how {
            Reaped::Signaled(signal) => ExitReason::Killed {
                signal,
                name: spawn::signal_name(signal),
            },
            Reaped::Exited(code) => rec.exiting.take().unwrap_or(ExitReason::Exited { code }),
        };
        if reason == ExitReason::Requested {
            log::debug!("{} {address} (pid {pid}) {reason}", rec.type_name);
        } else {
            log::warn!("{} {address} (pid {pid}) {reason}", rec.type_name);
        }
        // Its global names are freed, convention-wide.
        self.names_released(&address);
        // The parent hears first; then what the actor had taken and not settled comes back.
        let me = self.me.clone();
        if let Some(notice) = self.directory.ended(&address, &rec.parent, &me, reason) {
            let msg = Message::new(&notice).expect("ChildExited encodes");
            self.send(&rec.parent, msg);
            self.tell_parent_member(&address, &rec.parent);
        }
        self.requester_gone(super::Source::Actor(id));
        self.retire(&address, rec.page.take(), &rec.handed_on);
    }

    /// The process at `address` has ended: return what its queue ring still holds, keep its
    /// counts, and remove its socket and ledger page (its senders hold the page mapped if they
    /// still need it).
    fn retire(
        &mut self,
        address: &Address,
        page: Option<LedgerPage>,
        handed_on: &super::custody::HandedOn,
    ) {
        self.settle_rings(address, handed_on);
        if let Some(page) = page {
            self.retired = self.retired.plus(page.counts());
        }
        let _ = std::fs::remove_file(address.socket_path());
        let _ = std::fs::remove_file(address.ledger_path());
    }

    /// Send a message of the admin's own (`ChildExited`, `DeadEnvelope`, `ExitRequest`); one
    /// whose receiver is not running becomes a dead letter, like anyone's.
    pub(super) fn send(&mut self, to: &Address, msg: Message) {
        match self.outbox.send(&self.me, to, &msg, false) {
            Ok(accepted) => {
                self.ledger.count(Count::Sent);
                if accepted == crate::process::outbox::Accepted::AtMostOnce {
                    self.ledger.count(Count::Handled);
                }
            }
            Err(Error::DeadActor(_)) => {
                self.ledger.count(Count::Sent);
                let me = self.me.clone();
                self.dead_letter(to.clone(), me, msg);
            }
            // Its receiver accepts no connection now (its backlog is full): the admin does not
            // wait for it, and the message goes to the dead-letter handler instead.
            Err(e @ Error::Backpressure { .. }) => {
                log::warn!("could not send a {} to {to}: {e}", msg.type_name());
                self.ledger.count(Count::Sent);
                let me = self.me.clone();
                self.dead_letter(to.clone(), me, msg);
            }
            Err(e) => log::warn!("could not send a {} to {to}: {e}", msg.type_name()),
        }
        self.carry_out_returns();
    }

    /// Pass a message whose target is not running to the dead-letter handler, if there is one;
    /// the core decides and counts.
    pub(super) fn dead_letter(&mut self, target: Address, sender: Address, message: Message) {
        let route = self
            .directory
            .dead_letter(target, sender, message, &mut self.ledger);
        if let DeadLetter::Deliver(handler, envelope) = route {
            let to = self.me.sibling(handler);
            match Message::new(&envelope) {
                Ok(msg) => self.send(&to, msg),
                Err(e) => log::error!("could not encode a dead letter: {e}"),
            }
        }
    }

    /// Carry out what came back from receivers of the admin's messages that ended without
    /// taking them: dead letters.
    pub(super) fn carry_out_returns(&mut self) {
        while self.outbox.has_returns() {
            for r in self.outbox.take_returns() {
                self.dead_letter(r.to, r.from, r.msg);
            }
        }
    }
}
