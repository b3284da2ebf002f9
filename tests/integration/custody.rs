//! Who keeps a message: its sender (with a copy in its out ring) until the receiver has taken
//! it, then the receiver's queue ring; both outlive their processes. So a message survives the
//! death of the process that sent it as well as of the one that took it, in either order.

use std::path::PathBuf;

use greenroom::{ActorSystem, Address, DeadEnvelope, Poison};
use serde::Serialize;

use crate::regressions::dead_letter_handler;
use crate::support::{PATIENCE, TestSystem, wait_for, wait_gone};

#[derive(Serialize)]
struct StallOn {
    first: PathBuf,
    each: PathBuf,
    report: Address,
}

/// What came back as dead letters once there are `count`: each number, and whether it came
/// inside a `Poison` marked possibly handled.
fn returned(system: &mut ActorSystem, handler: &Address, count: usize) -> Vec<(u64, bool)> {
    let mut out = Vec::new();
    wait_for(&format!("{count} dead letters"), || {
        let reply = system.ask(handler, "report", PATIENCE).unwrap();
        let dead: Vec<DeadEnvelope> = reply.decode().unwrap();
        out = dead
            .iter()
            .filter_map(|d| match d.message.get::<Poison>() {
                Some(p) => Some((p.original.get::<u64>()?, p.possibly_handled)),
                None => Some((d.message.get::<u64>()?, false)),
            })
            .collect();
        out.len() >= count
    });
    out.sort();
    out
}

/// Wait until the system's ledger has nothing in flight (saying what it holds if it never
/// gets there), and return it. What waits for this endpoint (a `ChildExited` for an actor it
/// created and a test killed) is in flight until taken, so it is taken here.
fn settled(system: &mut ActorSystem) -> greenroom::Ledger {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        while system
            .listen_any(std::time::Duration::ZERO)
            .unwrap()
            .is_some()
        {}
        let status = system.system_status().unwrap();
        if status.ledger.in_flight == 0 {
            return status.ledger;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ledger never settled: {:?}\n{status:#?}",
            status.ledger
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Kill an actor and wait until the admin has reaped it.
fn kill(sys: &TestSystem, system: &mut ActorSystem, actor: &Address) {
    let pid = sys.pid_of(system, actor);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    wait_gone(pid);
    wait_for("the actor to be reaped", || {
        !sys.status(system).iter().any(|a| a.address == *actor)
    });
}

#[test]
fn messages_taken_from_a_killed_sender_come_back_when_the_receiver_is_killed_too() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let handler = dead_letter_handler(&mut system);
    // The receiver blocks in its first handler, so what the sender sends waits in its socket.
    let (stall, first, _) = stalled(&sys, &mut system);
    // The sender dies holding its copies; the receiver has not even read them yet.
    killed_source(&sys, &mut system, &stall, 10, None);
    // The receiver takes all ten at once and blocks handling the first.
    std::fs::write(&first, b"").unwrap();
    let handling = system.listen(PATIENCE).unwrap().expect("the first number");
    assert_eq!(handling.decode::<u64>().unwrap(), 0);
    kill(&sys, &mut system, &stall);
    // The one being handled went back to its sender as Poison, possibly handled; the sender
    // being gone, that too became a dead letter. The other nine are dead letters.
    let mut expected = vec![(0, true)];
    expected.extend((1..10).map(|n| (n, false)));
    assert_eq!(returned(&mut system, &handler, 10), expected);
    let ledger = settled(&mut system);
    assert_eq!(ledger.possibly_handled, 1, "{ledger:?}");
}

#[test]
fn messages_an_actor_sent_itself_come_back_when_it_is_killed() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let handler = dead_letter_handler(&mut system);
    // This one does not block in its first handler.
    std::fs::write(sys.tmp.path().join("first"), b"").unwrap();
    let (stall, _, _) = stalled(&sys, &mut system);
    #[derive(Serialize)]
    struct LoopBack {
        count: u64,
    }
    system.tell(&stall, &LoopBack { count: 5 }).unwrap();
    let handling = system.listen(PATIENCE).unwrap().expect("the first number");
    assert_eq!(handling.decode::<u64>().unwrap(), 0);
    kill(&sys, &mut system, &stall);
    // Its own sender is gone with it: all five come back as dead letters, the one it was
    // handling as a Poison marked possibly handled.
    let back = returned(&mut system, &handler, 5);
    let mut expected = vec![(0, true)];
    expected.extend((1..5).map(|n| (n, false)));
    assert_eq!(back, expected);
    settled(&mut system);
}

#[derive(Serialize, serde::Deserialize)]
struct Padded {
    n: u64,
    #[serde(with = "serde_bytes")]
    pad: Vec<u8>,
}

#[derive(Serialize)]
struct Produce {
    to: Address,
    count: u64,
    size: Option<usize>,
}

/// A `Stall` blocked in its first handler (so it reads nothing), and what its `first` and
/// `each` files are.
fn stalled(sys: &TestSystem, system: &mut ActorSystem) -> (Address, PathBuf, PathBuf) {
    let (first, each) = (sys.tmp.path().join("first"), sys.tmp.path().join("each"));
    let stall = system.create_actor_by_name("Stall", None).unwrap();
    let me = system.address().clone();
    let plan = StallOn {
        first: first.clone(),
        each: each.clone(),
        report: me,
    };
    let reply = system.ask(&stall, &plan, PATIENCE).unwrap();
    assert_eq!(reply.decode::<String>().unwrap(), "stalling");
    (stall, first, each)
}

/// A `Source` that sends `count` numbers (padded to `size` bytes) to `to` and is then killed:
/// its status answer comes after its sending handler returned, so all were sent by then.
fn killed_source(
    sys: &TestSystem,
    system: &mut ActorSystem,
    to: &Address,
    count: u64,
    size: Option<usize>,
) -> Address {
    let source = system.create_actor_by_name("Source", None).unwrap();
    let produce = Produce {
        to: to.clone(),
        count,
        size,
    };
    system.tell(&source, &produce).unwrap();
    assert!(system.actor_status(&source, PATIENCE).is_ok());
    kill(sys, system, &source);
    source
}

#[test]
fn what_a_killed_sender_wrote_or_still_held_comes_back_when_its_receiver_is_killed_too() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let handler = dead_letter_handler(&mut system);
    let (stall, _, _) = stalled(&sys, &mut system);
    // 600 KB to a receiver that reads nothing: the socket takes part, the rest waits unwritten
    // in the sender.
    // The sender dies with the only copies; then the receiver dies without having read any.
    let source = killed_source(&sys, &mut system, &stall, 600, Some(1000));
    kill(&sys, &mut system, &stall);
    // The receiver died in its first handler: that message comes back to this endpoint.
    let p: Poison = system
        .listen(PATIENCE)
        .unwrap()
        .expect("a Poison")
        .decode()
        .unwrap();
    assert!(
        p.possibly_handled && p.original.type_name() == "StallOn",
        "{p:?}"
    );
    let mut back = Vec::new();
    wait_for("600 dead letters", || {
        let reply = system.ask(&handler, "report", PATIENCE).unwrap();
        let dead: Vec<DeadEnvelope> = reply.decode().unwrap();
        back = dead
            .iter()
            .filter(|d| d.target == stall && d.sender == source)
            .filter_map(|d| d.message.get::<Padded>().map(|p| p.n))
            .collect();
        back.len() >= 600
    });
    back.sort();
    assert_eq!(back, (0..600).collect::<Vec<_>>(), "each exactly once");
    settled(&mut system);
}

#[test]
fn what_a_killed_sender_wrote_is_still_handled_by_a_receiver_that_lives() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let handler = dead_letter_handler(&mut system);
    let (stall, first, each) = stalled(&sys, &mut system);
    killed_source(&sys, &mut system, &stall, 10, None);
    // The receiver wakes up, takes the ten from its socket and handles them: they are not
    // returned as well.
    std::fs::write(&each, b"").unwrap();
    std::fs::write(&first, b"").unwrap();
    let mut handled: Vec<u64> = (0..10)
        .map(|_| {
            system
                .listen(PATIENCE)
                .unwrap()
                .expect("a number")
                .decode()
                .unwrap()
        })
        .collect();
    handled.sort();
    assert_eq!(handled, (0..10).collect::<Vec<_>>());
    settled(&mut system);
    let reply = system.ask(&handler, "report", PATIENCE).unwrap();
    let dead: Vec<DeadEnvelope> = reply.decode().unwrap();
    assert!(dead.is_empty(), "returned as well: {dead:?}");
}

#[test]
fn thousands_of_messages_left_by_a_killed_sender_are_settled_without_stalling_the_admin() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let (stall, _, _) = stalled(&sys, &mut system);
    // 20,000 small messages to a receiver that reads nothing: thousands fill its socket
    // (written, not taken: they wait on the receiver as orphans once their sender is dead),
    // the rest wait unwritten in the sender. Settling them used to cost the admin time
    // quadratic in their number, during which it answered nobody.
    killed_source(&sys, &mut system, &stall, 20_000, None);
    kill(&sys, &mut system, &stall);
    // StallOn, being handled, comes back to this endpoint as Poison.
    assert!(system.listen(PATIENCE).unwrap().is_some());
    let ledger = settled(&mut system);
    // No dead-letter handler: every message of the source is dropped, counted.
    assert!(ledger.dropped >= 20_000, "{ledger:?}");
}
