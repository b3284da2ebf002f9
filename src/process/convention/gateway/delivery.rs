//! The receiving side: streams from other members' senders written into local receivers'
//! sockets, as their senders would have, and how far each receiver has taken them said back.

use std::io::Write;

use super::*;
use crate::process::conn::{connect, encode_sender_hello};

/// Where a receiver stands with a stream.
pub(super) struct Standing {
    pub(super) taken: u64,
    pub(super) settled: u64,
    pub(super) last: bool,
}

/// A stream from a sender on another member to a receiver here.
pub(super) struct In {
    pub(super) token: Token,
    pub(super) stream: Option<UnixStream>,
    /// Bytes for the receiver, from `wpos` on not yet written.
    pub(super) buf: Vec<u8>,
    pub(super) wpos: usize,
    /// The receiver's ledger page (none: it keeps none, and takes what is written), and this
    /// stream's connection number there.
    pub(super) page: Option<LedgerPage>,
    pub(super) conn: u64,
    pub(super) slot: Option<u32>,
    /// Messages received, and wholly written.
    pub(super) received: u64,
    pub(super) written: u64,
    /// Ends of the messages in `buf` not yet wholly written, with their numbers.
    pub(super) ends: VecDeque<(usize, u64)>,
    /// How far the receiver's settling was last said, when, and the bytes up to there.
    pub(super) said: u64,
    pub(super) said_at: Instant,
    pub(super) said_bytes: usize,
    /// Bytes received, and the total at the last message of each batch (by its number).
    pub(super) received_bytes: usize,
    pub(super) batches: VecDeque<(u64, usize)>,
    /// The sender closed the stream: once written, the receiver's side is shut.
    pub(super) closing: bool,
    /// Writable events are asked for (only while bytes wait: else every read by the receiver
    /// would wake the admin for nothing).
    pub(super) watching_writes: bool,
}

impl In {
    /// True if messages wait to be reported settled (their receiver's page is worth reading).
    pub(super) fn awaiting(&self) -> bool {
        self.received > self.said || self.closing
    }

    /// True if half of what the sender may have in flight waits to be reported settled.
    pub(super) fn pressing(&self) -> bool {
        self.received_bytes - self.said_bytes >= STREAM_WINDOW / 2
    }

    /// Reported settled up to `settled`: the bytes up to there are no longer in flight.
    pub(super) fn said_to(&mut self, settled: u64, at: Instant) {
        self.said = settled;
        self.said_at = at;
        while let Some(&(seq, bytes)) = self.batches.front() {
            if seq > settled {
                break;
            }
            self.said_bytes = bytes;
            self.batches.pop_front();
        }
    }

    /// Where the receiver stands: how far it took the stream, how far it settled it (handled,
    /// poisoned back or returned), and whether that is final.
    pub(super) fn progress(&mut self) -> Standing {
        let Some(page) = &self.page else {
            // A receiver without a ledger takes what is written, at most once.
            return Standing {
                taken: self.written,
                settled: self.written,
                last: self.stream.is_none(),
            };
        };
        if self.slot.is_none() {
            self.slot = page.find(self.conn);
        }
        match self.slot.map(|s| page.progress(s)) {
            Some(p) => Standing {
                taken: p.taken,
                settled: p.settled.min(p.taken),
                last: p.closed || p.refused_after.is_some(),
            },
            None => Standing {
                taken: 0,
                settled: 0,
                last: self.stream.is_none(),
            },
        }
    }

    /// Write what waits, as far as the receiver's socket takes it now, and watch for room only
    /// while something still waits.
    fn flush(&mut self, registry: &Registry) -> std::io::Result<()> {
        self.write()?;
        let want = self.wpos < self.buf.len();
        if let Some(stream) = &mut self.stream
            && want != self.watching_writes
        {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(stream, self.token, interest)?;
            self.watching_writes = want;
        }
        Ok(())
    }

    fn write(&mut self) -> std::io::Result<()> {
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        while self.wpos < self.buf.len() {
            match stream.write(&self.buf[self.wpos..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        while let Some(&(end, seq)) = self.ends.front() {
            if end > self.wpos {
                break;
            }
            self.written = seq;
            self.ends.pop_front();
        }
        if self.wpos == self.buf.len() {
            self.buf.clear();
            self.wpos = 0;
            if self.closing {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
        } else if self.wpos > BATCH * 4 {
            self.buf.drain(..self.wpos);
            for e in &mut self.ends {
                e.0 -= self.wpos;
            }
            self.wpos = 0;
        }
        Ok(())
    }
}

impl super::super::Convention {
    /// `peer` opens a stream from its sender `from` to `to`, here. False if the peer is at
    /// fault (the link then ends).
    pub(in super::super) fn stream_opened(
        &mut self,
        peer: &str,
        stream: u64,
        from: Address,
        to: Address,
    ) -> bool {
        let Some(g) = &mut self.gateway else {
            return false;
        };
        if from.member() != Some(peer)
            || !to.is_beside(&g.home)
            || to.system_dir() != g.home.system_dir()
            || g.ins.contains_key(&(peer.to_string(), stream))
        {
            return false;
        }
        // As many streams from one member as a process accepts connections; more are refused.
        if g.ins.keys().filter(|(p, _)| p == peer).count() >= SLOTS {
            log::warn!("gateway: {peer} has {SLOTS} streams open here already; refusing another");
            return self.end_stream(peer, stream, 0);
        }
        let page = match LedgerPage::open(&to.ledger_path()) {
            Ok(page) => Some(page),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                log::warn!("gateway: cannot read the ledger page of {to}: {e}");
                return self.end_stream(peer, stream, 0);
            }
        };
        let connected = connect(&to, &to.socket_path(), Duration::ZERO).and_then(|s| {
            s.set_nonblocking(true).map_err(|e| Error::Io {
                context: "setting a socket non-blocking".into(),
                source: e,
            })?;
            Ok(s)
        });
        let std = match connected {
            Ok(s) => s,
            Err(e) => {
                log::debug!("gateway: {to} cannot be reached: {e}");
                return self.end_stream(peer, stream, 0);
            }
        };
        let mut socket = UnixStream::from_std(std);
        let token = g.token();
        if let Err(e) = self
            .registry
            .register(&mut socket, token, Interest::READABLE)
        {
            log::warn!("gateway: cannot watch a stream to {to}: {e}");
            return self.end_stream(peer, stream, 0);
        }
        let mut buf = Vec::new();
        let Ok(conn) = encode_sender_hello(&mut buf, &from, None) else {
            return self.end_stream(peer, stream, 0);
        };
        let mut inbound = In {
            token,
            stream: Some(socket),
            buf,
            wpos: 0,
            page,
            conn,
            slot: None,
            received: 0,
            written: 0,
            ends: VecDeque::new(),
            said: 0,
            said_at: Instant::now(),
            said_bytes: 0,
            received_bytes: 0,
            batches: VecDeque::new(),
            closing: false,
            watching_writes: false,
        };
        let _ = inbound.flush(&self.registry);
        g.in_by_token.insert(token, (peer.to_string(), stream));
        g.ins.insert((peer.to_string(), stream), inbound);
        true
    }

    /// Messages for stream `stream` from `peer` (checked to be whole frames). False if the
    /// peer is at fault.
    pub(in super::super) fn stream_data(
        &mut self,
        peer: &str,
        stream: u64,
        frames: Vec<u8>,
    ) -> bool {
        let Some(g) = &mut self.gateway else {
            return false;
        };
        let limit = g.limit;
        // A stream ended here may still have messages on the way; they were never taken, and
        // the sender's side knows it.
        let Some(inb) = g.ins.get_mut(&(peer.to_string(), stream)) else {
            return true;
        };
        if inb.closing {
            return false;
        }
        let mut at = 0;
        while at < frames.len() {
            let len = u32::from_be_bytes(frames[at..at + 4].try_into().expect("checked")) as usize;
            at += 4 + len;
            inb.received += 1;
            inb.ends.push_back((inb.buf.len() + at, inb.received));
        }
        inb.buf.extend_from_slice(&frames);
        inb.received_bytes += frames.len();
        inb.batches.push_back((inb.received, inb.received_bytes));
        // The sender's window bounds what waits here; more means a peer that ignores it.
        if inb.buf.len() - inb.wpos > 2 * STREAM_WINDOW + 2 * limit {
            return false;
        }
        if inb.flush(&self.registry).is_err() {
            self.receiver_gone(peer, stream);
        }
        true
    }

    /// The sender of `peer`'s stream `stream` closed it.
    pub(in super::super) fn stream_closed(&mut self, peer: &str, stream: u64) {
        let Some(g) = &mut self.gateway else {
            return;
        };
        if let Some(inb) = g.ins.get_mut(&(peer.to_string(), stream)) {
            inb.closing = true;
            if inb.flush(&self.registry).is_err() {
                self.receiver_gone(peer, stream);
            }
        }
    }

    /// An event on a stream to a local receiver: room to write, or the receiver closed it.
    pub(super) fn on_in_event(&mut self, token: Token, event: &mio::event::Event) {
        let g = self.gateway.as_mut().expect("checked");
        let key = g.in_by_token[&token].clone();
        let inb = g.ins.get_mut(&key).expect("indexed");
        let failed = inb.flush(&self.registry).is_err();
        if failed || event.is_readable() || event.is_read_closed() || event.is_error() {
            self.receiver_gone(&key.0, key.1);
        }
    }

    /// The receiver of a stream closed it (it ended, or refused the stream): say how far it
    /// took it, finally.
    pub(super) fn receiver_gone(&mut self, peer: &str, stream: u64) {
        let g = self.gateway.as_mut().expect("checked");
        let Some(mut inb) = g.ins.remove(&(peer.to_string(), stream)) else {
            return;
        };
        g.in_by_token.remove(&inb.token);
        if let Some(mut s) = inb.stream.take() {
            let _ = self.registry.deregister(&mut s);
        }
        let taken = inb.progress().taken;
        self.end_stream(peer, stream, taken);
    }

    /// Say `End` for `peer`'s stream `stream`. Always true (for [`stream_opened`]).
    pub(super) fn end_stream(&mut self, peer: &str, stream: u64, taken: u64) -> bool {
        self.say_to(peer, &LinkMsg::End { stream, taken });
        true
    }

    /// Queue `msg` on the link to `peer`.
    pub(super) fn say_to(&mut self, peer: &str, msg: &LinkMsg) {
        let Some(token) = self.link_of.get(peer).copied() else {
            return;
        };
        let Some(link) = self.links.get_mut(&token) else {
            return;
        };
        match link.queue(msg) {
            Ok(()) => {
                self.dirty_links.insert(token);
            }
            Err(why) => self.drop_link(token, &why),
        }
    }
}
