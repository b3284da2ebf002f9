//! The accounting contract, and the counts that show it is kept.
//!
//! Every message whose send returned `Ok` ends in exactly one of:
//!
//! - **handled**: its handler returned (for an external endpoint: `listen` or `ask` gave it to
//!   the program);
//! - **poisoned**: it went back to its sender as a `Poison`, because the handler failed on it
//!   twice, the actor could not start, or the actor's process died while handling it;
//! - **dead-lettered**: it went to the dead-letter handler as a `DeadEnvelope`, because its
//!   target had exited, never started, or died before handling it;
//! - **dropped**: it would have been dead-lettered, but no handler was registered (or it was a
//!   `ChildExited` or `DeadEnvelope`, which are never dead-lettered). Counted, never silent.
//!
//! A process that is killed can die after a handler returned and before it recorded so; a
//! message returned then is *possibly handled* (counted among the poisoned, and also on its
//! own). Every other message is counted once.

use serde::{Deserialize, Serialize};

/// Counts of messages by where they stand, for one actor or for a whole system.
///
/// `in_flight` is what is sent and not yet settled: on its way, queued, or being handled. The
/// counts are a snapshot taken while messages move, so they add up exactly only when the system
/// is quiet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Messages whose send returned `Ok`.
    pub sent: u64,
    /// Messages whose handler returned.
    pub handled: u64,
    /// Messages returned to their sender as `Poison`.
    pub poisoned: u64,
    /// Messages delivered to the dead-letter handler.
    pub dead_lettered: u64,
    /// Messages that would have been dead letters, with no handler to take them.
    pub dropped: u64,
    /// Messages sent and not yet handled, poisoned, dead-lettered or dropped.
    pub in_flight: u64,
    /// Of the poisoned, those returned because the receiver died while handling them: their
    /// handler may have run to the end.
    #[serde(default)]
    pub possibly_handled: u64,
}

/// One event the ledger counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    Sent,
    Handled,
    Poisoned,
    /// Poisoned after the receiver died in its handler: counts as poisoned too.
    PossiblyHandled,
    DeadLettered,
    Dropped,
}

/// Something that keeps counts: an in-memory [`Ledger`], or a process's shared ledger page.
pub(crate) trait Tally {
    fn count(&mut self, what: Count);
}

impl Tally for Ledger {
    fn count(&mut self, what: Count) {
        match what {
            Count::Sent => self.sent += 1,
            Count::Handled => self.handled += 1,
            Count::Poisoned => self.poisoned += 1,
            Count::PossiblyHandled => {
                self.poisoned += 1;
                self.possibly_handled += 1;
            }
            Count::DeadLettered => self.dead_lettered += 1,
            Count::Dropped => self.dropped += 1,
        }
    }
}

impl Ledger {
    /// The sum of two ledgers' counts (`in_flight` is recomputed by [`settle`](Self::settle)).
    pub(crate) fn plus(self, other: Ledger) -> Ledger {
        Ledger {
            sent: self.sent + other.sent,
            handled: self.handled + other.handled,
            poisoned: self.poisoned + other.poisoned,
            dead_lettered: self.dead_lettered + other.dead_lettered,
            dropped: self.dropped + other.dropped,
            in_flight: 0,
            possibly_handled: self.possibly_handled + other.possibly_handled,
        }
    }

    /// Work out `in_flight` from the other counts (never below zero: counts read from several
    /// processes at slightly different moments can briefly show more settled than sent).
    pub(crate) fn settle(mut self) -> Ledger {
        let settled = self.handled + self.poisoned + self.dead_lettered + self.dropped;
        self.in_flight = self.sent.saturating_sub(settled);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_count_lands_once_and_in_flight_is_the_rest() {
        let mut l = Ledger::default();
        for _ in 0..6 {
            l.count(Count::Sent);
        }
        for c in [
            Count::Handled,
            Count::Poisoned,
            Count::PossiblyHandled,
            Count::DeadLettered,
            Count::Dropped,
        ] {
            l.count(c);
        }
        let l = l.settle();
        assert_eq!((l.poisoned, l.possibly_handled, l.in_flight), (2, 1, 1));
        let both = l.plus(l).settle();
        assert_eq!((both.sent, both.in_flight), (12, 2));
    }
}
