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
    pub(super) items: VecDeque<(usize, Queued)>,
    pub(super) bytes: usize,
    /// Whether the two indexes below are kept: for a program, which takes messages out of
    /// order and settles each as it takes it (an actor settles in order and needs neither).
    indexed: bool,
    /// Where the queued messages held in the ring start there, with how many start at each
    /// (one): the earliest is found without a scan of the queue, which a program draining a
    /// deep queue would pay once per message it takes.
    pub(super) ring_starts: BTreeMap<u64, usize>,
    /// The numbers of the queued messages from each stream's slot, with how many have each (a
    /// slot reused by a new stream may number some alike while the old one's are queued).
    pub(super) stream_seqs: HashMap<u32, BTreeMap<u64, usize>>,
}

/// Count `key` in or out of a multiset.
fn count(set: &mut BTreeMap<u64, usize>, key: u64, add: bool) {
    if add {
        *set.entry(key).or_default() += 1;
    } else if let Some(n) = set.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            set.remove(&key);
        }
    }
}

impl Queue {
    /// A queue that keeps the indexes a program's takes need ([`Queue::lowest_from`],
    /// [`Queue::first_ring_start`]); without them those scan the queue.
    pub(crate) fn indexed() -> Queue {
        Queue {
            indexed: true,
            ..Queue::default()
        }
    }

    pub(crate) fn push(&mut self, q: Queued) {
        let cost = q.env.msg.frame_len() + q.env.from.as_str().len() + QUEUE_OVERHEAD;
        self.bytes += cost;
        self.index(q.origin, true);
        self.items.push_back((cost, q));
    }

    pub(crate) fn pop(&mut self) -> Option<Queued> {
        let (cost, q) = self.items.pop_front()?;
        self.bytes -= cost;
        self.index(q.origin, false);
        Some(q)
    }

    /// Count a queued message's place in the ring in (`add`) or out of the indexes.
    fn index(&mut self, origin: Origin, add: bool) {
        if !self.indexed {
            return;
        }
        if let Origin::Ring { start, stream, .. } = origin {
            count(&mut self.ring_starts, start, add);
            if let Some((slot, seq)) = stream {
                let seqs = self.stream_seqs.entry(slot).or_default();
                count(seqs, seq, add);
                if seqs.is_empty() {
                    self.stream_seqs.remove(&slot);
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The lowest number of a message still queued from the stream in `slot`.
    pub(crate) fn lowest_from(&self, slot: u32) -> Option<u64> {
        if self.indexed {
            return self
                .stream_seqs
                .get(&slot)
                .and_then(|seqs| seqs.keys().next().copied());
        }
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
        self.index(q.origin, false);
        Some(q)
    }

    /// Release from the ring the queued messages `pass` says to (they stay queued, in order,
    /// with origin [`Origin::Memory`]); returns where their ring entries start.
    pub(crate) fn release(&mut self, pass: impl Fn(&Queued) -> bool) -> Vec<u64> {
        let mut released = Vec::new();
        for (_, q) in &mut self.items {
            if let Origin::Ring { .. } = q.origin
                && pass(q)
            {
                released.push(q.origin);
                q.origin = Origin::Memory;
            }
        }
        released
            .into_iter()
            .map(|origin| {
                self.index(origin, false);
                origin.ring_at().expect("from the ring")
            })
            .collect()
    }

    /// Change where queued messages are held, in order: `relocate` gives a message its new
    /// origin, or `None` to stop there.
    pub(super) fn relocate(&mut self, mut relocate: impl FnMut(&Queued) -> Option<Origin>) {
        for i in 0..self.items.len() {
            let q = &self.items[i].1;
            let Some(origin) = relocate(q) else {
                break;
            };
            let old = q.origin;
            self.index(old, false);
            self.index(origin, true);
            self.items[i].1.origin = origin;
        }
    }

    /// Where the earliest message still held in the queue ring starts (not always the first
    /// in the queue: one moved to the tail comes later in the ring than those after it).
    pub(super) fn first_ring_start(&self) -> Option<u64> {
        if self.indexed {
            return self.ring_starts.keys().next().copied();
        }
        self.items
            .iter()
            .filter_map(|(_, q)| q.origin.ring_at())
            .min()
    }

    /// True once the queue holds [`QUEUE_BYTES`].
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= QUEUE_BYTES
    }
}
