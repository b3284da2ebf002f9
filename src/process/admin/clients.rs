//! The admin's clients: programs and the CLI on `admin.sock`, their requests read strictly and
//! answered in order, with a bound on what they may leave unread.

use mio::{Interest, Token};

use super::{Admin, Source};
use crate::address::Address;
use crate::error::Error;
use crate::process::conn::Conn;
use crate::process::ledger_page::LedgerPage;
use crate::protocol::{PROTOCOL_VERSION, Request, Response};
use crate::wire::strict::{self, Fault};
use crate::wire::{self, ReadStatus};

/// A program or CLI command connected to `admin.sock`.
pub(super) struct Client {
    pub(super) conn: Conn,
    /// Its endpoint's id, once it has said `Hello`.
    pub(super) endpoint: Option<u64>,
    /// Whether it has said `Hello` (the first request on every control connection).
    pub(super) greeted: bool,
    /// Its endpoint's ledger page, once the admin has looked at it.
    pub(super) page: Option<LedgerPage>,
    /// Copies from its out ring it has handed on as dead letters itself: `(conn, seq)`.
    pub(super) handed_on: super::custody::HandedOn,
    /// The pid of the process on the other end, as the kernel tells it.
    pub(super) peer_pid: Option<u32>,
}

impl Client {
    /// Its endpoint's ledger page (in system directory `dir`), mapped the first time it is
    /// needed: the endpoint creates it after its `Hello` is answered.
    pub(super) fn page(&mut self, dir: &std::path::Path) -> Option<&LedgerPage> {
        if self.page.is_none()
            && let Some(id) = self.endpoint
        {
            self.page = LedgerPage::open(&Address::new(dir, id).ledger_path()).ok();
        }
        self.page.as_ref()
    }
}

/// A client with more than this many bytes of answers unread when the next answer is due is
/// disconnected (one answer of any size is always let through).
const CLIENT_BACKLOG_CAP: usize = 4 << 20;

/// A control frame, decoded strictly.
pub(super) enum Incoming {
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
    pub(super) fn decode(frame: &[u8]) -> Incoming {
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

    /// Read every control frame `conn` has, strictly; reading stops at a malformed one (the
    /// connection is then to be closed).
    pub(super) fn read_all(conn: &mut Conn, into: &mut Vec<Incoming>) -> crate::Result<ReadStatus> {
        conn.read(|frame| {
            let item = Incoming::decode(frame);
            let stop = matches!(item, Incoming::Refused { close: true, .. });
            into.push(item);
            if stop {
                return Err(Error::Protocol("a malformed control frame".into()));
            }
            Ok(())
        })
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

impl Admin {
    pub(super) fn accept(&mut self) {
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
                    let peer_pid = crate::sys::peer_pid(&stream);
                    let conn = Conn::new(stream, self.cfg.max_frame + wire::WRAP_SLACK);
                    self.clients.insert(
                        token,
                        Client {
                            conn,
                            endpoint: None,
                            greeted: false,
                            page: None,
                            handed_on: Default::default(),
                            peer_pid,
                        },
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    crate::logging::bad_input(format_args!("accepting a client failed: {e}"));
                    return;
                }
            }
        }
    }

    /// Read every request a client has sent; answer each in order. A client whose answers pile
    /// up unread past a cap is disconnected: memory per client stays bounded.
    pub(super) fn on_client(&mut self, token: Token) {
        let client = self.clients.get_mut(&token).expect("checked by caller");
        if client.conn.flush().is_err() {
            return self.drop_client(token);
        }
        let mut incoming = Vec::new();
        let status = Incoming::read_all(&mut client.conn, &mut incoming);
        let mut close = false;
        for item in incoming {
            let greeted = self.clients.get(&token).is_some_and(|c| c.greeted);
            let resp = match item {
                Incoming::Request(req @ Request::Hello { .. }) if !greeted => {
                    self.handle(Source::Client(token), req)
                }
                Incoming::Request(_) if !greeted => {
                    close = true;
                    Some(Response::bad_request(&format!(
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
                    answer.then(|| Response::bad_request(&message))
                }
            };
            let backlog = self
                .clients
                .get(&token)
                .map_or(0, |c| c.conn.pending_bytes());
            if resp.is_some() && backlog > CLIENT_BACKLOG_CAP {
                crate::logging::bad_input(format_args!(
                    "disconnecting a client that left {backlog} bytes of answers unread"
                ));
                close = true;
                break;
            }
            if let Some(resp) = resp {
                self.answer(Source::Client(token), resp);
            }
            if close {
                break;
            }
        }
        match status {
            Ok(ReadStatus::Drained) => {}
            // Its turn is over; the rest is read on the next round.
            Ok(ReadStatus::More) => {
                if !close {
                    self.unread.push(token);
                }
            }
            Ok(ReadStatus::Eof) => close = true,
            Err(Error::FrameTooLarge { len, limit }) => {
                let e = Error::FrameTooLarge { len, limit };
                crate::logging::bad_input(format_args!("closing a client connection: {e}"));
                self.respond(token, &Response::refusal("BadRequest", e.to_string()));
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

    pub(super) fn respond(&mut self, token: Token, resp: &Response) {
        if let Some(client) = self.clients.get_mut(&token)
            && let Err(e) = client.conn.send(resp)
        {
            log::debug!("client went away before its answer: {e}");
        }
    }

    /// A client has gone: its endpoint's socket and ledger page go too (its counts stay in the
    /// system's ledger), and if it owned the admin, the admin shuts down.
    pub(super) fn drop_client(&mut self, token: Token) {
        let Some(mut client) = self.clients.remove(&token) else {
            return;
        };
        self.requester_gone(Source::Client(token));
        // Give a misbehaving client its error message if its socket takes it now; never wait.
        let _ = client.conn.flush();
        let _ = self.poll.registry().deregister(&mut client.conn.stream);
        if let Some(id) = client.endpoint {
            let address = self.me.sibling(id);
            if let Some(c) = &mut self.convention {
                c.watch(address.clone(), false);
            }
            // What its program never took, or sent and no one took, is settled as for an
            // actor that ended.
            let handed_on = std::mem::take(&mut client.handed_on);
            self.settle_rings(&address, &handed_on);
            if let Some(page) = client.page(&self.dir) {
                self.retired = self.retired.plus(page.counts());
            }
            let _ = std::fs::remove_file(address.socket_path());
            let _ = std::fs::remove_file(address.ledger_path());
        }
        if self.owner == Some(token) {
            log::info!("the program that owns this admin has gone; shutting down");
            self.owner = None;
            self.begin_shutdown(None);
        }
    }
}
