//! The queue, and how the ring is held while messages are taken out of order.

use super::*;

fn queued(n: usize) -> Queued {
    let a: Address = "1@/d".parse().unwrap();
    Queued {
        env: Envelope {
            from: a.clone(),
            to: a,
            msg: Message::from_parts("Blob", vec![0; n]),
        },
        origin: Origin::Timer,
    }
}

#[test]
fn the_queue_counts_what_it_holds_and_says_when_it_is_full() {
    let mut q = Queue::default();
    q.push(queued(10));
    assert!(!q.is_full());
    q.push(queued(QUEUE_BYTES));
    assert!(q.is_full());
    q.pop();
    q.pop();
    assert!(q.len() == 0 && q.bytes == 0);
}

#[test]
fn the_ring_is_held_from_the_earliest_entry_whatever_the_queue_order() {
    let at = |start: u64| Queued {
        origin: Origin::Ring {
            start,
            end: start + 10,
            stream: None,
        },
        ..queued(1)
    };
    let mut q = Queue::default();
    // The first in the queue was moved to the ring's tail; the second was not.
    q.push(at(500));
    q.push(at(200));
    q.push(Queued {
        origin: Origin::Memory,
        ..queued(1)
    });
    assert_eq!(q.first_ring_start(), Some(200));
    assert_eq!(q.release(|_| true), [500, 200]);
    assert_eq!(q.first_ring_start(), None);
}

#[test]
fn the_earliest_ring_entry_and_each_streams_lowest_number_follow_every_change_to_the_queue() {
    // Brute force over the queue, as these were found before they were kept as indexes.
    fn scanned(q: &Queue, slot: u32) -> (Option<u64>, Option<u64>) {
        let origins = || q.items.iter().map(|(_, x)| x.origin);
        let first = origins().filter_map(Origin::ring_at).min();
        let lowest = origins()
            .filter_map(|o| match o {
                Origin::Ring {
                    stream: Some((s, seq)),
                    ..
                } if s == slot => Some(seq),
                _ => None,
            })
            .min();
        (first, lowest)
    }
    let from = |slot: u32, seq: u64, start: u64| Queued {
        origin: Origin::Ring {
            start,
            end: start + 10,
            stream: Some((slot, seq)),
        },
        ..queued(1)
    };
    let mut q = Queue::indexed();
    let mut start = 0;
    for seq in 1..=50 {
        for slot in [3, 4] {
            start += 10;
            q.push(from(slot, seq, start));
        }
    }
    // A slot reused by a new stream numbers from 1 again while the old one's wait.
    q.push(from(3, 1, 5000));
    let check = |q: &Queue| {
        for slot in [3, 4, 5] {
            let (first, lowest) = scanned(q, slot);
            assert_eq!(q.first_ring_start(), first);
            assert_eq!(q.lowest_from(slot), lowest, "slot {slot}");
        }
    };
    check(&q);
    q.pop();
    check(&q);
    // Taken out of order, as an ask takes its answer.
    let taken = q.take_first(|x| x.origin.ring_at() == Some(300)).unwrap();
    assert_eq!(taken.origin.ring_at(), Some(300));
    check(&q);
    q.take_first(|x| x.origin.ring_at() == Some(5000)).unwrap();
    check(&q);
    // Released (a passed-over notice), then moved to the ring's tail.
    q.release(|x| matches!(x.origin, Origin::Ring { start: 20..=60, .. }));
    check(&q);
    let mut tail = 10_000;
    q.relocate(|x| match x.origin {
        Origin::Ring { stream, .. } if tail < 10_300 => {
            tail += 10;
            Some(Origin::Ring {
                start: tail,
                end: tail + 10,
                stream,
            })
        }
        Origin::Ring { .. } => None,
        other => Some(other),
    });
    check(&q);
    while q.pop().is_some() {
        check(&q);
    }
    assert!(q.ring_starts.is_empty() && q.stream_seqs.is_empty());
}
