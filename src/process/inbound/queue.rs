//! The queue of messages waiting for the handler (or the program), and where each came from.

use super::*;

/// Where a queued message came from, for the accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A timer of this process: nobody sent it, and it is not counted.
    Timer,
    /// The entry from position `start` to `end` of the queue ring (see `ledger_page`): a
    /// message from a sender's stream (`stream`: its slot and number there), or one the
    /// process sent itself.
    Ring {
        start: u64,
        end: u64,
        stream: Option<(u32, u64)>,
    },
    /// Released from the ring (settled and counted as handled) but kept in memory: a system
    /// notice a program passed over, kept for `listen_any` (see [`Queue::release`]).
    Memory,
}

impl Origin {
    /// Where the message is kept until it is settled: its queue ring position, if any.
    pub(crate) fn ring_at(self) -> Option<u64> {
        match self {
            Origin::Ring { start, .. } => Some(start),
            Origin::Timer | Origin::Memory => None,
        }
    }
}

/// A message waiting for the handler.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) env: Envelope,
    pub(crate) origin: Origin,
}

/// Messages waiting for the handler, in arrival order, and the memory they hold.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Each message with what it costs.
    items: VecDeque<(usize, Queued)>,
    pub(super) bytes: usize,
}

impl Queue {
    pub(crate) fn push(&mut self, q: Queued) {
        let cost = q.env.msg.frame_len() + q.env.from.as_str().len() + QUEUE_OVERHEAD;
        self.bytes += cost;
        self.items.push_back((cost, q));
    }

    pub(crate) fn pop(&mut self) -> Option<Queued> {
        let (cost, q) = self.items.pop_front()?;
        self.bytes -= cost;
        Some(q)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The lowest number of a message still queued from the stream in `slot`.
    pub(crate) fn lowest_from(&self, slot: u32) -> Option<u64> {
        self.items
            .iter()
            .filter_map(|(_, q)| match q.origin {
                Origin::Ring {
                    stream: Some((s, seq)),
                    ..
                } if s == slot => Some(seq),
                _ => None,
            })
            .min()
    }

    /// Take out the first message `wanted` accepts, leaving the others in their order.
    pub(crate) fn take_first(&mut self, wanted: impl Fn(&Queued) -> bool) -> Option<Queued> {
        let i = self.items.iter().position(|(_, q)| wanted(q))?;
        let (cost, q) = self.items.remove(i).expect("found above");
        self.bytes -= cost;
        Some(q)
    }

    /// Release from the ring the queued messages `pass` says to (they stay queued, in order,
    /// with origin [`Origin::Memory`]); returns where their ring entries start.
    pub(crate) fn release(&mut self, pass: impl Fn(&Queued) -> bool) -> Vec<u64> {
        let mut starts = Vec::new();
        for (_, q) in &mut self.items {
            if let Origin::Ring { start, .. } = q.origin
                && pass(q)
            {
                starts.push(start);
                q.origin = Origin::Memory;
            }
        }
        starts
    }

    /// The queued messages, in order, to change where they are held.
    pub(super) fn items_mut(&mut self) -> impl Iterator<Item = &mut Queued> {
        self.items.iter_mut().map(|(_, q)| q)
    }

    /// Where the earliest message still held in the queue ring starts (not always the first
    /// in the queue: one moved to the tail comes later in the ring than those after it).
    pub(super) fn first_ring_start(&self) -> Option<u64> {
        self.items
            .iter()
            .filter_map(|(_, q)| match q.origin {
                Origin::Ring { start, .. } => Some(start),
                Origin::Timer | Origin::Memory => None,
            })
            .min()
    }

    /// True once the queue holds [`QUEUE_BYTES`].
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= QUEUE_BYTES
    }
}
