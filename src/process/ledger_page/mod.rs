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

mod conns;
mod rings;

/// Connections a process can have accepted at once.
pub(crate) const SLOTS: usize = 8192;
/// Connections a process can have opened at once with their progress recorded (more still
/// work: what is sent on them is then returned once its receiver ends).
pub(crate) const PEERS: usize = 8192;

/// The most memory a process's queue of waiting messages holds before it stops reading (the
/// queue ring is sized from it).
pub(crate) const QUEUE_BYTES: usize = 64 << 20;

const HEADER_WORDS: usize = 32;
const SLOT_WORDS: usize = 5;
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
/// In the `conn` word of an entry of the process's own (`slot` = [`OWN`]): the entry is a copy
/// of an older entry moved to the tail, whose position is in its `seq` word. The admin returns
/// the copy and skips the original, whether or not it was marked let go before the owner died.
const RELOCATED: u64 = u64::MAX;
/// An entry's bytes before the sender's address.
const ENTRY_HEADER: usize = 36;

/// "grledg04" in little-endian: a page that has been set up.
const MAGIC: u64 = u64::from_le_bytes(*b"grledg04");

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
const S_SETTLED: usize = 4;

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
    /// Messages up to this one are settled: handled, poisoned back, or returned.
    pub(crate) settled: u64,
}

/// Where a message in the queue ring came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The process sent it to itself.
    Own,
    /// A copy of the entry that starts at this position, moved to the tail (see
    /// [`LedgerPage::relocate`]).
    Relocated(u64),
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
    /// Its position in the ring.
    pub(crate) at: u64,
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
mod tests;
