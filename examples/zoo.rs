//! Actors used by greenroom's integration tests and benchmarks: small, each showing one
//! behaviour. Load them with `greenroom load target/debug/examples/zoo`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use greenroom::{Actor, Address, ChildExited, Context, ExitRequest, Handled, Message};
use serde::{Deserialize, Serialize};

/// Replies to every message with the same message; ignores system messages.
#[derive(Default)]
struct Echo;

impl Actor for Echo {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if !msg.is_system() {
            let to = ctx.sender().clone();
            ctx.send_message(&to, msg.clone())?;
        }
        Ok(())
    }
}

/// Replies with the type name of every message it receives.
#[derive(Default)]
struct Inspect;

impl Actor for Inspect {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if !msg.is_system() {
            ctx.reply(msg.type_name())?;
        }
        Ok(())
    }
}

/// Never replies.
#[derive(Default)]
struct Silent;

impl Actor for Silent {
    fn receive(&mut self, _msg: &Message, _ctx: &mut Context<'_>) -> Handled {
        Ok(())
    }
}

/// Tells a [`Sink`] how many numbered messages to expect and whom to report to.
#[derive(Serialize, Deserialize)]
struct Expect {
    count: u64,
    notify: Address,
}

/// What a [`Sink`] saw, per sender.
#[derive(Serialize, Deserialize, Debug)]
struct Report {
    received: u64,
    in_order: bool,
    elapsed_ns: u64,
}

/// Counts numbered `u64` messages and checks that each sender's numbers arrive 0, 1, 2, ...
#[derive(Default)]
struct Sink {
    expect: Option<Expect>,
    next: HashMap<Address, u64>,
    received: u64,
    in_order: bool,
    first: Option<Instant>,
}

impl Actor for Sink {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(expect) = msg.get::<Expect>() {
            *self = Sink {
                expect: Some(expect),
                in_order: true,
                ..Sink::default()
            };
        } else if msg.is::<u64>() || msg.is::<Padded>() {
            let n: u64 = match msg.get::<Padded>() {
                Some(p) => p.n,
                None => msg.decode()?,
            };
            self.first.get_or_insert_with(Instant::now);
            let next = self.next.entry(ctx.sender().clone()).or_insert(0);
            self.in_order &= n == *next;
            *next = n + 1;
            self.received += 1;
            if let Some(expect) = &self.expect
                && self.received == expect.count
            {
                let report = Report {
                    received: self.received,
                    in_order: self.in_order,
                    elapsed_ns: self.first.map_or(0, |t| t.elapsed().as_nanos() as u64),
                };
                let notify = expect.notify.clone();
                ctx.send(&notify, &report)?;
            }
        }
        Ok(())
    }
}

/// Asks a [`Source`] to send `count` numbered messages to `to`, each padded to `size` bytes of
/// MessagePack body if `size` is given.
#[derive(Serialize, Deserialize)]
struct Produce {
    to: Address,
    count: u64,
    #[serde(default)]
    size: Option<usize>,
}

/// A numbered message with padding, so that its body has a chosen size.
#[derive(Serialize, Deserialize)]
struct Padded {
    n: u64,
    #[serde(with = "serde_bytes")]
    pad: Vec<u8>,
}

/// Sends numbered `u64` messages, all from inside one handler.
#[derive(Default)]
struct Source;

impl Actor for Source {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(p) = msg.get::<Produce>() {
            match p.size {
                None => {
                    for n in 0..p.count {
                        ctx.send(&p.to, &n)?;
                    }
                }
                Some(size) => {
                    // Body: fixmap(2) + "n" + u64 + "pad" + bin8 header = 20 bytes before padding.
                    let mut msg = Padded {
                        n: 0,
                        pad: vec![0; size.saturating_sub(20)],
                    };
                    for n in 0..p.count {
                        msg.n = n;
                        ctx.send(&p.to, &msg)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Asks a [`Parent`] to create `count` children of type `kind`; it replies with their addresses.
#[derive(Serialize, Deserialize)]
struct Spawn {
    count: u32,
    kind: String,
}

/// Creates children on request, and remembers every `ChildExited` it receives. The string
/// `"report"` gets the list back; `"children"` the live children.
#[derive(Default)]
struct Parent {
    children: Vec<Address>,
    exited: Vec<ChildExited>,
}

impl Actor for Parent {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(spawn) = msg.get::<Spawn>() {
            let mut made = Vec::new();
            for _ in 0..spawn.count {
                made.push(ctx.create_actor_by_name(&spawn.kind)?);
            }
            self.children.extend(made.iter().cloned());
            ctx.reply(&made)?;
        } else if let Some(exited) = msg.get::<ChildExited>() {
            self.children.retain(|c| *c != exited.child);
            self.exited.push(exited);
        } else if msg.get::<String>().as_deref() == Some("report") {
            ctx.reply(&self.exited)?;
        } else if msg.get::<String>().as_deref() == Some("children") {
            ctx.reply(&self.children)?;
        }
        Ok(())
    }
}

/// Creates `count` children of type `kind` and reports how long until each had answered.
#[derive(Serialize, Deserialize)]
struct FanOut {
    count: u32,
    kind: String,
}

/// On [`FanOut`], creates children, pings each, and replies with the elapsed nanoseconds once
/// every child has answered.
#[derive(Default)]
struct Spawner {
    pending: u32,
    started: Option<Instant>,
    requester: Option<Address>,
}

impl Actor for Spawner {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(f) = msg.get::<FanOut>() {
            self.started = Some(Instant::now());
            self.requester = Some(ctx.sender().clone());
            self.pending = f.count;
            for _ in 0..f.count {
                let child = ctx.create_actor_by_name(&f.kind)?;
                ctx.send(&child, "ping")?;
            }
        } else if msg.get::<String>().as_deref() == Some("ping") && self.pending > 0 {
            self.pending -= 1;
            let to = ctx.sender().clone();
            ctx.send(&to, &ExitRequest {})?;
            if self.pending == 0
                && let (Some(t), Some(r)) = (self.started, self.requester.clone())
            {
                ctx.send(&r, &(t.elapsed().as_nanos() as u64))?;
            }
        }
        Ok(())
    }
}

/// Asks a [`Blocker`] to send `"started"` and then `burst` numbers (0, 1, ...) to the sender,
/// then block until `release` exists.
#[derive(Serialize, Deserialize)]
struct BlockUntil {
    release: PathBuf,
    #[serde(default)]
    burst: u64,
}

/// Sends from inside a handler that then blocks, to show the send does not wait for the
/// handler to return.
#[derive(Default)]
struct Blocker;

impl Actor for Blocker {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(b) = msg.get::<BlockUntil>() {
            ctx.reply("started")?;
            for n in 0..b.burst {
                ctx.reply(&n)?;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while !b.release.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            ctx.reply("released")?;
        } else if !msg.is_system() {
            ctx.reply("pong")?;
        }
        Ok(())
    }
}

/// Ends its own process in the way a message names: `{"exit": N}` or `"abort"`.
#[derive(Default)]
struct Crasher;

#[derive(Serialize, Deserialize)]
struct ExitWith {
    exit: i32,
}

impl Actor for Crasher {
    fn receive(&mut self, msg: &Message, _ctx: &mut Context<'_>) -> Handled {
        if let Ok(e) = msg.decode::<ExitWith>() {
            std::process::exit(e.exit);
        }
        if msg.get::<String>().as_deref() == Some("abort") {
            std::process::abort();
        }
        Ok(())
    }
}

/// Its constructor panics, so it never starts.
struct Broken;

impl Default for Broken {
    fn default() -> Broken {
        panic!("Broken cannot be built")
    }
}

impl Actor for Broken {
    fn receive(&mut self, _msg: &Message, _ctx: &mut Context<'_>) -> Handled {
        Ok(())
    }
}

fn main() {
    greenroom::actors!(
        Echo, Inspect, Silent, Sink, Source, Parent, Spawner, Blocker, Crasher, Broken
    );
    if std::env::args().nth(1).as_deref() == Some("hold") {
        hold();
        return;
    }
    eprintln!(
        "zoo: greenroom's test actors ({}). Load it with `greenroom load PATH`.",
        greenroom::registered_types().join(", ")
    );
}

/// `zoo hold`: start (or attach to) a system, create an Echo, print its address, and keep the
/// system open until standard input closes. Tests kill this program to show that an admin it
/// started for itself goes away with it.
fn hold() {
    let mut system = greenroom::ActorSystem::new().expect("system");
    let echo = system.create_actor::<Echo>().expect("create");
    println!("{echo}");
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}
