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
