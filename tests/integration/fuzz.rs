//! Random and mutated frames (seeded, so a failure can be replayed with the seed it prints) at
//! the admin's socket and at an actor's: afterwards the same actors run in the same processes,
//! nothing has shut down, asks are answered, and neither process has grown by more than a few
//! MiB. Set `GREENROOM_FUZZ_SEED` to replay a seed; `GREENROOM_FUZZ_FRAMES` for a longer run.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use greenroom::Address;
use greenroom::protocol::{PROTOCOL_VERSION, Request, Role, SenderHello};
use serde::Serialize;

use crate::support::{PATIENCE, TestSystem, rss_kib};

/// A small, seeded random number generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// An address in the system's directory that no actor has.
fn ghost(dir: &Path, id: u64) -> Address {
    format!("{id}@{}", dir.display()).parse().unwrap()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// A message frame's body, as the wire has it.
#[derive(Serialize)]
struct MessageMap<'a> {
    #[serde(rename = "type")]
    type_name: &'a str,
    #[serde(with = "serde_bytes")]
    body: &'a [u8],
    /// The request an answer belongs to (see PROTOCOL.md, "Asks").
    #[serde(skip_serializing_if = "Option::is_none")]
    ask: Option<u64>,
}

/// Well-formed frame bodies to start from. None of them may shut anything down or start an
/// actor by itself: no `Shutdown`, no owner's hello, no type that exists.
fn admin_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let ghost = ghost(dir, 999_999);
    let requests = [
        Request::Hello {
            version: PROTOCOL_VERSION,
            role: Role::Client {
                pid: std::process::id(),
                owner: false,
            },
        },
        Request::Status,
        Request::Members,
        Request::WatchConvention { on: true },
        Request::SetCapability {
            key: "zone".into(),
            value: Some("north".into()),
        },
        Request::DeadLetters { on: false },
        Request::Create {
            type_name: "Nope".into(),
            binary: None,
            parent: ghost.clone(),
            name: None,
            args: Some(serde_bytes::ByteBuf::from(vec![0xc1])),
            requirements: [("gpu".to_string(), "yes".to_string())].into(),
        },
        Request::Load {
            path: "/nonexistent/greenroom-fuzz".into(),
            types: vec!["Nope".into()],
            requires: [(
                "Nope".to_string(),
                [("gpu".to_string(), "yes".to_string())].into(),
            )]
            .into(),
        },
        Request::DeadLetter {
            target: ghost.clone(),
            sender: ghost,
            message: greenroom::Message::new(&7u64).unwrap(),
            kept: None,
            queued: Some(0),
        },
    ];
    requests
        .iter()
        .map(|r| greenroom::wire::encode(r).unwrap()[4..].to_vec())
        .collect()
}

/// Well-formed frame bodies for a message socket: a hello from a sender that does not exist
/// (so that nothing replies into the system), and messages.
fn actor_seeds(dir: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
    let hello = SenderHello {
        version: PROTOCOL_VERSION,
        from: ghost(dir, 999_998),
        conn: 42,
        ledger: false,
        to: None,
    };
    let hello = greenroom::wire::encode(&hello).unwrap()[4..].to_vec();
    let messages = [
        ("u64", vec![7u8], None),
        ("String", b"\xa5hello".to_vec(), Some(1u64 << 40)),
    ]
    .iter()
    .map(|(t, b, ask)| {
        greenroom::wire::encode(&MessageMap {
            type_name: t,
            body: b,
            ask: *ask,
        })
        .unwrap()[4..]
            .to_vec()
    })
    .collect();
    (hello, messages)
}

/// One mutation of `seed`, or random bytes; sometimes with a length header that lies.
fn mutant(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut body = seed.to_vec();
    match rng.below(8) {
        0 => {
            let n = rng.below(64);
            body = rng.bytes(n);
        }
        1 => {
            for _ in 0..=rng.below(3) {
                if !body.is_empty() {
                    let at = rng.below(body.len());
                    body[at] ^= 1 << rng.below(8);
                }
            }
        }
        2 if !body.is_empty() => {
            let at = rng.below(body.len());
            body[at] = rng.next() as u8;
        }
        3 => body.truncate(rng.below(body.len() + 1)),
        4 => {
            let n = 1 + rng.below(16);
            let extra = rng.bytes(n);
            body.extend(extra);
        }
        5 => {
            let at = rng.below(body.len() + 1);
            let n = 1 + rng.below(8);
            let extra = rng.bytes(n);
            body.splice(at..at, extra);
        }
        6 => {
            // Interesting MessagePack markers in interesting places.
            let markers = [
                0xc0, 0xc1, 0xc2, 0xc3, 0xcc, 0xcf, 0xd9, 0xdb, 0xdc, 0xdf, 0x80, 0x90,
            ];
            if !body.is_empty() {
                let at = rng.below(body.len());
                body[at] = markers[rng.below(markers.len())];
            }
        }
        _ => {}
    }
    let mut out = frame(&body);
    if rng.below(10) == 0 {
        // A header that lies: more than is there (up to 64 MiB), or less.
        let claimed = match rng.below(3) {
            0 => 64 << 20,
            1 => body.len() as u32 + 1 + rng.below(1 << 20) as u32,
            _ => rng.below(body.len() + 1) as u32,
        };
        out[..4].copy_from_slice(&claimed.to_be_bytes());
    }
    out
}

/// Write `bytes` and close; the other end may close first, which is fine.
fn throw(socket: &Path, bytes: &[u8]) {
    match UnixStream::connect(socket) {
        Ok(mut s) => {
            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = s.write_all(bytes);
        }
        Err(e) => panic!("{} refused a connection: {e}", socket.display()),
    }
}

fn fuzz_seed() -> u64 {
    std::env::var("GREENROOM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6772_6565_6e72_6f6f)
}

#[test]
fn ten_thousand_random_and_mutated_frames_change_nothing() {
    let frames: usize = std::env::var("GREENROOM_FUZZ_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let seed = fuzz_seed();
    eprintln!("fuzz seed {seed} (replay with GREENROOM_FUZZ_SEED={seed})");
    let mut rng = Rng(seed | 1);
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    // A target that never replies (so a spoofed sender never makes it talk), and a bystander.
    let silent = system.create_actor_by_name("Silent", None).unwrap();
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    let before = sys.status(&mut system);
    let admin_pid = sys.admin_pid;
    let silent_pid = sys.pid_of(&mut system, &silent);
    let (admin_rss, silent_rss) = (rss_kib(admin_pid), rss_kib(silent_pid));
    let admin_sock = sys.dir.join("admin.sock");
    let actor_sock = sys.dir.join(format!("{}.sock", silent.id()));
    let admin = admin_seeds(&sys.dir);
    let (hello, messages) = actor_seeds(&sys.dir);
    for i in 0..frames {
        let mut bytes = Vec::new();
        if i % 2 == 0 {
            // The admin: sometimes after a proper hello, so that requests are reached.
            if rng.below(2) == 0 {
                bytes.extend(frame(&admin[0]));
            }
            for _ in 0..=rng.below(2) {
                let s = &admin[rng.below(admin.len())];
                bytes.extend(mutant(&mut rng, s));
            }
            throw(&admin_sock, &bytes);
        } else {
            if rng.below(3) > 0 {
                bytes.extend(frame(&hello));
            }
            for _ in 0..=rng.below(3) {
                let s = if rng.below(4) == 0 {
                    &hello
                } else {
                    &messages[rng.below(messages.len())]
                };
                bytes.extend(mutant(&mut rng, s));
            }
            throw(&actor_sock, &bytes);
        }
    }
    // Nothing changed: the same actors in the same processes, still answering.
    let reply = system.ask(&echo, "still here?", PATIENCE).unwrap();
    assert_eq!(
        reply.decode::<String>().ok().as_deref(),
        Some("still here?"),
        "seed {seed}"
    );
    let after = sys.status(&mut system);
    assert_eq!(after, before, "seed {seed}: the actors changed");
    assert_eq!(sys.admin_pid, admin_pid);
    let st = system.actor_status(&silent, PATIENCE);
    assert!(st.is_ok(), "seed {seed}: the fuzzed actor does not answer");
    let out = sys.cli_ok(&["status"]);
    assert!(out.contains("Silent"), "{out}");
    let grew = |before: u64, pid: u32| rss_kib(pid).saturating_sub(before);
    assert!(
        grew(admin_rss, admin_pid) < 16 << 10,
        "seed {seed}: the admin grew by {} KiB",
        grew(admin_rss, admin_pid)
    );
    assert!(
        grew(silent_rss, silent_pid) < 16 << 10,
        "seed {seed}: the actor grew by {} KiB",
        grew(silent_rss, silent_pid)
    );
}
