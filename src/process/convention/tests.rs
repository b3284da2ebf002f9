//! Two ends of a link in one process, driven by one event loop.

use std::collections::BTreeMap;

use super::link::{Link, Terms};
use super::wire::{Heard, LINK_VERSION, LinkMsg};
use super::*;

fn key(byte: u8) -> Secret {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::write(&path, format!("{}\n", format!("{byte:02x}").repeat(32))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Secret::read(&path).unwrap()
}

fn hello(name: &str) -> LinkMsg {
    LinkMsg::Hello {
        version: LINK_VERSION,
        system: name.into(),
        address: "127.0.0.1:1".into(),
        capabilities: BTreeMap::new(),
    }
}

/// A connected pair (dialer, acceptor) with these secrets, and what each received until both
/// stopped receiving or one broke.
fn pair(
    dialer: &Secret,
    acceptor: &Secret,
    send: Vec<LinkMsg>,
) -> (Vec<LinkMsg>, Vec<LinkMsg>, Option<String>) {
    let mut poll = mio::Poll::new().unwrap();
    let registry = poll.registry().try_clone().unwrap();
    let mut listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let at = listener.local_addr().unwrap();
    registry
        .register(&mut listener, Token(0), Interest::READABLE)
        .unwrap();
    let terms = |secret, name| Terms {
        registry: &registry,
        secret,
        hello: hello(name),
        limit: 1 << 20,
    };
    let mut a = Link::connect(at, Token(1), &terms(dialer, "a")).unwrap();
    let mut b: Option<Link> = None;
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let mut events = mio::Events::with_capacity(16);
    let mut sent = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        if events.is_empty() && got_b.len() > send.len() && !got_a.is_empty() {
            break;
        }
        for event in events.iter() {
            let result = match event.token() {
                Token(0) => {
                    let (stream, _) = listener.accept().unwrap();
                    b = Some(Link::accept(stream, Token(2), &terms(acceptor, "b")).unwrap());
                    Ok(())
                }
                Token(1) => a.on_event(event, &registry).map(|m| got_a.extend(m)),
                _ => match b.as_mut() {
                    Some(b) => b.on_event(event, &registry).map(|m| got_b.extend(m)),
                    None => Ok(()),
                },
            };
            if let Err(why) = result {
                return (got_a, got_b, Some(why));
            }
        }
        if !sent && a.is_open() {
            sent = true;
            for m in &send {
                a.send(m, &registry).unwrap();
            }
        }
    }
    (got_a, got_b, None)
}

#[test]
fn a_link_says_hello_both_ways_and_carries_frames_longer_than_a_noise_message() {
    let secret = key(1);
    let mut capabilities = BTreeMap::new();
    for i in 0..120 {
        capabilities.insert(format!("k{i}"), "v".repeat(1000));
    }
    let big = LinkMsg::View {
        members: vec![Heard {
            address: "127.0.0.1:1".into(),
            system: "a".into(),
            capabilities,
            ago_ms: 0,
        }],
    };
    let (got_a, got_b, broken) = pair(&secret, &secret, vec![big.clone(), LinkMsg::Heartbeat]);
    assert_eq!(broken, None);
    assert_eq!(got_a, [hello("b")]);
    assert_eq!(got_b, [hello("a"), big, LinkMsg::Heartbeat]);
}

#[test]
fn a_link_between_different_secrets_breaks_in_the_handshake() {
    let (got_a, got_b, broken) = pair(&key(1), &key(2), vec![LinkMsg::Heartbeat]);
    let why = broken.expect("the link must break");
    assert!(why.contains("secret") || why.contains("closed"), "{why}");
    assert!(got_a.is_empty() && got_b.is_empty());
}
