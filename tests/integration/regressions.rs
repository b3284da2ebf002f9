//! Regression tests for the breaks found by trying greenroom as a hostile or unlucky user
//! would (issue 6, measured at commit 8d6d349). Each test is named after what it guards and
//! fails on that commit.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use greenroom::protocol::{PROTOCOL_VERSION, Request, Response, Role};

use crate::support::{PATIENCE, TestSystem, rss_kib};

/// A raw control connection to `admin.sock`, as a program in another language would open it.
pub struct RawClient {
    pub stream: UnixStream,
}

impl RawClient {
    pub fn connect(sys: &TestSystem) -> RawClient {
        let stream = UnixStream::connect(sys.dir.join("admin.sock")).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        RawClient { stream }
    }

    /// Connect and say Hello; returns the client and the endpoint address it was given.
    pub fn greeted(sys: &TestSystem) -> (RawClient, String) {
        let mut c = RawClient::connect(sys);
        c.send(&Request::Hello {
            version: PROTOCOL_VERSION,
            role: Role::Client {
                pid: std::process::id(),
                owner: false,
            },
        });
        match c.response() {
            Some(Response::Welcome { endpoint, .. }) => (c, endpoint.to_string()),
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    pub fn send(&mut self, req: &Request) {
        self.stream
            .write_all(&greenroom::wire::encode(req).unwrap())
            .unwrap();
    }

    pub fn send_frame(&mut self, body: &[u8]) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.stream.write_all(&frame).unwrap();
    }

    /// The next response, or `None` if the admin closed the connection.
    pub fn response(&mut self) -> Option<Response> {
        let mut len = [0u8; 4];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a response: {e}"),
        }
        let mut body = vec![0; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).unwrap();
        Some(greenroom::wire::decode(&body, "response").unwrap())
    }

    /// The next response must be an error of `kind`; returns its message.
    pub fn expect_error(&mut self, kind: &str) -> String {
        match self.response() {
            Some(Response::Error {
                kind: k, message, ..
            }) if k == kind => message,
            other => panic!("expected a {kind} error, got {other:?}"),
        }
    }

    pub fn expect_closed(&mut self) {
        assert!(self.response().is_none(), "the connection is still open");
    }
}

#[test]
fn a_garbage_frame_that_looks_like_a_variant_index_does_not_shut_the_system_down() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    // `06 ff`: rmp_serde reads the integer 6 as the index of `Shutdown` and ignores the `ff`.
    // Sent first, and again after a proper Hello.
    for greet in [false, true] {
        let mut raw = if greet {
            RawClient::greeted(&sys).0
        } else {
            RawClient::connect(&sys)
        };
        raw.send_frame(&[0x06, 0xff]);
        let message = raw.expect_error("BadRequest");
        assert!(message.contains("could not decode"), "{message}");
        raw.expect_closed();
    }
    // Every other kind of loose encoding is refused the same way, and changes nothing.
    let loose: Vec<Vec<u8>> = vec![
        vec![0x00], // index 0: Hello
        vec![0x05], // index 5: Status
        [
            rmp_serde::to_vec_named(&Request::Status).unwrap(),
            vec![0xc0],
        ]
        .concat(), // trailing byte
        rmp_serde::to_vec_named(&"Reboot").unwrap(), // unknown variant
        b"\x81\xa6Create\x94\xa4Echo\xc0\xa4junk\xc0".to_vec(), // struct as an array
    ];
    for body in &loose {
        let (mut raw, _) = RawClient::greeted(&sys);
        raw.send_frame(body);
        raw.expect_error("BadRequest");
        raw.expect_closed();
    }
    assert!(sys.dir.exists(), "the system directory was removed");
    assert_eq!(sys.status(&mut system).len(), 1, "actors were stopped");
    let reply = system.ask(&echo, "still here?", PATIENCE);
    assert!(reply.is_ok(), "the actor no longer answers: {reply:?}");
}

#[test]
fn a_request_before_hello_is_refused_and_the_connection_closed() {
    let sys = TestSystem::start();
    let mut raw = RawClient::connect(&sys);
    raw.send(&Request::Status);
    let message = raw.expect_error("BadRequest");
    assert!(message.contains("must be Hello"), "{message}");
    raw.expect_closed();
    let mut raw = RawClient::connect(&sys);
    raw.send(&Request::Hello {
        version: PROTOCOL_VERSION + 1,
        role: Role::Client {
            pid: 1,
            owner: false,
        },
    });
    let message = raw.expect_error("BadVersion");
    assert!(message.contains("protocol version"), "{message}");
}

#[test]
fn a_well_formed_create_with_a_bad_value_is_refused_and_the_client_keeps_its_connection() {
    let sys = TestSystem::start();
    let (mut raw, endpoint) = RawClient::greeted(&sys);
    let id = endpoint.split('@').next().unwrap();
    let socket = sys.dir.join(format!("{id}.sock"));
    let _bound = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // The right shape, but the parent is not an address.
    raw.send_frame(
        &rmp_serde::to_vec_named(&std::collections::BTreeMap::from([(
            "Create",
            std::collections::BTreeMap::from([("type_name", "Echo"), ("parent", "not an address")]),
        )]))
        .unwrap(),
    );
    let message = raw.expect_error("BadRequest");
    assert!(message.contains("not a greenroom address"), "{message}");
    // Still connected, still served, and its endpoint socket is still there.
    raw.send(&Request::Status);
    assert!(matches!(raw.response(), Some(Response::Status(_))));
    assert!(socket.exists(), "the client's endpoint socket was deleted");
}

#[test]
fn headers_that_promise_64_mib_cost_nothing_until_the_bytes_arrive() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let actor_pid = sys.pid_of(&mut system, &echo);
    assert!(system.ask(&echo, "warm up", PATIENCE).is_ok());
    let before = (rss_kib(sys.admin_pid), rss_kib(actor_pid));
    let header = [0x03, 0xff, 0xff, 0xff];
    let mut held = Vec::new();
    for socket in [
        sys.dir.join("admin.sock"),
        sys.dir.join(format!("{}.sock", echo.id())),
    ] {
        for _ in 0..16 {
            let mut s = UnixStream::connect(&socket).unwrap();
            s.write_all(&header).unwrap();
            held.push(s);
        }
    }
    // Each process accepts the connections in one round of its event loop and reads the
    // headers in the next at the latest: after two more answers from each, both have.
    for _ in 0..2 {
        assert!(system.status().is_ok());
        assert!(system.ask(&echo, "after", PATIENCE).is_ok());
    }
    let after = (rss_kib(sys.admin_pid), rss_kib(actor_pid));
    let grew = |b: u64, a: u64| a.saturating_sub(b) / 1024;
    assert!(
        grew(before.0, after.0) < 32,
        "the admin grew by {} MiB",
        grew(before.0, after.0)
    );
    assert!(
        grew(before.1, after.1) < 32,
        "the actor grew by {} MiB",
        grew(before.1, after.1)
    );
}

#[test]
fn a_planted_symlink_is_refused_and_nothing_outside_the_system_directory_is_touched() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let sys = TestSystem::empty();
    let victim = sys.tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(victim.join("precious.sock"), b"keep").unwrap();
    std::fs::create_dir(sys.tmp.path().join("greenroom")).unwrap();
    // The system directory is a link to someone else's directory.
    symlink(&victim, &sys.dir).unwrap();
    let admin = sys
        .command(&crate::support::bin("greenroom-admin"))
        .output()
        .unwrap();
    assert_eq!(admin.status.code(), Some(1));
    let err = String::from_utf8_lossy(&admin.stderr);
    assert!(
        err.contains("refusing to use") && err.contains("symbolic link"),
        "{err}"
    );
    let err = sys.cli_err(&["start"]);
    assert!(err.contains("symbolic link"), "{err}");
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o777, "the link's target was chmodded");
    assert!(
        victim.join("precious.sock").exists(),
        "a file outside was removed"
    );
    std::fs::remove_file(&sys.dir).unwrap();
}

#[test]
fn absurd_cli_values_get_a_clear_error_not_a_panic() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let silent = system
        .create_actor_by_name("Silent", None)
        .unwrap()
        .to_string();
    for t in ["1e19", "1e300", "-1", "NaN", "inf"] {
        let err = sys.cli_err(&["ask", &silent, "\"x\"", &format!("--timeout={t}")]);
        assert!(err.contains("--timeout must be"), "{t}: {err}");
    }
    for (flag, value) in [
        ("--exit-grace-ms", "99999999999999"),
        ("--max-frame-bytes", "0"),
        ("--max-frame-bytes", "99999999999999"),
    ] {
        let out = sys
            .command(&crate::support::bin("greenroom-admin"))
            .args(["--system", "other", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains("is not in"), "{err}");
    }
}

#[test]
fn load_returns_when_the_binary_exits_even_if_its_child_holds_stdout() {
    let sys = TestSystem::start();
    let pidfile = sys.tmp.path().join("sleeper.pid");
    let script = sys.tmp.path().join("lingers.sh");
    std::fs::write(
        &script,
        format!(
            // Only the answer to --greenroom-list-types lingers; run as an actor (the admin
            // starts a spare of every loaded binary) it fails at once.
            "#!/bin/sh\n[ \"$1\" = --greenroom-list-types ] || exit 3\nsleep 120 &\necho $! > {}\necho 'greenroom-actor-binary 1'\necho Lingerer\n",
            pidfile.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let started = std::time::Instant::now();
    let out = sys.cli(&["load", script.to_str().unwrap()]);
    let took = started.elapsed();
    let sleeper: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: the sleeper is the grandchild this test started (its pid is in our file).
    unsafe { libc::kill(sleeper, libc::SIGKILL) };
    crate::support::wait_gone(sleeper as u32);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Lingerer");
    // The old reader waited for the sleeper to close the pipe (120 s).
    assert!(
        took < std::time::Duration::from_secs(60),
        "load took {took:?}"
    );
}

#[test]
fn running_out_of_file_descriptors_is_reported_as_such() {
    // The CLI, unable to start the binary it is asked to load.
    let sys = TestSystem::start();
    let zoo = crate::support::example("zoo");
    let out = sys
        .command(std::path::Path::new("sh"))
        .args(["-c", "ulimit -n 8 && exec \"$0\" load \"$1\""])
        .arg(crate::support::bin("greenroom"))
        .arg(&zoo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("too many files are open"), "{err}");
    assert!(!err.contains("not a greenroom actor binary"), "{err}");
    drop(sys);

    // The admin, unable to start more actors: it says why, and keeps serving.
    let mut sys = TestSystem::empty();
    sys.start_admin_with_fd_limit(24);
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let mut refused = None;
    for _ in 0..24 {
        match system.create_actor_by_name("Echo", None) {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let refused = refused.expect("24 descriptors should not be enough for 24 actors");
    assert!(refused.contains("too many files are open"), "{refused}");
    assert!(
        !refused.contains("not a greenroom actor binary"),
        "{refused}"
    );
    sys.status(&mut system);
}

#[test]
fn addresses_are_never_reused_after_the_admin_restarts() {
    let mut sys = TestSystem::start();
    let mut old = Vec::new();
    {
        let mut system = sys.connect();
        sys.load_zoo(&mut system);
        for _ in 0..4 {
            old.push(system.create_actor_by_name("Echo", None).unwrap());
        }
        for a in &old {
            sys.pid_of(&mut system, a);
        }
    }
    // Once after a kill -9 of the admin, once after a clean shutdown.
    for clean in [false, true] {
        if clean {
            sys.shutdown();
        } else {
            sys.kill_admin();
        }
        sys.start_admin(&[]);
        let mut system = sys.connect();
        sys.load_zoo(&mut system);
        let mut new = Vec::new();
        for _ in 0..8 {
            new.push(system.create_actor_by_name("Echo", None).unwrap());
        }
        for a in &new {
            assert!(!old.contains(a), "{a} was handed out before the restart");
        }
        for a in &old {
            assert!(
                matches!(
                    system.tell(a, "hello?"),
                    Err(greenroom::Error::DeadActor(_))
                ),
                "{a} from before the restart still reaches an actor"
            );
        }
        old.extend(new);
    }
}

#[test]
fn forty_actors_told_to_exit_at_once_are_all_reported_as_requested() {
    #[derive(serde::Serialize)]
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
                count: 40,
                kind: "Echo".into(),
            },
        )
        .unwrap();
    let kids: Vec<greenroom::Address> = crate::messaging::expect_msg(&mut system, "Vec<Address>");
    for kid in &kids {
        system.tell_exit(kid).unwrap();
    }
    let mut notices: Vec<greenroom::ChildExited> = Vec::new();
    crate::support::wait_for("40 ChildExited notices", || {
        let reply = system.ask(&parent, "report", PATIENCE).unwrap();
        notices = reply.decode().unwrap();
        notices.len() == 40
    });
    let wrong: Vec<_> = notices
        .iter()
        .filter(|n| n.reason != greenroom::ExitReason::Requested)
        .collect();
    assert!(wrong.is_empty(), "misreported: {wrong:?}");
}

/// A `DeadHandler` registered as the system's dead-letter handler.
pub(crate) fn dead_letter_handler(system: &mut greenroom::ActorSystem) -> greenroom::Address {
    let handler = system.create_actor_by_name("DeadHandler", None).unwrap();
    let done = system.ask(&handler, "register", PATIENCE).unwrap();
    assert_eq!(done.decode::<String>().unwrap(), "done");
    handler
}

/// The `u64`s the handler has received as dead letters, once there are `count` of them.
pub(crate) fn dead_numbers(
    system: &mut greenroom::ActorSystem,
    handler: &greenroom::Address,
    count: usize,
) -> Vec<u64> {
    let mut numbers = Vec::new();
    crate::support::wait_for(&format!("{count} dead letters"), || {
        let reply = system.ask(handler, "report", PATIENCE).unwrap();
        let dead: Vec<greenroom::DeadEnvelope> = reply.decode().unwrap();
        numbers = dead.iter().filter_map(|d| d.message.get::<u64>()).collect();
        numbers.len() >= count
    });
    numbers.sort();
    numbers
}

/// A zoo `Relay` that passes every `u64` it handles on to this endpoint.
fn relay_to_me(system: &mut greenroom::ActorSystem) -> greenroom::Address {
    #[derive(serde::Serialize)]
    struct Link {
        next: greenroom::Address,
        tag: String,
    }
    let relay = system.create_actor_by_name("Relay", None).unwrap();
    let me = system.address().clone();
    let linked = system
        .ask(
            &relay,
            &Link {
                next: me,
                tag: String::new(),
            },
            PATIENCE,
        )
        .unwrap();
    assert_eq!(linked.decode::<String>().unwrap(), "linked");
    relay
}

#[test]
fn messages_behind_an_exit_request_are_dead_lettered_not_lost() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let handler = dead_letter_handler(&mut system);
    let relay = relay_to_me(&mut system);
    let mut sent = Vec::new();
    for n in 0..500u64 {
        system.tell(&relay, &n).unwrap();
        sent.push(n);
    }
    system.tell_exit(&relay).unwrap();
    for n in 500..1000u64 {
        // Once the relay is gone a message is refused (the caller keeps it): not sent.
        match system.tell(&relay, &n) {
            Ok(()) => sent.push(n),
            Err(greenroom::Error::DeadActor(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // Handled: passed on to us, in order, before its ChildExited.
    let mut handled = Vec::new();
    loop {
        let env = system
            .listen_any(PATIENCE)
            .unwrap()
            .expect("relay's output");
        if let Some(n) = env.msg.get::<u64>() {
            handled.push(n);
        } else if env
            .msg
            .get::<greenroom::ChildExited>()
            .is_some_and(|c| c.child == relay)
        {
            break;
        }
    }
    assert_eq!(
        handled,
        (0..500).collect::<Vec<_>>(),
        "the first 500 are handled"
    );
    let dead = dead_numbers(&mut system, &handler, sent.len() - 500);
    assert_eq!(
        dead,
        sent[500..].to_vec(),
        "every message sent after the ExitRequest comes back exactly once"
    );
}

#[test]
fn a_burst_to_a_peer_that_ends_mid_handler_comes_back_as_dead_letters() {
    use crate::support::wait_for;
    for kill in [false, true] {
        let sys = TestSystem::start();
        let mut system = sys.connect();
        sys.load_zoo(&mut system);
        let handler = dead_letter_handler(&mut system);
        let relay = relay_to_me(&mut system);
        let relay_pid = sys.pid_of(&mut system, &relay);
        let burster = system.create_actor_by_name("Burster", None).unwrap();
        let release = sys.tmp.path().join("release");
        #[derive(serde::Serialize)]
        struct BurstPlan {
            to: greenroom::Address,
            first: u64,
            then: u64,
            release: std::path::PathBuf,
        }
        let plan = BurstPlan {
            to: relay.clone(),
            first: 4,
            then: 100,
            release: release.clone(),
        };
        system.tell(&burster, &plan).unwrap();
        let mut first = Vec::new();
        while first.len() < 4 {
            let msg = system.listen(PATIENCE).unwrap().expect("the first burst");
            first.push(msg.decode::<u64>().unwrap());
        }
        assert_eq!(first, [0, 1, 2, 3]);
        // The receiver ends while the burster's handler is paused, its connection open.
        if kill {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(relay_pid as i32),
                nix::sys::signal::SIGKILL,
            )
            .unwrap();
        } else {
            system.tell_exit(&relay).unwrap();
        }
        crate::support::wait_gone(relay_pid);
        wait_for("the relay to be reaped", || {
            !sys.status(&mut system).iter().any(|a| a.address == relay)
        });
        std::fs::write(&release, b"").unwrap();
        let done = system.listen(PATIENCE).unwrap().expect("burst done");
        assert_eq!(done.decode::<String>().unwrap(), "burst done");
        let dead = dead_numbers(&mut system, &handler, 100);
        assert_eq!(dead, (4..104).collect::<Vec<_>>(), "kill: {kill}");
    }
}

#[test]
fn an_over_limit_send_from_a_handler_is_an_error_and_the_actor_lives_on() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let bloater = system.create_actor_by_name("Bloater", None).unwrap();
    let pid = sys.pid_of(&mut system, &bloater);
    // 70 MiB is over the 64 MiB limit: the reply fails in the handler, twice, and the request
    // comes back as Poison saying why.
    system.tell(&bloater, &(70u64 << 20)).unwrap();
    let reply = system.listen(PATIENCE).unwrap().expect("an answer");
    let poison: greenroom::Poison = reply.decode().unwrap();
    assert!(
        poison.details.contains("exceeds the limit"),
        "{}",
        poison.details
    );
    assert!(!poison.possibly_handled);
    // Still the same process, still answering.
    let small = system.ask(&bloater, &10u64, PATIENCE).unwrap();
    assert_eq!(small.type_name(), "Blob");
    assert_eq!(sys.pid_of(&mut system, &bloater), pid);
}

#[test]
fn the_ledger_adds_up_in_status_and_in_the_cli() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let handler = dead_letter_handler(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let flaky = system.create_actor_by_name("Flaky", None).unwrap();
    for n in 0..10u64 {
        system.ask(&echo, &n, PATIENCE).unwrap();
    }
    system.tell(&flaky, "panic").unwrap();
    let p = system.listen(PATIENCE).unwrap().unwrap();
    assert!(p.is::<greenroom::Poison>());
    let courier = system.create_actor_by_name("Courier", None).unwrap();
    let relay = relay_to_me(&mut system);
    system.tell_exit(&relay).unwrap();
    crate::support::wait_for("the relay to end", || {
        !sys.status(&mut system).iter().any(|a| a.address == relay)
    });
    #[derive(serde::Serialize)]
    struct Deliver {
        to: greenroom::Address,
        text: String,
    }
    system
        .tell(
            &courier,
            &Deliver {
                to: relay,
                text: "late".into(),
            },
        )
        .unwrap();
    crate::support::wait_for("the dead letter", || {
        let r = system.ask(&handler, "report", PATIENCE).unwrap();
        !r.decode::<Vec<greenroom::DeadEnvelope>>()
            .unwrap()
            .is_empty()
    });
    let mut ledger = greenroom::Ledger::default();
    crate::support::wait_for("the system to settle", || {
        // Take what waits for this endpoint (a ChildExited): it is in flight until taken.
        while system
            .listen_any(std::time::Duration::ZERO)
            .unwrap()
            .is_some()
        {}
        ledger = system.system_status().unwrap().ledger;
        ledger.in_flight == 0
    });
    assert_eq!(
        ledger.sent,
        ledger.handled + ledger.poisoned + ledger.dead_lettered + ledger.dropped,
        "{ledger:?}"
    );
    assert!(
        ledger.sent >= 30 && ledger.poisoned >= 1 && ledger.dead_lettered >= 1,
        "{ledger:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&sys.cli_ok(&["status", "--json"])).unwrap();
    for key in [
        "sent",
        "handled",
        "poisoned",
        "dead_lettered",
        "dropped",
        "in_flight",
    ] {
        assert!(json["ledger"][key].is_u64(), "no ledger.{key} in {json}");
    }
    let one = sys.cli_ok(&["status", &echo.to_string(), "--json"]);
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert!(one["ledger"]["handled"].as_u64().unwrap() >= 10, "{one}");
}
