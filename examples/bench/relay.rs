//! The floor under any remote ask that crosses one shared link per pair of members.
//!
//! A program's message to an actor on another member crosses three processes each way when a
//! process other than the two ends carries the link: program → its member's carrier (Unix
//! socket) → the other member's carrier (TCP) → the actor (Unix socket). This measures that
//! shape with nothing else in it: four processes, the two in the middle copying bytes from one
//! socket to the other as soon as `poll` says they are there, no framing, no encryption, no
//! accounting. What a remote ask costs above this figure is greenroom's; what this costs above a
//! TCP ping-pong is the shape's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// A relay process: copies whatever arrives on standard input to standard output and back
/// (both are sockets), until either end closes.
pub fn relay() {
    let a = super::stdin_socket();
    // SAFETY: standard output is the socket the parent handed over; it is used only here.
    let b: std::fs::File = unsafe { std::os::fd::FromRawFd::from_raw_fd(1) };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (ra, rb) = {
            let mut fds = [
                PollFd::new(a.as_fd(), PollFlags::POLLIN),
                PollFd::new(b.as_fd(), PollFlags::POLLIN),
            ];
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                return;
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        for (ready, mut from, mut to) in [(ra, &a, &b), (rb, &b, &a)] {
            if !ready {
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn spawn(mode: &str, stdin: OwnedFd, stdout: Option<OwnedFd>) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.arg(mode).stdin(Stdio::from(stdin));
    if let Some(out) = stdout {
        c.stdout(Stdio::from(out));
    }
    c.spawn().unwrap()
}

/// Round trips of 8 bytes from this process through two relays (Unix, then TCP loopback) to an
/// echoing process and back.
pub fn relay_ping_pong(rounds: usize) -> Vec<Duration> {
    let (mut ours, to_first) = UnixStream::pair().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let across = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (arrived, _) = listener.accept().unwrap();
    for s in [&across, &arrived] {
        s.set_nodelay(true).unwrap();
    }
    let (to_echo, echo_end) = UnixStream::pair().unwrap();
    let mut children = vec![
        spawn("--relay", to_first.into(), Some(across.into())),
        spawn("--relay", arrived.into(), Some(to_echo.into())),
        spawn("--raw-pong", echo_end.into(), None),
    ];
    let mut buf = [0u8; 8];
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds + 1000 {
        let t = Instant::now();
        ours.write_all(&(i as u64).to_le_bytes()).unwrap();
        ours.read_exact(&mut buf).unwrap();
        if i >= 1000 {
            times.push(t.elapsed());
        }
    }
    drop(ours);
    for c in &mut children {
        c.wait().unwrap();
    }
    times
}
