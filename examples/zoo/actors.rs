//! The zoo's actors, shared by `examples/zoo` (a pure actor binary for the CLI, tests and
//! benchmarks) and `examples/scenarios` (the scenario suite that runs on both bases). Each is
//! small and shows one behaviour.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use greenroom::{Actor, Address, ChildExited, Context, ExitRequest, Handled, Message};
use serde::{Deserialize, Serialize};

/// Replies to every message with the same message; ignores system messages.
#[derive(Default)]
pub struct Echo;

impl Actor for Echo {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if !msg.is_system() {
            ctx.send_message(&ctx.sender(), msg.clone())?;
        }
        Ok(())
    }
}

/// Replies with the type name of every message it receives.
#[derive(Default)]
pub struct Inspect;

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
pub struct Silent;

impl Actor for Silent {
    fn receive(&mut self, _msg: &Message, _ctx: &mut Context<'_>) -> Handled {
        Ok(())
    }
}

/// Says `"started"` to its parent from its `started` hook and `"stopping"` to whoever asked it
/// to exit from its `stopping` hook; echoes strings in between.
#[derive(Default)]
pub struct Hooked;

impl Actor for Hooked {
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        let parent = ctx.sender();
        ctx.send(&parent, "started")?;
        Ok(())
    }

    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(text) = msg.get::<String>() {
            ctx.reply(&text)?;
        }
        Ok(())
    }

    fn stopping(&mut self, ctx: &mut Context<'_>) -> Handled {
        let asker = ctx.sender();
        ctx.send(&asker, "stopping")?;
        Ok(())
    }
}

/// Two message types of the same short name, kept apart by the names `register` gives them.
pub mod v1 {
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Ping {
        pub n: u32,
    }
}

/// See [`v1`].
pub mod v2 {
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Ping {
        pub n: u32,
    }
}

/// Replies `"v1 N"` to a `v1::Ping` and `"v2 N"` to a `v2::Ping`.
#[derive(Default)]
pub struct Versioned;

impl Actor for Versioned {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(p) = msg.get::<v1::Ping>() {
            ctx.reply(&format!("v1 {}", p.n))?;
        } else if let Some(p) = msg.get::<v2::Ping>() {
            ctx.reply(&format!("v2 {}", p.n))?;
        }
        Ok(())
    }
}

/// The start arguments of a [`Configured`].
#[derive(Serialize, Deserialize)]
pub struct Greeter {
    pub greeting: String,
}

/// Built with `Default`, then set up from its start arguments (a [`Greeter`]) in `started`:
/// replies `"GREETING: TEXT"` to each string; to `"spawn"`, creates a child of its own type
/// with other start arguments and replies with its address.
#[derive(Default)]
pub struct Configured {
    greeting: Option<String>,
}

impl Actor for Configured {
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.greeting = ctx.start_args::<Greeter>()?.map(|g| g.greeting);
        Ok(())
    }

    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(text) = msg.get::<String>() {
            if text == "spawn" {
                let args = Greeter {
                    greeting: "hi from a child".into(),
                };
                let child = ctx.create_actor_with::<Configured, _>(&args)?;
                ctx.reply(&child)?;
            } else {
                let greeting = self.greeting.as_deref().unwrap_or("(none)");
                ctx.reply(&format!("{greeting}: {text}"))?;
            }
        }
        Ok(())
    }
}

/// Its `started` hook fails: it never runs.
#[derive(Default)]
pub struct HookFails;

impl Actor for HookFails {
    fn started(&mut self, _ctx: &mut Context<'_>) -> Handled {
        Err("no database".into())
    }

    fn receive(&mut self, _msg: &Message, _ctx: &mut Context<'_>) -> Handled {
        Ok(())
    }
}

/// Tells a [`Sink`] how many numbered messages to expect and whom to report to.
#[derive(Serialize, Deserialize)]
pub struct Expect {
    count: u64,
    notify: Address,
}

/// What a [`Sink`] saw, per sender.
#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    received: u64,
    in_order: bool,
    elapsed_ns: u64,
}

/// Counts numbered `u64` messages and checks that each sender's numbers arrive 0, 1, 2, ...
#[derive(Default)]
pub struct Sink {
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
            let next = self.next.entry(ctx.sender()).or_insert(0);
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
pub struct Produce {
    pub to: Address,
    pub count: u64,
    #[serde(default)]
    pub size: Option<usize>,
}

/// A numbered message with padding, so that its body has a chosen size.
#[derive(Serialize, Deserialize)]
pub struct Padded {
    n: u64,
    #[serde(with = "serde_bytes")]
    pad: Vec<u8>,
}

/// Sends numbered `u64` messages, all from inside one handler.
#[derive(Default)]
pub struct Source;

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
pub struct Spawn {
    count: u32,
    kind: String,
}

/// Creates children on request, and remembers every `ChildExited` it receives. The string
/// `"report"` gets the list back; `"children"` the live children.
#[derive(Default)]
pub struct Parent {
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
pub struct FanOut {
    count: u32,
    kind: String,
}

/// On [`FanOut`], creates children, pings each, and replies with the elapsed nanoseconds once
/// every child has answered.
#[derive(Default)]
pub struct Spawner {
    pending: u32,
    started: Option<Instant>,
    requester: Option<Address>,
}

impl Actor for Spawner {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(f) = msg.get::<FanOut>() {
            self.started = Some(Instant::now());
            self.requester = Some(ctx.sender());
            self.pending = f.count;
            for _ in 0..f.count {
                let child = ctx.create_actor_by_name(&f.kind)?;
                ctx.send(&child, "ping")?;
            }
        } else if msg.get::<String>().as_deref() == Some("ping") && self.pending > 0 {
            self.pending -= 1;
            let to = ctx.sender();
            ctx.send(&to, &ExitRequest::default())?;
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
pub struct BlockUntil {
    release: PathBuf,
    #[serde(default)]
    burst: u64,
}

/// Sends from inside a handler that then blocks, to show the send does not wait for the
/// handler to return.
#[derive(Default)]
pub struct Blocker;

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
pub struct Crasher;

#[derive(Serialize, Deserialize)]
pub struct ExitWith {
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
        if msg.get::<String>().as_deref() == Some("segv") {
            // SAFETY: deliberately ends this process the way a wild pointer would. Rust's own
            // SIGSEGV handler (for stack overflows) returns from a raised signal, so it is reset
            // to the default first.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
        }
        Ok(())
    }
}

/// Its constructor panics, so it never starts.
pub struct Broken;

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

/// Fails on demand, and counts how often its handler ran: `"panic"` panics every time,
/// `"err"` returns an error every time, `"flaky"` fails on odd attempts only (so the retry
/// succeeds and replies `"ok"`), `"attempts"` replies with the count. It also panics on
/// `Poison` and `ExitRequest`, which are never retried.
#[derive(Default)]
pub struct Flaky {
    attempts: u32,
}

impl Actor for Flaky {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        self.attempts += 1;
        if msg.is::<greenroom::Poison>() || msg.is::<ExitRequest>() {
            panic!("Flaky fails on {} too", msg.type_name());
        }
        match msg.get::<String>().as_deref() {
            Some("panic") => panic!("boom"),
            Some("err") => Err("refused".into()),
            Some("flaky") if self.attempts % 2 == 1 => panic!("first try fails"),
            Some("flaky") => {
                ctx.reply("ok")?;
                Ok(())
            }
            Some("attempts") => {
                self.attempts -= 1;
                ctx.reply(&self.attempts)?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// `"register"` makes it the dead-letter handler (`"unregister"` stops); it keeps every
/// `DeadEnvelope` and replies to `"report"` with them.
#[derive(Default)]
pub struct DeadHandler {
    seen: Vec<greenroom::DeadEnvelope>,
}

impl Actor for DeadHandler {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        greenroom::dispatch!(msg, {
            dead: greenroom::DeadEnvelope => {
                self.seen.push(dead);
                Ok(())
            },
            word: String => {
                match word.as_str() {
                    "register" => ctx.handle_dead_letters(true)?,
                    "unregister" => ctx.handle_dead_letters(false)?,
                    "report" => return Ok(ctx.reply(&self.seen)?),
                    _ => return Ok(()),
                }
                ctx.reply("done")?;
                Ok(())
            },
            _ => Ok(()),
        })
    }
}

/// Timers to set: one `wakeup_after(delay_ms)` per entry, with the entry's index as payload.
#[derive(Serialize, Deserialize)]
pub struct SetTimers {
    pub delays_ms: Vec<u64>,
}

/// What a [`Timer`] saw: the index of each wakeup in arrival order, and the real milliseconds
/// from setting to arrival.
#[derive(Serialize, Deserialize, Debug)]
pub struct Fired {
    pub order: Vec<u64>,
    pub elapsed_ms: Vec<u64>,
}

/// Sets timers on [`SetTimers`]; `"fired"` replies with [`Fired`]; `"flood"` starts a chain of
/// zero-delay wakeups that never ends by itself.
#[derive(Default)]
pub struct Timer {
    set_at: Option<Instant>,
    fired: Vec<u64>,
    elapsed: Vec<u64>,
    flooding: bool,
}

impl Actor for Timer {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        greenroom::dispatch!(msg, {
            set: SetTimers => {
                self.set_at = Some(Instant::now());
                for (i, ms) in set.delays_ms.iter().enumerate() {
                    ctx.wakeup_after(Duration::from_millis(*ms), &(i as u64))?;
                }
                Ok(())
            },
            wakeup: greenroom::Wakeup => {
                if self.flooding {
                    ctx.wakeup_after(Duration::ZERO, "more")?;
                } else {
                    self.fired.push(wakeup.payload.decode()?);
                    let elapsed = self.set_at.map_or(0, |t| t.elapsed().as_millis() as u64);
                    self.elapsed.push(elapsed);
                }
                Ok(())
            },
            word: String => {
                match word.as_str() {
                    "fired" => ctx.reply(&Fired {
                        order: self.fired.clone(),
                        elapsed_ms: self.elapsed.clone(),
                    })?,
                    "flood" => {
                        self.flooding = true;
                        ctx.wakeup_after(Duration::ZERO, "more")?;
                        ctx.reply("flooding")?;
                    }
                    _ => {}
                }
                Ok(())
            },
            _ => Ok(()),
        })
    }
}

/// Where a pipeline [`Stage`] passes its messages on, and which tag it adds.
#[derive(Serialize, Deserialize)]
pub struct Link {
    pub next: Address,
    pub tag: String,
}

/// An item travelling down a pipeline: its sequence number and the stages it passed.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Item {
    pub n: u64,
    pub path: Vec<String>,
}

/// One stage of a pipeline: after a [`Link`], appends its tag to each [`Item`] and passes it on.
#[derive(Default)]
pub struct Stage {
    link: Option<Link>,
}

impl Actor for Stage {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        greenroom::dispatch!(msg, {
            link: Link => {
                self.link = Some(link);
                ctx.reply("linked")?;
                Ok(())
            },
            item: Item => {
                let mut item = item;
                if let Some(link) = &self.link {
                    item.path.push(link.tag.clone());
                    let next = link.next.clone();
                    ctx.send(&next, &item)?;
                }
                Ok(())
            },
            _ => Ok(()),
        })
    }
}

/// Creates a global-named `Echo` on `"create NAME"` and replies with its address; replies with
/// its own global name (an `Option<String>`) to `"name?"`.
#[derive(Default)]
pub struct Namer;

impl Actor for Namer {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(word) = msg.get::<String>() {
            if let Some(name) = word.strip_prefix("create ") {
                let addr = ctx.create_global::<Echo>(name)?;
                ctx.reply(&addr)?;
            } else if word == "name?" {
                let name = ctx.global_name()?;
                ctx.reply(&name)?;
            }
        }
        Ok(())
    }
}

/// An echo that runs only where the system has `gpu=yes`.
#[derive(Default)]
pub struct GpuEcho;

impl Actor for GpuEcho {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        Echo.receive(msg, ctx)
    }

    fn requires() -> &'static [(&'static str, &'static str)] {
        &[("gpu", "yes")]
    }
}

/// Watches its system's convention and passes every `ConventionUpdate` on to its parent.
#[derive(Default)]
pub struct Watcher {
    parent: Option<Address>,
}

impl Actor for Watcher {
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.parent = Some(ctx.sender());
        ctx.watch_convention(true)?;
        Ok(())
    }

    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if msg.is::<greenroom::ConventionUpdate>()
            && let Some(parent) = &self.parent
        {
            ctx.send_message(parent, msg.clone())?;
        }
        Ok(())
    }
}

/// Logs every string it receives at level `info`, and replies `"logged"`.
#[derive(Default)]
pub struct Logger;

impl Actor for Logger {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(text) = msg.get::<String>() {
            log::info!("{text}");
            ctx.reply("logged")?;
        }
        Ok(())
    }
}

/// A job for a troupe of [`Work`]ers: the worker answers `(n, its own address)` to `reply_to`.
#[derive(Serialize, Deserialize)]
pub struct Job {
    pub n: u32,
    pub reply_to: Address,
}

/// A troupe worker (at most 3 at once).
#[derive(Default)]
pub struct Work;

impl Actor for Work {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(job) = msg.get::<Job>() {
            let me = ctx.my_address().clone();
            ctx.send(&job.reply_to, &(job.n, me))?;
        }
        Ok(())
    }
}

impl greenroom::TroupeWorker for Work {
    const MAX_WORKERS: usize = 3;
}

/// A job a [`Delegate`] passed on to a helper, which echoes it back.
#[derive(Serialize, Deserialize)]
pub struct Delegated {
    pub n: u32,
    pub reply_to: Address,
}

/// A troupe worker (at most 2 at once) that passes each job to an `Echo` child of its own and
/// answers when the child's echo comes back: its work is in progress in between.
#[derive(Default)]
pub struct Delegate {
    pending: u32,
}

impl Actor for Delegate {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(job) = msg.get::<Job>() {
            let helper = ctx.create_actor::<Echo>()?;
            let delegated = Delegated {
                n: job.n,
                reply_to: job.reply_to,
            };
            ctx.send(&helper, &delegated)?;
            self.pending += 1;
        } else if let Some(done) = msg.get::<Delegated>() {
            let me = ctx.my_address().clone();
            ctx.send(&done.reply_to, &(done.n, me))?;
            ctx.send(&ctx.sender(), &ExitRequest::default())?;
            self.pending -= 1;
        }
        Ok(())
    }
}

impl greenroom::TroupeWorker for Delegate {
    const MAX_WORKERS: usize = 2;

    fn work_in_progress(&self) -> bool {
        self.pending > 0
    }
}

/// Asks a [`Fan`] to send `count` [`Job`]s to `to`, all from inside one handler.
#[derive(Serialize, Deserialize)]
pub struct FanJobs {
    pub to: Address,
    pub count: u32,
    pub reply_to: Address,
}

/// Sends a burst of jobs.
#[derive(Default)]
pub struct Fan;

impl Actor for Fan {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(f) = msg.get::<FanJobs>() {
            for n in 0..f.count {
                let job = Job {
                    n,
                    reply_to: f.reply_to.clone(),
                };
                ctx.send(&f.to, &job)?;
            }
        }
        Ok(())
    }
}

/// Echoes strings; as a `Transient<Session>` it exits 300 ms after its last message.
#[derive(Default)]
pub struct Session;

impl Actor for Session {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(text) = msg.get::<String>() {
            ctx.reply(&text)?;
        }
        Ok(())
    }
}

impl greenroom::TransientActor for Session {
    const LIFETIME: Duration = Duration::from_millis(300);
}

/// Echoes strings; as a `Transient<Lease>` it lives as many milliseconds after its last
/// message as its start arguments (a `u64`) say, else an hour.
#[derive(Default)]
pub struct Lease {
    lifetime: Option<Duration>,
}

impl Actor for Lease {
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.lifetime = ctx.start_args::<u64>()?.map(Duration::from_millis);
        Ok(())
    }

    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        Session.receive(msg, ctx)
    }
}

impl greenroom::TransientActor for Lease {
    const LIFETIME: Duration = Duration::from_secs(3600);

    fn lifetime(&self) -> Duration {
        self.lifetime.unwrap_or(Self::LIFETIME)
    }
}

/// Echoes strings; as a `Transient<Brief>` it exits 300 ms after its first message.
#[derive(Default)]
pub struct Brief;

impl Actor for Brief {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        Session.receive(msg, ctx)
    }
}

impl greenroom::TransientActor for Brief {
    const LIFETIME: Duration = Duration::from_millis(300);
    const SINCE_LAST: bool = false;
}

/// Passes every `u64` on to the next address, after a [`Link`] (its tag is ignored): the
/// lightest pipeline stage, for benchmarks.
#[derive(Default)]
pub struct Relay {
    next: Option<Address>,
}

impl Actor for Relay {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if msg.is::<u64>() {
            if let Some(next) = &self.next {
                ctx.send_message(next, msg.clone())?;
            }
        } else if let Some(link) = msg.get::<Link>() {
            self.next = Some(link.next);
            ctx.reply("linked")?;
        }
        Ok(())
    }
}

/// Records `"SENDER-ID:N"` for every `u64` it receives, in the order it handles them; replies
/// to `"trace"` with the list.
#[derive(Default)]
pub struct Recorder {
    seen: Vec<String>,
}

impl Actor for Recorder {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(n) = msg.get::<u64>() {
            self.seen.push(format!("{}:{n}", ctx.sender().id()));
        } else if msg.get::<String>().as_deref() == Some("trace") {
            ctx.reply(&self.seen)?;
        }
        Ok(())
    }
}

/// Asks a [`Courier`] to send `text` to `to`.
#[derive(Serialize, Deserialize)]
pub struct Deliver {
    pub to: Address,
    pub text: String,
}

/// Sends a string where it is told to, from inside its handler (where a message to an actor that
/// is not running becomes a dead letter).
#[derive(Default)]
pub struct Courier;

impl Actor for Courier {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(d) = msg.get::<Deliver>() {
            ctx.send(&d.to, &d.text)?;
        }
        Ok(())
    }
}

/// Asks a [`Burster`] to send `first` numbers (0, 1, ...) to `to`, wait until `release`
/// exists, then send `then` more, all from inside one handler.
#[derive(Serialize, Deserialize)]
pub struct BurstPlan {
    pub to: Address,
    pub first: u64,
    pub then: u64,
    pub release: PathBuf,
}

/// Sends in two bursts with a pause between, inside one handler: the second burst is batched,
/// and its receiver can be made to end in the pause.
#[derive(Default)]
pub struct Burster;

impl Actor for Burster {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(plan) = msg.get::<BurstPlan>() {
            for n in 0..plan.first {
                ctx.send(&plan.to, &n)?;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while !plan.release.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            for n in plan.first..plan.first + plan.then {
                ctx.send(&plan.to, &n)?;
            }
            ctx.reply("burst done")?;
        }
        Ok(())
    }
}

/// Replies to a `u64` n with a `Blob` of n bytes (so that a reply can be made too big to send).
#[derive(Default)]
pub struct Bloater;

impl Actor for Bloater {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(n) = msg.get::<u64>() {
            let blob =
                Message::with_type("Blob", &serde_bytes::ByteBuf::from(vec![7u8; n as usize]))?;
            let to = ctx.sender();
            ctx.send_message(&to, blob)?;
        }
        Ok(())
    }
}

/// Asks a [`Flooder`] to send `count` numbers to `peer` from inside one handler, and to tell
/// `report` once it has received `expect` numbers itself.
#[derive(Serialize, Deserialize)]
pub struct Flood {
    pub peer: Address,
    pub count: u64,
    pub expect: u64,
    pub report: Address,
}

/// Floods a peer (or itself) from inside one handler while being flooded: the sends must not
/// wait forever for a receiver that is itself waiting.
#[derive(Default)]
pub struct Flooder {
    received: u64,
    expect: Option<(u64, Address)>,
}

impl Actor for Flooder {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(f) = msg.get::<Flood>() {
            self.expect = Some((f.expect, f.report.clone()));
            for n in 0..f.count {
                ctx.send(&f.peer, &n)?;
            }
            self.check(ctx)?;
        } else if msg.is::<u64>() {
            self.received += 1;
            self.check(ctx)?;
        }
        Ok(())
    }
}

impl Flooder {
    fn check(&mut self, ctx: &mut Context<'_>) -> Handled {
        if let Some((expect, report)) = &self.expect
            && self.received == *expect
        {
            let report = report.clone();
            ctx.send(&report, &("flood received", self.received))?;
        }
        Ok(())
    }
}

/// Sets up a [`Stall`]: block on this message until `first` exists; then, on every `u64`,
/// send it to `report` and block until `each` exists. `LoopBack { count }` makes it send itself
/// `count` numbers first.
#[derive(Serialize, Deserialize)]
pub struct StallOn {
    pub first: PathBuf,
    pub each: PathBuf,
    pub report: Address,
}

/// Asks a [`Stall`] to send itself `count` numbers (0, 1, ...).
#[derive(Serialize, Deserialize)]
pub struct LoopBack {
    pub count: u64,
}

/// Holds messages it has taken without handling them: to show they outlive its process, and
/// the processes that sent them.
#[derive(Default)]
pub struct Stall {
    plan: Option<StallOn>,
}

fn wait_for_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Actor for Stall {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(plan) = msg.get::<StallOn>() {
            ctx.reply("stalling")?;
            wait_for_file(&plan.first);
            self.plan = Some(plan);
        } else if let Some(lb) = msg.get::<LoopBack>() {
            let me = ctx.my_address().clone();
            for n in 0..lb.count {
                ctx.send(&me, &n)?;
            }
        } else if let Some(n) = msg.get::<u64>()
            && let Some(plan) = &self.plan
        {
            ctx.send(&plan.report, &n)?;
            wait_for_file(&plan.each);
        }
        Ok(())
    }
}

/// Register every zoo actor type. First thing in `main` of a binary that runs them.
pub fn register() {
    greenroom::message_names!(v1::Ping => "Ping.v1", v2::Ping => "Ping.v2");
    greenroom::actors!(
        Versioned,
        Watcher,
        GpuEcho,
        Echo,
        Inspect,
        Silent,
        Hooked,
        HookFails,
        Configured,
        Delegate,
        greenroom::Troupe<Delegate>,
        greenroom::TroupeMember<Delegate>,
        Sink,
        Source,
        Parent,
        Spawner,
        Blocker,
        Crasher,
        Broken,
        Flaky,
        DeadHandler,
        Timer,
        Stage,
        Namer,
        Logger,
        Fan,
        Relay,
        Recorder,
        Courier,
        Burster,
        Bloater,
        Flooder,
        Stall,
        greenroom::Troupe<Work>,
        greenroom::TroupeMember<Work>,
        greenroom::Transient<Session>,
        greenroom::Transient<Lease>,
        greenroom::Transient<Brief>,
    );
}
