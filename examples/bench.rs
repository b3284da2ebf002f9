//! greenroom's end-to-end benchmark. Run it through `scripts/bench` (release build).
//!
//! Each greenroom figure is printed with p50/p99 and its ratio to a raw baseline measured in the
//! same run on the same machine: raw Unix-socket ping-pong between two processes, raw one-way
//! writes (unbatched and batched), fork+exec+wait of the zoo binary, and socket EOF after SIGKILL.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "zoo/actors.rs"]
mod actors;
#[path = "bench/convention.rs"]
mod convention;
#[path = "bench/relay.rs"]
mod relay;

use greenroom::{ActorSystem, Address, Base, ChildExited, SystemConfig, WhenMissing};
use serde::{Deserialize, Serialize};

const PING_ROUNDS: usize = 20_000;
const ONE_WAY: u64 = 1_000_000;
const TO_PROGRAM: u64 = 200_000;
const CREATES: usize = 200;
const KILLS: usize = 100;
const TRIALS: usize = 5;

fn main() {
    // The zoo's actors, run by this binary itself on both bases.
    actors::register();
    match std::env::args().nth(1).as_deref() {
        Some("--noop") => {}
        Some("--raw-pong") => raw_pong(),
        Some("--relay") => relay::relay(),
        Some("--raw-sink") => raw_sink(),
        Some("--tcp-pong") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            convention::tcp_pong(&args)
        }
        Some("--hold") => {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        _ => run(),
    }
}

// ---- raw baselines -------------------------------------------------------------------------

/// A child process of this binary whose standard input is one end of a socket pair.
fn raw_child(mode: &str) -> (Child, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .arg(mode)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .spawn()
        .unwrap();
    (child, ours)
}

fn stdin_socket() -> std::fs::File {
    use std::os::fd::FromRawFd;
    // SAFETY: standard input is the socket the parent handed over; it is used only here.
    unsafe { std::fs::File::from_raw_fd(0) }
}

fn raw_pong() {
    let mut s = stdin_socket();
    let mut buf = [0u8; 8];
    while s.read_exact(&mut buf).is_ok() {
        if s.write_all(&buf).is_err() {
            break;
        }
    }
}

/// Counts 64-byte length-prefixed frames; after the count given first, answers one byte.
fn raw_sink() {
    let mut s = stdin_socket();
    let mut want = [0u8; 8];
    s.read_exact(&mut want).unwrap();
    let want = u64::from_le_bytes(want);
    let mut buf = vec![0u8; 1 << 16];
    let (mut have, mut carry, mut frames) = (0usize, 0usize, 0u64);
    while frames < want {
        let n = s.read(&mut buf[carry..]).unwrap();
        have = carry + n;
        let mut at = 0;
        while have - at >= 4 {
            let len = u32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            if have - at < 4 + len {
                break;
            }
            at += 4 + len;
            frames += 1;
        }
        buf.copy_within(at..have, 0);
        carry = have - at;
    }
    let _ = have;
    s.write_all(&[1]).unwrap();
}

/// Round trips of 8 bytes with a child echoing them. With `look`, the parent polls (yielding
/// the CPU) for up to that long before it blocks, as a greenroom program waiting for a reply
/// does.
fn raw_ping_pong(look: Option<Duration>) -> Vec<Duration> {
    let (mut child, mut s) = raw_child("--raw-pong");
    let mut buf = [0u8; 8];
    let mut times = Vec::with_capacity(PING_ROUNDS);
    for i in 0..PING_ROUNDS + 1000 {
        let t = Instant::now();
        s.write_all(&(i as u64).to_le_bytes()).unwrap();
        if let Some(look) = look {
            s.set_nonblocking(true).unwrap();
            let mut got = 0;
            while got < buf.len() && t.elapsed() < look {
                match s.read(&mut buf[got..]) {
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::yield_now()
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            s.set_nonblocking(false).unwrap();
            s.read_exact(&mut buf[got..]).unwrap();
        } else {
            s.read_exact(&mut buf).unwrap();
        }
        if i >= 1000 {
            times.push(t.elapsed());
        }
    }
    drop(s);
    child.wait().unwrap();
    times
}

/// Messages per second for raw one-way 64-byte frames, written one per `write` or in 64 KiB
/// batches.
fn raw_one_way(batched: bool) -> f64 {
    let (mut child, mut s) = raw_child("--raw-sink");
    s.write_all(&ONE_WAY.to_le_bytes()).unwrap();
    let mut frame = [7u8; 64];
    frame[..4].copy_from_slice(&60u32.to_be_bytes());
    let t = Instant::now();
    if batched {
        let batch: Vec<u8> = frame.iter().copied().cycle().take(1 << 16).collect();
        let mut sent = 0;
        while sent < ONE_WAY {
            s.write_all(&batch).unwrap();
            sent += 1024;
        }
    } else {
        for _ in 0..ONE_WAY {
            s.write_all(&frame).unwrap();
        }
    }
    s.read_exact(&mut [0u8; 1]).unwrap();
    let rate = ONE_WAY as f64 / t.elapsed().as_secs_f64();
    child.wait().unwrap();
    rate
}

fn raw_spawn() -> Vec<Duration> {
    let exe = zoo_binary();
    (0..CREATES)
        .map(|_| {
            let t = Instant::now();
            Command::new(&exe).arg("--noop").status().unwrap();
            t.elapsed()
        })
        .collect()
}

fn raw_kill_eof() -> Vec<Duration> {
    (0..KILLS)
        .map(|_| {
            let (mut child, mut s) = raw_child("--hold");
            let t = Instant::now();
            child.kill().unwrap();
            let n = s.read(&mut [0u8; 1]).unwrap();
            let d = t.elapsed();
            assert_eq!(n, 0);
            child.wait().unwrap();
            d
        })
        .collect()
}

// ---- greenroom figures ---------------------------------------------------------------------

/// The zoo's binary, built beside this one by `cargo build --release --examples`.
fn zoo_binary() -> std::path::PathBuf {
    std::env::current_exe().unwrap().with_file_name("zoo")
}

#[derive(Serialize)]
struct Expect {
    count: u64,
    notify: Address,
}

#[derive(Deserialize)]
struct Report {
    received: u64,
    in_order: bool,
}

#[derive(Serialize)]
struct Produce {
    to: Address,
    count: u64,
    size: Option<usize>,
}

#[derive(Serialize)]
struct FanOut {
    count: u32,
    kind: String,
}

const WAIT: Duration = Duration::from_secs(60);

fn ask_round_trips(system: &mut ActorSystem, echo: &Address) -> Vec<Duration> {
    let mut times = Vec::with_capacity(PING_ROUNDS);
    for i in 0..PING_ROUNDS + 1000 {
        let t = Instant::now();
        system.ask(echo, &(i as u64), WAIT).unwrap();
        if i >= 1000 {
            times.push(t.elapsed());
        }
    }
    times
}

fn actor_to_actor(system: &mut ActorSystem) -> Vec<f64> {
    let zoo = zoo_binary();
    let sink = system.create_actor_by_name("Sink", Some(&zoo)).unwrap();
    let source = system.create_actor_by_name("Source", Some(&zoo)).unwrap();
    one_way_trials(system, &source, &sink)
}

/// `TRIALS` times, a `Source` sends `TO_PROGRAM` 64-byte messages to this program, which
/// takes each with `listen` (reading ahead into its queue meanwhile): the rate of each trial.
fn actor_to_program(system: &mut ActorSystem) -> Vec<f64> {
    let zoo = zoo_binary();
    let source = system.create_actor_by_name("Source", Some(&zoo)).unwrap();
    let me = system.address().clone();
    (0..TRIALS)
        .map(|_| {
            let t = Instant::now();
            let produce = Produce {
                to: me.clone(),
                count: TO_PROGRAM,
                size: Some(64),
            };
            system.tell(&source, &produce).unwrap();
            for _ in 0..TO_PROGRAM {
                system.listen(WAIT).unwrap().expect("a message");
            }
            TO_PROGRAM as f64 / t.elapsed().as_secs_f64()
        })
        .collect()
}

/// `TRIALS` times, `source` sends `ONE_WAY` 64-byte messages to `sink`, which reports to
/// `system`'s program: the rate of each trial.
fn one_way_trials(system: &mut ActorSystem, source: &Address, sink: &Address) -> Vec<f64> {
    let me = system.address().clone();
    (0..TRIALS)
        .map(|_| {
            system
                .tell(
                    sink,
                    &Expect {
                        count: ONE_WAY,
                        notify: me.clone(),
                    },
                )
                .unwrap();
            // A round trip through the sink makes sure it has taken the Expect first.
            let t = Instant::now();
            system
                .tell(
                    source,
                    &Produce {
                        to: sink.clone(),
                        count: ONE_WAY,
                        size: Some(64),
                    },
                )
                .unwrap();
            let report: Report = system
                .listen(WAIT)
                .unwrap()
                .expect("report")
                .decode()
                .unwrap();
            let rate = ONE_WAY as f64 / t.elapsed().as_secs_f64();
            assert!(report.in_order && report.received == ONE_WAY);
            rate
        })
        .collect()
}

/// Create an Echo and ask it once, `CREATES` times. With `gap`, wait that long (untimed)
/// between creates, so that the admin's spare process for the binary is ready each time.
fn create_until_reply(system: &mut ActorSystem, gap: Option<Duration>) -> Vec<Duration> {
    let zoo = zoo_binary();
    (0..CREATES)
        .map(|_| {
            if let Some(gap) = gap {
                std::thread::sleep(gap);
            }
            let t = Instant::now();
            let echo = system.create_actor_by_name("Echo", Some(&zoo)).unwrap();
            system.ask(&echo, "hi", WAIT).unwrap();
            let d = t.elapsed();
            system.tell_exit(&echo).unwrap();
            d
        })
        .collect()
}

fn death_notices(system: &mut ActorSystem) -> Vec<Duration> {
    let zoo = zoo_binary();
    (0..KILLS)
        .map(|_| {
            let echo = system.create_actor_by_name("Echo", Some(&zoo)).unwrap();
            system.ask(&echo, "ready?", WAIT).unwrap();
            let pid = system
                .status()
                .unwrap()
                .into_iter()
                .find(|a| a.address == echo)
                .unwrap()
                .pid;
            let t = Instant::now();
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            )
            .unwrap();
            loop {
                let env = system.listen_any(WAIT).unwrap().expect("ChildExited");
                if env
                    .msg
                    .get::<ChildExited>()
                    .is_some_and(|c| c.child == echo)
                {
                    return t.elapsed();
                }
            }
        })
        .collect()
}

fn fan_out(system: &mut ActorSystem) -> Vec<Duration> {
    let zoo = zoo_binary();
    (0..TRIALS * 4)
        .map(|_| {
            let spawner = system.create_actor_by_name("Spawner", Some(&zoo)).unwrap();
            let t = Instant::now();
            system
                .tell(
                    &spawner,
                    &FanOut {
                        count: 20,
                        kind: "Echo".into(),
                    },
                )
                .unwrap();
            system.listen(WAIT).unwrap().expect("fan-out report");
            let d = t.elapsed();
            system.tell_exit(&spawner).unwrap();
            d
        })
        .collect()
}

/// (RSS, USS) in KiB of a process, from /proc/PID/smaps_rollup.
fn memory_kib(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        field("Rss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
    )
}

/// Messages per second handled by the stages of a 5-actor pipeline on the simple base (each
/// item is one message to each of the 5 stages).
fn simple_pipeline() -> Vec<f64> {
    let mut system = ActorSystem::with_config(SystemConfig {
        name: "bench-simple".into(),
        base: Some(Base::Simple),
        ..SystemConfig::default()
    })
    .expect("simple system");
    let me = system.address().clone();
    let stages: Vec<Address> = (0..5)
        .map(|_| system.create_actor_by_name("Relay", None).unwrap())
        .collect();
    for (i, s) in stages.iter().enumerate() {
        let next = stages.get(i + 1).cloned().unwrap_or_else(|| me.clone());
        let link = actors::Link {
            next,
            tag: String::new(),
        };
        system.ask(s, &link, WAIT).unwrap();
    }
    const ITEMS: u64 = 200_000;
    let rates = (0..TRIALS)
        .map(|_| {
            let t = Instant::now();
            for batch in 0..ITEMS / 1000 {
                for n in 0..1000 {
                    system.tell(&stages[0], &(batch * 1000 + n)).unwrap();
                }
                for _ in 0..1000 {
                    system
                        .listen(WAIT)
                        .unwrap()
                        .expect("item through the pipeline");
                }
            }
            (ITEMS * 5) as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    system.shutdown().unwrap();
    rates
}

// ---- reporting -----------------------------------------------------------------------------

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn p50_p99(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (pct(&v, 0.50), pct(&v, 0.99))
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

/// Figures to measure: those named on the command line (`ask`, `one-way`, `to-program`, `create`,
/// `create-spaced`, `kill`, `fan-out`, `simple`, `memory`), or all of them.
fn wanted(figure: &str) -> bool {
    let named: Vec<String> = std::env::args().skip(1).collect();
    named.is_empty() || named.iter().any(|n| n == figure)
}

fn run() {
    // A system of its own, in the default place (memory-backed where the machine has one).
    let mut system = ActorSystem::with_config(SystemConfig {
        name: format!("bench-{}", std::process::id()),
        when_missing: WhenMissing::Start,
        admin_binary: None,
        dir: None,
        base: Some(greenroom::Base::Multiproc),
        convention: None,
    })
    .expect("start a system");
    // Actors are run from the zoo's binary: a small actor binary, as a user's would be (this
    // benchmark's own binary, which registers the same types, carries all of its code too).
    let zoo = zoo_binary();
    system
        .load(&zoo)
        .expect("load the zoo (cargo build --release --examples)");
    let zoo = std::env::current_exe().unwrap().with_file_name("zoo");
    system
        .load(&zoo)
        .expect("load the zoo (cargo build --release --examples)");

    println!(
        "| figure | greenroom p50 | greenroom p99 | raw baseline (same run) | ratio p50 | target |"
    );
    println!("|---|---|---|---|---|---|");

    if wanted("ask") {
        let (raw50, raw99) = p50_p99(raw_ping_pong(None));
        // A greenroom program looks for 50 µs before it sleeps; so does this baseline.
        let (look50, _) = p50_p99(raw_ping_pong(Some(Duration::from_micros(50))));
        let echo = system.create_actor_by_name("Echo", Some(&zoo)).unwrap();
        let (ask50, ask99) = p50_p99(ask_round_trips(&mut system, &echo));
        println!(
            "| external ask round trip ({PING_ROUNDS}) | {} | {} | Unix ping-pong p50 {} (p99 {}); looking 50 µs before blocking, as greenroom does: p50 {} | {:.2}× ({:.2}× the looking one) | ≤ 3× |",
            us(ask50),
            us(ask99),
            us(raw50),
            us(raw99),
            us(look50),
            ask50.as_secs_f64() / raw50.as_secs_f64(),
            ask50.as_secs_f64() / look50.as_secs_f64()
        );
    }

    if wanted("one-way") {
        let raw_one = raw_one_way(false);
        let raw_batch = raw_one_way(true);
        let (a2a, a2a_worst) = median(actor_to_actor(&mut system));
        println!(
            "| actor→actor one-way, 64-byte bodies ({ONE_WAY} × {TRIALS} trials) | {:.0} msg/s | worst trial {:.0} msg/s | raw 64-byte writes: {:.0} msg/s unbatched, {:.0} msg/s in 64 KiB batches | {:.2}× unbatched, {:.3}× batched | ≥ 500,000 msg/s |",
            a2a,
            a2a_worst,
            raw_one,
            raw_batch,
            a2a / raw_one,
            a2a / raw_batch
        );
    }

    if wanted("to-program") {
        let raw_one = raw_one_way(false);
        let (rate, worst) = median(actor_to_program(&mut system));
        println!(
            "| actor→program one-way, 64-byte bodies, the program taking each with listen ({TO_PROGRAM} × {TRIALS} trials) | {rate:.0} msg/s | worst trial {worst:.0} msg/s | raw 64-byte writes: {raw_one:.0} msg/s unbatched | {:.2}× | — |",
            rate / raw_one
        );
    }

    if wanted("create") {
        let (spawn50, spawn99) = p50_p99(raw_spawn());
        let (create50, create99) = p50_p99(create_until_reply(&mut system, None));
        println!(
            "| create_actor until first reply, back to back ({CREATES}) | {} | {} | fork+exec+wait of the zoo binary p50 {} (p99 {}) | {:.2}× | ≤ 2 ms |",
            ms(create50),
            ms(create99),
            ms(spawn50),
            ms(spawn99),
            create50.as_secs_f64() / spawn50.as_secs_f64()
        );
    }
    if wanted("create-spaced") {
        let (spawn50, _) = p50_p99(raw_spawn());
        let gap = Duration::from_millis(20);
        let (warm50, warm99) = p50_p99(create_until_reply(&mut system, Some(gap)));
        println!(
            "| create_actor until first reply, {} ms apart: spare ready ({CREATES}) | {} | {} | fork+exec+wait of the zoo binary p50 {} | {:.2}× | ≤ 2 ms |",
            gap.as_millis(),
            ms(warm50),
            ms(warm99),
            ms(spawn50),
            warm50.as_secs_f64() / spawn50.as_secs_f64()
        );
    }

    if wanted("kill") {
        let (eof50, eof99) = p50_p99(raw_kill_eof());
        let (death50, death99) = p50_p99(death_notices(&mut system));
        println!(
            "| SIGKILL of a child → parent's ChildExited ({KILLS}) | {} | {} | socket EOF after SIGKILL p50 {} (p99 {}) | {:.2}× | ≤ 1 ms |",
            ms(death50),
            ms(death99),
            ms(eof50),
            ms(eof99),
            death50.as_secs_f64() / eof50.as_secs_f64()
        );
    }

    if wanted("member-loss") {
        let (eof50, eof99) = p50_p99(raw_kill_eof());
        for (how, target) in [
            (convention::Loss::Killed, "p50 ≤ 1 s, max ≤ 3 s"),
            (convention::Loss::Silent, "p50 ≤ 1 s, max ≤ 3 s"),
            (convention::Loss::Graceful, "≤ 0.5 s"),
        ] {
            let mut times = convention::member_loss(how);
            times.sort();
            let (p50, max) = (pct(&times, 0.5), *times.last().unwrap());
            let (what, base, base_text) = match how {
                convention::Loss::Killed => (
                    "member's admin SIGKILLed",
                    eof50,
                    format!(
                        "socket EOF after SIGKILL p50 {} (p99 {})",
                        ms(eof50),
                        ms(eof99)
                    ),
                ),
                convention::Loss::Silent => (
                    "member's admin SIGSTOPped (silent, as a host cut off)",
                    convention::SILENCE,
                    format!("the silence limit, {}", ms(convention::SILENCE)),
                ),
                convention::Loss::Graceful => (
                    "member shut down",
                    eof50,
                    format!("socket EOF after SIGKILL p50 {}", ms(eof50)),
                ),
            };
            println!(
                "| convention: {what} → another member lists it gone ({}) | {} | max {} | {base_text} | {:.2}× | {target} |",
                convention::LOSSES,
                ms(p50),
                ms(max),
                p50.as_secs_f64() / base.as_secs_f64()
            );
        }
    }

    if wanted("link") {
        let (tcp50, tcp99) = p50_p99(convention::tcp_ping_pong(false, PING_ROUNDS));
        let (noise50, noise99) = p50_p99(convention::tcp_ping_pong(true, PING_ROUNDS));
        println!(
            "| convention link's own cost: TCP loopback round trip of 8 bytes, each way one Noise message ({PING_ROUNDS}) | {} | {} | the same in the clear p50 {} (p99 {}) | {:.2}× | — (budget of a remote ask ≤ 1.5× raw TCP) |",
            us(noise50),
            us(noise99),
            us(tcp50),
            us(tcp99),
            noise50.as_secs_f64() / tcp50.as_secs_f64()
        );
    }

    if wanted("remote-ask") {
        let (tcp50, tcp99) = p50_p99(convention::tcp_ping_pong(false, PING_ROUNDS));
        let (ask50, ask99) = p50_p99(convention::between_members(|on_a, on_b| {
            let echo = on_b.create_actor_by_name("Echo", None).unwrap();
            ask_round_trips(on_a, &echo)
        }));
        println!(
            "| remote ask: a program on one member asks an Echo on another, both on this host ({PING_ROUNDS}) | {} | {} | TCP loopback ping-pong of 8 bytes p50 {} (p99 {}) | {:.2}× | ≤ 1.5× |",
            us(ask50),
            us(ask99),
            us(tcp50),
            us(tcp99),
            ask50.as_secs_f64() / tcp50.as_secs_f64()
        );
        let (relay50, relay99) = p50_p99(relay::relay_ping_pong(PING_ROUNDS));
        println!(
            "| the shape's own floor: the same round trip through two bare relay processes (Unix, TCP loopback, Unix each way; no framing, encryption or accounting) ({PING_ROUNDS}) | {} | {} | TCP loopback ping-pong of 8 bytes p50 {} (p99 {}) | {:.2}× | — (a remote ask is {:.2}× this) |",
            us(relay50),
            us(relay99),
            us(tcp50),
            us(tcp99),
            relay50.as_secs_f64() / tcp50.as_secs_f64(),
            ask50.as_secs_f64() / relay50.as_secs_f64()
        );
    }

    if wanted("remote-one-way") {
        let raw_one = raw_one_way(false);
        let (rate, worst) = median(convention::between_members(|on_a, on_b| {
            let sink = on_a.create_actor_by_name("Sink", None).unwrap();
            let source = on_b.create_actor_by_name("Source", None).unwrap();
            one_way_trials(on_a, &source, &sink)
        }));
        println!(
            "| remote actor→actor one-way, 64-byte bodies, between two members on this host ({ONE_WAY} × {TRIALS} trials) | {rate:.0} msg/s | worst trial {worst:.0} msg/s | raw 64-byte Unix writes: {raw_one:.0} msg/s unbatched | {:.2}× | ≥ 1,000,000 msg/s |",
            rate / raw_one
        );
    }

    if wanted("remote-create") {
        let (here, there) = convention::between_members(|on_a, on_b| {
            let on = |system: &mut ActorSystem, requiring: &[(&str, &str)]| {
                (0..CREATES)
                    .map(|_| {
                        // Spaced, so that the member's spare process is ready each time.
                        std::thread::sleep(Duration::from_millis(20));
                        let t = Instant::now();
                        let echo = system
                            .create_by_name_requiring("Echo", None, requiring)
                            .unwrap();
                        system.ask(&echo, "hi", WAIT).unwrap();
                        let d = t.elapsed();
                        system.tell_exit(&echo).unwrap();
                        d
                    })
                    .collect::<Vec<_>>()
            };
            // Both land on the member with the gpu: once asked there, once from the other.
            (on(on_b, &[]), on(on_a, &[("gpu", "yes")]))
        });
        let (here50, here99) = p50_p99(here);
        let (there50, there99) = p50_p99(there);
        println!(
            "| remote create until first reply: from one member onto another that meets the requirements, 20 ms apart ({CREATES}) | {} | {} | a create on that member itself, until first reply, p50 {} (p99 {}) | {:.2}× | ≤ 2× |",
            ms(there50),
            ms(there99),
            ms(here50),
            ms(here99),
            there50.as_secs_f64() / here50.as_secs_f64()
        );
    }

    if wanted("fan-out") {
        let (spawn50, _) = p50_p99(raw_spawn());
        let (fan50, fan99) = p50_p99(fan_out(&mut system));
        println!(
            "| one actor creates 20 children, hears from each ({}) | {} | {} | 20 × fork+exec+wait p50 {} | {:.2}× | ≤ 40 ms |",
            TRIALS * 4,
            ms(fan50),
            ms(fan99),
            ms(spawn50 * 20),
            fan50.as_secs_f64() / (spawn50 * 20).as_secs_f64()
        );
    }

    if wanted("simple") {
        let (simple, simple_worst) = median(simple_pipeline());
        println!(
            "| simple base: 5-actor pipeline ({} trials of 200,000 items) | {:.0} msg/s | worst trial {:.0} msg/s | — (in one process; every message encoded and decoded) | — | ≥ 2,000,000 msg/s |",
            TRIALS, simple, simple_worst
        );
    }

    if wanted("memory") {
        // Memory is measured on the zoo's binary: a small actor binary, as a user's would be (this
        // benchmark's own binary carries all of the benchmark's code too).
        let zoo = std::env::current_exe().unwrap().with_file_name("zoo");
        // A second actor of the same binary: its code pages are shared, as they are whenever several
        // actors run from one binary, so USS shows what one more actor costs.
        let _sibling = system.create_actor_by_name("Echo", Some(&zoo)).unwrap();
        let idle = system.create_actor_by_name("Echo", Some(&zoo)).unwrap();
        system.ask(&idle, "hi", WAIT).unwrap();
        let pid = system
            .status()
            .unwrap()
            .into_iter()
            .find(|a| a.address == idle)
            .unwrap()
            .pid;
        let (rss, uss) = memory_kib(pid);
        println!(
            "| idle actor process memory (a zoo Echo beside another) | RSS {:.2} MiB | USS {:.2} MiB | — | — | RSS ≤ 4 MiB |",
            rss as f64 / 1024.0,
            uss as f64 / 1024.0
        );
    }
    // The system is this run's alone: no address of it outlives the run, so the file that keeps
    // its ids from being reused (beside its directory) goes too.
    let ids = system
        .dir()
        .with_file_name(format!(".bench-{}.next-id", std::process::id()));
    system.shutdown().expect("shutdown");
    let _ = std::fs::remove_file(ids);
}
