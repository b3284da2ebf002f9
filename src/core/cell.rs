//! One actor as the framework sees it, and the framework's part of handling its messages.
//!
//! The stage's `deliver` (beside this module) hands a message to an actor in three steps:
//! [`Cell::receive`] (the framework's part: a `StatusRequest` is answered here and never
//! reaches the handler, a `ChildExited` updates the children), then the handler through
//! [`invoke`](crate::core::handler::invoke) (with its retry and `Poison`), then
//! [`Cell::after`] (what an `ExitRequest` leads to).

use crate::address::Address;
use crate::core::ledger::Ledger;
use crate::core::timers::Timers;
use crate::message::{ActorStatus, ChildExited, ExitRequest, Message, StatusRequest, Wakeup};

/// The framework's record of one actor. `T` is the clock its timers run on.
#[derive(Debug)]
pub(crate) struct Cell<T: Ord + Copy> {
    /// Its address.
    pub(crate) me: Address,
    /// Its type name.
    pub(crate) type_name: String,
    /// Its parent, which hears when it ends.
    pub(crate) parent: Address,
    /// The children it created that have not ended, as far as it has heard.
    pub(crate) children: Vec<Address>,
    /// Its pending `wakeup_after` timers.
    pub(crate) timers: Timers<T>,
    /// Messages given to its handler.
    pub(crate) handled: u64,
}

/// What the framework does with a message before the handler sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Receive {
    /// Answer with [`Cell::status`]; the handler never sees the request.
    Status,
    /// Give the message to the handler.
    Handle,
}

/// What follows an `ExitRequest` the handler has seen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    /// Children to ask to exit too (none if the request was not recursive).
    pub(crate) ask: Vec<Address>,
}

impl<T: Ord + Copy> Cell<T> {
    pub(crate) fn new(me: Address, type_name: String, parent: Address) -> Cell<T> {
        Cell {
            me,
            type_name,
            parent,
            children: Vec::new(),
            timers: Timers::new(),
            handled: 0,
        }
    }

    /// The framework's part of receiving `msg`.
    pub(crate) fn receive(&mut self, msg: &Message) -> Receive {
        if msg.is_system() {
            if msg.is::<StatusRequest>() {
                return Receive::Status;
            }
            if let Some(notice) = msg.get::<ChildExited>() {
                self.children.retain(|c| *c != notice.child);
            }
        }
        self.handled += 1;
        Receive::Handle
    }

    /// The handler has returned on `msg`: say what an exit request leads to.
    pub(crate) fn after(&mut self, msg: &Message) -> Option<Exit> {
        let exit = if msg.is_system() {
            msg.get::<ExitRequest>()?
        } else {
            return None;
        };
        let children = std::mem::take(&mut self.children);
        Some(Exit {
            ask: if exit.recursive { children } else { Vec::new() },
        })
    }

    /// The next of its timers due at `now`, as the `Wakeup` message it sends itself.
    pub(crate) fn due_wakeup(&mut self, now: T) -> Option<Message> {
        let payload = self.timers.pop_due(now)?;
        Some(Message::new(&Wakeup { payload }).expect("Wakeup encodes"))
    }

    /// It created `child`.
    pub(crate) fn child_created(&mut self, child: &Address) {
        if !self.children.contains(child) {
            self.children.push(child.clone());
        }
    }

    /// What the framework answers to a `StatusRequest`.
    pub(crate) fn status(&self, pid: u32, ledger: Ledger) -> ActorStatus {
        ActorStatus {
            address: self.me.clone(),
            type_name: self.type_name.clone(),
            pid,
            parent: self.parent.clone(),
            children: self.children.clone(),
            pending_timers: self.timers.len(),
            handled: self.handled,
            ledger: ledger.settle(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ExitReason;

    fn a(id: u64) -> Address {
        format!("{id}@/d").parse().unwrap()
    }

    fn cell() -> Cell<u64> {
        Cell::new(a(2), "Parent".into(), a(1))
    }

    #[test]
    fn status_requests_are_answered_by_the_framework() {
        let mut c = cell();
        c.child_created(&a(3));
        c.child_created(&a(3));
        c.timers.add(5, Message::new("t").unwrap());
        let request = Message::new(&StatusRequest {}).unwrap();
        assert_eq!(c.receive(&request), Receive::Status);
        let st = c.status(77, Ledger::default());
        assert_eq!((st.pid, st.pending_timers, st.handled), (77, 1, 0));
        assert_eq!(st.children, [a(3)]);
    }

    #[test]
    fn a_child_exited_notice_removes_the_child_and_reaches_the_handler() {
        let mut c = cell();
        c.child_created(&a(3));
        c.child_created(&a(4));
        let notice = Message::new(&ChildExited {
            child: a(3),
            reason: ExitReason::Requested,
        })
        .unwrap();
        assert_eq!(c.receive(&notice), Receive::Handle);
        assert_eq!(c.children, [a(4)]);
        assert_eq!(c.handled, 1);
    }

    #[test]
    fn an_exit_request_asks_the_children_only_when_recursive() {
        let mut c = cell();
        c.child_created(&a(3));
        let exit = Message::new(&ExitRequest::default()).unwrap();
        assert_eq!(c.after(&exit), Some(Exit { ask: vec![a(3)] }));
        assert!(c.children.is_empty());
        let mut c = cell();
        c.child_created(&a(3));
        let exit = Message::new(&ExitRequest::non_recursive()).unwrap();
        assert_eq!(c.after(&exit), Some(Exit { ask: vec![] }));
        assert_eq!(c.after(&Message::new("x").unwrap()), None);
    }
}
