//! How one actor starts, handles a message, and ends: the sequence both bases follow.
//!
//! A base puts its actor "on stage" by implementing [`Stage`] (its context for handlers, plus
//! the few effects the sequence needs: counting, sending what the framework sends, and marking
//! where a message stands), then calls [`start`], [`deliver`] for each message and [`refuse`]
//! for each message an actor that could not start leaves behind. What the sequence decides
//! (which message is counted how, what an ask carries, what a failed handler or a failed start
//! sends back, what an exit request leads to) is written here once.

use std::panic::AssertUnwindSafe;

use crate::actor::{Actor, ContextOps};
use crate::address::Address;
use crate::core::cell::{Cell, Receive};
use crate::core::handler::{Hook, invoke, panic_text, run_hook};
use crate::core::ledger::{Count, Ledger};
use crate::error::Result;
use crate::message::{ExitReason, ExitRequest, Message, Poison};
use crate::protocol::Envelope;

/// What a base does for the core while one of its actors is running.
pub(crate) trait Stage: ContextOps {
    /// The clock the actor's timers run on.
    type Clock: Ord + Copy;
    /// Where a message waits until it is settled (the process base's queue ring); `()` if it
    /// waits nowhere a crash could leave it.
    type Place: Copy;

    /// The framework's record of the actor.
    fn cell(&mut self) -> &mut Cell<Self::Clock>;
    /// Count `what` for the actor (and its system).
    fn count(&mut self, what: Count);
    /// The actor's counts so far.
    fn ledger(&mut self) -> Ledger;
    /// The pid of the process the actor runs in.
    fn pid(&self) -> u32;
    /// Send a message the framework produced (status, `Poison`, `ExitRequest`) from the actor.
    fn post_system(&mut self, to: &Address, msg: Message) -> Result<()>;
    /// Everything sent from now on answers `ask` (the ask of the message being handled).
    fn answering(&mut self, ask: Option<u64>);
    /// The handler is about to see the message at `place`.
    fn handling(&mut self, _place: Self::Place) {}
    /// The message at `place` is settled: nothing need return it any more.
    fn settled(&mut self, _place: Self::Place) {}
    /// A handler call (or hook) has returned: what it sent may be written out now.
    fn call_ended(&mut self) {}
}

/// Send what the framework produced, logging a failure (the sender has no one to tell).
fn post_logged<S: Stage>(stage: &mut S, to: &Address, msg: Message) {
    let what = msg.type_name().to_string();
    if let Err(e) = stage.post_system(to, msg) {
        log::warn!("could not send a {what} to {to}: {e}");
    }
}

/// Build the actor with `make` and run its `started` hook. On failure, says why: the base then
/// [`refuse`]s what was sent to it and reports `ExitReason::FailedToStart`.
pub(crate) fn start<S: Stage>(
    stage: &mut S,
    make: impl FnOnce() -> Box<dyn Actor>,
) -> std::result::Result<Box<dyn Actor>, String> {
    let type_name = stage.cell().type_name.clone();
    let mut actor = std::panic::catch_unwind(AssertUnwindSafe(make))
        .map_err(|p| format!("constructor of {type_name} panicked: {}", panic_text(&*p)))?;
    let parent = stage.cell().parent.clone();
    let started = run_hook(&mut *actor, stage, &parent, Hook::Started);
    stage.call_ended();
    started.map_err(|e| format!("{type_name} {e}"))?;
    Ok(actor)
}

/// Hand `env` (waiting at `place`) to the actor: a status request is answered by the
/// framework; anything else goes to the handler (with its retry, and a `Poison` back to the
/// sender if it fails twice). `counted` is false for what no one sent (a timer's wakeup).
/// Returns why the actor must now end, if it must.
pub(crate) fn deliver<S: Stage>(
    stage: &mut S,
    actor: &mut dyn Actor,
    env: &Envelope,
    place: S::Place,
    counted: bool,
) -> Option<ExitReason> {
    stage.answering(env.msg.ask);
    let exit = deliver_answering(stage, actor, env, place, counted);
    stage.answering(None);
    exit
}

fn deliver_answering<S: Stage>(
    stage: &mut S,
    actor: &mut dyn Actor,
    env: &Envelope,
    place: S::Place,
    counted: bool,
) -> Option<ExitReason> {
    if stage.cell().receive(&env.msg) == Receive::Status {
        // Settled before the answer leaves: a process killed in between then loses only the
        // answer (never sent), rather than returning a request it did answer.
        stage.count(Count::Handled);
        stage.settled(place);
        let (pid, ledger) = (stage.pid(), stage.ledger());
        let status = stage.cell().status(pid, ledger);
        post_logged(
            stage,
            &env.from,
            Message::new(&status).expect("status encodes"),
        );
        stage.call_ended();
        return None;
    }
    stage.handling(place);
    let poison = invoke(actor, stage, &env.from, &env.msg);
    if counted {
        stage.count(if poison.is_some() {
            Count::Poisoned
        } else {
            Count::Handled
        });
    }
    let exit = stage.cell().after(&env.msg);
    if let Some(poison) = poison {
        post_logged(stage, &env.from, poison_message(poison, env.msg.ask));
    }
    stage.call_ended();
    stage.settled(place);
    let exit = exit?;
    let _ = run_hook(actor, stage, &env.from, Hook::Stopping);
    stage.call_ended();
    let request = Message::new(&ExitRequest::default()).expect("ExitRequest encodes");
    for child in exit.ask {
        post_logged(stage, &child, request.clone());
    }
    Some(ExitReason::Requested)
}

/// The actor could not start (`error` says why): `env`, sent to it and waiting at `place`, goes
/// back to its sender as a `Poison`. A timer's wakeup (`counted` false) is simply dropped.
pub(crate) fn refuse<S: Stage>(
    stage: &mut S,
    env: Envelope,
    place: S::Place,
    counted: bool,
    error: &str,
) {
    if counted {
        // Marked as being handled while its Poison leaves: should the process die before
        // letting it go, it comes back marked possibly handled, not as a second, plain return.
        stage.handling(place);
        stage.count(Count::Poisoned);
        let ask = env.msg.ask;
        let poison = Poison {
            original: env.msg,
            details: format!("actor failed to start: {error}"),
            possibly_handled: false,
        };
        post_logged(stage, &env.from, poison_message(poison, ask));
    }
    stage.settled(place);
}

/// A `Poison` as a message answering `ask` (the ask of the message it returns).
fn poison_message(poison: Poison, ask: Option<u64>) -> Message {
    let mut msg = Message::new(&poison).expect("Poison encodes");
    msg.ask = ask;
    msg
}

#[cfg(test)]
mod tests;
