//! Unit tests of the ledger page.

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
    // Handled in order, the first two: settled.
    owner.settled(3, 2);
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
            closed: false,
            settled: 2,
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
            closed: false,
            settled: 0,
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

#[test]
fn a_message_moved_to_the_tail_is_returned_once_whenever_its_owner_dies() {
    let t = tempfile::tempdir().unwrap();
    let (_file, owner) = page(t.path(), "6.ledger");
    owner.open_slot(0, 5);
    let (a, _) = owner.push(stream(0, 5, 1), b"1@/d", &[1]).unwrap();
    owner.push(stream(0, 5, 2), b"1@/d", &[2, 2]).unwrap();
    // Dead after the copy was written, before the original was let go: one of each.
    owner.push(Source::Relocated(a), b"1@/d", &[1]).unwrap();
    let sizes = |page: &LedgerPage| left(page).iter().map(|l| l.1).collect::<Vec<_>>();
    assert_eq!(sizes(&owner), [2, 1]);
    // Moved in full: the same.
    let t2 = tempfile::tempdir().unwrap();
    let (_file2, owner2) = page(t2.path(), "6.ledger");
    owner2.open_slot(0, 5);
    let (a, _) = owner2.push(stream(0, 5, 1), b"1@/d", &[1]).unwrap();
    owner2.push(stream(0, 5, 2), b"1@/d", &[2, 2]).unwrap();
    let (copy, _) = owner2.relocate(a, b"1@/d", &[1]).unwrap();
    assert_eq!(sizes(&owner2), [2, 1]);
    // Once the head is past the original, the copy is what is left of it.
    owner2.done(copy);
    assert_eq!(sizes(&owner2), [1]);
}

#[test]
fn an_unsettled_entry_is_named_by_the_position_its_owner_knows_it_by() {
    // An exiting process hands entries on itself, naming each by the start `push` gave it; the
    // admin skips the ones named so when the process dies before letting them go.
    let t = tempfile::tempdir().unwrap();
    let (_file, owner) = page(t.path(), "9.ledger");
    owner.open_slot(0, 5);
    let starts: Vec<u64> = (1..=3)
        .map(|seq| owner.push(stream(0, 5, seq), b"1@/d", b"body").unwrap().0)
        .collect();
    owner.started(starts[1]);
    let mut seen = Vec::new();
    owner.unsettled(|u| seen.push((u.at, u.running)));
    assert_eq!(
        seen,
        [(starts[0], false), (starts[1], true), (starts[2], false)]
    );
}

#[test]
fn a_ring_that_holds_entries_runs_on_rather_than_go_back_to_its_front() {
    // The front is free past 4 MiB while 2.5 MiB are held: going back there would leave the
    // ring room for 4 MiB more until the head passed the point left (it held 6.5 MiB of 32
    // when it went back as soon as its front was free). It runs on, and holds 10 MiB more.
    let t = tempfile::tempdir().unwrap();
    let file = LedgerPage::create_with_ring(&t.path().join("4.ledger"), 32 * CHUNK).unwrap();
    let owner = LedgerPage::map(&file, true).unwrap();
    owner.open_slot(0, 5);
    let half = vec![1u8; (CHUNK / 2) as usize];
    let ends: Vec<u64> = (1..=13)
        .map(|seq| owner.push(stream(0, 5, seq), b"1@/d", &half).unwrap().1)
        .collect();
    for end in &ends[..8] {
        owner.done(*end);
    }
    for seq in 14..=33 {
        assert!(
            owner.push(stream(0, 5, seq), b"1@/d", &half).is_some(),
            "message {seq} found no room with {} MiB held",
            (seq - 9) / 2
        );
    }
}

#[test]
fn memory_a_head_passed_an_entry_at_a_time_is_given_back() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("5.ledger");
    let file = LedgerPage::create_with_ring(&path, 16 * CHUNK).unwrap();
    let owner = LedgerPage::map(&file, true).unwrap();
    owner.open_slot(0, 5);
    // Never empty (that starts the ring over), and each settled as the next arrives.
    let piece = vec![7u8; (CHUNK / 16) as usize];
    let mut last = None;
    for seq in 1..=100 {
        let (_, end) = owner.push(stream(0, 5, seq), b"1@/d", &piece).unwrap();
        if let Some(end) = last.replace(end) {
            owner.done(end);
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    let chunk = |k: u64| &bytes[RING_AT + (k * CHUNK) as usize..][..CHUNK as usize];
    assert!(chunk(1).contains(&7), "the first 4 MiB stay");
    for k in 4..6 {
        assert!(chunk(k).iter().all(|&b| b == 0), "chunk {k} was given back");
    }
    assert!(chunk(6).contains(&7), "what is held stays");
}

#[test]
fn memory_the_tail_has_come_round_to_again_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let (_file, owner) = page(t.path(), "6.ledger");
    owner.open_slot(0, 5);
    // Entries of a quarter of a chunk each, header and sender included.
    let quarter = |fill: u8| vec![fill; (CHUNK / 4) as usize - ENTRY_HEADER - 4];
    let mut seq = 0;
    let mut push = |fill: u8| {
        seq += 1;
        owner
            .push(stream(0, 5, seq), b"1@/d", &quarter(fill))
            .unwrap()
    };
    // The head at 6.25 MiB, in the ring's chunk 6.
    let ends: Vec<u64> = (0..26).map(|_| push(7).1).collect();
    owner.done(ends[24]);
    // On round the end, nearly full: the newest entry lies in chunk 6's memory again.
    let mut newest = 0;
    while newest < RING + 6 * CHUNK {
        newest = push(9).0;
    }
    assert_eq!(newest, RING + 6 * CHUNK);
    // The head passes chunk 6 of the first round.
    owner.done(7 * CHUNK);
    let bytes = std::fs::read(t.path().join("6.ledger")).unwrap();
    let at = RING_AT + (6 * CHUNK) as usize + ENTRY_HEADER + 4;
    assert!(
        bytes[at..at + 1000].iter().all(|&b| b == 9),
        "the newest entry is intact"
    );
}
