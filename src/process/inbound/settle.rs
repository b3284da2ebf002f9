//! Messages settled: handled, taken by a program, or released, and what the ring and the
//! streams' slots say about it.

use super::*;

impl Inbound {
    /// The handler of a message from `origin` is about to run.
    pub(crate) fn started(&self, origin: Origin) {
        if let Origin::Ring { start, .. } = origin {
            self.page.started(start);
        }
    }

    /// A message from `origin` is settled: handled, poisoned back, or returned as a dead
    /// letter. Messages from the ring settle in the order they were queued.
    pub(crate) fn done(&mut self, origin: Origin) {
        if let Origin::Ring { end, stream, .. } = origin {
            self.page.done(end);
            // In order: everything before it from the same stream is settled too.
            if let Some((slot, seq)) = stream {
                self.page.settled(slot, seq);
            }
        }
    }

    /// A message taken out of `queue` by [`Queue::take_first`] is settled: its ring entry is
    /// marked so (it may not be the earliest held), and the ring's head moves up if it can.
    pub(crate) fn taken(&mut self, origin: Origin, queue: &Queue) {
        let Origin::Ring { start, stream, .. } = origin else {
            return;
        };
        self.page.entry_done(start);
        self.hold_from_earliest(queue);
        // Its stream is settled up to the first of its messages still queued (all it took, if
        // none is).
        if let Some((slot, seq)) = stream {
            let taken = || self.page.progress(slot).taken;
            let settled = queue.lowest_from(slot).map_or_else(taken, |l| l - 1);
            if settled >= seq {
                self.page.settled(slot, settled);
            }
        }
    }

    /// The ring entries starting at `starts` were released from `queue` ([`Queue::release`]):
    /// settled, so that a notice a program never takes does not pin the ring.
    pub(crate) fn released(&mut self, starts: &[u64], queue: &Queue) {
        if starts.is_empty() {
            return;
        }
        for &start in starts {
            self.page.entry_done(start);
        }
        self.hold_from_earliest(queue);
    }

    /// A program that takes later messages first (as `ask` does) leaves earlier ones holding
    /// the ring's head while the ring fills behind them. Once more than half the ring is in use
    /// (it holds at least twice what the queue may), the messages still queued are copied to
    /// its tail (see
    /// [`LedgerPage::relocate`]) and the head moves past where they were. Nothing changes for
    /// the queue: the same messages, in the same order.
    pub(crate) fn compact(&mut self, queue: &mut Queue) {
        if self.page.queue_used() <= self.page.queue_capacity() / 2 {
            return;
        }
        let mut scratch = Vec::new();
        queue.relocate(|q| {
            let Origin::Ring { start, stream, .. } = q.origin else {
                return Some(q.origin);
            };
            scratch.clear();
            q.env.msg.encode_frame_into(&mut scratch);
            let from = q.env.from.as_str().as_bytes();
            // No room: leave the rest where they are (the ring refuses new messages before it
            // loses any).
            let (start, end) = self.page.relocate(start, from, &scratch[4..])?;
            Some(Origin::Ring { start, end, stream })
        });
        self.hold_from_earliest(queue);
    }

    /// Move the ring's head up to the earliest entry `queue` still holds (to the tail if none):
    /// everything before it is settled.
    fn hold_from_earliest(&self, queue: &Queue) {
        let head = queue
            .first_ring_start()
            .unwrap_or_else(|| self.page.queue_tail());
        self.page.done(head);
    }
}
