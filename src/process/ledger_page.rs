//! The ledger page: how a receiving process says, in memory its senders can read, how far it
//! has got with each of their connections, in a form that outlives the process.
//!
//! Each actor and endpoint has a file `DIR/ID.ledger`, mapped shared by the process itself
//! (writing) and by every process sending to it (reading). It holds the process's own counts
//! (what it sent, handled, poisoned) and one slot per connection it accepts:
//!
//! | word | meaning |
//! |---|---|
//! | `conn` | the sender's number for the connection (from its hello), 0 if the slot is free |
//! | `done` | every message up to this one (counted from 1 on the connection) is settled by the receiver: handled, poisoned back, or returned as a dead letter |
//! | `started` | the message whose handler is running, if it is `done + 1` |
//! | `refused` | if not 0, the receiver closed the connection after message `refused - 1` (a malformed frame followed); later ones were never read |
//!
//! A sender keeps a copy of every message until the receiver's `done` covers it. When the
//! connection ends (the receiver exited, was killed, or refused it) the sender reads the slot
//! and returns what is not covered: the message being handled (`started`) as a `Poison` marked
//! *possibly handled*, the rest as dead letters. The stores cost the receiver two memory writes
//! per message and no system call; a `kill -9` loses nothing of them, since the page lives in
//! the page cache, not in the process.

use std::fs::File;
use std::path::Path;

use crate::core::ledger::{Count, Ledger, Tally};
use crate::sys::{self, SharedWords};

/// Connections a process can have open at once.
pub(crate) const SLOTS: usize = 8192;

const HEADER_WORDS: usize = 32;
const SLOT_WORDS: usize = 4;
const WORDS: usize = HEADER_WORDS + SLOTS * SLOT_WORDS;

/// "grledg01" in little-endian: a page that has been set up.
const MAGIC: u64 = u64::from_le_bytes(*b"grledg01");

// Header words.
const W_MAGIC: usize = 0;
const W_HIGH_WATER: usize = 1;
const W_SENT: usize = 8;
const W_HANDLED: usize = 9;
const W_POISONED: usize = 10;
const W_POSSIBLY: usize = 11;
const W_DEAD_LETTERED: usize = 12;
const W_DROPPED: usize = 13;

// Slot words.
const S_CONN: usize = 0;
const S_DONE: usize = 1;
const S_STARTED: usize = 2;
const S_REFUSED: usize = 3;

/// A ledger page, mapped for writing (the owner's) or for reading (a sender's view of its
/// receiver's).
#[derive(Debug)]
pub(crate) struct LedgerPage {
    words: SharedWords,
}

/// How far a receiver has got with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Messages up to this one are settled by the receiver.
    pub(crate) done: u64,
    /// The message whose handler ran last or runs now (it is being handled if `done + 1`).
    pub(crate) started: u64,
    /// The receiver refused the connection after this many messages.
    pub(crate) refused_after: Option<u64>,
}

fn slot_word(slot: u32, word: usize) -> usize {
    HEADER_WORDS + slot as usize * SLOT_WORDS + word
}

impl LedgerPage {
    /// Create the page file at `path` (it must not exist), set up and empty. Returns the file,
    /// for the process that will own the page.
    pub(crate) fn create(path: &Path) -> std::io::Result<File> {
        let file = sys::create_new(path)?;
        file.set_len((WORDS * 8) as u64)?;
        SharedWords::map(&file, WORDS, true)?.store(W_MAGIC, MAGIC);
        Ok(file)
    }

    /// Map a page file: for writing by its owner, or for reading.
    pub(crate) fn map(file: &File, writable: bool) -> std::io::Result<LedgerPage> {
        let words = SharedWords::map(file, WORDS, writable)?;
        if words.load(W_MAGIC) != MAGIC {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a greenroom ledger page",
            ));
        }
        Ok(LedgerPage { words })
    }

    /// Map the page at `path` for reading: a sender's view of its receiver's progress.
    pub(crate) fn open(path: &Path) -> std::io::Result<LedgerPage> {
        LedgerPage::map(&sys::open_read_only(path)?, false)
    }

    /// Take slot `slot` for connection `conn` (the owner's free-slot list says it is free).
    pub(crate) fn open_slot(&self, slot: u32, conn: u64) {
        for w in [S_DONE, S_STARTED, S_REFUSED] {
            self.words.store(slot_word(slot, w), 0);
        }
        // Written last: a reader that finds `conn` finds the other words reset.
        self.words.store(slot_word(slot, S_CONN), conn);
        if self.words.load(W_HIGH_WATER) <= slot as u64 {
            self.words.store(W_HIGH_WATER, slot as u64 + 1);
        }
    }

    /// Free slot `slot`: its connection has ended and everything read from it is settled.
    pub(crate) fn close_slot(&self, slot: u32) {
        self.words.store(slot_word(slot, S_CONN), 0);
    }

    /// The handler of message `seq` of the slot's connection is about to run.
    pub(crate) fn started(&self, slot: u32, seq: u64) {
        self.words.store(slot_word(slot, S_STARTED), seq);
    }

    /// Message `seq` of the slot's connection is settled (and so is every earlier one).
    pub(crate) fn done(&self, slot: u32, seq: u64) {
        self.words.store(slot_word(slot, S_DONE), seq);
    }

    /// The connection is refused after `after` messages: later ones will never be read.
    pub(crate) fn refused(&self, slot: u32, after: u64) {
        self.words.store(slot_word(slot, S_REFUSED), after + 1);
    }

    /// The slot of connection `conn`, if the receiver has opened one.
    pub(crate) fn find(&self, conn: u64) -> Option<u32> {
        let high = (self.words.load(W_HIGH_WATER) as usize).min(SLOTS);
        (0..high as u32).find(|&s| self.words.load(slot_word(s, S_CONN)) == conn)
    }

    /// How far the receiver has got with the connection in `slot`.
    pub(crate) fn progress(&self, slot: u32) -> Progress {
        let refused = self.words.load(slot_word(slot, S_REFUSED));
        Progress {
            done: self.words.load(slot_word(slot, S_DONE)),
            started: self.words.load(slot_word(slot, S_STARTED)),
            refused_after: refused.checked_sub(1),
        }
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

    #[test]
    fn a_sender_reads_the_progress_its_receiver_wrote_after_the_receiver_is_gone() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("7.ledger");
        let file = LedgerPage::create(&path).unwrap();
        let owner = LedgerPage::map(&file, true).unwrap();
        let view = LedgerPage::open(&path).unwrap();
        assert_eq!(view.find(42), None);
        owner.open_slot(0, 41);
        owner.open_slot(3, 42);
        owner.started(3, 5);
        owner.done(3, 4);
        (&owner).count(Count::Sent);
        (&owner).count(Count::PossiblyHandled);
        drop((owner, file));
        let slot = view.find(42).unwrap();
        assert_eq!(slot, 3);
        assert_eq!(
            view.progress(slot),
            Progress {
                done: 4,
                started: 5,
                refused_after: None
            }
        );
        let c = view.counts();
        assert_eq!((c.sent, c.poisoned, c.possibly_handled), (1, 1, 1));
    }

    #[test]
    fn a_reused_slot_starts_afresh_and_a_refusal_is_seen() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("8.ledger");
        let owner = LedgerPage::map(&LedgerPage::create(&path).unwrap(), true).unwrap();
        owner.open_slot(0, 1);
        owner.done(0, 9);
        owner.close_slot(0);
        owner.open_slot(0, 2);
        owner.refused(0, 0);
        let view = LedgerPage::open(&path).unwrap();
        assert_eq!(view.find(1), None);
        assert_eq!(
            view.progress(view.find(2).unwrap()),
            Progress {
                done: 0,
                started: 0,
                refused_after: Some(0)
            }
        );
        // A file that is not a page is refused.
        let other = t.path().join("x");
        std::fs::write(&other, vec![0u8; WORDS * 8]).unwrap();
        assert!(LedgerPage::open(&other).is_err());
    }
}
