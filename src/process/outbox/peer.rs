//! One outgoing connection: its buffer of frames, written and kept until taken.

use super::*;

/// Where the written-up-to mark of a connection goes.
pub(super) struct Mark {
    pub(super) page: Arc<LedgerPage>,
    pub(super) peer: u32,
}

/// One receiver's connection.
pub(super) struct Peer {
    pub(super) token: Token,
    pub(super) stream: UnixStream,
    pub(super) from: Address,
    /// Frames from `base` on: first those written and not yet taken, then those not written.
    pub(super) buf: Vec<u8>,
    pub(super) base: usize,
    /// The sequence number of the frame at `base` (0 is the hello).
    pub(super) base_seq: u64,
    /// Bytes written up to here.
    pub(super) wpos: usize,
    /// The first frame not wholly written, and its sequence number.
    pub(super) wframe: usize,
    pub(super) wframe_seq: u64,
    /// The last frame the peer entry says may have been written.
    pub(super) marked: u64,
    /// The sequence number the next frame gets.
    pub(super) next_seq: u64,
    /// This connection's number, as its hello told the receiver.
    pub(super) conn: u64,
    /// The receiver's ledger page, and this connection's slot in it once found.
    pub(super) ledger: Option<LedgerPage>,
    pub(super) slot: Option<u32>,
    /// The owner's peer entry for this connection, if its copies are in the out ring.
    pub(super) mark: Option<Mark>,
    /// The out ring entries of the kept frames, by sequence number, oldest first.
    pub(super) mirrored: VecDeque<(u64, u64)>,
    /// Whether the event loop reports this stream writable (see [`Peer::watch_writes`]).
    pub(super) watching_writes: bool,
}

impl Peer {
    pub(super) fn unwritten(&self) -> usize {
        self.buf.len() - self.wpos
    }

    /// Write buffered bytes until done or the socket would block.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        if self.wpos < self.buf.len()
            && self.ledger.is_some()
            && self.marked < self.next_seq - 1
            && let Some(m) = &self.mark
        {
            // Before the write: if this process dies during it, the admin knows that nothing
            // after this frame can have reached the receiver.
            self.marked = self.next_seq - 1;
            m.page.written(m.peer, self.marked);
        }
        let before = self.wpos;
        let mut result = Ok(());
        while self.wpos < self.buf.len() {
            match self.stream.write(&self.buf[self.wpos..]) {
                Ok(0) => {
                    result = Err(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if self.ledger.is_none() {
            // Nothing is kept for a receiver without a ledger.
            self.base = self.wpos;
            self.wframe = self.wpos;
        } else if self.wpos > before {
            self.mark_written();
        }
        result
    }

    /// Move past the frames now wholly written.
    pub(super) fn mark_written(&mut self) {
        while self.wframe + 4 <= self.wpos {
            let end = self.wframe + 4 + frame_len(&self.buf, self.wframe);
            if end > self.wpos {
                break;
            }
            self.wframe = end;
            self.wframe_seq += 1;
        }
    }

    /// The receiver's progress on this connection, if it has read the hello.
    pub(super) fn progress(&mut self) -> Option<crate::process::ledger_page::Progress> {
        let ledger = self.ledger.as_ref()?;
        if self.slot.is_none() {
            self.slot = ledger.find(self.conn);
        }
        self.slot.map(|s| ledger.progress(s))
    }

    /// Ask the event loop for writable events only while bytes wait to be written. Watched
    /// always, every read by the receiver (which frees room in the socket) would wake this
    /// process for nothing: two extra wake-ups per request and reply. Re-arming the interest
    /// reports a stream that became writable meanwhile, so no wake-up is lost.
    pub(super) fn watch_writes(&mut self, registry: &Registry) {
        let wanted = self.unwritten() > 0;
        if wanted == self.watching_writes {
            return;
        }
        let interest = if wanted {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if registry
            .reregister(&mut self.stream, self.token, interest)
            .is_ok()
        {
            self.watching_writes = wanted;
        }
    }

    /// Drop the written frames the receiver has taken; their out ring entries go to `out`.
    pub(super) fn trim(&mut self, out: &mut Option<OutRing>) {
        // Until the receiver has a slot for this connection, only the hello is taken (once
        // written).
        let taken = self.progress().map_or(0, |p| p.taken);
        while self.ledger.is_some() && self.base + 4 <= self.wpos && self.base_seq <= taken {
            let end = self.base + 4 + frame_len(&self.buf, self.base);
            if end > self.wpos {
                break;
            }
            self.base = end;
            self.base_seq += 1;
        }
        self.let_go_to(taken, out);
        if self.base == self.buf.len() {
            self.buf.clear();
            self.wpos = 0;
            self.base = 0;
            self.wframe = 0;
        } else if self.base > TRIM_BYTES && self.base * 2 > self.buf.len() {
            self.buf.drain(..self.base);
            self.wpos -= self.base;
            self.wframe -= self.base;
            self.base = 0;
        }
    }

    /// Let the out ring entries of frames up to `seq` go.
    pub(super) fn let_go_to(&mut self, seq: u64, out: &mut Option<OutRing>) {
        let Some(out) = out else {
            return;
        };
        let mut any = false;
        while let Some(&(s, id)) = self.mirrored.front() {
            if s > seq {
                break;
            }
            self.mirrored.pop_front();
            out.mark_let_go(id);
            any = true;
        }
        if any {
            out.advance();
        }
    }

    /// The kept messages from the frame at byte `at` (number `seq`) on whose number is above
    /// `after`, as returns naming their out ring copies.
    pub(super) fn returned(
        &self,
        to: &Address,
        mut at: usize,
        mut seq: u64,
        after: u64,
    ) -> Vec<Returned> {
        let mut out = Vec::new();
        while at + 4 <= self.buf.len() {
            let end = at + 4 + frame_len(&self.buf, at);
            // Seq 0 is the hello.
            if seq > after && seq > 0 {
                let mirror = self
                    .mirrored
                    .binary_search_by_key(&seq, |m| m.0)
                    .ok()
                    .zip(self.mark.as_ref())
                    .map(|(i, m)| (self.mirrored[i].1, m.peer));
                match Message::decode_frame_body(&self.buf[at + 4..end]) {
                    Ok(msg) => out.push(Returned {
                        from: self.from.clone(),
                        to: to.clone(),
                        msg,
                        kept: mirror.map(|_| (self.conn, seq)),
                        mirror,
                    }),
                    Err(e) => log::error!("a kept frame to {to} does not decode: {e}"),
                }
            }
            at = end;
            seq += 1;
        }
        out
    }

    /// The connection has ended: what the receiver did not take.
    pub(super) fn verdict(mut self, to: &Address, out: &mut Option<OutRing>) -> Vec<Returned> {
        let progress = self.progress();
        if self.ledger.is_none() {
            if self.unwritten() > 0 {
                log::warn!(
                    "{} bytes to {to}, which keeps no ledger, were not delivered",
                    self.unwritten()
                );
            }
            return Vec::new();
        }
        // No slot: the receiver never read this connection's hello, so nothing of it. A
        // refused connection's slot says how far the receiver took it, like any other.
        let taken = progress.map_or(0, |p| p.taken);
        self.let_go_to(taken, out);
        let returned = self.returned(to, self.base, self.base_seq, taken);
        if let (Some(out), Some(mark)) = (out, self.mark.take()) {
            out.closing(
                mark.peer,
                returned.iter().filter(|r| r.mirror.is_some()).count(),
            );
        }
        returned
    }
}

/// Open a connection to `to`'s message socket, with its ledger page if it keeps one (for a
/// receiver on another member, to the gateway of `home`'s member, which keeps a page for the
/// streams it carries). The page is opened first: a receiver that is running has it, so a
/// missing page with a working socket means a receiver that keeps no ledger.
pub(super) fn open_peer(
    registry: &Registry,
    token: Token,
    (from, to): (&Address, &Address),
    home: &Address,
    patience: Duration,
) -> Result<Peer> {
    let (socket, ledger, via_gateway) = if to.is_beside(home) {
        (to.socket_path(), to.ledger_path(), None)
    } else if home.member().is_some() {
        let dir = home.system_dir();
        (dir.join(GATEWAY_SOCKET), dir.join(GATEWAY_LEDGER), Some(to))
    } else {
        return Err(Error::NoConvention {
            system: home.system_dir().file_name().map_or_else(
                || home.system_dir().display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        });
    };
    let ledger = match LedgerPage::open(&ledger) {
        Ok(page) => Some(page),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(
                Error::exhausted("opening a receiver's ledger", &e).unwrap_or(Error::Io {
                    context: format!("opening the ledger page of {to}"),
                    source: e,
                }),
            );
        }
    };
    let std = connect(to, &socket, patience)?;
    std.set_nonblocking(true).map_err(|e| Error::Io {
        context: "setting a socket non-blocking".into(),
        source: e,
    })?;
    let mut stream = UnixStream::from_std(std);
    registry
        .register(&mut stream, token, Interest::READABLE)
        .map_err(|e| Error::Io {
            context: "registering a socket".into(),
            source: e,
        })?;
    let mut buf = Vec::new();
    let conn = encode_sender_hello(&mut buf, from, via_gateway)?;
    Ok(Peer {
        token,
        stream,
        from: from.clone(),
        buf,
        base: 0,
        base_seq: 0,
        wpos: 0,
        wframe: 0,
        wframe_seq: 0,
        marked: 0,
        next_seq: 1,
        conn,
        ledger,
        slot: None,
        mark: None,
        mirrored: VecDeque::new(),
        watching_writes: false,
    })
}

/// The length in a frame header at `at`.
pub(super) fn frame_len(buf: &[u8], at: usize) -> usize {
    u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize
}
