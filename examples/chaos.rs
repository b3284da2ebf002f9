//! The chaos scenario: actors pass numbered tokens from one to another while, every 50 ms, a
//! random one of them fails, and a supervising parent replaces it. At the end every token must
//! be accounted for: handled (it reached its last hop), or returned (poisoned, or
//! dead-lettered). A token returned *and* handled is allowed only when the return was marked
//! possibly handled (its carrier died in its handler).
//!
//! ```sh
//! scripts/chaos --actors 40 --seconds 5                        # processes, kill -9
//! GREENROOM_BASE=simple scripts/chaos --actors 40 --seconds 5  # in one process: panics, exits
//! ```
//!
//! On the process base a failure is a `kill -9` of a random token carrier; on the simple base
//! (where nothing can be killed) it is an `ExitRequest`. On both, carriers also panic on a few
//! tokens (a panic twice in a row sends the token back as `Poison`) and leave on a few (what is
//! queued behind their exit comes back as dead letters). The result is one line of JSON:
//! tokens, kills, outcomes, duplicates, `unaccounted`, and the system's ledger.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use greenroom::{
    Actor, ActorSystem, Address, Base, ChildExited, Context, DeadEnvelope, Handled, Message, Poison,
};
use serde::{Deserialize, Serialize};

/// A token on its way: `hops` more carriers to go, and where to report its end.
#[derive(Serialize, Deserialize, Clone)]
struct Token {
    id: u64,
    hops: u32,
    report: Address,
}

/// Who the carriers are, and where to report.
#[derive(Serialize, Deserialize, Clone)]
struct Peers {
    list: Vec<Address>,
    report: Address,
    panic_per_mille: u32,
    exit_per_mille: u32,
}

/// To the driver: a token reached its last hop.
#[derive(Serialize, Deserialize)]
struct Done {
    id: u64,
}

/// To the driver: a token came back.
#[derive(Serialize, Deserialize)]
struct Back {
    id: u64,
    how: String,
    possibly_handled: bool,
}

/// The token a message carries, however deep: as itself, inside a `Poison` (whose own
/// delivery may have failed too) or inside a `DeadEnvelope`; and whether any of the returns on
/// the way was marked possibly handled.
fn token_in(msg: &Message) -> Option<(Token, bool)> {
    if let Some(token) = msg.get::<Token>() {
        return Some((token, false));
    }
    if let Some(p) = msg.get::<Poison>() {
        let (token, marked) = token_in(&p.original)?;
        return Some((token, marked || p.possibly_handled));
    }
    let dead = msg.get::<DeadEnvelope>()?;
    token_in(&dead.message)
}

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
}

/// Carries tokens: passes each to a random peer, or reports it done after its last hop; a
/// token it sent that comes back as Poison is reported back.
#[derive(Default)]
struct Juggler {
    peers: Option<Peers>,
    rng: Option<Rng>,
}

impl Juggler {
    fn carry(&mut self, token: Token, ctx: &mut Context<'_>) -> Handled {
        let peers = self.peers.as_ref().expect("carry only with peers");
        let rng = self
            .rng
            .get_or_insert_with(|| Rng(ctx.my_address().id().wrapping_mul(0x9e37_79b9) | 1));
        if peers.panic_per_mille > 0 && (rng.next() % 1000) < peers.panic_per_mille as u64 {
            panic!("juggler dropped token {}", token.id);
        }
        if peers.exit_per_mille > 0 && (rng.next() % 1000) < peers.exit_per_mille as u64 {
            // Leave, with this token passed on and whatever is queued behind the request
            // returned by the framework.
            let me = ctx.my_address().clone();
            ctx.send(&me, &greenroom::ExitRequest::default())?;
        }
        if token.hops == 0 || peers.list.is_empty() {
            return Ok(ctx.send(&token.report, &Done { id: token.id })?);
        }
        let next = peers.list[rng.below(peers.list.len())].clone();
        trace(format_args!(
            "{} sends {} to {}",
            ctx.my_address().id(),
            token.id,
            next.id()
        ));
        let on = Token {
            hops: token.hops - 1,
            ..token
        };
        Ok(ctx.send(&next, &on)?)
    }
}

/// With `CHAOS_TRACE=FILE`, each carrier appends what it does with tokens to `FILE` (and the
/// driver its kills), to follow a token that went missing.
fn trace(line: std::fmt::Arguments<'_>) {
    if let Some(path) = std::env::var_os("CHAOS_TRACE") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

impl Actor for Juggler {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some((t, m)) = token_in(msg) {
            trace(format_args!(
                "{} got {} {} from {} {m}",
                ctx.my_address().id(),
                t.id,
                msg.type_name(),
                ctx.sender().id()
            ));
        }
        if let Some(peers) = msg.get::<Peers>() {
            self.peers = Some(peers);
        } else if let Some(token) = msg.get::<Token>() {
            if self.peers.is_none() {
                // A replacement can be handed a token before it hears who its peers are: the
                // token's journey ends here (holding it would make it this actor's state, which
                // a kill loses with the actor).
                return Ok(ctx.send(&token.report, &Done { id: token.id })?);
            }
            self.carry(token, ctx)?;
        } else if msg.is::<Poison>()
            && let Some((token, marked)) = token_in(msg)
        {
            let back = Back {
                id: token.id,
                how: "poisoned".into(),
                possibly_handled: marked,
            };
            ctx.send(&token.report, &back)?;
        }
        Ok(())
    }
}

/// Start the carriers and tell the driver who they are.
#[derive(Serialize, Deserialize)]
struct Start {
    count: usize,
    report: Address,
    panic_per_mille: u32,
    exit_per_mille: u32,
}

/// The carriers, now.
#[derive(Serialize, Deserialize)]
struct Ready {
    jugglers: Vec<Address>,
}

/// Supervises the carriers: creates them, and replaces any that ends, telling all who the
/// carriers are now.
#[derive(Default)]
struct Keeper {
    peers: Option<Peers>,
}

impl Keeper {
    fn broadcast(&mut self, ctx: &mut Context<'_>) -> Handled {
        let peers = self.peers.clone().expect("started");
        for j in &peers.list {
            ctx.send(j, &peers)?;
        }
        Ok(())
    }
}

impl Actor for Keeper {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(start) = msg.get::<Start>() {
            let mut list = Vec::new();
            for _ in 0..start.count {
                list.push(ctx.create_actor::<Juggler>()?);
            }
            self.peers = Some(Peers {
                list: list.clone(),
                report: start.report,
                panic_per_mille: start.panic_per_mille,
                exit_per_mille: start.exit_per_mille,
            });
            self.broadcast(ctx)?;
            ctx.reply(&Ready { jugglers: list })?;
        } else if let Some(exited) = msg.get::<ChildExited>()
            && let Some(peers) = &mut self.peers
            && let Some(at) = peers.list.iter().position(|j| *j == exited.child)
        {
            peers.list[at] = ctx.create_actor::<Juggler>()?;
            self.broadcast(ctx)?;
        }
        Ok(())
    }
}

/// The dead-letter handler: reports every token (or token's Poison) that ends up here.
#[derive(Default)]
struct Graveyard {
    report: Option<Address>,
}

impl Actor for Graveyard {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(report) = msg.get::<Address>() {
            self.report = Some(report);
            ctx.handle_dead_letters(true)?;
            ctx.reply("registered")?;
        } else if let Some(dead) = msg.get::<DeadEnvelope>()
            && let Some(report) = self.report.clone()
        {
            let Some((token, marked)) = token_in(&dead.message) else {
                return Ok(());
            };
            trace(format_args!(
                "grave {} target {} sender {}",
                token.id,
                dead.target.id(),
                dead.sender.id()
            ));
            let back = Back {
                id: token.id,
                how: "dead-lettered".into(),
                possibly_handled: marked,
            };
            ctx.send(&report, &back)?;
        }
        Ok(())
    }
}

/// What became of one token.
#[derive(Default)]
struct Fate {
    handled: u32,
    returned: u32,
    marked: u32,
}

struct Args {
    actors: usize,
    seconds: f64,
    seed: u64,
    hops: u32,
    panic_per_mille: u32,
    exit_per_mille: u32,
    in_flight: usize,
    fail_every_ms: u64,
    /// Run on past `seconds` (up to six times as long) until this many failures have happened:
    /// a loaded machine falls behind the beat.
    min_failures: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        actors: 40,
        seconds: 5.0,
        seed: 1,
        hops: 20,
        panic_per_mille: 2,
        exit_per_mille: 1,
        in_flight: 200,
        fail_every_ms: 50,
        min_failures: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: '{value}' is not a number");
        match flag.as_str() {
            "--actors" => a.actors = value.parse().map_err(|_| bad())?,
            "--seconds" => a.seconds = value.parse().map_err(|_| bad())?,
            "--seed" => a.seed = value.parse().map_err(|_| bad())?,
            "--hops" => a.hops = value.parse().map_err(|_| bad())?,
            "--panic-per-mille" => a.panic_per_mille = value.parse().map_err(|_| bad())?,
            "--exit-per-mille" => a.exit_per_mille = value.parse().map_err(|_| bad())?,
            "--in-flight" => a.in_flight = value.parse().map_err(|_| bad())?,
            "--fail-every-ms" => a.fail_every_ms = value.parse().map_err(|_| bad())?,
            "--min-failures" => a.min_failures = value.parse().map_err(|_| bad())?,
            other => {
                return Err(format!(
                    "unknown option {other}; use --actors N --seconds S [--seed N] [--hops N] [--panic-per-mille N] [--exit-per-mille N] [--in-flight N] [--fail-every-ms N] [--min-failures N]"
                ));
            }
        }
    }
    if !(1..=1000).contains(&a.actors) || !(0.0..=3600.0).contains(&a.seconds) {
        return Err("use 1 to 1000 actors and 0 to 3600 seconds".into());
    }
    Ok(a)
}

fn run(a: &Args) -> Result<String, String> {
    let e = |e: greenroom::Error| e.to_string();
    let mut sys = ActorSystem::new().map_err(e)?;
    let me = sys.address().clone();
    let graveyard = sys.create_actor::<Graveyard>().map_err(e)?;
    sys.ask(&graveyard, &me, Duration::from_secs(10))
        .map_err(e)?;
    let keeper = sys.create_actor::<Keeper>().map_err(e)?;
    let start = Start {
        count: a.actors,
        report: me.clone(),
        panic_per_mille: a.panic_per_mille,
        exit_per_mille: a.exit_per_mille,
    };
    let ready: Ready = sys
        .ask(&keeper, &start, Duration::from_secs(30))
        .map_err(e)?
        .decode()
        .map_err(e)?;
    let mut jugglers = ready.jugglers;

    let mut rng = Rng(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut fates: BTreeMap<u64, Fate> = BTreeMap::new();
    let (mut next_id, mut kills) = (0u64, 0u64);
    // Record an outcome; true if it is the token's first.
    let take = |msg: Message, fates: &mut BTreeMap<u64, Fate>| {
        let (id, handled, marked) = if let Some(d) = msg.get::<Done>() {
            (d.id, true, false)
        } else if let Some(b) = msg.get::<Back>() {
            (b.id, false, b.possibly_handled)
        } else if let Some((t, marked)) = token_in(&msg) {
            (t.id, false, marked)
        } else {
            return false;
        };
        trace(format_args!(
            "outcome {id} {} marked {marked} via {} from {}",
            if handled { "handled" } else { "returned" },
            msg.type_name(),
            msg.get::<Back>().map_or(String::new(), |b| b.how)
        ));
        let f = fates.entry(id).or_default();
        let first = f.handled + f.returned == 0;
        if handled {
            f.handled += 1;
        } else {
            f.returned += 1;
        }
        f.marked += marked as u32;
        first
    };
    let mut sent: Vec<u64> = Vec::new();
    let started = Instant::now();
    let every = Duration::from_millis(a.fail_every_ms.max(1));
    let mut next_failure = started + every;
    let (mut carriers, mut carriers_at): (Vec<(Address, u32)>, Instant) = (Vec::new(), started);
    let mut ended = 0usize;
    let running = |kills: u64| {
        let t = started.elapsed().as_secs_f64();
        t < a.seconds || (kills < a.min_failures && t < a.seconds * 6.0)
    };
    while running(kills) {
        // Keep a bounded number of tokens on their way, as a steady load would.
        let room = a.in_flight.saturating_sub(sent.len() - ended).min(5);
        for _ in 0..room {
            let to = &jugglers[rng.below(jugglers.len())];
            let token = Token {
                id: next_id,
                hops: a.hops,
                report: me.clone(),
            };
            next_id += 1;
            match sys.tell(to, &token) {
                Ok(()) => sent.push(token.id),
                // Refused: the caller keeps it, so it was never sent.
                Err(greenroom::Error::DeadActor(_)) => {}
                Err(err) => return Err(err.to_string()),
            }
        }
        if Instant::now() >= next_failure {
            // On a steady beat; a loop that falls far behind starts a new beat rather than
            // failing processes in a bunch (that is another scenario).
            next_failure += every;
            if next_failure < Instant::now() {
                next_failure = Instant::now() + every / 2;
            }
            // Who carries tokens now: asked of the admin now and then, not for every failure
            // (asking takes long enough in a debug build to slow the beat down).
            if carriers.is_empty() || carriers_at.elapsed() > Duration::from_millis(250) {
                carriers = sys
                    .status()
                    .map_err(e)?
                    .into_iter()
                    .filter(|a| a.type_name == "Juggler")
                    .map(|a| (a.address, a.pid))
                    .collect();
                carriers_at = Instant::now();
                jugglers = carriers.iter().map(|c| c.0.clone()).collect();
            }
            if !carriers.is_empty() {
                let (victim, pid) = carriers.swap_remove(rng.below(carriers.len()));
                let (victim, pid) = (&victim, &pid);
                match sys.base() {
                    Base::Multiproc => {
                        // The carrier's process, started by this program's own admin.
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(*pid as i32),
                            nix::sys::signal::SIGKILL,
                        );
                    }
                    Base::Simple => {
                        let _ = sys.tell_exit(victim);
                    }
                }
                kills += 1;
                trace(format_args!("kill {} pid {}", victim.id(), pid));
            }
        }
        while let Some(msg) = sys.listen(Duration::from_millis(1)).map_err(e)? {
            if take(msg, &mut fates) {
                ended += 1;
            }
        }
    }
    // No more failures: wait until every token sent has an outcome (or nothing moves).
    let mut last_progress = Instant::now();
    let accounted = |fates: &BTreeMap<u64, Fate>| {
        sent.iter()
            .filter(|id| fates.get(id).is_some_and(|f| f.handled + f.returned > 0))
            .count()
    };
    let mut settled = accounted(&fates);
    while settled < sent.len() && last_progress.elapsed() < Duration::from_secs(20) {
        if let Some(msg) = sys.listen(Duration::from_millis(100)).map_err(e)? {
            let _ = take(msg, &mut fates);
        }
        let now = accounted(&fates);
        if now > settled {
            settled = now;
            last_progress = Instant::now();
        }
    }
    while let Some(msg) = sys.listen(Duration::from_millis(200)).map_err(e)? {
        let _ = take(msg, &mut fates);
    }
    // The system's ledger settles a little after the last token: what the failures left
    // behind is still being returned while the last outcomes arrive.
    let settled_by = Instant::now() + Duration::from_secs(10);
    let mut ledger = sys.system_status().map_err(e)?.ledger;
    while ledger.in_flight > 0 && Instant::now() < settled_by {
        while let Some(msg) = sys.listen(Duration::from_millis(20)).map_err(e)? {
            let _ = take(msg, &mut fates);
        }
        ledger = sys.system_status().map_err(e)?.ledger;
    }
    let (mut handled, mut returned, mut marked, mut duplicates) = (0, 0, 0, 0);
    let mut unmarked = Vec::new();
    let mut unaccounted = Vec::new();
    for id in &sent {
        match fates.get(id) {
            Some(f) if f.handled + f.returned > 0 => {
                handled += (f.handled > 0) as u64;
                returned += (f.returned > 0) as u64;
                marked += (f.marked > 0) as u64;
                let outcomes = f.handled + f.returned;
                if outcomes > 1 {
                    duplicates += 1;
                    // Every outcome but one must come from a return marked possibly handled.
                    if outcomes - 1 > f.marked {
                        unmarked.push(*id);
                    }
                }
            }
            _ => unaccounted.push(*id),
        }
    }
    let report = serde_json::json!({
        "base": format!("{:?}", sys.base()).to_lowercase(),
        "actors": a.actors,
        "seconds": a.seconds,
        "tokens": sent.len(),
        "kills": kills,
        "handled": handled,
        "returned": returned,
        "possibly_handled": marked,
        "duplicates": duplicates,
        "unmarked_duplicates": unmarked.len(),
        "unmarked_ids": unmarked.iter().take(20).collect::<Vec<_>>(),
        "unaccounted": unaccounted.len(),
        "unaccounted_ids": unaccounted.iter().take(20).collect::<Vec<_>>(),
        "ledger": ledger,
    });
    sys.shutdown().map_err(e)?;
    Ok(report.to_string())
}

fn main() {
    // Panics are part of the scenario: keep them off the terminal.
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        if !text.contains("juggler dropped token") {
            trace(format_args!("PANIC {} {text}", std::process::id()));
        }
    }));
    greenroom::actors!(Juggler, Keeper, Graveyard);
    let outcome = args().and_then(|a| run(&a));
    match outcome {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("chaos: {e}");
            std::process::exit(1);
        }
    }
}
