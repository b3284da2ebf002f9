//! The client side of a control connection: one request, one response, in order.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::address::Address;
use crate::error::{Error, IoContext, Result};
use crate::message::Message;
use crate::protocol::{Request, Response};
use crate::wire;

/// How long a client waits for the admin to answer one request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking control connection.
pub(crate) struct ControlClient {
    pub(crate) stream: UnixStream,
    limit: usize,
}

impl ControlClient {
    pub(crate) fn new(stream: UnixStream, limit: usize) -> ControlClient {
        ControlClient { stream, limit }
    }

    /// Send one request without waiting for an answer.
    pub(crate) fn post(&mut self, req: &Request) -> Result<()> {
        let frame = wire::encode(req)?;
        self.stream
            .write_all(&frame)
            .ctx(|| "writing to the admin's control socket".into())
    }

    /// Hand the admin a message whose target is not running, for the dead-letter handler (the
    /// admin counts what becomes of it); `kept` names the out ring copy it comes from. Not
    /// answered; a failure is logged, since the caller has nowhere else to put it.
    /// Hand the admin a message whose target is not running, saying where this process kept
    /// it (see [`HandedFrom`]).
    pub(crate) fn dead_letter(
        &mut self,
        target: &Address,
        sender: &Address,
        message: Message,
        from: HandedFrom,
    ) {
        let (kept, queued) = match from {
            HandedFrom::Nowhere => (None, None),
            HandedFrom::OutRing(Some((c, s))) => (Some([c, s]), None),
            HandedFrom::OutRing(None) => (None, None),
            HandedFrom::QueueRing(at) => (None, at),
        };
        let req = Request::DeadLetter {
            target: target.clone(),
            sender: sender.clone(),
            message,
            kept,
            queued,
        };
        if let Err(e) = self.post(&req) {
            log::warn!("could not hand a dead letter to the admin: {e}");
        }
    }

    /// Send a request and wait for its response; an `Error` response becomes an `Err`.
    pub(crate) fn request(&mut self, req: &Request) -> Result<Response> {
        self.post(req)?;
        match self.read_response(Some(REQUEST_TIMEOUT))? {
            answer @ Response::Error { .. } => Err(answer.into_error()),
            other => Ok(other),
        }
    }

    /// Wait for one response frame (forever if `timeout` is `None`).
    pub(crate) fn read_response(&mut self, timeout: Option<Duration>) -> Result<Response> {
        self.stream
            .set_read_timeout(timeout)
            .ctx(|| "setting a read timeout".into())?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    Error::Timeout(timeout.unwrap_or_default())
                }
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                    Error::AdminClosed
                }
                _ => Error::Io {
                    context: "reading from the admin".into(),
                    source: e,
                },
            })?;
        let len = u32::from_be_bytes(len) as usize;
        if len > self.limit {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                limit: self.limit,
            });
        }
        // Grow with what arrives, not with what the header claims.
        let mut body = Vec::new();
        (&mut self.stream)
            .take(len as u64)
            .read_to_end(&mut body)
            .ctx(|| "reading from the admin".into())?;
        if body.len() < len {
            return Err(Error::AdminClosed);
        }
        wire::strict::from_slice(&body).map_err(|e| Error::Decode {
            what: "the admin's response".into(),
            why: e.message,
        })
    }
}

/// Where a process kept a message it hands to the admin as a dead letter, so that the admin
/// never returns it a second time should the process die before it is let go there.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HandedFrom {
    /// Nowhere: the process never took custody of it.
    Nowhere,
    /// Its out ring: the copy's `(conn, seq)`, if it kept one.
    OutRing(Option<(u64, u64)>),
    /// Its queue ring, at this position (if it came from a stream).
    QueueRing(Option<u64>),
}
