//! Flow control: senders are slowed to what their receivers take, without deadlock, and
//! nothing grows without bound because a peer does not read.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use greenroom::protocol::Request;
use serde::{Deserialize, Serialize};

use crate::regressions::RawClient;
use crate::support::{PATIENCE, TestSystem, rss_kib, wait_for};

#[derive(Serialize)]
struct Flood {
    peer: greenroom::Address,
    count: u64,
    expect: u64,
    report: greenroom::Address,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Received(String, u64);

/// Each of `floods` floods its peer with `count` numbers from inside one handler; every
/// flooder must report having received what was sent to it.
fn expect_floods_to_complete(
    system: &mut greenroom::ActorSystem,
    floods: &[(greenroom::Address, greenroom::Address, u64)],
) {
    let me = system.address().clone();
    for (from, to, count) in floods {
        let expect = floods
            .iter()
            .filter(|(_, t, _)| t == from)
            .map(|(_, _, c)| c)
            .sum();
        let flood = Flood {
            peer: to.clone(),
            count: *count,
            expect,
            report: me.clone(),
        };
        system.tell(from, &flood).unwrap();
    }
    for _ in floods {
        let reply = system
            .listen(PATIENCE * 6)
            .unwrap()
            .expect("a flooder never finished: the floods deadlocked");
        let got: Received = reply.decode().unwrap();
        assert_eq!(got.0, "flood received");
    }
}

#[test]
fn two_actors_flooding_each_other_from_their_handlers_both_finish() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let a = system.create_actor_by_name("Flooder", None).unwrap();
    let b = system.create_actor_by_name("Flooder", None).unwrap();
    // Several MiB each way: far more than the 1 MiB window and the sockets' buffers, so both
    // handlers must wait for the other, which is waiting too.
    expect_floods_to_complete(
        &mut system,
        &[(a.clone(), b.clone(), 200_000), (b, a, 200_000)],
    );
}

#[test]
fn an_actor_flooding_itself_finishes() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let a = system.create_actor_by_name("Flooder", None).unwrap();
    expect_floods_to_complete(&mut system, &[(a.clone(), a, 300_000)]);
}

#[test]
fn a_send_to_a_receiver_that_takes_nothing_fails_after_a_bounded_wait() {
    use crate::messaging::BlockUntil;
    let mut sys = TestSystem::empty();
    sys.start_admin_with_env(&[], &[("GREENROOM_SEND_TIMEOUT_MS", "300")]);
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let stuck = system.create_actor_by_name("Blocker", None).unwrap();
    let release = sys.tmp.path().join("release");
    system
        .tell(
            &stuck,
            &BlockUntil {
                release: release.clone(),
                burst: 0,
            },
        )
        .unwrap();
    let started = system.listen(PATIENCE).unwrap().unwrap();
    assert_eq!(started.decode::<String>().unwrap(), "started");
    // A flooder sends to the stuck actor: its send waits, then fails; the handler fails twice
    // and the flood request comes back to us as Poison saying why.
    let flooder = system.create_actor_by_name("Flooder", None).unwrap();
    let me = system.address().clone();
    let flood = Flood {
        peer: stuck.clone(),
        count: 1_000_000,
        expect: u64::MAX,
        report: me,
    };
    system.tell(&flooder, &flood).unwrap();
    let reply = system.listen(PATIENCE).unwrap().expect("the flood's fate");
    let poison: greenroom::Poison = reply.decode().unwrap();
    assert!(
        poison.details.contains("took nothing sent to it"),
        "{}",
        poison.details
    );
    // The flooder is not stuck itself: it answers at once.
    let st = system.actor_status(&flooder, PATIENCE);
    assert!(st.is_ok(), "the flooder is stuck: {st:?}");
    std::fs::write(&release, b"").unwrap();
}

#[test]
fn a_client_that_never_reads_is_cut_off_and_the_admin_stays_small() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let before = rss_kib(sys.admin_pid);
    let (mut raw, _) = RawClient::greeted(&sys);
    raw.stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let status = greenroom::wire::encode(&Request::Status).unwrap();
    let burst: Vec<u8> = status
        .iter()
        .copied()
        .cycle()
        .take(status.len() * 4096)
        .collect();
    // Write requests and never read a reply, until the admin stops taking them.
    let mut cut_off = false;
    for _ in 0..10_000 {
        match raw.stream.write_all(&burst) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                cut_off = true;
                break;
            }
        }
        if crate::support::peer_closed(&raw.stream) {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a client that never reads was never disconnected");
    let grew = rss_kib(sys.admin_pid).saturating_sub(before) / 1024;
    assert!(grew < 64, "the admin grew by {grew} MiB");
    // Everyone else is still served.
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    assert!(system.ask(&echo, "still here?", PATIENCE).is_ok());
}

#[test]
fn garbage_in_a_loop_cannot_fill_the_log() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let log = sys.dir.join("system.log");
    let lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let before = lines();
    for socket in [
        sys.dir.join("admin.sock"),
        sys.dir.join(format!("{}.sock", echo.id())),
    ] {
        for _ in 0..1000 {
            if let Ok(mut s) = UnixStream::connect(&socket) {
                let _ = s.write_all(b"\x00\x00\x00\x02\xc1\xc1");
            }
        }
    }
    // Both processes have seen the garbage once they answer again.
    for _ in 0..2 {
        system.status().unwrap();
        assert!(system.ask(&echo, "after", PATIENCE).is_ok());
    }
    wait_for("the log to have the garbage's lines", || lines() > before);
    let added = lines() - before;
    assert!(added < 100, "2000 bad frames added {added} log lines");
}

#[test]
fn a_sender_that_never_pauses_does_not_keep_an_actor_from_the_others() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let sink = system.create_actor_by_name("Sink", None).unwrap();
    // A raw sender in another thread: a proper hello, then numbers without pause.
    let socket = sys.dir.join(format!("{}.sock", sink.id()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = {
        let (stop, dir) = (stop.clone(), sys.dir.clone());
        std::thread::spawn(move || {
            let mut s = UnixStream::connect(&socket).unwrap();
            let from: greenroom::Address = format!("999999@{}", dir.display()).parse().unwrap();
            let hello = greenroom::protocol::SenderHello {
                version: greenroom::protocol::PROTOCOL_VERSION,
                from,
                conn: 1,
                ledger: false,
                to: None,
            };
            let mut frames = greenroom::wire::encode(&hello).unwrap();
            let n = greenroom::Message::new(&7u64).unwrap();
            let one = greenroom::wire::encode(&n).unwrap();
            let burst: Vec<u8> = one.iter().copied().cycle().take(one.len() * 2048).collect();
            s.write_all(&frames).unwrap();
            frames.clear();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if s.write_all(&burst).is_err() {
                    break;
                }
            }
        })
    };
    // The framework still answers a status request from someone else, in time.
    for _ in 0..3 {
        let st = system.actor_status(&sink, PATIENCE);
        assert!(st.is_ok(), "the flooded actor answered nobody else: {st:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flooding.join().unwrap();
}

#[test]
fn a_receiver_whose_accept_backlog_is_full_does_not_stall_the_admin() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    // Fill this endpoint's accept backlog: it accepts only while the program waits, and this
    // program does not, so every connection waits in the kernel until no more fit.
    let mine = sys.dir.join(format!("{}.sock", system.address().id()));
    let addr = nix::sys::socket::UnixAddr::new(&mine).unwrap();
    let mut held: Vec<OwnedFd> = Vec::new();
    loop {
        let fd = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_NONBLOCK | nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        // SAFETY: a descriptor just returned by socket(2), owned here from now on.
        let fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        match nix::sys::socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => held.push(fd),
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("connect: {e}"),
        }
        assert!(held.len() < 100_000, "the backlog never filled");
    }
    // The admin owes this endpoint a ChildExited: it must not wait for room in the backlog.
    let pid = sys.pid_of(&mut system, &echo);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    crate::support::wait_gone(pid);
    let mut status = sys
        .command(&crate::support::bin("greenroom"))
        .arg("status")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    let answered = loop {
        if let Some(s) = status.try_wait().unwrap() {
            break s.success();
        }
        if std::time::Instant::now() > deadline {
            let _ = status.kill();
            let _ = status.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(held);
    assert!(answered, "the admin stopped answering");
}

#[test]
fn a_notice_a_program_never_takes_does_not_block_its_asks() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    // A ChildExited this program never takes (it asks, and ask passes over it).
    let gone = system.create_actor_by_name("Echo", None).unwrap();
    system.tell_exit(&gone).unwrap();
    crate::support::wait_for("the notice to arrive", || {
        system.sleep(Duration::from_millis(5)).unwrap();
        sys.status(&mut system).iter().all(|a| a.address != gone)
    });
    // Then more than the program's queue ring holds (2 × 64 MiB and 3 frames of 64 MiB) in
    // answers, each taken as it comes.
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let big = serde_bytes::ByteBuf::from(vec![7u8; 1 << 20]);
    for i in 0..340 {
        let answer = system.ask(&echo, &big, PATIENCE);
        assert!(answer.is_ok(), "ask {i}: {answer:?}");
    }
    // The notice is still there for listen_any.
    let notice = system
        .listen_any(PATIENCE)
        .unwrap()
        .expect("the ChildExited");
    assert!(
        notice.msg.is::<greenroom::ChildExited>(),
        "{:?}",
        notice.msg
    );
}

#[test]
fn a_message_a_program_leaves_unread_does_not_block_its_asks_and_is_kept() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    // An answer this program leaves unread while it asks for more than its queue ring holds.
    system.tell(&echo, "left unread").unwrap();
    let big = serde_bytes::ByteBuf::from(vec![7u8; 1 << 20]);
    for i in 0..340 {
        let answer = system.ask(&echo, &big, PATIENCE);
        assert!(answer.is_ok(), "ask {i}: {answer:?}");
    }
    let kept = system.listen(PATIENCE).unwrap().expect("the unread answer");
    assert_eq!(kept.decode::<String>().unwrap(), "left unread");
}
