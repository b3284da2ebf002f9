//! Pending `wakeup_after` timers, for a real clock (`Instant`) or a virtual one (`Duration`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::message::Message;

/// Pending timers, earliest first; ties keep the order they were set in.
#[derive(Debug)]
pub(crate) struct Timers<T: Ord + Copy> {
    heap: BinaryHeap<Reverse<(T, u64)>>,
    payloads: HashMap<u64, Message>,
    seq: u64,
}

impl<T: Ord + Copy> Timers<T> {
    pub(crate) fn new() -> Timers<T> {
        Timers {
            heap: BinaryHeap::new(),
            payloads: HashMap::new(),
            seq: 0,
        }
    }

    pub(crate) fn add(&mut self, due: T, payload: Message) {
        self.seq += 1;
        self.heap.push(Reverse((due, self.seq)));
        self.payloads.insert(self.seq, payload);
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// When the earliest timer is due.
    pub(crate) fn next_due(&self) -> Option<T> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// Remove and return the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: T) -> Option<Message> {
        let Reverse((due, seq)) = *self.heap.peek()?;
        if due > now {
            return None;
        }
        self.heap.pop();
        self.payloads.remove(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_earliest_first_ties_in_order_and_never_early() {
        let mut t = Timers::new();
        for (due, tag) in [(30u32, "c"), (10, "a"), (10, "b"), (20, "x")] {
            t.add(due, Message::new(tag).unwrap());
        }
        assert_eq!(t.next_due(), Some(10));
        assert!(t.pop_due(9).is_none());
        let mut order = Vec::new();
        while let Some(m) = t.pop_due(25) {
            order.push(m.decode::<String>().unwrap());
        }
        assert_eq!(order, ["a", "b", "x"]);
        assert_eq!(t.len(), 1);
    }
}
