//! The two rings of a ledger page: the queue ring (what its owner has taken and not settled)
//! and the out ring (copies of what it has sent and its receivers have not taken), each a run
//! of entries `[len][slot][conn][seq][pos][from_len][from][body]`, wrapping at its end.

use super::*;

impl LedgerPage {
    fn ring(&self) -> u64 {
        self.ring.expect("this mapping of the page has no rings")
    }

    /// Byte offset in the file of position `pos` of ring `which`.
    fn at(&self, which: Which, pos: u64) -> usize {
        let base = match which {
            Which::Queue => RING_AT,
            Which::Out => RING_AT + self.ring() as usize,
        };
        base + (pos % self.ring()) as usize
    }

    /// Append a message to the queue ring and publish it; for a message from a connection,
    /// this also moves the slot's `taken` to it. Returns the entry's start and end positions,
    /// or `None` if the ring has no room (it is sized so that this does not happen while the
    /// queue respects its bound).
    pub(crate) fn push(&self, source: Source, from: &[u8], body: &[u8]) -> Option<(u64, u64)> {
        let (slot, conn, seq) = match source {
            Source::Own => (OWN, 0, 0),
            Source::Relocated(from) => (OWN, RELOCATED, from),
            Source::Stream { slot, conn, seq } => (slot, conn, seq),
        };
        let (pos, end) = self.append(Which::Queue, [slot as u64, conn, seq], from, body)?;
        if let Source::Stream { slot, seq, .. } = source {
            // The entry is the message's keeper from this store on.
            self.words.store(slot_word(slot, S_TAKEN), seq);
        }
        self.words.store(W_TAIL, end);
        Some((pos, end))
    }

    /// Append a message sent on the connection of peer entry `peer` to the out ring. Returns
    /// the entry's start and end, or `None` if the ring has no room.
    pub(crate) fn push_out(
        &self,
        peer: u32,
        conn: u64,
        seq: u64,
        body: &[u8],
    ) -> Option<(u64, u64)> {
        let (pos, end) = self.append(Which::Out, [peer as u64, conn, seq], &[], body)?;
        self.words.store(W_OUT_TAIL, end);
        Some((pos, end))
    }

    /// Write an entry at the tail of ring `which` without publishing it.
    fn append(
        &self,
        which: Which,
        [slot, conn, seq]: [u64; 3],
        from: &[u8],
        body: &[u8],
    ) -> Option<(u64, u64)> {
        let ring = self.ring();
        let (w_head, w_tail) = which.words();
        let (head, mut pos) = (self.words.load(w_head), self.words.load(w_tail));
        let len = (ENTRY_HEADER + from.len() + body.len()) as u64;
        let left = ring - pos % ring;
        // A ring goes back to its front when the entry does not fit before its end, or when it
        // is empty (see `let_go`), never earlier: until its head passed the point left, a ring
        // that went back while it held entries would have room only for what it held and what
        // lay before its head. (Going back as soon as its first 4 MiB were free left a sender
        // streaming to another member, which holds 5-10 MiB of unsettled copies, a full out ring
        // one run in ten of a million messages; running on costs no measurable throughput, and
        // the memory behind the head is given back.)
        if left < len {
            // Does not fit before the end: mark the rest unused and start over at the front.
            if pos + left + len - head > ring {
                return None;
            }
            if left >= 4 {
                self.write(which, pos, &WRAP.to_le_bytes());
            }
            pos += left;
        }
        if pos + len - head > ring {
            return None;
        }
        let mut header = [0u8; ENTRY_HEADER];
        header[0..4].copy_from_slice(&((len - 4) as u32).to_le_bytes());
        header[4..8].copy_from_slice(&(slot as u32).to_le_bytes());
        header[8..16].copy_from_slice(&conn.to_le_bytes());
        header[16..24].copy_from_slice(&seq.to_le_bytes());
        header[24..32].copy_from_slice(&pos.to_le_bytes());
        header[32..36].copy_from_slice(&(from.len() as u32).to_le_bytes());
        self.words
            .write_parts(self.at(which, pos), &[&header, from, body]);
        Some((pos, pos + len))
    }

    fn write(&self, which: Which, pos: u64, bytes: &[u8]) {
        self.words.write_bytes(self.at(which, pos), bytes);
    }

    fn read(&self, which: Which, pos: u64, len: usize) -> Vec<u8> {
        let at = self.at(which, pos);
        match &self.file {
            Some(file) => {
                use std::os::unix::fs::FileExt;
                let mut out = vec![0u8; len];
                // The length was checked against the file's; a short read leaves zeros, which
                // no entry is made of.
                if let Err(e) = file.read_exact_at(&mut out, at as u64) {
                    log::error!("reading a ledger page's ring: {e}");
                }
                out
            }
            None => self.words.read_bytes(at, len),
        }
    }

    /// The entry that starts at `start` is being handled.
    pub(crate) fn started(&self, start: u64) {
        self.words.store(W_STARTED, start + 1);
    }

    /// Every entry of the queue ring up to `end` is settled (entries settle in the order they
    /// were pushed).
    pub(crate) fn done(&self, end: u64) {
        self.let_go(Which::Queue, end);
    }

    /// The queue ring entry at `start` is settled ahead of entries before it (a program took
    /// a later message first, as `ask` does): the admin skips it. The head moves past it once
    /// the entries before it settle (see [`done`](Self::done)).
    pub(crate) fn entry_done(&self, start: u64) {
        self.write(Which::Queue, start + 4, &LET_GO.to_le_bytes());
    }

    /// Move the entry that starts at `start` (its sender's address `from` and frame `body`) to
    /// the tail, so that the head can pass where it was: the copy is written first, then the
    /// original let go; a process that dies in between leaves both, and the admin returns the
    /// copy alone. Returns the copy's start and end, or `None` if the ring has no room.
    pub(crate) fn relocate(&self, start: u64, from: &[u8], body: &[u8]) -> Option<(u64, u64)> {
        let copy = self.push(Source::Relocated(start), from, body)?;
        self.entry_done(start);
        Some(copy)
    }

    /// The queue ring's size in bytes.
    pub(crate) fn queue_capacity(&self) -> u64 {
        self.ring()
    }

    /// How many bytes of the queue ring are in use, from its head to its tail.
    pub(crate) fn queue_used(&self) -> u64 {
        self.words
            .load(W_TAIL)
            .saturating_sub(self.words.load(W_HEAD))
    }

    /// The queue ring's tail: where the next entry goes.
    pub(crate) fn queue_tail(&self) -> u64 {
        self.words.load(W_TAIL)
    }

    /// The out ring entry at `start` is let go: its receiver took it, or it was handed on.
    pub(crate) fn out_entry_let_go(&self, start: u64) {
        self.write(Which::Out, start + 4, &LET_GO.to_le_bytes());
    }

    /// Every entry of the out ring before `head` is let go (its owner works out how far that
    /// is: entries are let go out of order).
    pub(crate) fn out_let_go(&self, head: u64) {
        self.let_go(Which::Out, head);
    }

    /// The out ring's tail: where the next entry goes, and where its head may move to when
    /// everything is let go.
    pub(crate) fn out_tail(&self) -> u64 {
        self.words.load(W_OUT_TAIL)
    }

    /// The out ring entry at `start`, as the owner wrote it.
    pub(crate) fn out_entry(&self, start: u64) -> Option<Outgoing> {
        let len = u32::from_le_bytes(self.read(Which::Out, start, 4).try_into().expect("4 bytes"));
        let entry = self.entry_at(Which::Out, start, len, u64::MAX)?;
        Some(Outgoing {
            peer: entry.slot,
            conn: entry.conn,
            seq: entry.seq,
            body: entry.body,
        })
    }

    fn let_go(&self, which: Which, end: u64) {
        let ring = self.ring();
        let (w_head, w_tail) = which.words();
        let head = self.words.load(w_head);
        if end == self.words.load(w_tail) {
            // Empty: start over at the front, where the memory is already in use.
            let front = end.div_ceil(ring) * ring;
            self.give_back(which, head, end);
            self.words.store(w_tail, front);
            self.words.store(w_head, front);
            return;
        }
        self.words.store(w_head, end);
        self.give_back(which, head, end);
    }

    /// The head of ring `which` moves from position `from` to `to`: give the memory of each
    /// chunk that is now wholly let go back to the system, except those near the ring's start.
    /// That includes the chunk holding `from` (what lay before `from` was let go earlier; a
    /// head moves an entry at a time, so a chunk is rarely passed in one move), unless the tail
    /// has come round to the same memory again.
    fn give_back(&self, which: Which, from: u64, to: u64) {
        let ring = self.ring();
        let tail = self.words.load(which.words().1);
        let mut chunk = from / CHUNK * CHUNK;
        while chunk + CHUNK <= to {
            if chunk % ring >= KEEP_BYTES && chunk + ring >= tail {
                self.words.discard(self.at(which, chunk), CHUNK as usize);
            }
            chunk += CHUNK;
        }
    }

    /// The messages left in the queue ring, for the admin once the owner has ended: every
    /// entry written and not settled, in order.
    pub(crate) fn unsettled(&self, mut each: impl FnMut(Unsettled)) {
        let running = self.words.load(W_STARTED).checked_sub(1);
        // Entries copied to the tail are returned as their copies, once.
        let mut moved = std::collections::HashSet::new();
        self.scan(Which::Queue, |_, entry| {
            if entry.slot == OWN && entry.conn == RELOCATED {
                moved.insert(entry.seq);
            }
        });
        self.scan(Which::Queue, |pos, entry| {
            if entry.slot == LET_GO || moved.contains(&pos) {
                return;
            }
            each(Unsettled {
                from: entry.from,
                body: entry.body,
                running: running == Some(pos),
                at: pos,
            })
        });
    }

    /// The messages left in the out ring, for the admin once the owner has ended: every entry
    /// not let go, in order (some of them may have been taken by their receivers since).
    pub(crate) fn outgoing(&self, mut each: impl FnMut(Outgoing)) {
        self.scan(Which::Out, |_, entry| {
            if entry.slot == LET_GO {
                return;
            }
            each(Outgoing {
                peer: entry.slot,
                conn: entry.conn,
                seq: entry.seq,
                body: entry.body,
            })
        });
    }

    fn scan(&self, which: Which, mut each: impl FnMut(u64, Entry)) {
        let ring = self.ring();
        let (w_head, w_tail) = which.words();
        let (mut pos, tail) = (self.words.load(w_head), self.words.load(w_tail));
        if tail < pos || tail - pos > ring {
            log::error!("a ledger page's ring positions make no sense; nothing is returned");
            return;
        }
        // Entries before `tail`, then, in the queue ring, possibly one at `tail` (or, past a
        // wrap marker there, at the front) that was published by its slot just before the
        // process died.
        let limit = if which == Which::Queue {
            tail + ring
        } else {
            tail
        };
        while pos < limit || (pos == limit && which == Which::Queue) {
            let off = pos % ring;
            if ring - off < 4 {
                pos += ring - off;
                continue;
            }
            let len = u32::from_le_bytes(self.read(which, pos, 4).try_into().expect("4 bytes"));
            if len == WRAP {
                pos += ring - off;
                continue;
            }
            let Some(entry) = self.entry_at(which, pos, len, tail) else {
                break;
            };
            each(pos, entry);
            if pos >= tail {
                break;
            }
            pos += 4 + len as u64;
        }
    }

    /// The entry at `pos` whose length word is `len`, if it is whole and written: before
    /// `tail`, or (in the queue ring) at `tail` and published by its slot.
    fn entry_at(&self, which: Which, pos: u64, len: u32, tail: u64) -> Option<Entry> {
        let ring = self.ring();
        let size = 4 + len as u64;
        let broken = || {
            if pos < tail {
                log::error!("a ledger page's ring holds a broken entry; the rest is skipped");
            }
            None
        };
        let runs_past_tail = pos < tail && pos + size > tail;
        if (len as usize) < ENTRY_HEADER - 4 || pos % ring + size > ring || runs_past_tail {
            return broken();
        }
        let header = self.read(which, pos, ENTRY_HEADER);
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8"));
        let slot = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let from_len = u32::from_le_bytes(header[32..36].try_into().expect("4 bytes")) as u64;
        if word(24) != pos || ENTRY_HEADER as u64 + from_len > size {
            return broken();
        }
        let (conn, seq) = (word(8), word(16));
        if pos >= tail {
            // Written but not yet counted in `tail`: it is the ring's only if its slot says so.
            let published = which == Which::Queue
                && slot != OWN
                && (slot as usize) < SLOTS
                && self.words.load(slot_word(slot, S_CONN)) == conn
                && self.words.load(slot_word(slot, S_TAKEN)) >= seq;
            let (w_head, _) = which.words();
            if !published || pos + size - self.words.load(w_head) > ring {
                return None;
            }
        }
        let from_at = pos + ENTRY_HEADER as u64;
        Some(Entry {
            slot,
            conn,
            seq,
            from: self.read(which, from_at, from_len as usize),
            body: self.read(
                which,
                from_at + from_len,
                (size - ENTRY_HEADER as u64 - from_len) as usize,
            ),
        })
    }
}
