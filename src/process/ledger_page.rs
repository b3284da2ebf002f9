//! The ledger page: a process's queue, what it has sent and not yet handed over, and its
//! progress with each of its senders' connections, in memory that outlives the process.
//!
//! Each actor and endpoint has a file `DIR/ID.ledger`, mapped shared by the process itself
//! (writing), by the admin (reading), and by every process sending to it (reading the header
//! and the slots). It holds the process's own counts (what it sent, handled, poisoned), one
//! slot per connection it accepts, one peer entry per connection it opened, its *queue ring*
//! and its *out ring*. The page cache keeps all of it after a `kill -9`.
//!
//! ## Custody
//!
//! A message has exactly one keeper at a time. Its sender keeps it (a copy in its out ring)
//! until the receiver has *taken* it: read it off the socket and written it into the receiver's
//! queue ring, where it stays until it is settled (handled, poisoned back, or returned as a
//! dead letter). Whoever dies, the admin finds every message in one of the two rings:
//!
//! - when a receiver ends, its senders return what it had not taken (dead letters), and the
//!   admin returns what its queue ring still holds: the message being handled as a `Poison`
//!   marked *possibly handled*, the others as dead letters;
//! - when a sender ends before handing a message over, the admin reads its out ring: what was
//!   never written is returned at once (a dead letter); what was written and not yet taken
//!   waits until the receiver takes it or ends (then it is returned like the rest).
//!
//! ## Slots (the receiver's side of each connection)
//!
//! | word | meaning |
//! |---|---|
//! | `conn` | the sender's number for the connection (from its hello), 0 if the slot was never used |
//! | `taken` | every message up to this one (counted from 1 on the connection) is in the receiver's queue ring |
//! | `refused` | if not 0, the receiver closed the connection after message `refused - 1` (a malformed frame followed); later ones were never read |
//! | `closed` | 1 once the connection has ended (`taken` is then final until the slot is reused) |
//!
//! ## Peers (the sender's side of each connection)
//!
//! `conn`, `written` (no message after this one has been written to the socket, not even in
//! part; stored before each write), and the receiver's address.
//!
//! ## The rings
//!
//! Both rings hold entries `[len u32][slot u32][conn u64][seq u64][pos u64][from_len u32]
//! [from][body]` (little-endian; `len` counts the bytes after itself; `pos` is the entry's own
//! position; `body` is the message frame's body). In the queue ring `slot` is the connection's
//! slot (`u32::MAX` for a message the process sent itself) and `from` the sender's address; in
//! the out ring `slot` is the peer entry and `from` is empty. A `len` of `u32::MAX` means
//! "nothing more before the end: go on at the start". Header words say where each ring stands:
//! `head` (everything before it is let go), `tail` (everything before it is written), and for
//! the queue ring `started + 1` (the entry whose handler runs). Positions only grow; an
//! entry's offset is its position modulo the ring's size.
//!
//! A message from a connection is published in the queue ring by storing its slot's `taken`
//! (after the entry's bytes, before `tail`): the admin counts an entry at `tail` as written if
//! its slot's `conn` and `taken` cover it, so that a kill between the two stores neither loses
//! the message nor returns it twice. The out ring's entries are let go out of order (each
//! receiver takes at its own pace); its owner moves `head` past those let go, and copies one
//! that holds the ring up to the end when room runs short. Settled space is given back to the
//! system (`MADV_REMOVE`) past the first few MiB, and a ring starts over at the front whenever
//! it is empty, so a keeping-up process holds only a little of either in memory.

use std::fs::File;
use std::path::Path;

use crate::core::ledger::{Count, Ledger, Tally};
use crate::sys::{self, SharedWords};

/// Connections a process can have accepted at once.
pub(crate) const SLOTS: usize = 8192;
/// Connections a process can have opened at once with their progress recorded (more still
/// work: what is sent on them is then returned once its receiver ends).
pub(crate) const PEERS: usize = 8192;

/// The most memory a process's queue of waiting messages holds before it stops reading (the
/// queue ring is sized from it).
pub(crate) const QUEUE_BYTES: usize = 64 << 20;

const HEADER_WORDS: usize = 32;
const SLOT_WORDS: usize = 4;
const PEER_WORDS: usize = 24;
/// The longest receiver address a peer entry holds.
const PEER_ADDRESS_BYTES: usize = (PEER_WORDS - 3) * 8;
/// The header and the slots: what a sender maps.
const SENDER_WORDS: usize = HEADER_WORDS + SLOTS * SLOT_WORDS;
/// The header, the slots and the peers: what the admin maps.
const WORDS: usize = SENDER_WORDS + PEERS * PEER_WORDS;
/// Where the queue ring starts in the file: the first page boundary after the peers. The out
/// ring follows it.
const RING_AT: usize = (WORDS * 8).div_ceil(4096) * 4096;

/// A ring's space is given back in chunks of this size.
const CHUNK: u64 = 1 << 20;
/// Settled chunks within this many bytes of a ring's start stay in memory (the ring starts
/// over there whenever it is empty, so they are the ones in use).
const KEEP_BYTES: u64 = 4 << 20;

/// In a ring, a length that means "the rest up to the end is unused; go on at the start".
const WRAP: u32 = u32::MAX;
/// The `slot` of an entry the process sent itself.
const OWN: u32 = u32::MAX;
/// The `slot` of an out ring entry its owner has let go of (its head may not have passed it).
const LET_GO: u32 = u32::MAX - 1;
/// An entry's bytes before the sender's address.
const ENTRY_HEADER: usize = 36;

/// "grledg03" in little-endian: a page that has been set up.
const MAGIC: u64 = u64::from_le_bytes(*b"grledg03");

// Header words.
const W_MAGIC: usize = 0;
const W_HIGH_WATER: usize = 1;
const W_RING_BYTES: usize = 2;
const W_SENT: usize = 8;
const W_HANDLED: usize = 9;
const W_POISONED: usize = 10;
const W_POSSIBLY: usize = 11;
const W_DEAD_LETTERED: usize = 12;
const W_DROPPED: usize = 13;
const W_HEAD: usize = 16;
const W_TAIL: usize = 17;
const W_STARTED: usize = 18;
const W_OUT_HEAD: usize = 20;
const W_OUT_TAIL: usize = 21;

// Slot words.
const S_CONN: usize = 0;
const S_TAKEN: usize = 1;
const S_REFUSED: usize = 2;
const S_CLOSED: usize = 3;

// Peer words (then the address).
const P_CONN: usize = 0;
const P_WRITTEN: usize = 1;
const P_ADDRESS_LEN: usize = 2;
const P_ADDRESS: usize = 3;

/// The size of each ring for a process whose frames may be `max_frame` bytes long: room for a
/// full queue, plus a frame read past it, plus the end of the ring left unused when a frame
/// does not fit there, twice over. Only what is in use takes memory.
pub(crate) fn ring_bytes(max_frame: usize) -> u64 {
    let frame = (max_frame + crate::wire::WRAP_SLACK + 4096) as u64;
    let bytes = 2 * QUEUE_BYTES as u64 + 3 * frame;
    bytes.div_ceil(CHUNK) * CHUNK
}

/// Which of a page's two rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Queue,
    Out,
}

impl Which {
    fn words(self) -> (usize, usize) {
        match self {
            Which::Queue => (W_HEAD, W_TAIL),
            Which::Out => (W_OUT_HEAD, W_OUT_TAIL),
        }
    }
}

/// A ledger page, mapped for writing (the owner's) or for reading (a sender's view of its
/// receiver's, or the admin's).
#[derive(Debug)]
pub(crate) struct LedgerPage {
    words: SharedWords,
    /// The rings' size, if this mapping includes the rings or `file` is there to read them.
    ring: Option<u64>,
    /// The page file, when the rings are read from it rather than mapped.
    file: Option<File>,
}

/// How far a receiver has got with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Messages up to this one are in the receiver's ring: no longer the sender's to keep.
    pub(crate) taken: u64,
    /// The receiver refused the connection after this many messages.
    pub(crate) refused_after: Option<u64>,
    /// The connection has ended on the receiver's side: `taken` is final.
    pub(crate) closed: bool,
}

/// Where a message in the queue ring came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The process sent it to itself.
    Own,
    /// Message `seq` of connection `conn`, in slot `slot`.
    Stream { slot: u32, conn: u64, seq: u64 },
}

/// A message left in the queue ring of a process that has ended.
#[derive(Debug)]
pub(crate) struct Unsettled {
    /// The sender's address, as text.
    pub(crate) from: Vec<u8>,
    /// The message frame's body.
    pub(crate) body: Vec<u8>,
    /// Its handler was running.
    pub(crate) running: bool,
}

/// A message left in the out ring of a process that has ended.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The peer entry of its connection.
    pub(crate) peer: u32,
    pub(crate) conn: u64,
    pub(crate) seq: u64,
    /// The message frame's body.
    pub(crate) body: Vec<u8>,
}

/// What a peer entry says about one of a process's outgoing connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerInfo {
    pub(crate) conn: u64,
    /// No message after this one was written, even in part.
    pub(crate) written: u64,
    /// The receiver's address, as text.
    pub(crate) to: Vec<u8>,
}

fn slot_word(slot: u32, word: usize) -> usize {
    HEADER_WORDS + slot as usize * SLOT_WORDS + word
}

fn peer_word(peer: u32, word: usize) -> usize {
    SENDER_WORDS + peer as usize * PEER_WORDS + word
}

impl LedgerPage {
    /// Create the page file at `path` (it must not exist), set up and empty, with rings for
    /// frames up to `max_frame` bytes. Returns the file, for the process that will own the page.
    pub(crate) fn create(path: &Path, max_frame: usize) -> std::io::Result<File> {
        LedgerPage::create_with_ring(path, ring_bytes(max_frame))
    }

    fn create_with_ring(path: &Path, ring: u64) -> std::io::Result<File> {
        use std::os::unix::fs::FileExt;
        let file = sys::create_new(path)?;
        file.set_len(RING_AT as u64 + 2 * ring)?;
        // Written, not mapped: nobody maps the file before it is set up.
        file.write_all_at(&ring.to_le_bytes(), (W_RING_BYTES * 8) as u64)?;
        file.write_all_at(&MAGIC.to_le_bytes(), (W_MAGIC * 8) as u64)?;
        Ok(file)
    }

    /// Map a whole page file, rings included: for writing by its owner (or for reading, in
    /// tests).
    pub(crate) fn map(file: &File, writable: bool) -> std::io::Result<LedgerPage> {
        let ring = LedgerPage::ring_of(file)?;
        let bytes = usize::try_from(RING_AT as u64 + 2 * ring).map_err(|_| bad_page("too long"))?;
        let mut whole = LedgerPage::map_words(file, bytes / 8, writable)?;
        whole.ring = Some(ring);
        Ok(whole)
    }

    /// The ring size a page file says it has, checked against its length.
    fn ring_of(file: &File) -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        let mut words = [0u8; 24];
        file.read_exact_at(&mut words, 0)?;
        let word = |i: usize| u64::from_le_bytes(words[i * 8..i * 8 + 8].try_into().expect("8"));
        if word(W_MAGIC) != MAGIC {
            return Err(bad_page("not a ledger page"));
        }
        let ring = word(W_RING_BYTES);
        let len = file.metadata()?.len();
        if ring == 0
            || ring % CHUNK != 0
            || Some(len) != ring.checked_mul(2).map(|r| r + RING_AT as u64)
        {
            return Err(bad_page("its rings do not match its length"));
        }
        Ok(ring)
    }

    fn map_words(file: &File, words: usize, writable: bool) -> std::io::Result<LedgerPage> {
        let words = SharedWords::map(file, words, writable)?;
        if words.load(W_MAGIC) != MAGIC {
            return Err(bad_page("not a ledger page"));
        }
        Ok(LedgerPage {
            words,
            ring: None,
            file: None,
        })
    }

    /// Map the page at `path` for reading: a sender's view of its receiver's progress (the
    /// header and the slots).
    pub(crate) fn open(path: &Path) -> std::io::Result<LedgerPage> {
        LedgerPage::map_words(&sys::open_read_only(path)?, SENDER_WORDS, false)
    }

    /// Map the header, slots and peers of a page file for reading (the admin's view of a live
    /// process).
    pub(crate) fn view(file: &File) -> std::io::Result<LedgerPage> {
        LedgerPage::map_words(file, WORDS, false)
    }

    /// Open the page at `path` for reading with its rings, refusing rings larger than
    /// `max_ring` bytes (for the admin, once the page's owner has ended). The header, slots
    /// and peers are mapped; the rings are read from the file, only as far as they are in use.
    pub(crate) fn open_whole(path: &Path, max_ring: u64) -> std::io::Result<LedgerPage> {
        let file = sys::open_read_only(path)?;
        let ring = LedgerPage::ring_of(&file)?;
        if ring > max_ring {
            return Err(bad_page("its rings are larger than this system allows"));
        }
        let mut page = LedgerPage::view(&file)?;
        page.ring = Some(ring);
        page.file = Some(file);
        Ok(page)
    }

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
        // Past the first few MiB, go back to the front as soon as it is free: a ring whose
        // owner keeps up then stays in memory that is already in use.
        let front_is_free = pos + left + len - head <= ring;
        if left < len || (pos % ring >= KEEP_BYTES && front_is_free) {
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

    /// Give the memory of the chunks wholly let go between positions `from` and `to` back to
    /// the system, except those near the ring's start.
    fn give_back(&self, which: Which, from: u64, to: u64) {
        let ring = self.ring();
        let mut chunk = from.div_ceil(CHUNK) * CHUNK;
        while chunk + CHUNK <= to {
            if chunk % ring >= KEEP_BYTES {
                self.words.discard(self.at(which, chunk), CHUNK as usize);
            }
            chunk += CHUNK;
        }
    }

    /// The messages left in the queue ring, for the admin once the owner has ended: every
    /// entry written and not settled, in order.
    pub(crate) fn unsettled(&self, mut each: impl FnMut(Unsettled)) {
        let running = self.words.load(W_STARTED).checked_sub(1);
        self.scan(Which::Queue, |pos, entry| {
            if entry.slot == LET_GO {
                return;
            }
            each(Unsettled {
                from: entry.from,
                body: entry.body,
                running: running == Some(pos),
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

    /// Take slot `slot` for connection `conn` (the owner's free-slot list says it is free).
    pub(crate) fn open_slot(&self, slot: u32, conn: u64) {
        for w in [S_TAKEN, S_REFUSED, S_CLOSED] {
            self.words.store(slot_word(slot, w), 0);
        }
        // Written last: a reader that finds `conn` finds the other words reset.
        self.words.store(slot_word(slot, S_CONN), conn);
        if self.words.load(W_HIGH_WATER) <= slot as u64 {
            self.words.store(W_HIGH_WATER, slot as u64 + 1);
        }
    }

    /// Slot `slot`'s connection has ended: its `taken` is final (until the slot is reused).
    pub(crate) fn close_slot(&self, slot: u32) {
        self.words.store(slot_word(slot, S_CLOSED), 1);
    }

    /// The connection is refused after `after` messages: later ones will never be read.
    pub(crate) fn refused(&self, slot: u32, after: u64) {
        self.words.store(slot_word(slot, S_REFUSED), after + 1);
    }

    /// The slot of connection `conn`, if the receiver has opened one (and not reused it since).
    pub(crate) fn find(&self, conn: u64) -> Option<u32> {
        let high = (self.words.load(W_HIGH_WATER) as usize).min(SLOTS);
        (0..high as u32).find(|&s| self.words.load(slot_word(s, S_CONN)) == conn)
    }

    /// How far the receiver has got with the connection in `slot`.
    pub(crate) fn progress(&self, slot: u32) -> Progress {
        // `closed` and `refused` first: once either is seen, the `taken` read after it is
        // final.
        let closed = self.words.load(slot_word(slot, S_CLOSED)) != 0;
        let refused = self.words.load(slot_word(slot, S_REFUSED));
        Progress {
            taken: self.words.load(slot_word(slot, S_TAKEN)),
            refused_after: refused.checked_sub(1),
            closed,
        }
    }

    /// The progress of every connection this process had accepted (for the admin, when it has
    /// ended): each `conn` with its final `taken`.
    pub(crate) fn final_progress(&self) -> Vec<(u64, u64)> {
        let high = (self.words.load(W_HIGH_WATER) as usize).min(SLOTS);
        (0..high as u32)
            .map(|s| {
                (
                    self.words.load(slot_word(s, S_CONN)),
                    self.words.load(slot_word(s, S_TAKEN)),
                )
            })
            .filter(|&(conn, _)| conn != 0)
            .collect()
    }

    /// Record in peer entry `peer` an outgoing connection `conn` to the receiver at `to`.
    /// False if the address does not fit.
    pub(crate) fn open_peer(&self, peer: u32, conn: u64, to: &str) -> bool {
        let to = to.as_bytes();
        if to.len() > PEER_ADDRESS_BYTES || peer as usize >= PEERS {
            return false;
        }
        let mut padded = [0u8; PEER_ADDRESS_BYTES];
        padded[..to.len()].copy_from_slice(to);
        self.words
            .write_bytes(peer_word(peer, P_ADDRESS) * 8, &padded);
        self.words
            .store(peer_word(peer, P_ADDRESS_LEN), to.len() as u64);
        self.words.store(peer_word(peer, P_WRITTEN), 0);
        // Written last: a reader that finds `conn` finds the rest set.
        self.words.store(peer_word(peer, P_CONN), conn);
        true
    }

    /// No message after `seq` on peer entry `peer`'s connection is written, even in part (the
    /// owner says so before each write, so that a kill mid-write leaves it true).
    pub(crate) fn written(&self, peer: u32, seq: u64) {
        self.words.store(peer_word(peer, P_WRITTEN), seq);
    }

    /// Free peer entry `peer`.
    pub(crate) fn close_peer(&self, peer: u32) {
        self.words.store(peer_word(peer, P_CONN), 0);
    }

    /// What peer entry `peer` says, if it is in use.
    pub(crate) fn peer(&self, peer: u32) -> Option<PeerInfo> {
        if peer as usize >= PEERS {
            return None;
        }
        let conn = self.words.load(peer_word(peer, P_CONN));
        let len = self.words.load(peer_word(peer, P_ADDRESS_LEN)) as usize;
        if conn == 0 || len > PEER_ADDRESS_BYTES {
            return None;
        }
        Some(PeerInfo {
            conn,
            written: self.words.load(peer_word(peer, P_WRITTEN)),
            to: self.words.read_bytes(peer_word(peer, P_ADDRESS) * 8, len),
        })
    }

    /// The owner's counts.
    pub(crate) fn counts(&self) -> Ledger {
        let w = |i| self.words.load(i);
        Ledger {
            sent: w(W_SENT),
            handled: w(W_HANDLED),
            poisoned: w(W_POISONED),
            dead_lettered: w(W_DEAD_LETTERED),
            dropped: w(W_DROPPED),
            in_flight: 0,
            possibly_handled: w(W_POSSIBLY),
        }
        .settle()
    }
}

/// One ring entry, as read back.
struct Entry {
    slot: u32,
    conn: u64,
    seq: u64,
    from: Vec<u8>,
    body: Vec<u8>,
}

fn bad_page(why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("not a usable ledger page: {why}"),
    )
}

impl Tally for &LedgerPage {
    fn count(&mut self, what: Count) {
        let word = match what {
            Count::Sent => W_SENT,
            Count::Handled => W_HANDLED,
            Count::Poisoned => W_POISONED,
            Count::PossiblyHandled => {
                self.words.add(W_POISONED, 1);
                W_POSSIBLY
            }
            Count::DeadLettered => W_DEAD_LETTERED,
            Count::Dropped => W_DROPPED,
        };
        self.words.add(word, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: u64 = 8 * CHUNK;

    fn page(dir: &Path, name: &str) -> (File, LedgerPage) {
        let file = LedgerPage::create_with_ring(&dir.join(name), RING).unwrap();
        let owner = LedgerPage::map(&file, true).unwrap();
        (file, owner)
    }

    fn stream(slot: u32, conn: u64, seq: u64) -> Source {
        Source::Stream { slot, conn, seq }
    }

    fn left(page: &LedgerPage) -> Vec<(Vec<u8>, usize, bool)> {
        let mut out = Vec::new();
        page.unsettled(|u| out.push((u.from, u.body.len(), u.running)));
        out
    }

    #[test]
    fn a_sender_reads_what_its_receiver_took_after_the_receiver_is_gone() {
        let t = tempfile::tempdir().unwrap();
        let (file, owner) = page(t.path(), "7.ledger");
        let view = LedgerPage::open(&t.path().join("7.ledger")).unwrap();
        assert_eq!(view.find(42), None);
        owner.open_slot(0, 41);
        owner.open_slot(3, 42);
        for seq in 1..=4 {
            owner.push(stream(3, 42, seq), b"1@/d", b"body").unwrap();
        }
        (&owner).count(Count::Sent);
        (&owner).count(Count::PossiblyHandled);
        drop((owner, file));
        let slot = view.find(42).unwrap();
        assert_eq!(slot, 3);
        assert_eq!(
            view.progress(slot),
            Progress {
                taken: 4,
                refused_after: None,
                closed: false
            }
        );
        let c = view.counts();
        assert_eq!((c.sent, c.poisoned, c.possibly_handled), (1, 1, 1));
    }

    #[test]
    fn a_message_taken_out_of_order_is_not_returned_and_the_head_waits_for_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let (_file, owner) = page(t.path(), "5.ledger");
        owner.open_slot(0, 5);
        let entries: Vec<(u64, u64)> = (1..=3)
            .map(|seq| {
                owner
                    .push(stream(0, 5, seq), b"1@/d", &vec![0; seq as usize])
                    .unwrap()
            })
            .collect();
        let sizes = |page: &LedgerPage| left(page).iter().map(|l| l.1).collect::<Vec<_>>();
        // The second is taken first (an ask's answer): only the first and third come back.
        owner.entry_done(entries[1].0);
        assert_eq!(sizes(&owner), [1, 3]);
        // Then the first: the head moves to the third, the one still queued.
        owner.done(entries[2].0);
        assert_eq!(sizes(&owner), [3]);
        owner.done(owner.queue_tail());
        assert!(left(&owner).is_empty());
    }

    #[test]
    fn the_ring_keeps_what_is_not_settled_across_wraps_and_refuses_more_than_it_holds() {
        let t = tempfile::tempdir().unwrap();
        let (_file, owner) = page(t.path(), "9.ledger");
        owner.open_slot(0, 5);
        let big = vec![7u8; (RING / 3) as usize];
        // Settle most of the ring (but never all of it, which starts it over at the front),
        // so that later entries wrap around its end.
        let (_, a) = owner.push(stream(0, 5, 1), b"1@/d", &big).unwrap();
        let (_, b) = owner.push(stream(0, 5, 2), b"1@/d", &big).unwrap();
        owner.done(a);
        owner.push(Source::Own, b"9@/d", &[3; 30]).unwrap();
        owner.done(b);
        let (s1, _) = owner.push(stream(0, 5, 3), b"1@/d", &[1; 10]).unwrap();
        let (_, e2) = owner.push(stream(0, 5, 4), b"2@/d", &big).unwrap();
        assert!(e2 % RING < RING / 2, "wrapped");
        owner.push(Source::Own, b"9@/d", &[2; 20]).unwrap();
        assert!(
            owner.push(stream(0, 5, 5), b"1@/d", &big).is_none(),
            "the ring is full"
        );
        owner.started(s1);
        let admin = LedgerPage::open_whole(&t.path().join("9.ledger"), RING).unwrap();
        assert_eq!(
            left(&admin),
            [
                (b"9@/d".to_vec(), 30, false),
                (b"1@/d".to_vec(), 10, true),
                (b"2@/d".to_vec(), big.len(), false),
                (b"9@/d".to_vec(), 20, false)
            ]
        );
        owner.done(e2);
        assert_eq!(left(&admin).len(), 1);
        assert_eq!(owner.progress(0).taken, 4, "the refused push took nothing");
    }

    #[test]
    fn an_entry_published_by_its_slot_but_not_by_the_tail_is_still_returned_once() {
        let t = tempfile::tempdir().unwrap();
        let (file, owner) = page(t.path(), "6.ledger");
        owner.open_slot(1, 9);
        let (_, e1) = owner.push(stream(1, 9, 1), b"1@/d", b"one").unwrap();
        owner.done(e1);
        let (s2, _) = owner.push(stream(1, 9, 2), b"1@/d", b"two").unwrap();
        let admin = LedgerPage::map(&file, false).unwrap();
        // Killed after the slot's store and before the tail's: the ring still has it.
        owner.words.store(W_TAIL, s2);
        assert_eq!(left(&admin), [(b"1@/d".to_vec(), 3, false)]);
        // Killed before the slot's store: the sender still has it, the ring does not.
        owner.words.store(slot_word(1, S_TAKEN), 1);
        assert!(left(&admin).is_empty());
        // A stale entry of an earlier connection in the same slot is not mistaken for one.
        owner.words.store(slot_word(1, S_TAKEN), 2);
        owner.open_slot(1, 10);
        assert!(left(&admin).is_empty());
    }

    #[test]
    fn an_empty_ring_starts_over_at_the_front() {
        let t = tempfile::tempdir().unwrap();
        let (file, owner) = page(t.path(), "5.ledger");
        let (s1, e1) = owner.push(Source::Own, b"5@/d", &[0; 100]).unwrap();
        assert_eq!(s1, 0);
        owner.done(e1);
        let (s2, _) = owner.push(Source::Own, b"5@/d", &[0; 100]).unwrap();
        assert_eq!(s2 % RING, 0, "starts at the front again");
        assert!(s2 > s1, "positions only grow");
        assert_eq!(left(&LedgerPage::map(&file, false).unwrap()).len(), 1);
    }

    #[test]
    fn a_reused_slot_starts_afresh_and_a_refusal_is_seen() {
        let t = tempfile::tempdir().unwrap();
        let (_file, owner) = page(t.path(), "8.ledger");
        owner.open_slot(0, 1);
        owner.push(stream(0, 1, 1), b"1@/d", b"m").unwrap();
        owner.close_slot(0);
        // Closed, its last connection's progress is still there to read.
        assert_eq!(owner.progress(owner.find(1).unwrap()).taken, 1);
        assert!(owner.progress(0).closed);
        assert_eq!(owner.final_progress(), [(1, 1)]);
        owner.open_slot(0, 2);
        owner.refused(0, 0);
        let view = LedgerPage::open(&t.path().join("8.ledger")).unwrap();
        assert_eq!(view.find(1), None);
        assert_eq!(
            view.progress(view.find(2).unwrap()),
            Progress {
                taken: 0,
                refused_after: Some(0),
                closed: false
            }
        );
        // A file that is not a page is refused; so is a page whose ring is too big.
        let other = t.path().join("x");
        std::fs::write(&other, vec![0u8; RING_AT]).unwrap();
        assert!(LedgerPage::open(&other).is_err());
        let path = t.path().join("8.ledger");
        assert!(LedgerPage::open_whole(&path, RING / 2).is_err());
        assert!(LedgerPage::open_whole(&path, RING).is_ok());
    }

    #[test]
    fn the_out_ring_lets_go_out_of_order_and_shows_the_admin_what_is_held() {
        let t = tempfile::tempdir().unwrap();
        let (file, owner) = page(t.path(), "4.ledger");
        assert!(owner.open_peer(0, 70, "5@/d"));
        assert!(owner.open_peer(1, 71, "6@/d"));
        assert!(!owner.open_peer(2, 72, &"x".repeat(PEER_ADDRESS_BYTES + 1)));
        let (a, _) = owner.push_out(0, 70, 1, b"to five").unwrap();
        let (b, _) = owner.push_out(1, 71, 1, b"to six").unwrap();
        let (c, _) = owner.push_out(0, 70, 2, b"to five again").unwrap();
        owner.written(0, 1);
        // An entry let go in the middle is no longer shown, though the head has not passed it.
        let (m, _) = owner.push_out(1, 71, 2, b"let go").unwrap();
        owner.out_entry_let_go(m);
        // The owner moves the head only past entries let go at the front (it works out how
        // far): not yet past the first.
        owner.out_let_go(a);
        let admin = LedgerPage::open_whole(&t.path().join("4.ledger"), RING).unwrap();
        let held = |page: &LedgerPage| {
            let mut out = Vec::new();
            page.outgoing(|o| out.push((o.peer, o.conn, o.seq, o.body)));
            out
        };
        assert_eq!(held(&admin).len(), 3);
        owner.out_let_go(c);
        assert_eq!(
            held(&admin),
            [(0, 70, 2, b"to five again".to_vec())],
            "the entries at {a} and {b} are let go"
        );
        assert_eq!(
            admin.peer(0),
            Some(PeerInfo {
                conn: 70,
                written: 1,
                to: b"5@/d".to_vec()
            })
        );
        assert_eq!(owner.out_entry(c).unwrap().body, b"to five again");
        owner.close_peer(1);
        assert_eq!(admin.peer(1), None);
        // Everything let go: the ring starts over at the front.
        owner.out_let_go(owner.out_tail());
        assert!(held(&admin).is_empty());
        let (d, _) = owner.push_out(0, 70, 3, b"x").unwrap();
        assert_eq!(d % RING, 0);
        drop(file);
    }
}
