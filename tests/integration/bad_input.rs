//! Bad input of every kind gets a clear error, and nothing already accepted is lost.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use greenroom::protocol::Response;

use crate::messaging::{Expect, Report, expect_msg};
use crate::support::{PATIENCE, TestSystem, wait_for};

/// Read one response frame from a raw admin connection.
fn read_response(stream: &mut UnixStream) -> Response {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    greenroom::wire::decode(&body, "response").unwrap()
}

fn assert_closed(stream: &mut UnixStream) {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn garbage_and_oversized_frames_on_the_admin_socket_get_an_error_and_the_admin_keeps_serving() {
    let sys = TestSystem::start();
    let socket = sys.dir.join("admin.sock");
    let mut system = sys.connect();

    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage
        .write_all(b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1")
        .unwrap();
    match read_response(&mut garbage) {
        Response::Error { kind, message, .. } => {
            assert_eq!(kind, "BadRequest");
            assert!(message.contains("could not decode"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_closed(&mut garbage);

    let mut huge = UnixStream::connect(&socket).unwrap();
    huge.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    match read_response(&mut huge) {
        Response::Error { message, .. } => {
            assert!(message.contains("exceeds the limit"), "{message}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_closed(&mut huge);

    let mut noise = UnixStream::connect(&socket).unwrap();
    noise.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(matches!(read_response(&mut noise), Response::Error { .. }));

    // Everyone else is still served.
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    assert!(system.ask(&echo, "still here?", PATIENCE).is_ok());
}

#[test]
fn malformed_and_oversized_frames_to_an_actor_lose_nothing_from_its_other_senders() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let sink = system.create_actor_by_name("Sink", None).unwrap();
    let me = system.address().clone();
    system
        .tell(
            &sink,
            &Expect {
                count: 200,
                notify: me,
            },
        )
        .unwrap();
    let socket = sys.dir.join(format!("{}.sock", sink.id()));
    for n in 0..100u64 {
        system.tell(&sink, &n).unwrap();
    }
    let mut bad = UnixStream::connect(&socket).unwrap();
    bad.write_all(b"\x00\x00\x00\x03abc").unwrap();
    let mut huge = UnixStream::connect(&socket).unwrap();
    huge.write_all(&[0x7f, 0xff, 0xff, 0xff]).unwrap();
    for n in 100..200u64 {
        system.tell(&sink, &n).unwrap();
    }
    let report: Report = expect_msg(&mut system, "Report");
    assert_eq!(report.received, 200);
    assert!(report.in_order);
    // The oversized sender's connection was closed by the actor.
    huge.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(huge.read(&mut [0u8; 1]).unwrap(), 0);
}

#[test]
fn an_unknown_actor_type_is_refused_with_the_known_types_and_the_fix() {
    let sys = TestSystem::start();
    let err = sys.cli_err(&["create", "Nope"]);
    assert!(err.contains("unknown actor type 'Nope'"), "{err}");
    assert!(err.contains("greenroom load"), "{err}");
    sys.cli_ok(&["load", crate::support::example("zoo").to_str().unwrap()]);
    let err = sys.cli_err(&["create", "Nope"]);
    assert!(
        err.contains("known types: ") && err.contains("Blocker, "),
        "{err}"
    );
}

#[test]
fn a_binary_that_is_not_a_greenroom_actor_binary_is_refused() {
    let sys = TestSystem::start();
    for args in [
        vec!["load", "/bin/true"],
        vec!["load", "/bin/ls"],
        vec!["create", "Echo", "--binary", "/bin/sh"],
        vec!["load", "/no/such/file"],
    ] {
        let err = sys.cli_err(&args);
        assert!(
            err.contains("is not a greenroom actor binary"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn bad_json_and_bad_addresses_at_the_cli_say_what_to_do() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system
        .create_actor_by_name("Echo", None)
        .unwrap()
        .to_string();
    let err = sys.cli_err(&["tell", &echo, "hi"]);
    assert!(
        err.contains("not valid JSON") && err.contains("'\"hi\"'"),
        "{err}"
    );
    let err = sys.cli_err(&["ask", &echo, "{oops"]);
    assert!(err.contains("not valid JSON"), "{err}");
    for bad in ["nonsense", "x@/tmp", "7@relative"] {
        let err = sys.cli_err(&["tell", bad, "\"hi\""]);
        assert!(err.contains("is not a greenroom address"), "{bad}: {err}");
        assert!(err.contains("greenroom create"), "{bad}: {err}");
    }
    let err = sys.cli_err(&["--system", "../escape", "status"]);
    assert!(err.contains("not a valid system name"), "{err}");
}

#[test]
fn the_address_of_an_exited_actor_is_reported_as_not_running() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    system.tell_exit(&echo).unwrap();
    wait_for("Echo to exit", || sys.status(&mut system).is_empty());
    let text = echo.to_string();
    for args in [
        vec!["tell", &text, "\"hi\""],
        vec!["ask", &text, "\"hi\""],
        vec!["exit", &text],
    ] {
        let err = sys.cli_err(&args);
        assert!(err.contains("is not running"), "{args:?}: {err}");
    }
    assert!(matches!(
        system.tell(&echo, "hi"),
        Err(greenroom::Error::DeadActor(_))
    ));
}

#[test]
fn commands_with_no_admin_running_say_how_to_start_one() {
    let sys = TestSystem::empty();
    for args in [
        vec!["status"],
        vec!["shutdown"],
        vec!["create", "Echo"],
        vec!["tell", "1@/tmp/x", "\"hi\""],
    ] {
        let err = sys.cli_err(&args);
        assert!(
            err.contains("no greenroom admin is running"),
            "{args:?}: {err}"
        );
        assert!(err.contains("greenroom start"), "{args:?}: {err}");
    }
}

#[test]
fn ask_with_no_reply_exits_1_with_a_clear_message() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let silent = system
        .create_actor_by_name("Silent", None)
        .unwrap()
        .to_string();
    let err = sys.cli_err(&["ask", &silent, "\"hello?\"", "--timeout", "0.2"]);
    assert!(
        err.contains("no reply from") && err.contains("0.2 s"),
        "{err}"
    );
}

#[test]
fn garbage_sent_to_an_external_endpoint_does_not_disturb_its_replies() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let mine = sys.dir.join(format!("{}.sock", system.address().id()));
    let mut garbage = UnixStream::connect(&mine).unwrap();
    garbage.write_all(b"\x00\x00\x00\x04junk").unwrap();
    let mut huge = UnixStream::connect(&mine).unwrap();
    huge.write_all(&[0xff; 8]).unwrap();
    for n in 0..50u32 {
        let reply = system.ask(&echo, &n, PATIENCE).unwrap();
        assert_eq!(reply.decode::<u32>().unwrap(), n);
    }
}

#[test]
fn an_ask_the_actor_fails_on_says_so_and_exits_1() {
    let sys = TestSystem::start();
    sys.cli_ok(&["load", crate::support::example("zoo").to_str().unwrap()]);
    let flaky = sys.cli_ok(&["create", "Flaky"]);
    let err = sys.cli_err(&["ask", &flaky, "\"panic\""]);
    assert!(
        err.contains("could not handle the message") && err.contains("boom"),
        "{err}"
    );
    // The actor is still there.
    assert_eq!(sys.cli_ok(&["ask", &flaky, "\"attempts\""]), "2");
}
