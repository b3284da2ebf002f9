//! Messages between members of a convention: addresses that work on every member, per-pair
//! order, and the accounting contract across the link.

use greenroom::{ActorSystem, Poison};

use crate::convention::{address, member, secret, wait_sees};
use crate::messaging::{Expect, Report, expect_msg};
use crate::regressions::{dead_letter_handler, dead_numbers};
use crate::support::{PATIENCE, TestSystem, wait_for};

/// A leader on `ip_a` and a member on `ip_b`, seeing each other.
fn pair(secret: &std::path::Path, ip_a: &str, ip_b: &str) -> (TestSystem, TestSystem) {
    let a = member(secret, &format!("{ip_a}:0"), &[]);
    let aa = address(&mut a.connect());
    let b = member(secret, &format!("{ip_b}:0"), &[&aa]);
    let ba = address(&mut b.connect());
    wait_sees(&mut a.connect(), &[&aa, &ba], &[]);
    wait_sees(&mut b.connect(), &[&aa, &ba], &[]);
    (a, b)
}

/// A leader on `ip_l` and two members on `ip_one` and `ip_two`, each member seeing all three,
/// with their addresses (leader, one, two).
fn trio(
    secret: &std::path::Path,
    [ip_l, ip_one, ip_two]: [&str; 3],
) -> ([TestSystem; 3], [String; 3]) {
    let l = member(secret, &format!("{ip_l}:0"), &[]);
    let la = address(&mut l.connect());
    let one = member(secret, &format!("{ip_one}:0"), &[&la]);
    let two = member(secret, &format!("{ip_two}:0"), &[&la]);
    let (oa, ta) = (address(&mut one.connect()), address(&mut two.connect()));
    for m in [&one, &two] {
        wait_sees(&mut m.connect(), &[&la, &oa, &ta], &[]);
    }
    ([l, one, two], [la, oa, ta])
}

/// [`pair`], each member with a program attached and the zoo loaded.
fn linked(
    secret: &std::path::Path,
    ip_a: &str,
    ip_b: &str,
) -> (TestSystem, TestSystem, ActorSystem, ActorSystem) {
    let (a, b) = pair(secret, ip_a, ip_b);
    let (mut on_a, mut on_b) = (a.connect(), b.connect());
    a.load_zoo(&mut on_a);
    b.load_zoo(&mut on_b);
    (a, b, on_a, on_b)
}

#[test]
fn a_program_asks_an_actor_on_another_member() {
    let s = secret();
    let (mut a, mut b) = pair(&s.path, "127.0.0.30", "127.0.0.31");
    let mut on_b = b.connect();
    b.load_zoo(&mut on_b);
    let echo = on_b.create_actor_by_name("Echo", None).unwrap();
    let ba = address(&mut on_b);
    assert_eq!(echo.member(), Some(ba.as_str()), "{echo}");
    assert!(echo.to_string().contains(&ba), "{echo}");

    let mut on_a: ActorSystem = a.connect();
    for i in 0..20 {
        let reply = on_a.ask(&echo, &format!("hi {i}"), PATIENCE).unwrap();
        assert_eq!(reply.decode::<String>().unwrap(), format!("hi {i}"));
    }
    // The CLI on one member, with an address another printed.
    let out = a.cli_ok(&["ask", &echo.to_string(), "\"from the CLI\""]);
    assert!(out.contains("from the CLI"), "{out}");
    drop((on_a, on_b));
    b.shutdown();
    a.shutdown();
}

#[test]
fn actors_on_two_members_exchange_messages_in_order() {
    let s = secret();
    let (mut a, mut b, mut on_a, mut on_b) = linked(&s.path, "127.0.0.32", "127.0.0.33");
    let sink = on_a.create_actor_by_name("Sink", None).unwrap();
    let sources: Vec<_> = (0..2)
        .map(|_| on_b.create_actor_by_name("Source", None).unwrap())
        .collect();
    let per_source = 20_000;
    // The report crosses back, to a program on the sources' member.
    let me = on_b.address().clone();
    on_b.tell(
        &sink,
        &Expect {
            count: per_source * 2,
            notify: me,
        },
    )
    .unwrap();
    // One sends bare numbers, the other 1000-byte messages: 20 MB, several times what a link
    // lets be in flight for one stream before its receiver takes some.
    for (src, size) in sources.iter().zip([None, Some(1000)]) {
        on_b.tell(
            src,
            &crate::messaging::Produce {
                to: sink.clone(),
                count: per_source,
                size,
            },
        )
        .unwrap();
    }
    let report: Report = expect_msg(&mut on_b, "Report");
    assert_eq!(report.received, per_source * 2);
    assert!(report.in_order, "messages from one sender were reordered");
    drop((on_a, on_b));
    b.shutdown();
    a.shutdown();
}

#[derive(serde::Serialize)]
struct StallOn {
    first: std::path::PathBuf,
    each: std::path::PathBuf,
    report: greenroom::Address,
}

/// A `Stall` on the member `sys` (blocked in its first handler until `first` exists), set up
/// by `system` there, which it reports to.
fn stall_on(
    sys: &TestSystem,
    system: &mut ActorSystem,
) -> (greenroom::Address, std::path::PathBuf) {
    let (first, each) = (sys.tmp.path().join("first"), sys.tmp.path().join("each"));
    let stall = system.create_actor_by_name("Stall", None).unwrap();
    let report = system.address().clone();
    let plan = StallOn {
        first: first.clone(),
        each,
        report,
    };
    let reply = system.ask(&stall, &plan, PATIENCE).unwrap();
    assert_eq!(reply.decode::<String>().unwrap(), "stalling");
    (stall, first)
}

/// The `u64`s two dead-letter handlers (on two members) have received, once there are `count`
/// of them in all, sorted.
fn dead_on_both(
    (one, one_handler): (&mut ActorSystem, &greenroom::Address),
    (two, two_handler): (&mut ActorSystem, &greenroom::Address),
    count: usize,
) -> Vec<u64> {
    let mut numbers = Vec::new();
    wait_for(&format!("{count} dead letters"), || {
        numbers.clear();
        for (system, handler) in [(&mut *one, one_handler), (&mut *two, two_handler)] {
            let reply = system.ask(handler, "report", PATIENCE).unwrap();
            let dead: Vec<greenroom::DeadEnvelope> = reply.decode().unwrap();
            numbers.extend(dead.iter().filter_map(|d| d.message.get::<u64>()));
        }
        numbers.len() >= count
    });
    numbers.sort();
    numbers
}

#[test]
fn what_a_receiver_on_another_member_took_comes_back_when_it_is_killed() {
    let s = secret();
    let (mut a, mut b, mut on_a, mut on_b) = linked(&s.path, "127.0.0.34", "127.0.0.35");
    let a_handler = dead_letter_handler(&mut on_a);
    let b_handler = dead_letter_handler(&mut on_b);
    let (stall, first) = stall_on(&b, &mut on_b);
    for n in 0..10u64 {
        on_a.tell(&stall, &n).unwrap();
    }
    // It takes what has arrived and blocks handling the first.
    std::fs::write(&first, b"").unwrap();
    let handling = on_b.listen(PATIENCE).unwrap().expect("the first number");
    assert_eq!(handling.decode::<u64>().unwrap(), 0);
    let pid = b.pid_of(&mut on_b, &stall);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    // The one it was handling goes back across to its sender, as a Poison possibly handled...
    let p: Poison = on_a
        .listen(PATIENCE)
        .unwrap()
        .expect("a Poison")
        .decode()
        .unwrap();
    assert!(p.possibly_handled, "{p:?}");
    assert_eq!(p.original.decode::<u64>().unwrap(), 0);
    // ... and each of the nine it had not handled is a dead letter exactly once: where it ran
    // if it had taken it, else where it was sent from.
    assert_eq!(
        dead_on_both((&mut on_a, &a_handler), (&mut on_b, &b_handler), 9),
        (1..10).collect::<Vec<u64>>()
    );
    drop((on_a, on_b));
    b.shutdown();
    a.shutdown();
}

#[test]
fn what_a_lost_member_never_took_comes_back_to_its_senders() {
    let s = secret();
    let (mut a, mut b, mut on_a, mut on_b) = linked(&s.path, "127.0.0.36", "127.0.0.37");
    let a_handler = dead_letter_handler(&mut on_a);
    // Blocked in its first handler, it reads nothing more.
    let (stall, _first) = stall_on(&b, &mut on_b);
    // Ten from a program and ten from an actor on A cross to it and wait in its socket.
    let source = on_a.create_actor_by_name("Source", None).unwrap();
    for n in 100..110u64 {
        on_a.tell(&stall, &n).unwrap();
    }
    on_a.tell(
        &source,
        &crate::messaging::Produce {
            to: stall.clone(),
            count: 10,
            size: None,
        },
    )
    .unwrap();
    assert!(on_a.actor_status(&source, PATIENCE).is_ok());
    // Its member's admin dies, and its actors with it: what they never took comes back.
    drop(on_b);
    b.kill_admin();
    let mut expected: Vec<u64> = (0..10).collect();
    expected.extend(100..110);
    assert_eq!(dead_numbers(&mut on_a, &a_handler, 20), expected);
    // A message sent to it now that it is gone comes back too.
    on_a.tell(&stall, &7u64).unwrap();
    let mut expected: Vec<u64> = (0..10).chain([7]).collect();
    expected.extend(100..110);
    expected.sort();
    assert_eq!(dead_numbers(&mut on_a, &a_handler, 21), expected);
    drop(on_a);
    a.shutdown();
    // What the killed admin left, a new one clears.
    b.start_admin(&[]);
    b.shutdown();
}

#[test]
fn members_that_are_not_leaders_reach_each_other_directly() {
    let s = secret();
    let ([mut leader, mut one, mut two], [la, oa, ta]) =
        trio(&s.path, ["127.0.0.38", "127.0.0.39", "127.0.0.40"]);
    let (mut on_one, mut on_two) = (one.connect(), two.connect());
    two.load_zoo(&mut on_two);
    let echo = on_two.create_actor_by_name("Echo", None).unwrap();
    let reply = on_one.ask(&echo, "across", PATIENCE).unwrap();
    assert_eq!(reply.decode::<String>().unwrap(), "across");
    // The leader is not in the way: the pair has a link of its own, and keeps working
    // without the leader.
    drop(leader.connect());
    leader.shutdown();
    wait_sees(&mut on_one, &[&oa, &ta], &[&la]);
    let reply = on_one.ask(&echo, "still", PATIENCE).unwrap();
    assert_eq!(reply.decode::<String>().unwrap(), "still");
    drop((on_one, on_two));
    two.shutdown();
    one.shutdown();
}

/// What a peer may say on a link, as the test writes it.
#[derive(serde::Serialize)]
enum LinkMsg {
    Hello {
        version: u32,
        system: String,
        address: String,
        capabilities: std::collections::BTreeMap<String, String>,
    },
    Open {
        stream: u64,
        from: String,
        to: String,
    },
    Data {
        stream: u64,
        #[serde(with = "serde_bytes")]
        frames: Vec<u8>,
    },
    Create {
        request: u64,
        type_name: String,
        parent: String,
        args: Option<serde_bytes::ByteBuf>,
        requirements: std::collections::BTreeMap<String, String>,
        binary: Option<String>,
    },
    Chunk {
        sha256: String,
        offset: u64,
        size: u64,
        bytes: serde_bytes::ByteBuf,
    },
    Bind {
        name: String,
        address: String,
    },
}

fn link_frame(msg: &LinkMsg) -> Vec<u8> {
    let body = rmp_serde::to_vec_named(msg).unwrap();
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

#[test]
fn a_peer_that_breaks_the_rules_of_a_message_stream_loses_its_link_and_delivers_nothing() {
    let s = secret();
    let key = s.key();
    let (mut a, mut b) = pair(&s.path, "127.0.0.41", "127.0.0.42");
    let mut on_a = a.connect();
    a.load_zoo(&mut on_a);
    let echo = on_a.create_actor_by_name("Echo", None).unwrap();
    let la = address(&mut on_a);
    let me = "127.0.0.43:1";
    let hello = link_frame(&LinkMsg::Hello {
        version: 1,
        system: "x".into(),
        address: me.into(),
        capabilities: Default::default(),
    });
    let open = |from: &str, to: &str| {
        link_frame(&LinkMsg::Open {
            stream: 1,
            from: from.into(),
            to: to.into(),
        })
    };
    let mine = format!("1@{me}/x");
    let good_open = open(&mine, &echo.to_string());
    let data = |frames: Vec<u8>| link_frame(&LinkMsg::Data { stream: 1, frames });
    let message = {
        let body =
            rmp_serde::to_vec_named(&serde_json::json!({"type": "String", "body": "hi"})).unwrap();
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        f
    };
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "a stream from a sender on another member",
            vec![open("1@127.0.0.99:1/x", &echo.to_string())],
        ),
        (
            "a stream to a receiver on another member",
            vec![open(&mine, &format!("1@{me}/x"))],
        ),
        (
            "a stream to another system's directory",
            vec![open(&mine, &format!("1@{la}/elsewhere"))],
        ),
        (
            "a stream opened twice",
            vec![good_open.clone(), good_open.clone()],
        ),
        (
            "messages cut short",
            vec![
                good_open.clone(),
                data([&message[..], &message[..5]].concat()),
            ],
        ),
        (
            "a message over the size limit",
            vec![
                good_open.clone(),
                data((64u32 << 20).to_be_bytes().to_vec()),
            ],
        ),
        (
            "a create for a parent on another member",
            vec![link_frame(&LinkMsg::Create {
                request: 1,
                type_name: "Echo".into(),
                parent: "1@127.0.0.99:1/x".into(),
                args: None,
                requirements: Default::default(),
                binary: None,
            })],
        ),
        (
            "a create naming its binary by something other than a SHA-256",
            vec![link_frame(&LinkMsg::Create {
                request: 1,
                type_name: "Echo".into(),
                parent: mine.clone(),
                args: None,
                requirements: Default::default(),
                binary: Some("../../etc/passwd".into()),
            })],
        ),
        (
            "a piece of a binary that lies about its size",
            vec![link_frame(&LinkMsg::Chunk {
                sha256: "0".repeat(64),
                offset: 10,
                size: 4,
                bytes: serde_bytes::ByteBuf::from(vec![0; 8]),
            })],
        ),
        (
            "a global name bound to an actor of another member",
            vec![link_frame(&LinkMsg::Bind {
                name: "the-one".into(),
                address: echo.to_string(),
            })],
        ),
    ];
    for (what, frames) in cases {
        let plain: Vec<u8> = std::iter::once(hello.clone())
            .chain(frames)
            .flatten()
            .collect();
        assert!(
            crate::convention::authenticated_garbage(&la, &key, &plain),
            "the link stayed open after {what}"
        );
    }
    // Nothing reached the actor, and the members still carry messages.
    let mut on_b = b.connect();
    let reply = on_b.ask(&echo, "after", PATIENCE).unwrap();
    assert_eq!(reply.decode::<String>().unwrap(), "after");
    let status = on_a.actor_status(&echo, PATIENCE).unwrap();
    assert_eq!(status.handled, 1, "{status:?}");
    // No actor was created, and no name bound.
    assert_eq!(a.status(&mut on_a).len(), 1);
    let named = on_a.create_global_by_name("Echo", "the-one").unwrap();
    assert_ne!(named, echo);
    drop((on_a, on_b));
    b.shutdown();
    a.shutdown();
}

/// The next `ChildExited` that reaches `system`.
fn child_exited(system: &mut ActorSystem) -> greenroom::ChildExited {
    let env = system
        .listen_any(PATIENCE)
        .unwrap()
        .expect("a ChildExited in time");
    env.msg.decode().unwrap()
}

#[test]
fn actors_are_created_on_the_members_that_meet_their_requirements() {
    let s = secret();
    let mut a = member(&s.path, "127.0.0.44:0", &[]);
    let aa = address(&mut a.connect());
    let gpu = ["--capability", "gpu=yes"];
    let mut b = crate::convention::member_with(&s.path, "127.0.0.45:0", &[&aa], &gpu);
    let mut c = crate::convention::member_with(&s.path, "127.0.0.46:0", &[&aa], &gpu);
    let mut on_a = a.connect();
    let (ba, ca) = (address(&mut b.connect()), address(&mut c.connect()));
    wait_sees(&mut on_a, &[&aa, &ba, &ca], &[]);
    for sys in [&a, &b, &c] {
        sys.load_zoo(&mut sys.connect());
    }
    // The leader has no gpu: each create lands on a member that has one, taking turns.
    let mut placed = Vec::new();
    for _ in 0..4 {
        let echo = on_a
            .create_by_name_requiring("Echo", None, &[("gpu", "yes")])
            .unwrap();
        let reply = on_a.ask(&echo, "where?", PATIENCE).unwrap();
        assert_eq!(reply.decode::<String>().unwrap(), "where?");
        placed.push(echo);
    }
    let on = |m: &str| placed.iter().filter(|e| e.member() == Some(m)).count();
    assert_eq!((on(&ba), on(&ca)), (2, 2), "{placed:?}");
    // This member's status lists them, with the member each runs on in its address.
    let status = on_a.system_status().unwrap();
    let elsewhere: Vec<_> = status.elsewhere.iter().map(|e| e.address.clone()).collect();
    let mut expected = placed.clone();
    expected.sort();
    assert_eq!(elsewhere, expected);
    assert!(status.elsewhere.iter().all(|e| e.parent == *on_a.address()));
    let text = a.cli_ok(&["status"]);
    assert!(
        text.contains(&format!("on member {ba}: {}", placed[0]))
            || text.contains(&format!("on member {ca}: {}", placed[0])),
        "{text}"
    );
    // A type that requires a gpu itself goes there too, and from the CLI.
    let gpu_echo: greenroom::Address = a.cli_ok(&["create", "GpuEcho"]).parse().unwrap();
    assert!(gpu_echo.member() == Some(&ba) || gpu_echo.member() == Some(&ca));
    // Requirements no member meets: refused, naming what is missing here.
    match on_a.create_by_name_requiring("Echo", None, &[("gpu", "no")]) {
        Err(greenroom::Error::NoCompatibleSystem { unmet }) => {
            assert_eq!(unmet, ["gpu=no (here no gpu)"])
        }
        other => panic!("{other:?}"),
    }

    // Its parent, on the leader, hears when a child ends on another member...
    on_a.tell(&placed[0], &greenroom::ExitRequest::default())
        .unwrap();
    let notice = child_exited(&mut on_a);
    assert_eq!(
        (notice.child, notice.reason),
        (placed[0].clone(), greenroom::ExitReason::Requested)
    );
    // ... and when that member is lost, as HostLost, for each child it ran.
    let on_c: Vec<_> = placed[1..]
        .iter()
        .filter(|e| e.member() == Some(ca.as_str()))
        .cloned()
        .collect();
    c.kill_admin();
    let mut lost = Vec::new();
    while lost.len() < on_c.len() + usize::from(gpu_echo.member() == Some(ca.as_str())) {
        let notice = child_exited(&mut on_a);
        assert_eq!(
            notice.reason,
            greenroom::ExitReason::HostLost { member: ca.clone() },
            "{notice:?}"
        );
        lost.push(notice.child);
    }
    assert!(on_c.iter().all(|e| lost.contains(e)), "{lost:?} {on_c:?}");
    // New creates go to the member that is left.
    let echo = on_a
        .create_by_name_requiring("Echo", None, &[("gpu", "yes")])
        .unwrap();
    assert_eq!(echo.member(), Some(ba.as_str()));
    drop(on_a);
    b.shutdown();
    a.shutdown();
    c.start_admin(&[]);
    c.shutdown();
}

#[test]
fn a_member_fetches_a_binary_it_lacks_by_its_hash_unless_it_refuses_them() {
    use sha2::Digest;
    let s = secret();
    let mut a = member(&s.path, "127.0.0.47:0", &[]);
    let aa = address(&mut a.connect());
    let mut b = crate::convention::member_with(
        &s.path,
        "127.0.0.48:0",
        &[&aa],
        &["--capability", "gpu=yes"],
    );
    let mut c = crate::convention::member_with(
        &s.path,
        "127.0.0.49:0",
        &[&aa],
        &["--capability", "tpu=yes", "--accept-binaries", "none"],
    );
    let mut on_a = a.connect();
    let (ba, ca) = (address(&mut b.connect()), address(&mut c.connect()));
    wait_sees(&mut on_a, &[&aa, &ba, &ca], &[]);
    // Only the leader has the zoo.
    a.load_zoo(&mut on_a);
    let zoo = std::fs::read(crate::support::example("zoo")).unwrap();
    let sha: String = sha2::Sha256::digest(&zoo)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let kept = b.dir.join(format!("binary-{sha}"));
    let mut inodes = Vec::new();
    for i in 0..2 {
        let echo = on_a
            .create_by_name_requiring("Echo", None, &[("gpu", "yes")])
            .unwrap();
        assert_eq!(echo.member(), Some(ba.as_str()));
        let reply = on_a.ask(&echo, &format!("fetched {i}"), PATIENCE).unwrap();
        assert_eq!(reply.decode::<String>().unwrap(), format!("fetched {i}"));
        inodes.push(std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(&kept).unwrap(),
        ));
    }
    // Kept in the member's system directory, whole and checked, and fetched once.
    assert_eq!(inodes[0], inodes[1]);
    assert_eq!(std::fs::read(&kept).unwrap(), zoo);
    assert!(!b.dir.join(format!("binary-{sha}.part")).exists());
    // A member that refuses binaries says so, and what to do.
    let err = on_a
        .create_by_name_requiring("Echo", None, &[("tpu", "yes")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--accept-binaries none") && err.contains("load"),
        "{err}"
    );
    assert!(!c.dir.join(format!("binary-{sha}")).exists());
    drop(on_a);
    for m in [&mut c, &mut b, &mut a] {
        m.shutdown();
    }
}

#[test]
fn what_receivers_on_a_lost_member_took_and_did_not_handle_comes_back_too() {
    let s = secret();
    let (mut a, mut b, mut on_a, mut on_b) = linked(&s.path, "127.0.0.50", "127.0.0.51");
    let a_handler = dead_letter_handler(&mut on_a);
    let (stall, first) = stall_on(&b, &mut on_b);
    for n in 0..10u64 {
        on_a.tell(&stall, &n).unwrap();
    }
    // It takes them and blocks handling the first; then its member dies, and it with it.
    std::fs::write(&first, b"").unwrap();
    let handling = on_b.listen(PATIENCE).unwrap().expect("the first number");
    assert_eq!(handling.decode::<u64>().unwrap(), 0);
    drop(on_b);
    b.kill_admin();
    // None of the ten was handled to the end: all come back to where they were sent from.
    assert_eq!(
        dead_numbers(&mut on_a, &a_handler, 10),
        (0..10).collect::<Vec<u64>>()
    );
    drop(on_a);
    a.shutdown();
    b.start_admin(&[]);
    b.shutdown();
}

#[test]
fn a_global_name_is_held_once_in_the_whole_convention() {
    let s = secret();
    let ([mut l, mut one, mut two], [la, oa, ta]) =
        trio(&s.path, ["127.0.0.52", "127.0.0.53", "127.0.0.54"]);
    let (mut on_one, mut on_two, mut on_l) = (one.connect(), two.connect(), l.connect());
    for (sys, system) in [(&one, &mut on_one), (&two, &mut on_two), (&l, &mut on_l)] {
        sys.load_zoo(system);
    }
    // Created where first asked for; every other member gets the same actor.
    let first = on_one.create_global_by_name("Echo", "the-one").unwrap();
    assert_eq!(first.member(), Some(oa.as_str()));
    assert_eq!(
        on_two.create_global_by_name("Echo", "the-one").unwrap(),
        first
    );
    assert_eq!(
        on_l.create_global_by_name("Echo", "the-one").unwrap(),
        first
    );
    let out = two.cli_ok(&["create", "Echo", "--name", "the-one"]);
    assert_eq!(out.parse::<greenroom::Address>().unwrap(), first);
    // Two members asking at once for a new name get one actor between them.
    let racer = one
        .command(&crate::support::bin("greenroom"))
        .args(["create", "Echo", "--name", "raced"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let from_two = on_two.create_global_by_name("Echo", "raced").unwrap();
    let out = racer.wait_with_output().unwrap();
    let from_one: greenroom::Address = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(from_one, from_two);

    // Once its holder ends, the name is free again, wherever it is asked for.
    on_one
        .tell(&first, &greenroom::ExitRequest::default())
        .unwrap();
    crate::support::wait_for("the name to be freed", || {
        let got = on_two.create_global_by_name("Echo", "the-one").unwrap();
        got != first
    });
    let second = on_two.create_global_by_name("Echo", "the-one").unwrap();
    assert_eq!(second.member(), Some(ta.as_str()));
    // And when its holder's member is lost.
    drop(on_two);
    two.kill_admin();
    // The keeper frees the names of a member once it sees it gone.
    wait_sees(&mut on_l, &[&la, &oa], &[&ta]);
    let third = on_one.create_global_by_name("Echo", "the-one").unwrap();
    assert_eq!(third.member(), Some(oa.as_str()));
    drop((on_one, on_l));
    one.shutdown();
    l.shutdown();
    two.start_admin(&[]);
    two.shutdown();
}

#[test]
fn garbage_on_the_gateway_socket_is_refused_and_changes_nothing() {
    use std::io::{Read, Write};
    let s = secret();
    let (mut a, mut b) = pair(&s.path, "127.0.0.55", "127.0.0.56");
    let mut on_b = b.connect();
    b.load_zoo(&mut on_b);
    let echo = on_b.create_actor_by_name("Echo", None).unwrap();
    let mut on_a = a.connect();
    let me = on_a.address().clone();
    let hello = |to: Option<&greenroom::Address>| {
        let body = rmp_serde::to_vec_named(&greenroom::protocol::SenderHello {
            version: greenroom::protocol::PROTOCOL_VERSION,
            from: me.clone(),
            conn: 7,
            ledger: true,
            to: to.cloned(),
        })
        .unwrap();
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        f
    };
    // Another address on the same member: its id changed.
    let beside: greenroom::Address = me
        .to_string()
        .replacen(&format!("{}@", me.id()), "999999@", 1)
        .parse()
        .unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a frame that is not MessagePack", {
            let mut f = 40u32.to_be_bytes().to_vec();
            f.extend([0xc1; 40]);
            f
        }),
        ("a length header that lies", u32::MAX.to_be_bytes().to_vec()),
        ("a hello that names no receiver", hello(None)),
        (
            "a hello naming a receiver on this member",
            hello(Some(&beside)),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = std::os::unix::net::UnixStream::connect(a.dir.join("gateway.sock")).unwrap();
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        let _ = c.write_all(&bytes);
        let mut buf = [0u8; 16];
        let closed = match c.read(&mut buf) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        };
        assert!(closed, "the gateway kept a connection after {what}");
    }
    // The members still carry messages.
    let reply = on_a.ask(&echo, "still", PATIENCE).unwrap();
    assert_eq!(reply.decode::<String>().unwrap(), "still");
    drop((on_a, on_b));
    b.shutdown();
    a.shutdown();
}

#[test]
fn global_names_outlive_the_loss_of_the_leader_that_kept_them() {
    use crate::convention::free_port;
    let s = secret();
    let (a1, a2) = (free_port("127.0.0.57"), free_port("127.0.0.58"));
    let leaders = [a1.as_str(), a2.as_str()];
    let mut l1 = member(&s.path, &a1, &leaders);
    let mut l2 = member(&s.path, &a2, &leaders);
    let mut m = member(&s.path, "127.0.0.59:0", &leaders);
    let (mut on_m, mut on_l2) = (m.connect(), l2.connect());
    let ma = address(&mut on_m);
    wait_sees(&mut on_m, &[&a1, &a2, &ma], &[]);
    wait_sees(&mut on_l2, &[&a1, &a2, &ma], &[]);
    m.load_zoo(&mut on_m);
    l2.load_zoo(&mut on_l2);
    // Kept by the first leader.
    let kept = on_m.create_global_by_name("Echo", "kept").unwrap();
    assert_eq!(on_l2.create_global_by_name("Echo", "kept").unwrap(), kept);
    // It is lost: the second keeps the names now, and the member bound its name there again.
    l1.kill_admin();
    wait_sees(&mut on_m, &[&a2, &ma], &[&a1]);
    wait_sees(&mut on_l2, &[&a2, &ma], &[&a1]);
    assert_eq!(on_l2.create_global_by_name("Echo", "kept").unwrap(), kept);
    // A new name is kept there too.
    let new = on_l2.create_global_by_name("Echo", "new").unwrap();
    assert_eq!(on_m.create_global_by_name("Echo", "new").unwrap(), new);
    drop((on_m, on_l2));
    m.shutdown();
    l2.shutdown();
    l1.start_admin(&[]);
    l1.shutdown();
}

/// Link to `to` as a member holding `key`, send `plain` (frames) encrypted, and return the
/// first frame back whose variant is `wanted`, decoded loosely.
fn ask_as_a_member(to: &str, key: &[u8; 32], plain: &[u8], wanted: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let (mut c, mut t) = crate::convention::noise_link(to, key);
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    let read_noise = |c: &mut std::net::TcpStream| {
        let mut len = [0u8; 2];
        c.read_exact(&mut len).unwrap();
        let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut m).unwrap();
        m
    };
    let (mut msg, mut clear) = (vec![0u8; 65535], vec![0u8; 65535]);
    let n = t.write_message(plain, &mut msg).unwrap();
    c.write_all(&(n as u16).to_be_bytes()).unwrap();
    c.write_all(&msg[..n]).unwrap();
    let mut stream = Vec::new();
    loop {
        let m = read_noise(&mut c);
        let n = t.read_message(&m, &mut clear).unwrap();
        stream.extend_from_slice(&clear[..n]);
        while stream.len() >= 4 {
            let len = u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
            if stream.len() < 4 + len {
                break;
            }
            let v: serde_json::Value = rmp_serde::from_slice(&stream[4..4 + len]).unwrap();
            stream.drain(..4 + len);
            if let Some(found) = v.get(wanted) {
                return found.clone();
            }
        }
    }
}

#[test]
fn a_member_of_another_platform_gets_a_clear_answer_for_its_binary() {
    let s = secret();
    let key = s.key();
    let mut a = member(&s.path, "127.0.0.60:0", &[]);
    let aa = address(&mut a.connect());
    // A member that says it runs another OS asks this one, which has no binary for the type,
    // to create an actor from its own.
    let them = "127.0.0.61:1";
    let hello = link_frame(&LinkMsg::Hello {
        version: 1,
        system: "elsewhere".into(),
        address: them.into(),
        capabilities: [
            ("greenroom.os".to_string(), "plan9".to_string()),
            ("greenroom.arch".to_string(), "mips".to_string()),
        ]
        .into(),
    });
    let create = link_frame(&LinkMsg::Create {
        request: 5,
        type_name: "Echo".into(),
        parent: format!("1@{them}/x"),
        args: None,
        requirements: Default::default(),
        binary: Some("ab".repeat(32)),
    });
    let answer = ask_as_a_member(&aa, &key, &[hello, create].concat(), "Created");
    assert_eq!(answer["request"], 5, "{answer}");
    assert!(answer["address"].is_null(), "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("plan9/mips")
            && error.contains(std::env::consts::OS)
            && error.contains("load"),
        "{error}"
    );
    assert!(!a.dir.join(format!("binary-{}", "ab".repeat(32))).exists());
    a.shutdown();
}

#[test]
fn a_program_takes_more_than_a_window_from_an_actor_on_another_member() {
    let s = secret();
    let (mut a, mut b) = pair(&s.path, "127.0.0.62", "127.0.0.63");
    let mut on_a = a.connect();
    let mut on_b = b.connect();
    b.load_zoo(&mut on_b);
    let source = on_b.create_actor_by_name("Source", None).unwrap();
    // 12 MB, three times what one stream may have in flight unsettled: the program must settle
    // what it takes for the rest to come.
    let count = 12_000u64;
    on_a.tell(
        &source,
        &crate::messaging::Produce {
            to: on_a.address().clone(),
            count,
            size: Some(1000),
        },
    )
    .unwrap();
    #[derive(serde::Deserialize)]
    struct Padded {
        n: u64,
    }
    for expected in 0..count {
        let msg = on_a
            .listen(PATIENCE)
            .unwrap()
            .expect("the next message in time");
        assert_eq!(msg.decode::<Padded>().unwrap().n, expected);
    }
    drop((on_a, on_b));
    b.shutdown();
    a.shutdown();
}
