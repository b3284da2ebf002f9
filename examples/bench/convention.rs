//! Convention figures: how long until the other members hear that one is lost.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use greenroom::{ActorSystem, MemberState, SystemConfig, WhenMissing};

/// How long a silent link is trusted (greenroom's `SILENCE`).
pub const SILENCE: Duration = Duration::from_millis(750);

/// Trials per way of losing a member.
pub const LOSSES: usize = 20;

/// How a member is lost.
#[derive(Clone, Copy, Debug)]
pub enum Loss {
    /// Its admin is SIGKILLed: the kernel closes its connections.
    Killed,
    /// Its admin is SIGSTOPped: its connections stay open and silent, as a host cut off.
    Silent,
    /// It is shut down.
    Graceful,
}

/// A member's admin, started from `greenroom-admin` beside this benchmark's binary.
struct Member {
    child: Child,
    dir: PathBuf,
}

impl Member {
    fn start(root: &Path, name: &str, listen: &str, secret: &Path, leader: Option<&str>) -> Member {
        let admin = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("greenroom-admin");
        let dir = root.join(name);
        let mut cmd = Command::new(&admin);
        cmd.args(["--system", name, "--listen", listen, "--secret-file"])
            .arg(secret)
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(l) = leader {
            cmd.args(["--convention", l]);
        }
        // The second member of a pair can run what needs a gpu; the first cannot.
        if name == "b" {
            cmd.args(["--capability", "gpu=yes"]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (cargo build --release)",
                admin.display()
            )
        });
        Member { child, dir }
    }

    /// Attach to it, waiting until its admin answers.
    fn attach(&self) -> ActorSystem {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.try_attach() {
                Ok(system) => return system,
                Err(e) if Instant::now() > deadline => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    fn try_attach(&self) -> greenroom::Result<ActorSystem> {
        ActorSystem::with_config(SystemConfig {
            name: self.dir.file_name().unwrap().to_string_lossy().into_owned(),
            when_missing: WhenMissing::Fail,
            admin_binary: None,
            dir: Some(self.dir.clone()),
            base: Some(greenroom::Base::Multiproc),
            convention: None,
        })
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> nix::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal)
    }
}

impl Drop for Member {
    /// End it for good (whatever state it is in, even when the benchmark fails) and remove
    /// what it left.
    fn drop(&mut self) {
        let _ = self.signal(nix::sys::signal::SIGKILL);
        let _ = self.signal(nix::sys::signal::SIGCONT);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn state_of(observer: &mut ActorSystem, address: &str) -> Option<MemberState> {
    observer
        .members()
        .unwrap()
        .into_iter()
        .find(|m| m.address == address)
        .map(|m| m.state)
}

/// A directory of its own in memory for a benchmark's members, with a fresh secret in it.
fn convention_root() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::Builder::new()
        .prefix("grconv")
        .tempdir_in("/dev/shm")
        .unwrap();
    let secret = root.path().join("secret");
    greenroom::admin::new_secret(&secret).unwrap();
    (root, secret)
}

/// Lose a member `LOSSES` times as `how` says; each figure is from the loss to the moment a
/// member that was not its leader lists it gone (asked every millisecond).
pub fn member_loss(how: Loss) -> Vec<Duration> {
    let (root, secret) = convention_root();
    let leader = Member::start(root.path(), "leader", "127.0.0.2:0", &secret, None);
    let la = leader.attach().system_status().unwrap().convention.unwrap();
    let observer = Member::start(root.path(), "observer", "127.0.0.3:0", &secret, Some(&la));
    let mut o = observer.attach();
    let mut times = Vec::new();
    for trial in 0..LOSSES {
        let name = format!("victim{trial}");
        let victim = Member::start(root.path(), &name, "127.0.0.4:0", &secret, Some(&la));
        let mut v = Some(victim.attach());
        let va = v
            .as_mut()
            .unwrap()
            .system_status()
            .unwrap()
            .convention
            .unwrap();
        while state_of(&mut o, &va) != Some(MemberState::Alive) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        match how {
            Loss::Killed => victim.signal(nix::sys::signal::SIGKILL).unwrap(),
            Loss::Silent => victim.signal(nix::sys::signal::SIGSTOP).unwrap(),
            Loss::Graceful => v.take().unwrap().shutdown().unwrap(),
        }
        while state_of(&mut o, &va) != Some(MemberState::Gone) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{va} never gone"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(started.elapsed());
        drop(v);
        drop(victim);
    }
    drop(o);
    drop(observer);
    drop(leader);
    times
}

// ---- the link's own cost: TCP loopback round trips, in the clear and through Noise ----

/// The key both ends of the benchmark's Noise link use.
const BENCH_KEY: [u8; 32] = [7; 32];

fn noise(initiator: bool) -> snow::HandshakeState {
    let params = "Noise_NNpsk0_25519_AESGCM_BLAKE2s".parse().unwrap();
    let b = snow::Builder::new(params)
        .psk(0, &BENCH_KEY)
        .unwrap()
        .prologue(b"greenroom convention 1")
        .unwrap();
    if initiator {
        b.build_initiator().unwrap()
    } else {
        b.build_responder().unwrap()
    }
}

fn send_noise(s: &mut std::net::TcpStream, msg: &[u8]) {
    use std::io::Write;
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    s.write_all(&out).unwrap();
}

fn read_noise(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) {
    use std::io::Read;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    buf.resize(u16::from_be_bytes(len) as usize, 0);
    s.read_exact(buf).unwrap();
}

/// One end of an encrypted link, after the handshake.
enum Wire {
    Clear,
    Noise(Box<snow::TransportState>),
}

impl Wire {
    fn open(s: &mut std::net::TcpStream, encrypted: bool, initiator: bool) -> Wire {
        if !encrypted {
            return Wire::Clear;
        }
        let mut hs = noise(initiator);
        let (mut msg, mut clear) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut got = Vec::new();
        if initiator {
            let n = hs.write_message(&[], &mut msg).unwrap();
            send_noise(s, &msg[..n]);
            read_noise(s, &mut got);
            hs.read_message(&got, &mut clear).unwrap();
        } else {
            read_noise(s, &mut got);
            hs.read_message(&got, &mut clear).unwrap();
            let n = hs.write_message(&[], &mut msg).unwrap();
            send_noise(s, &msg[..n]);
        }
        Wire::Noise(Box::new(hs.into_transport_mode().unwrap()))
    }

    fn send(&mut self, s: &mut std::net::TcpStream, payload: &[u8; 8]) {
        use std::io::Write;
        match self {
            Wire::Clear => s.write_all(payload).unwrap(),
            Wire::Noise(t) => {
                let mut msg = [0u8; 64];
                let n = t.write_message(payload, &mut msg).unwrap();
                send_noise(s, &msg[..n]);
            }
        }
    }

    fn recv(&mut self, s: &mut std::net::TcpStream, payload: &mut [u8; 8]) -> bool {
        use std::io::Read;
        match self {
            Wire::Clear => s.read_exact(payload).is_ok(),
            Wire::Noise(t) => {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).is_err() {
                    return false;
                }
                let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
                s.read_exact(&mut msg).unwrap();
                t.read_message(&msg, payload).unwrap() == 8
            }
        }
    }
}

/// `bench --tcp-pong ADDR [noise]`: connect to ADDR and echo 8-byte messages until it closes.
pub fn tcp_pong(args: &[String]) {
    let mut s = std::net::TcpStream::connect(&args[0]).unwrap();
    s.set_nodelay(true).unwrap();
    let mut wire = Wire::open(&mut s, args.get(1).is_some_and(|a| a == "noise"), false);
    let mut buf = [0u8; 8];
    while wire.recv(&mut s, &mut buf) {
        wire.send(&mut s, &buf);
    }
}

/// Round trips of 8 bytes over TCP loopback with a child process that echoes them: in the
/// clear, or each way as one Noise transport message (as a convention link carries frames).
pub fn tcp_ping_pong(encrypted: bool, rounds: usize) -> Vec<Duration> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap().to_string();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--tcp-pong", &at, if encrypted { "noise" } else { "clear" }])
        .spawn()
        .unwrap();
    let (mut s, _) = listener.accept().unwrap();
    s.set_nodelay(true).unwrap();
    let mut wire = Wire::open(&mut s, encrypted, true);
    let mut buf = [0u8; 8];
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds + 1000 {
        let t = Instant::now();
        wire.send(&mut s, &(i as u64).to_le_bytes());
        assert!(wire.recv(&mut s, &mut buf));
        if i >= 1000 {
            times.push(t.elapsed());
        }
    }
    drop(s);
    child.wait().unwrap();
    times
}

// ---- messages between members -------------------------------------------------------------

/// Two members on this host, a leader on 127.0.0.2 and a member on 127.0.0.3 (which alone has
/// `gpu=yes`), linked, with the zoo loaded on both; `body` runs with a program attached to each.
pub fn between_members<T>(body: impl FnOnce(&mut ActorSystem, &mut ActorSystem) -> T) -> T {
    let (root, secret) = convention_root();
    let a = Member::start(root.path(), "a", "127.0.0.2:0", &secret, None);
    let mut on_a = a.attach();
    let aa = on_a.system_status().unwrap().convention.unwrap();
    let b = Member::start(root.path(), "b", "127.0.0.3:0", &secret, Some(&aa));
    let mut on_b = b.attach();
    let ba = on_b.system_status().unwrap().convention.unwrap();
    while state_of(&mut on_a, &ba) != Some(MemberState::Alive) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let zoo = std::env::current_exe().unwrap().with_file_name("zoo");
    for system in [&mut on_a, &mut on_b] {
        system
            .load(&zoo)
            .expect("load the zoo (cargo build --release --examples)");
    }
    let out = body(&mut on_a, &mut on_b);
    for system in [on_b, on_a] {
        system.shutdown().unwrap();
    }
    drop((b, a));
    out
}
