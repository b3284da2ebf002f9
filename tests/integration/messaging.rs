//! Messages between actors and endpoints: ordering, early delivery, timeouts, big frames.

use std::time::{Duration, Instant};

use greenroom::Message;
use serde::{Deserialize, Serialize};

use crate::support::{PATIENCE, TestSystem};

#[derive(Serialize, Deserialize)]
pub struct Expect {
    pub count: u64,
    pub notify: greenroom::Address,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    pub received: u64,
    pub in_order: bool,
    pub elapsed_ns: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Produce {
    pub to: greenroom::Address,
    pub count: u64,
    pub size: Option<usize>,
}

/// Wait for the next message of type `T`.
pub fn expect_msg<T: serde::de::DeserializeOwned>(
    system: &mut greenroom::ActorSystem,
    name: &str,
) -> T {
    let msg = system
        .listen(PATIENCE)
        .unwrap()
        .unwrap_or_else(|| panic!("no {name} arrived"));
    assert_eq!(msg.type_name(), name, "expected a {name}");
    msg.decode().unwrap()
}

#[test]
fn messages_between_a_pair_arrive_in_order_under_load() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let sink = system.create_actor_by_name("Sink", None).unwrap();
    let sources: Vec<_> = (0..2)
        .map(|_| system.create_actor_by_name("Source", None).unwrap())
        .collect();
    let per_source = 20_000;
    let me = system.address().clone();
    system
        .tell(
            &sink,
            &Expect {
                count: per_source * 2,
                notify: me,
            },
        )
        .unwrap();
    // One source sends bare numbers, the other 64-byte padded messages.
    for (s, size) in sources.iter().zip([None, Some(64)]) {
        system
            .tell(
                s,
                &Produce {
                    to: sink.clone(),
                    count: per_source,
                    size,
                },
            )
            .unwrap();
    }
    let report: Report = expect_msg(&mut system, "Report");
    assert_eq!(report.received, per_source * 2);
    assert!(report.in_order, "messages from one sender were reordered");
}

#[test]
fn messages_sent_before_the_actor_is_ready_are_delivered_in_order() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    // Everything below is sent right after create returns, before the process can be ready.
    let sink = system.create_actor_by_name("Sink", None).unwrap();
    let me = system.address().clone();
    system
        .tell(
            &sink,
            &Expect {
                count: 1000,
                notify: me,
            },
        )
        .unwrap();
    for n in 0..1000u64 {
        system.tell(&sink, &n).unwrap();
    }
    let report: Report = expect_msg(&mut system, "Report");
    assert_eq!(report.received, 1000);
    assert!(report.in_order);
}

#[test]
fn ask_returns_none_after_its_timeout_and_never_early() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let silent = system.create_actor_by_name("Silent", None).unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    assert!(matches!(
        system.ask(&silent, "anyone?", timeout),
        Err(greenroom::Error::NoReply { .. })
    ));
    assert!(started.elapsed() >= timeout, "ask gave up early");
    // The endpoint still works afterwards.
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let reply = system.ask(&echo, "hi", PATIENCE).unwrap();
    assert_eq!(reply.decode::<String>().unwrap(), "hi");
}

#[derive(Serialize)]
pub struct BlockUntil {
    pub release: std::path::PathBuf,
    pub burst: u64,
}

/// The zoo's Blocker sends "started" and `burst` numbers, then blocks until a file exists that
/// only this test creates, after everything sent inside the handler has arrived. Sends held
/// until the handler returns would never arrive.
fn sends_inside_a_blocked_handler_arrive(burst: u64) {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let blocker = system.create_actor_by_name("Blocker", None).unwrap();
    let release = sys.tmp.path().join("release");
    system
        .tell(
            &blocker,
            &BlockUntil {
                release: release.clone(),
                burst,
            },
        )
        .unwrap();
    let first = system
        .listen(PATIENCE)
        .unwrap()
        .expect("the first send inside the handler never left");
    assert_eq!(first.decode::<String>().unwrap(), "started");
    for n in 0..burst {
        let msg = system
            .listen(PATIENCE)
            .unwrap()
            .unwrap_or_else(|| panic!("send {n} of {burst} inside the blocked handler never left"));
        assert_eq!(msg.decode::<u64>().unwrap(), n);
    }
    std::fs::write(&release, b"").unwrap();
    let last = system.listen(PATIENCE).unwrap().unwrap();
    assert_eq!(last.decode::<String>().unwrap(), "released");
}

#[test]
fn a_send_inside_a_long_handler_leaves_before_the_handler_returns() {
    sends_inside_a_blocked_handler_arrive(0);
}

#[test]
fn a_burst_of_sends_inside_a_long_handler_leaves_before_the_handler_returns() {
    // Beyond the first few sends of a call, sends are batched; the flusher must still send them.
    sends_inside_a_blocked_handler_arrive(100);
}

#[test]
fn a_fifty_megabyte_message_and_its_reply_arrive_intact() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let body: Vec<u8> = (0..50 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let msg = Message::with_type("Blob", &serde_bytes::Bytes::new(&body)).unwrap();
    system.tell_message(&echo, msg.clone()).unwrap();
    let reply = system
        .listen(PATIENCE * 3)
        .unwrap()
        .expect("no echo of the big message");
    assert_eq!(reply.type_name(), "Blob");
    assert!(reply == msg, "the 50 MB message came back altered");
}

#[test]
fn addresses_travel_inside_messages_and_work_where_they_arrive() {
    #[derive(Serialize, Deserialize)]
    struct Spawn {
        count: u32,
        kind: String,
    }
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let parent = system.create_actor_by_name("Parent", None).unwrap();
    system
        .tell(
            &parent,
            &Spawn {
                count: 2,
                kind: "Echo".into(),
            },
        )
        .unwrap();
    let children: Vec<greenroom::Address> = expect_msg(&mut system, "Vec<Address>");
    assert_eq!(children.len(), 2);
    let keyed: std::collections::HashMap<_, _> = children.iter().cloned().zip(0..).collect();
    for child in &children {
        let reply = system.ask(child, &keyed[child], PATIENCE).unwrap();
        assert_eq!(reply.decode::<i32>().unwrap(), keyed[child]);
    }
}
