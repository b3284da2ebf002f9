//! The sequence around the handler, driven by a stage that only records what it is asked to do.

use std::time::Duration;

use super::*;
use crate::actor::{Context, Handled};
use crate::core::ledger::Tally;
use crate::message::{ChildExited, ExitReason, StatusRequest};

fn a(id: u64) -> Address {
    format!("{id}@/d").parse().unwrap()
}

/// A stage that keeps everything it is asked to do, in order.
#[derive(Default)]
struct Recorder {
    cell: Option<Cell<u64>>,
    ledger: Ledger,
    ask: Option<u64>,
    /// What was sent, with the ask it carried.
    sent: Vec<(Address, Message)>,
    /// "handling", "settled", "call ended", "sent", in order.
    steps: Vec<&'static str>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            cell: Some(Cell::new(a(2), "Tested".into(), a(1))),
            ..Recorder::default()
        }
    }

    fn sent_types(&self) -> Vec<(u64, String, Option<u64>)> {
        self.sent
            .iter()
            .map(|(to, m)| (to.id(), m.type_name().to_string(), m.ask))
            .collect()
    }
}

impl ContextOps for Recorder {
    fn me(&self) -> &Address {
        &self.cell.as_ref().unwrap().me
    }
    fn send_message(&mut self, to: &Address, mut msg: Message) -> Result<()> {
        if msg.ask.is_none() {
            msg.ask = self.ask;
        }
        self.steps.push("sent");
        self.sent.push((to.clone(), msg));
        Ok(())
    }
    fn create(&mut self, _: &str, _: crate::actor::Spec<'_>) -> Result<Address> {
        let child = a(10 + self.cell().children.len() as u64);
        self.cell().child_created(&child);
        Ok(child)
    }
    fn start_args(&self) -> Option<&[u8]> {
        None
    }
    fn wakeup_after(&mut self, _: Duration, payload: Message) {
        self.cell().timers.add(1, payload);
    }
    fn handle_dead_letters(&mut self, _: bool) -> Result<()> {
        Ok(())
    }
    fn global_name(&mut self) -> Result<Option<String>> {
        Ok(None)
    }
    fn watch_convention(&mut self, _: bool) -> Result<()> {
        Ok(())
    }
}

impl Stage for Recorder {
    type Clock = u64;
    type Place = ();
    fn cell(&mut self) -> &mut Cell<u64> {
        self.cell.as_mut().unwrap()
    }
    fn count(&mut self, what: Count) {
        self.ledger.count(what);
    }
    fn ledger(&mut self) -> Ledger {
        self.ledger
    }
    fn pid(&self) -> u32 {
        42
    }
    fn post_system(&mut self, to: &Address, msg: Message) -> Result<()> {
        self.send_message(to, msg)
    }
    fn answering(&mut self, ask: Option<u64>) {
        self.ask = ask;
    }
    fn handling(&mut self, _: ()) {
        self.steps.push("handling");
    }
    fn settled(&mut self, _: ()) {
        self.steps.push("settled");
    }
    fn call_ended(&mut self) {
        self.steps.push("call ended");
    }
}

/// Replies "pong" to any text; fails on "fail"; creates a child on "spawn"; calls for help
/// from its `stopping` hook.
#[derive(Default)]
struct Tested {
    calls: u32,
}

impl Actor for Tested {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        self.calls += 1;
        match msg.get::<String>().as_deref() {
            Some("fail") => Err("no".into()),
            Some("spawn") => {
                ctx.create_actor::<Tested>()?;
                Ok(())
            }
            Some(_) => Ok(ctx.reply("pong")?),
            None => Ok(()),
        }
    }
    fn stopping(&mut self, ctx: &mut Context<'_>) -> Handled {
        ctx.send(&a(1), "bye")?;
        Ok(())
    }
}

fn env(msg: Message, ask: Option<u64>) -> Envelope {
    let mut msg = msg;
    msg.ask = ask;
    Envelope {
        from: a(5),
        to: a(2),
        msg,
    }
}

fn text(s: &str, ask: Option<u64>) -> Envelope {
    env(Message::new(s).unwrap(), ask)
}

#[test]
fn what_a_handler_sends_answers_the_ask_it_handles_and_no_other() {
    let (mut stage, mut actor) = (Recorder::new(), Tested::default());
    assert_eq!(
        deliver(&mut stage, &mut actor, &text("ping", Some(7)), (), true),
        None
    );
    assert_eq!(stage.ask, None, "the ask ends with the call");
    deliver(&mut stage, &mut actor, &text("ping", None), (), true);
    assert_eq!(
        stage.sent_types(),
        [(5, "String".into(), Some(7)), (5, "String".into(), None)]
    );
    assert_eq!(stage.ledger.handled, 2);
    assert_eq!(
        stage.steps[..3],
        ["handling", "sent", "call ended"],
        "the reply is written before the message is settled"
    );
    assert_eq!(stage.steps[3], "settled");
}

#[test]
fn a_status_request_is_settled_before_its_answer_and_never_reaches_the_handler() {
    let (mut stage, mut actor) = (Recorder::new(), Tested::default());
    let request = env(Message::new(&StatusRequest {}).unwrap(), Some(3));
    deliver(&mut stage, &mut actor, &request, (), true);
    assert_eq!(actor.calls, 0);
    assert_eq!(stage.steps, ["settled", "sent", "call ended"]);
    let status = stage.sent[0].1.get::<crate::ActorStatus>().unwrap();
    assert_eq!(
        (status.pid, status.handled, status.ledger.handled),
        (42, 0, 1)
    );
    assert_eq!(stage.sent[0].1.ask, Some(3));
}

#[test]
fn a_handler_that_fails_twice_poisons_its_sender_once_with_the_ask() {
    let (mut stage, mut actor) = (Recorder::new(), Tested::default());
    deliver(&mut stage, &mut actor, &text("fail", Some(9)), (), true);
    assert_eq!(actor.calls, 2, "retried once");
    assert_eq!(
        stage.sent_types(),
        [(5, "greenroom.Poison".into(), Some(9))]
    );
    let poison = stage.sent[0].1.get::<Poison>().unwrap();
    assert_eq!(poison.original.get::<String>().as_deref(), Some("fail"));
    assert_eq!((stage.ledger.poisoned, stage.ledger.handled), (1, 0));
}

#[test]
fn a_wakeup_no_one_sent_is_handled_but_not_counted() {
    let (mut stage, mut actor) = (Recorder::new(), Tested::default());
    deliver(&mut stage, &mut actor, &text("fail", None), (), false);
    assert_eq!(stage.ledger, Ledger::default());
    assert_eq!(stage.cell().handled, 1);
}

#[test]
fn an_exit_request_runs_stopping_then_asks_the_children_and_ends_the_actor() {
    let (mut stage, mut actor) = (Recorder::new(), Tested::default());
    deliver(&mut stage, &mut actor, &text("spawn", None), (), true);
    deliver(&mut stage, &mut actor, &text("spawn", None), (), true);
    // One child has already ended: it is not asked.
    let gone = ChildExited {
        child: a(10),
        reason: ExitReason::Requested,
    };
    deliver(
        &mut stage,
        &mut actor,
        &env(Message::new(&gone).unwrap(), None),
        (),
        true,
    );
    let exit = Message::new(&crate::ExitRequest::default()).unwrap();
    let reason = deliver(&mut stage, &mut actor, &env(exit, None), (), true);
    assert_eq!(reason, Some(ExitReason::Requested));
    assert_eq!(
        stage.sent_types(),
        [
            (1, "String".into(), None),
            (11, "greenroom.ExitRequest".into(), None)
        ]
    );
    assert_eq!(stage.ledger.handled, 4);
}

#[test]
fn an_actor_that_cannot_start_says_why_and_its_messages_go_back_as_poison() {
    let mut stage = Recorder::new();
    let error = start(&mut stage, || -> Box<dyn Actor> { panic!("no memory") })
        .err()
        .unwrap();
    assert_eq!(error, "constructor of Tested panicked: no memory");

    #[derive(Default)]
    struct Refuses;
    impl Actor for Refuses {
        fn receive(&mut self, _: &Message, _: &mut Context<'_>) -> Handled {
            Ok(())
        }
        fn started(&mut self, _: &mut Context<'_>) -> Handled {
            Err("no config".into())
        }
    }
    let error = start(&mut stage, || Box::new(Refuses)).err().unwrap();
    assert_eq!(error, "Tested started() failed: no config");
    assert!(start(&mut stage, || Box::new(Tested::default())).is_ok());

    refuse(&mut stage, text("job", Some(4)), (), true, &error);
    refuse(&mut stage, text("tick", None), (), false, &error);
    assert_eq!(
        stage.sent_types(),
        [(5, "greenroom.Poison".into(), Some(4))]
    );
    let poison = stage.sent[0].1.get::<Poison>().unwrap();
    assert_eq!(
        poison.details,
        "actor failed to start: Tested started() failed: no config"
    );
    assert_eq!(stage.ledger.poisoned, 1);
    // The Poison leaves while its message is marked as being handled, then it is let go.
    let after_start = &stage.steps[stage.steps.len() - 4..];
    assert_eq!(after_start, ["handling", "sent", "settled", "settled"]);
}
