//! greenroom's scenario suite: each scenario is written once, against the system API, and runs on
//! whichever base `GREENROOM_BASE` names (`multiproc`, the default, or `simple`).
//!
//! ```sh
//! cargo run --example scenarios -- list
//! GREENROOM_BASE=simple cargo run --example scenarios -- poison
//! ```
//!
//! The integration tests run every scenario on both bases (`tests/integration/scenarios.rs`).

#[path = "../zoo/actors.rs"]
mod actors;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actors::{Fired, Item, Link, SetTimers};
use greenroom::{
    ActorSystem, Address, Base, ChildExited, DeadEnvelope, ExitReason, ExitRequest, Message, Poison,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long any wait may take (virtual time on the simple base).
const PATIENCE: Duration = Duration::from_secs(10);

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!("{} (at line {})", format!($($why)+), line!()));
        }
    };
}

fn err(e: greenroom::Error) -> String {
    e.to_string()
}

/// Wait for the next message; it must be a `T` named `type_name`.
fn expect<T: DeserializeOwned>(sys: &mut ActorSystem, type_name: &str) -> Result<T, String> {
    let msg = sys
        .listen(PATIENCE)
        .map_err(err)?
        .ok_or_else(|| format!("no {type_name} arrived"))?;
    ensure!(
        msg.type_name() == type_name,
        "expected a {type_name}, got a {}",
        msg.type_name()
    );
    msg.decode().map_err(err)
}

/// Ask and decode the reply as a `T` named `type_name`.
fn ask<T: DeserializeOwned, Q: Serialize + ?Sized>(
    sys: &mut ActorSystem,
    to: &Address,
    question: &Q,
    type_name: &str,
) -> Result<T, String> {
    sys.tell(to, question).map_err(err)?;
    expect(sys, type_name)
}

/// Wait for the `ChildExited` of `child` (this endpoint must be its parent), skipping other
/// system messages.
fn child_exited(sys: &mut ActorSystem, child: &Address) -> Result<ExitReason, String> {
    loop {
        let env = sys
            .listen_any(PATIENCE)
            .map_err(err)?
            .ok_or_else(|| format!("no ChildExited for {child}"))?;
        if let Some(n) = env.msg.get::<ChildExited>()
            && n.child == *child
        {
            return Ok(n.reason);
        }
        ensure!(
            env.msg.is_system(),
            "unexpected {} while waiting for ChildExited",
            env.msg.type_name()
        );
    }
}

/// Poll `check` until it holds (immediately on the simple base; within `PATIENCE` on processes).
fn eventually(what: &str, mut check: impl FnMut() -> Result<bool, String>) -> Outcome {
    let deadline = Instant::now() + PATIENCE;
    while !check()? {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn live(sys: &mut ActorSystem) -> Result<usize, String> {
    Ok(sys.status().map_err(err)?.len())
}

#[derive(Serialize, Deserialize)]
struct Spawn {
    count: u32,
    kind: String,
}

fn spawn(
    sys: &mut ActorSystem,
    parent: &Address,
    count: u32,
    kind: &str,
) -> Result<Vec<Address>, String> {
    let spawn = Spawn {
        count,
        kind: kind.into(),
    };
    ask(sys, parent, &spawn, "Vec<Address>")
}

// ---- the scenarios ---------------------------------------------------------------------------

fn exit_is_recursive(sys: &mut ActorSystem) -> Outcome {
    let root = sys.create_actor_by_name("Parent", None).map_err(err)?;
    for kid in spawn(sys, &root, 2, "Parent")? {
        spawn(sys, &kid, 2, "Echo")?;
    }
    ensure!(live(sys)? == 7, "expected 7 actors");
    sys.tell_exit(&root).map_err(err)?;
    ensure!(
        child_exited(sys, &root)? == ExitReason::Requested,
        "root's exit reason"
    );
    eventually("the whole tree to exit", || Ok(live(sys)? == 0))
}

fn exit_can_leave_children_running(sys: &mut ActorSystem) -> Outcome {
    let root = sys.create_actor_by_name("Parent", None).map_err(err)?;
    let kids = spawn(sys, &root, 2, "Echo")?;
    sys.tell(&root, &ExitRequest::non_recursive())
        .map_err(err)?;
    ensure!(
        child_exited(sys, &root)? == ExitReason::Requested,
        "root's exit reason"
    );
    for kid in &kids {
        let n: u32 = ask(sys, kid, &7u32, "u32")?;
        ensure!(n == 7, "child {kid} no longer answers");
    }
    ensure!(live(sys)? == 2, "the children should still run");
    Ok(())
}

fn failed_start_returns_messages_as_poison(sys: &mut ActorSystem) -> Outcome {
    let handler = sys.create_actor_by_name("DeadHandler", None).map_err(err)?;
    ensure!(
        ask::<String, _>(sys, &handler, "register", "String")? == "done",
        "register"
    );
    let broken = sys.create_actor_by_name("Broken", None).map_err(err)?;
    let mut sent = Vec::new();
    for n in 0..3u32 {
        match sys.tell(&broken, &n) {
            Ok(()) => sent.push(n),
            Err(greenroom::Error::DeadActor(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    // Each message sent comes back exactly once: as Poison if it reached the actor before it
    // failed, else (it arrived after) as a dead letter.
    let (mut poisoned, mut reason) = (Vec::new(), None);
    while reason.is_none() {
        let env = sys
            .listen_any(PATIENCE)
            .map_err(err)?
            .ok_or_else(|| format!("got back {poisoned:?} of {sent:?}, no ChildExited"))?;
        if let Some(p) = env.msg.get::<Poison>() {
            ensure!(
                p.details.contains("Broken cannot be built") && !p.possibly_handled,
                "details: {}",
                p.details
            );
            poisoned.push(p.original.decode::<u32>().map_err(err)?);
        } else if let Some(n) = env.msg.get::<ChildExited>() {
            reason = Some(n.reason);
        }
    }
    let mut back = Vec::new();
    eventually("every message back", || {
        let dead: Vec<DeadEnvelope> = ask(sys, &handler, "report", "Vec<DeadEnvelope>")?;
        while let Some(p) = sys.listen(Duration::ZERO).map_err(err)? {
            if let Some(p) = p.get::<Poison>() {
                poisoned.push(p.original.decode::<u32>().map_err(err)?);
            }
        }
        back = poisoned.clone();
        for d in &dead {
            back.push(d.message.decode::<u32>().map_err(err)?);
        }
        back.sort();
        Ok(back.len() >= sent.len())
    })?;
    ensure!(back == sent, "came back {back:?} for {sent:?}");
    match reason {
        Some(ExitReason::FailedToStart { error }) => {
            ensure!(error.contains("Broken cannot be built"), "error: {error}")
        }
        other => return Err(format!("expected FailedToStart, got {other:?}")),
    }
    Ok(())
}

fn poison_after_one_retry_and_the_actor_keeps_running(sys: &mut ActorSystem) -> Outcome {
    let flaky = sys.create_actor_by_name("Flaky", None).map_err(err)?;
    sys.tell(&flaky, "panic").map_err(err)?;
    let p: Poison = expect(sys, "greenroom.Poison")?;
    ensure!(
        p.original.get::<String>().as_deref() == Some("panic"),
        "original"
    );
    ensure!(p.details.contains("boom"), "details: {}", p.details);
    ensure!(
        ask::<u32, _>(sys, &flaky, "attempts", "u32")? == 2,
        "one retry"
    );
    sys.tell(&flaky, "err").map_err(err)?;
    let p: Poison = expect(sys, "greenroom.Poison")?;
    ensure!(p.details.contains("refused"), "details: {}", p.details);
    // Sent as a String, but not one: `get::<String>` finds nothing, and that is a failure too.
    let not_a_string = Message::with_type("String", &42u32).map_err(err)?;
    sys.tell_message(&flaky, not_a_string).map_err(err)?;
    let p: Poison = expect(sys, "greenroom.Poison")?;
    ensure!(
        p.original.type_name() == "String" && p.details.contains("decode"),
        "details: {}",
        p.details
    );
    ensure!(
        ask::<u32, _>(sys, &flaky, "attempts", "u32")? == 6,
        "one retry of the undecodable message"
    );
    ensure!(
        ask::<String, _>(sys, &flaky, "flaky", "String")? == "ok",
        "retry succeeds"
    );
    ensure!(
        ask::<u32, _>(sys, &flaky, "attempts", "u32")? == 8,
        "attempts"
    );
    // Failures on Poison are neither retried nor returned.
    let poison = Poison {
        original: Message::new("x").map_err(err)?,
        details: "test".into(),
        possibly_handled: false,
    };
    sys.tell(&flaky, &poison).map_err(err)?;
    ensure!(
        ask::<u32, _>(sys, &flaky, "attempts", "u32")? == 9,
        "no retry for Poison"
    );
    // Nor on ExitRequest: the actor exits all the same.
    sys.tell_exit(&flaky).map_err(err)?;
    ensure!(
        child_exited(sys, &flaky)? == ExitReason::Requested,
        "exit reason"
    );
    Ok(())
}

fn dead_letters_reach_the_newest_handler(sys: &mut ActorSystem) -> Outcome {
    let first = sys.create_actor_by_name("DeadHandler", None).map_err(err)?;
    ensure!(
        ask::<String, _>(sys, &first, "register", "String")? == "done",
        "register"
    );
    let echo = sys.create_actor_by_name("Echo", None).map_err(err)?;
    let courier = sys.create_actor_by_name("Courier", None).map_err(err)?;
    sys.tell_exit(&echo).map_err(err)?;
    child_exited(sys, &echo)?;
    let dead = |sys: &mut ActorSystem, what: &str| -> Outcome {
        // From outside, a message to an exited actor is refused: the caller keeps it.
        match sys.tell(&echo, what) {
            Err(greenroom::Error::DeadActor(_)) => {}
            other => return Err(format!("tell to an exited actor gave {other:?}")),
        }
        // From inside an actor it is taken, and becomes a dead letter.
        let deliver = actors::Deliver {
            to: echo.clone(),
            text: what.into(),
        };
        sys.tell(&courier, &deliver).map_err(err)
    };
    let report = |sys: &mut ActorSystem, h: &Address| -> Result<Vec<String>, String> {
        let seen: Vec<DeadEnvelope> = ask(sys, h, "report", "Vec<DeadEnvelope>")?;
        Ok(seen
            .iter()
            .map(|d| {
                d.message.type_name().to_string()
                    + ":"
                    + &d.message.get::<String>().unwrap_or_default()
            })
            .collect())
    };
    dead(sys, "late")?;
    eventually("the first dead letter", || {
        Ok(report(sys, &first)? == ["String:late"])
    })?;

    let second = sys.create_actor_by_name("DeadHandler", None).map_err(err)?;
    ensure!(
        ask::<String, _>(sys, &second, "register", "String")? == "done",
        "register"
    );
    dead(sys, "later")?;
    eventually("the second dead letter", || {
        Ok(report(sys, &second)? == ["String:later"])
    })?;
    ensure!(
        report(sys, &first)? == ["String:late"],
        "the newest handler wins"
    );

    // A ChildExited for a parent that is gone is not a dead letter.
    let parent = sys.create_actor_by_name("Parent", None).map_err(err)?;
    let child = spawn(sys, &parent, 1, "Echo")?.remove(0);
    sys.tell(&parent, &ExitRequest::non_recursive())
        .map_err(err)?;
    child_exited(sys, &parent)?;
    sys.tell_exit(&child).map_err(err)?;
    eventually("the orphan to exit", || {
        Ok(!sys
            .status()
            .map_err(err)?
            .iter()
            .any(|a| a.address == child))
    })?;
    dead(sys, "marker")?;
    eventually("the marker", || Ok(report(sys, &second)?.len() == 2))?;
    ensure!(
        report(sys, &second)? == ["String:later", "String:marker"],
        "no ChildExited dead letter"
    );

    // When the handler exits, dead letters are dropped again (not sent to the older one).
    sys.tell_exit(&second).map_err(err)?;
    child_exited(sys, &second)?;
    dead(sys, "lost")?;
    ensure!(
        report(sys, &first)? == ["String:late"],
        "dead letters went to a replaced handler"
    );
    Ok(())
}

fn timers_fire_in_order_once_each_and_never_early(sys: &mut ActorSystem) -> Outcome {
    let timer = sys.create_actor_by_name("Timer", None).map_err(err)?;
    let delays = [60u64, 20, 40];
    sys.tell(
        &timer,
        &SetTimers {
            delays_ms: delays.to_vec(),
        },
    )
    .map_err(err)?;
    let mut fired = Fired {
        order: vec![],
        elapsed_ms: vec![],
    };
    let deadline = Instant::now() + PATIENCE;
    while fired.order.len() < 3 {
        ensure!(Instant::now() < deadline, "timers did not fire: {fired:?}");
        // Virtual time on the simple base.
        sys.sleep(Duration::from_millis(10)).map_err(err)?;
        fired = ask(sys, &timer, "fired", "Fired")?;
    }
    ensure!(fired.order == [1, 2, 0], "order {:?}", fired.order);
    if sys.base() == Base::Multiproc {
        for (i, &idx) in fired.order.iter().enumerate() {
            ensure!(
                fired.elapsed_ms[i] >= delays[idx as usize],
                "timer {idx} fired early: {fired:?}"
            );
        }
    }
    // Each exactly once: more waiting brings no more wakeups.
    sys.sleep(Duration::from_millis(100)).map_err(err)?;
    let again: Fired = ask(sys, &timer, "fired", "Fired")?;
    ensure!(again.order.len() == 3, "a timer fired twice: {again:?}");
    Ok(())
}

fn pending_timers_die_with_their_actor_and_wakeups_never_block_exit(
    sys: &mut ActorSystem,
) -> Outcome {
    let handler = sys.create_actor_by_name("DeadHandler", None).map_err(err)?;
    ensure!(
        ask::<String, _>(sys, &handler, "register", "String")? == "done",
        "register"
    );
    let timer = sys.create_actor_by_name("Timer", None).map_err(err)?;
    sys.tell(
        &timer,
        &SetTimers {
            delays_ms: vec![200],
        },
    )
    .map_err(err)?;
    sys.tell_exit(&timer).map_err(err)?;
    child_exited(sys, &timer)?;
    let _ = sys.listen(Duration::from_millis(300)).map_err(err)?;
    let seen: Vec<DeadEnvelope> = ask(sys, &handler, "report", "Vec<DeadEnvelope>")?;
    ensure!(
        seen.is_empty(),
        "a pending timer outlived its actor: {seen:?}"
    );

    let flood = sys.create_actor_by_name("Timer", None).map_err(err)?;
    ensure!(
        ask::<String, _>(sys, &flood, "flood", "String")? == "flooding",
        "flood"
    );
    sys.tell_exit(&flood).map_err(err)?;
    ensure!(
        child_exited(sys, &flood)? == ExitReason::Requested,
        "flooded actor did not exit"
    );
    Ok(())
}

fn global_names_give_one_actor_until_it_exits(sys: &mut ActorSystem) -> Outcome {
    let a = sys.create_global::<actors::Echo>("svc").map_err(err)?;
    let b = sys.create_global::<actors::Silent>("svc").map_err(err)?;
    ensure!(a == b, "one name, one actor ({a} vs {b})");
    let namers: Vec<Address> = (0..2)
        .map(|_| sys.create_actor_by_name("Namer", None))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    for n in &namers {
        sys.tell(n, "create svc").map_err(err)?;
    }
    for n in &namers {
        sys.tell(n, "create other").map_err(err)?;
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(expect::<Address>(sys, "Address")?);
    }
    ensure!(
        got.iter().filter(|x| **x == a).count() == 2,
        "namers saw {got:?}, expected {a}"
    );
    let others: Vec<_> = got.iter().filter(|x| **x != a).collect();
    ensure!(
        others.len() == 2 && others[0] == others[1],
        "concurrent creates of one name: {others:?}"
    );
    sys.tell_exit(&a).map_err(err)?;
    child_exited(sys, &a)?;
    let c = sys.create_global::<actors::Echo>("svc").map_err(err)?;
    ensure!(c != a, "the name was not freed");
    // An actor can read the name it holds.
    let named = sys.create_global::<actors::Namer>("namer").map_err(err)?;
    let name: Option<String> = ask(sys, &named, "name?", "Option<String>")?;
    ensure!(name.as_deref() == Some("namer"), "its own name: {name:?}");
    let unnamed: Option<String> = ask(sys, &namers[0], "name?", "Option<String>")?;
    ensure!(unnamed.is_none(), "an actor without a name: {unnamed:?}");
    Ok(())
}

/// A type of the application's that happens to be named like one of greenroom's.
mod user {
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Poison {
        pub text: String,
    }
}

fn type_dispatch_falls_back_and_bad_bodies_are_poison(sys: &mut ActorSystem) -> Outcome {
    // greenroom's own messages have names of their own: a `Poison` of the application's is an
    // ordinary message (Echo, which ignores system messages, echoes it).
    // Two types of the same short name, given names of their own, stay apart.
    let versioned = sys.create_actor_by_name("Versioned", None).map_err(err)?;
    let v2: String = ask(sys, &versioned, &actors::v2::Ping { n: 2 }, "String")?;
    let v1: String = ask(sys, &versioned, &actors::v1::Ping { n: 1 }, "String")?;
    ensure!(
        v1 == "v1 1" && v2 == "v2 2",
        "named types mixed up: {v1}, {v2}"
    );
    ensure!(
        greenroom::type_name_of::<actors::v2::Ping>() == "Ping.v2",
        "the given name"
    );
    let echo = sys.create_actor_by_name("Echo", None).map_err(err)?;
    let mine = user::Poison {
        text: "mine".into(),
    };
    let back: user::Poison = ask(sys, &echo, &mine, "Poison")?;
    ensure!(back.text == "mine", "echoed {}", back.text);
    // An actor type nobody provides is the same error on both bases.
    match sys.create_actor_by_name("NoSuchStage", None) {
        Err(greenroom::Error::UnknownType {
            type_name, known, ..
        }) => ensure!(
            type_name == "NoSuchStage" && known.iter().any(|k| k == "Stage"),
            "unknown type {type_name}, known {known:?}"
        ),
        other => return Err(format!("creating an unknown type: {other:?}")),
    }
    let stage = sys.create_actor_by_name("Stage", None).map_err(err)?;
    // An unknown type goes to the fallback: no reply, no poison.
    sys.tell(&stage, &3.5f64).map_err(err)?;
    // A body that is not a Link, sent as a Link, fails the handler.
    let bad = Message::with_type("Link", "not a link").map_err(err)?;
    sys.tell_message(&stage, bad).map_err(err)?;
    let p: Poison = expect(sys, "greenroom.Poison")?;
    ensure!(
        p.original.type_name() == "Link",
        "poisoned {}",
        p.original.type_name()
    );
    let me = sys.address().clone();
    let link = Link {
        next: me,
        tag: "s".into(),
    };
    ensure!(
        ask::<String, _>(sys, &stage, &link, "String")? == "linked",
        "link"
    );
    // A message built beforehand and passed to `tell`/`ask` like any value is sent as it is,
    // not wrapped in a message of type `Message`.
    let built = Message::new(&link).map_err(err)?;
    ensure!(
        ask::<String, _>(sys, &stage, &built, "String")? == "linked",
        "a built message given to ask"
    );
    Ok(())
}

fn addresses_travel_and_work_as_map_keys(sys: &mut ActorSystem) -> Outcome {
    let parent = sys.create_actor_by_name("Parent", None).map_err(err)?;
    let kids = spawn(sys, &parent, 3, "Echo")?;
    let keyed: HashMap<Address, u32> = kids.iter().cloned().zip(0..).collect();
    ensure!(keyed.len() == 3, "addresses collide as keys");
    for kid in &kids {
        let n: u32 = ask(sys, kid, &keyed[kid], "u32")?;
        ensure!(n == keyed[kid], "reply from {kid}");
    }
    let text = kids[0].to_string();
    ensure!(
        text.parse::<Address>().map_err(err)? == kids[0],
        "text form round trip"
    );
    Ok(())
}

fn a_fifty_megabyte_message_and_its_reply_arrive_intact(sys: &mut ActorSystem) -> Outcome {
    let echo = sys.create_actor_by_name("Echo", None).map_err(err)?;
    let body: Vec<u8> = (0..50 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let msg = Message::with_type("Blob", &serde_bytes::Bytes::new(&body)).map_err(err)?;
    sys.tell_message(&echo, msg.clone()).map_err(err)?;
    let reply = sys
        .listen(PATIENCE * 3)
        .map_err(err)?
        .ok_or("no echo of the big message")?;
    ensure!(reply == msg, "the 50 MB message came back altered");
    Ok(())
}

fn listen_receives_a_second_reply(sys: &mut ActorSystem) -> Outcome {
    let echo = sys.create_actor_by_name("Echo", None).map_err(err)?;
    sys.tell(&echo, "first").map_err(err)?;
    sys.tell(&echo, "second").map_err(err)?;
    ensure!(expect::<String>(sys, "String")? == "first", "first reply");
    ensure!(expect::<String>(sys, "String")? == "second", "second reply");
    ensure!(
        sys.listen(Duration::from_millis(50))
            .map_err(err)?
            .is_none(),
        "a third reply"
    );
    Ok(())
}

fn an_ask_takes_its_own_answer_and_leaves_the_rest(sys: &mut ActorSystem) -> Outcome {
    let echo = sys.create_actor_by_name("Echo", None).map_err(err)?;
    // The reply to "first" arrives before the answer to the ask: the ask takes its own.
    sys.tell(&echo, "first").map_err(err)?;
    let answer = sys
        .ask_as::<String, _>(&echo, "second", PATIENCE)
        .map_err(err)?;
    ensure!(answer == "second", "the ask took {answer:?}");
    ensure!(
        expect::<String>(sys, "String")? == "first",
        "first reply kept"
    );
    // A request the actor fails on is answered by its Poison.
    let flaky = sys.create_actor_by_name("Flaky", None).map_err(err)?;
    let answer = sys.ask(&flaky, "panic", PATIENCE).map_err(err)?;
    ensure!(
        answer.is::<Poison>(),
        "answered by a {}",
        answer.type_name()
    );
    match sys.ask_as::<String, _>(&flaky, "err", PATIENCE) {
        Err(greenroom::Error::Poisoned { details, .. }) if details.contains("refused") => {}
        other => return Err(format!("ask_as of a failing request: {other:?}")),
    }
    // No answer in time is an error of its own.
    let silent = sys.create_actor_by_name("Silent", None).map_err(err)?;
    match sys.ask(&silent, "anyone?", Duration::from_millis(50)) {
        Err(greenroom::Error::NoReply { to, .. }) if to == silent => {}
        other => return Err(format!("ask of a silent actor: {other:?}")),
    }
    // What `listen` passes over (a ChildExited) waits for `listen_any`.
    sys.tell_exit(&echo).map_err(err)?;
    ensure!(
        sys.listen(Duration::from_millis(200))
            .map_err(err)?
            .is_none(),
        "listen returned a system message"
    );
    ensure!(child_exited(sys, &echo)? == ExitReason::Requested, "exit");
    Ok(())
}

fn lifecycle_hooks_run_once_around_the_messages(sys: &mut ActorSystem) -> Outcome {
    let hooked = sys.create_actor_by_name("Hooked", None).map_err(err)?;
    ensure!(
        expect::<String>(sys, "String")? == "started",
        "started hook"
    );
    ensure!(
        ask::<String, _>(sys, &hooked, "hi", "String")? == "hi",
        "a message after started"
    );
    sys.tell_exit(&hooked).map_err(err)?;
    ensure!(
        expect::<String>(sys, "String")? == "stopping",
        "stopping hook"
    );
    ensure!(
        child_exited(sys, &hooked)? == ExitReason::Requested,
        "exit on request"
    );
    // A failing started hook is a failed start.
    let bad = sys.create_actor_by_name("HookFails", None).map_err(err)?;
    match child_exited(sys, &bad)? {
        ExitReason::FailedToStart { error }
            if error.contains("started() failed") && error.contains("no database") => {}
        other => return Err(format!("HookFails ended {other:?}")),
    }
    Ok(())
}

fn start_arguments_reach_the_actor_built_with_default(sys: &mut ActorSystem) -> Outcome {
    let hello = actors::Greeter {
        greeting: "hello".into(),
    };
    let configured = sys
        .create_actor_with::<actors::Configured, _>(&hello)
        .map_err(err)?;
    let said: String = ask(sys, &configured, "x", "String")?;
    ensure!(said == "hello: x", "with arguments: {said}");
    let plain = sys.create_actor::<actors::Configured>().map_err(err)?;
    let said: String = ask(sys, &plain, "x", "String")?;
    ensure!(said == "(none): x", "without: {said}");
    // An actor gives its child arguments of its own.
    let child: Address = ask(sys, &configured, "spawn", "Address")?;
    let said: String = ask(sys, &child, "y", "String")?;
    ensure!(said == "hi from a child: y", "the child: {said}");
    // Arguments of the wrong shape make its start fail.
    let bad = sys
        .create_actor_with::<actors::Configured, _>(&42u32)
        .map_err(err)?;
    match child_exited(sys, &bad)? {
        ExitReason::FailedToStart { error } if error.contains("start arguments") => Ok(()),
        other => Err(format!("bad start arguments ended it {other:?}")),
    }
}

fn requirements_are_met_by_capabilities_or_refused(sys: &mut ActorSystem) -> Outcome {
    // Every system has greenroom's own capabilities.
    let here = sys
        .create_actor_requiring::<actors::Echo>(&[("greenroom.os", std::env::consts::OS)])
        .map_err(err)?;
    let said: String = ask(sys, &here, "x", "String")?;
    ensure!(said == "x", "the echo said {said}");
    match sys.create_actor_requiring::<actors::Echo>(&[("gpu", "yes"), ("greenroom.os", "plan9")]) {
        Err(greenroom::Error::NoCompatibleSystem { unmet }) => {
            let os = std::env::consts::OS;
            let expected = [
                "gpu=yes (here no gpu)".to_string(),
                format!("greenroom.os=plan9 (here greenroom.os={os})"),
            ];
            ensure!(unmet == expected, "unmet: {unmet:?}");
        }
        other => return Err(format!("created where it cannot run: {other:?}")),
    }
    // A type can require capabilities of its own, whoever creates it.
    match sys.create_actor::<actors::GpuEcho>() {
        Err(greenroom::Error::NoCompatibleSystem { unmet }) => {
            ensure!(unmet == ["gpu=yes (here no gpu)"], "unmet: {unmet:?}")
        }
        other => return Err(format!("a GpuEcho was created without a gpu: {other:?}")),
    }
    ensure!(live(sys)? == 1, "an actor was created anyway");
    Ok(())
}

fn many_actors_reply_to_one_endpoint(sys: &mut ActorSystem) -> Outcome {
    let echoes: Vec<Address> = (0..10)
        .map(|_| sys.create_actor_by_name("Echo", None))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    for (i, e) in echoes.iter().enumerate() {
        sys.tell(e, &(i as u32)).map_err(err)?;
    }
    let mut got: Vec<u32> = (0..10)
        .map(|_| expect(sys, "u32"))
        .collect::<Result<_, _>>()?;
    got.sort();
    ensure!(got == (0..10).collect::<Vec<_>>(), "replies {got:?}");
    Ok(())
}

fn sub_actors_create_sub_actors(sys: &mut ActorSystem) -> Outcome {
    let root = sys.create_actor_by_name("Parent", None).map_err(err)?;
    let mut level = root.clone();
    for _ in 0..3 {
        level = spawn(sys, &level, 1, "Parent")?.remove(0);
    }
    let leaf = spawn(sys, &level, 1, "Echo")?.remove(0);
    ensure!(
        ask::<String, _>(sys, &leaf, "deep", "String")? == "deep",
        "leaf reply"
    );
    let tree = sys.status().map_err(err)?;
    ensure!(tree.len() == 5, "tree of {}", tree.len());
    sys.tell_exit(&root).map_err(err)?;
    child_exited(sys, &root)?;
    eventually("the tree to exit", || Ok(live(sys)? == 0))
}

fn a_hundred_rapid_creates(sys: &mut ActorSystem) -> Outcome {
    let echoes: Vec<Address> = (0..100)
        .map(|_| sys.create_actor_by_name("Echo", None))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    for (i, e) in echoes.iter().enumerate() {
        sys.tell(e, &(i as u32)).map_err(err)?;
    }
    let mut got: Vec<u32> = (0..100)
        .map(|_| expect(sys, "u32"))
        .collect::<Result<_, _>>()?;
    got.sort();
    ensure!(got == (0..100).collect::<Vec<_>>(), "missing replies");
    for e in &echoes {
        sys.tell_exit(e).map_err(err)?;
    }
    eventually("all to exit", || Ok(live(sys)? == 0))
}

fn pipeline(sys: &mut ActorSystem, stages: usize) -> Outcome {
    let addrs: Vec<Address> = (0..stages)
        .map(|_| sys.create_actor_by_name("Stage", None))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let me = sys.address().clone();
    for (i, a) in addrs.iter().enumerate() {
        let next = addrs.get(i + 1).cloned().unwrap_or_else(|| me.clone());
        let link = Link {
            next,
            tag: format!("s{i}"),
        };
        ensure!(
            ask::<String, _>(sys, a, &link, "String")? == "linked",
            "link {i}"
        );
    }
    for n in 0..50 {
        sys.tell(&addrs[0], &Item { n, path: vec![] })
            .map_err(err)?;
    }
    let want: Vec<String> = (0..stages).map(|i| format!("s{i}")).collect();
    for n in 0..50 {
        let item: Item = expect(sys, "Item")?;
        ensure!(item.n == n, "item {} arrived as number {n}", item.n);
        ensure!(item.path == want, "path {:?}", item.path);
    }
    ensure!(
        sys.listen(Duration::from_millis(20))
            .map_err(err)?
            .is_none(),
        "extra items"
    );
    Ok(())
}

fn pipelines_of_2_3_and_5_keep_order_and_count(sys: &mut ActorSystem) -> Outcome {
    for stages in [2, 3, 5] {
        pipeline(sys, stages).map_err(|e| format!("{stages} stages: {e}"))?;
    }
    Ok(())
}

/// A scenario: it drives a system through the API and says what went wrong, if anything.
type Scenario = fn(&mut ActorSystem) -> Outcome;

fn status_of_an_actor_and_of_the_system(sys: &mut ActorSystem) -> Outcome {
    let parent = sys.create_global_by_name("Parent", "boss").map_err(err)?;
    let kids = spawn(sys, &parent, 2, "Echo")?;
    let timer = sys.create_actor_by_name("Timer", None).map_err(err)?;
    sys.tell(
        &timer,
        &SetTimers {
            delays_ms: vec![60_000],
        },
    )
    .map_err(err)?;
    let st = sys.actor_status(&parent, PATIENCE).map_err(err)?;
    ensure!(st.children == kids, "children {:?}", st.children);
    ensure!(st.handled == 1 && st.type_name == "Parent", "{st:?}");
    ensure!(st.parent == *sys.address(), "parent {}", st.parent);
    let st = sys.actor_status(&timer, PATIENCE).map_err(err)?;
    ensure!(st.pending_timers == 1 && st.handled == 1, "{st:?}");
    let system = sys.system_status().map_err(err)?;
    ensure!(system.actors.len() == 4, "{} actors", system.actors.len());
    ensure!(
        system.names.get("boss") == Some(&parent),
        "names {:?}",
        system.names
    );
    ensure!(
        system.dead_letter_handler.is_none(),
        "a dead-letter handler"
    );
    ensure!(
        system
            .binaries
            .values()
            .any(|t| t.iter().any(|t| t == "Timer")),
        "binaries {:?}",
        system.binaries
    );
    ensure!(
        system.counters.created >= 4,
        "counters {:?}",
        system.counters
    );
    Ok(())
}

/// Have a `Fan` send `count` jobs to `to` at once, and collect each answer: the job's number and
/// the member that did it.
fn fan_jobs(
    sys: &mut ActorSystem,
    to: &Address,
    count: u32,
) -> Result<Vec<(u32, Address)>, String> {
    let fan = sys.create_actor_by_name("Fan", None).map_err(err)?;
    let jobs = actors::FanJobs {
        to: to.clone(),
        count,
        reply_to: sys.address().clone(),
    };
    sys.tell(&fan, &jobs).map_err(err)?;
    (0..count).map(|_| expect(sys, "(u32, Address)")).collect()
}

fn a_troupe_spreads_work_and_retires_idle_members(sys: &mut ActorSystem) -> Outcome {
    let troupe = sys
        .create_actor_by_name("Troupe<Work>", None)
        .map_err(err)?;
    let (mut done, members): (Vec<u32>, std::collections::BTreeSet<Address>) =
        fan_jobs(sys, &troupe, 9)?.into_iter().unzip();
    done.sort();
    ensure!(done == (0..9).collect::<Vec<_>>(), "jobs done: {done:?}");
    ensure!(
        members.len() == 3,
        "{} members worked; the troupe allows 3",
        members.len()
    );
    // Once the work is done, idle extras are retired: one member stays.
    eventually("idle members to retire", || {
        let kinds: Vec<String> = sys
            .status()
            .map_err(err)?
            .into_iter()
            .map(|a| a.type_name)
            .collect();
        Ok(kinds.iter().filter(|k| *k == "TroupeMember<Work>").count() == 1)
    })
}

fn troupe_work_in_progress_keeps_a_member_until_its_work_is_done(sys: &mut ActorSystem) -> Outcome {
    // Each job is passed on to a child of the member; a member reported free (and perhaps
    // retired, its children with it) as soon as its handler returned would lose it.
    let troupe = sys
        .create_actor_by_name("Troupe<Delegate>", None)
        .map_err(err)?;
    let mut done: Vec<u32> = fan_jobs(sys, &troupe, 8)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    done.sort();
    ensure!(done == (0..8).collect::<Vec<_>>(), "jobs done: {done:?}");
    Ok(())
}

fn troupes_and_transients_are_configured_by_values(sys: &mut ActorSystem) -> Outcome {
    // A troupe of one, by its start arguments (Work's own limit is 3).
    let config = greenroom::TroupeConfig { max_workers: 1 };
    let troupe = sys
        .create_actor_with::<greenroom::Troupe<actors::Work>, _>(&config)
        .map_err(err)?;
    let members: std::collections::BTreeSet<Address> = fan_jobs(sys, &troupe, 6)?
        .into_iter()
        .map(|(_, member)| member)
        .collect();
    ensure!(
        members.len() == 1,
        "{} members for a troupe of one",
        members.len()
    );
    // A lease whose lifetime comes from its start arguments, beside one that uses the default.
    let short = sys
        .create_actor_with::<greenroom::Transient<actors::Lease>, _>(&50u64)
        .map_err(err)?;
    let long = sys
        .create_actor::<greenroom::Transient<actors::Lease>>()
        .map_err(err)?;
    for lease in [&short, &long] {
        let echoed: String = ask(sys, lease, "hi", "String")?;
        ensure!(echoed == "hi", "echo {echoed}");
    }
    ensure!(
        child_exited(sys, &short)? == ExitReason::Requested,
        "the short lease"
    );
    let alive = sys.status().map_err(err)?.iter().any(|a| a.address == long);
    ensure!(alive, "the default lease ended with the short one");
    Ok(())
}

fn transient_actors_exit_after_their_lifetime(sys: &mut ActorSystem) -> Outcome {
    // Since the last message: alive as long as messages keep coming, then gone.
    let session = sys
        .create_actor_by_name("Transient<Session>", None)
        .map_err(err)?;
    let mut last = Instant::now();
    for word in ["a", "b", "c"] {
        ensure!(
            ask::<String, _>(sys, &session, word, "String")? == word,
            "session answers {word}"
        );
        last = Instant::now();
        ensure!(
            sys.listen(Duration::from_millis(150))
                .map_err(err)?
                .is_none(),
            "stray message"
        );
    }
    ensure!(
        child_exited(sys, &session)? == ExitReason::Requested,
        "session's exit"
    );
    if sys.base() == Base::Multiproc {
        // The timer was set when "c" was handled, just before its reply reached us at `last`.
        let lived = last.elapsed();
        ensure!(
            lived >= Duration::from_millis(290),
            "the session exited {lived:?} after its last message"
        );
    }
    // Since the first message: gone even though messages keep coming.
    let brief = sys
        .create_actor_by_name("Transient<Brief>", None)
        .map_err(err)?;
    let mut exited = false;
    for _ in 0..20 {
        if let Err(greenroom::Error::DeadActor(_)) = sys.tell(&brief, "ping") {
            exited = true;
            break;
        }
        // Let 100 ms pass, taking the echo (and any ChildExited) on the way.
        let until = Instant::now() + Duration::from_millis(100);
        while let Some(env) = sys
            .listen_any(
                until
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            )
            .map_err(err)?
        {
            exited |= env
                .msg
                .get::<ChildExited>()
                .is_some_and(|c| c.child == brief);
        }
        if exited {
            break;
        }
    }
    ensure!(
        exited,
        "a transient with a lifetime from its first message kept running"
    );
    Ok(())
}

const SCENARIOS: &[(&str, Scenario)] = &[
    ("exit_is_recursive", exit_is_recursive),
    (
        "exit_can_leave_children_running",
        exit_can_leave_children_running,
    ),
    (
        "failed_start_returns_messages_as_poison",
        failed_start_returns_messages_as_poison,
    ),
    ("poison", poison_after_one_retry_and_the_actor_keeps_running),
    ("dead_letters", dead_letters_reach_the_newest_handler),
    ("timers", timers_fire_in_order_once_each_and_never_early),
    (
        "timers_and_exit",
        pending_timers_die_with_their_actor_and_wakeups_never_block_exit,
    ),
    ("global_names", global_names_give_one_actor_until_it_exits),
    (
        "type_dispatch",
        type_dispatch_falls_back_and_bad_bodies_are_poison,
    ),
    ("addresses", addresses_travel_and_work_as_map_keys),
    (
        "big_message",
        a_fifty_megabyte_message_and_its_reply_arrive_intact,
    ),
    ("second_reply", listen_receives_a_second_reply),
    ("asks", an_ask_takes_its_own_answer_and_leaves_the_rest),
    ("lifecycle", lifecycle_hooks_run_once_around_the_messages),
    (
        "start_args",
        start_arguments_reach_the_actor_built_with_default,
    ),
    ("many_to_one", many_actors_reply_to_one_endpoint),
    ("sub_actors", sub_actors_create_sub_actors),
    ("rapid_creates", a_hundred_rapid_creates),
    ("pipelines", pipelines_of_2_3_and_5_keep_order_and_count),
    ("status", status_of_an_actor_and_of_the_system),
    ("troupe", a_troupe_spreads_work_and_retires_idle_members),
    (
        "configured",
        troupes_and_transients_are_configured_by_values,
    ),
    (
        "troupe_work_in_progress",
        troupe_work_in_progress_keeps_a_member_until_its_work_is_done,
    ),
    ("transient", transient_actors_exit_after_their_lifetime),
    (
        "requirements",
        requirements_are_met_by_capabilities_or_refused,
    ),
];

/// `scenarios trace`: three sources send 30 numbers each to one recorder, from inside their
/// handlers; print the order the recorder handled them in. On the simple base two runs print
/// the same; between processes the interleaving is up to the scheduler.
fn trace() -> Result<Vec<String>, String> {
    let mut sys = ActorSystem::new().map_err(err)?;
    let recorder = sys.create_actor_by_name("Recorder", None).map_err(err)?;
    let sources: Vec<Address> = (0..3)
        .map(|_| sys.create_actor_by_name("Source", None))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    for s in &sources {
        let produce = actors::Produce {
            to: recorder.clone(),
            count: 30,
            size: None,
        };
        sys.tell(s, &produce).map_err(err)?;
    }
    let mut seen = Vec::new();
    eventually("all 90 numbers", || {
        seen = ask(&mut sys, &recorder, "trace", "Vec<String>")?;
        Ok(seen.len() == 90)
    })?;
    sys.shutdown().map_err(err)?;
    Ok(seen)
}

fn main() {
    actors::register();
    let name = std::env::args().nth(1).unwrap_or_default();
    if name == "trace" {
        match trace() {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("trace failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if name == "list" || name.is_empty() {
        for (n, _) in SCENARIOS {
            println!("{n}");
        }
        return;
    }
    let Some((_, scenario)) = SCENARIOS.iter().find(|(n, _)| *n == name) else {
        eprintln!("no scenario named '{name}'; `scenarios list` shows them");
        std::process::exit(2);
    };
    let mut sys = match ActorSystem::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the system: {e}");
            std::process::exit(1);
        }
    };
    let outcome = scenario(&mut sys);
    let shutdown = sys.shutdown();
    match (outcome, shutdown) {
        (Ok(()), Ok(())) => println!("{name}: ok"),
        (Err(e), _) => {
            eprintln!("{name} failed: {e}");
            std::process::exit(1);
        }
        (Ok(()), Err(e)) => {
            eprintln!("{name}: shutdown failed: {e}");
            std::process::exit(1);
        }
    }
}
