//! What a system knows besides its actors: global names, the dead-letter handler, counters,
//! and what becomes of a message whose target is not running.

use std::collections::BTreeMap;

use crate::address::Address;
use crate::core::ledger::Ledger;
use crate::core::ledger::{Count, Tally};
use crate::message::{ChildExited, DeadEnvelope, ExitReason, Message};
use crate::protocol::{ActorInfo, Counters, SystemStatus};

/// Global names, the dead-letter handler and the system's counters. Actors are named by their
/// numeric id.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    names: BTreeMap<String, u64>,
    dead_letters: Option<u64>,
    /// Counts since the system started.
    pub(crate) counters: Counters,
}

impl Directory {
    /// The system's status: what the directory knows (names, the dead-letter handler,
    /// counters), with the actors, binaries and ledger a base reports. Actors of the system
    /// are addressed from their ids, as siblings of `home`.
    pub(crate) fn system_status(
        &self,
        home: &Address,
        actors: Vec<ActorInfo>,
        binaries: BTreeMap<String, Vec<String>>,
        ledger: Ledger,
    ) -> SystemStatus {
        let address = |id: u64| home.sibling(id);
        SystemStatus {
            actors,
            names: self
                .names()
                .map(|(n, id)| (n.clone(), address(id)))
                .collect(),
            dead_letter_handler: self.dead_letter_handler().map(address),
            binaries,
            counters: self.counters.clone(),
            ledger,
            convention: None,
            elsewhere: Vec::new(),
        }
    }
}

/// Where a message whose target is not running goes.
#[derive(Debug)]
pub(crate) enum DeadLetter {
    /// To this actor, the dead-letter handler, as this envelope.
    Deliver(u64, DeadEnvelope),
    /// Nowhere: there is no handler, or the message is a `ChildExited` or `DeadEnvelope`
    /// (never dead-lettered, so that a dead handler cannot start a loop of them).
    Drop,
}

impl Directory {
    /// The actor holding `name`.
    pub(crate) fn named(&self, name: &str) -> Option<u64> {
        self.names.get(name).copied()
    }

    /// Give `name` to actor `id` (its creation under that name has been accepted).
    pub(crate) fn name(&mut self, name: String, id: u64) {
        self.names.insert(name, id);
    }

    /// Every global name and its holder.
    pub(crate) fn names(&self) -> impl Iterator<Item = (&String, u64)> {
        self.names.iter().map(|(n, &id)| (n, id))
    }

    /// The dead-letter handler, if any.
    pub(crate) fn dead_letter_handler(&self) -> Option<u64> {
        self.dead_letters
    }

    /// Actor `id` asks to handle dead letters (`on`) or to stop. The newest registration wins.
    pub(crate) fn handle_dead_letters(&mut self, id: u64, on: bool) {
        if on {
            self.dead_letters = Some(id);
        } else if self.dead_letters == Some(id) {
            self.dead_letters = None;
        }
    }

    /// An actor was created.
    pub(crate) fn created(&mut self) {
        self.counters.created += 1;
    }

    /// Actor `child` has ended for `reason`: its names are freed, and if it handled dead
    /// letters, dead letters are dropped again. Returns the notice its parent must hear (none
    /// if its parent is `admin`, the system's admin, which keeps its own records).
    pub(crate) fn ended(
        &mut self,
        child: &Address,
        parent: &Address,
        admin: &Address,
        reason: ExitReason,
    ) -> Option<ChildExited> {
        let id = child.id();
        self.names.retain(|_, v| *v != id);
        if self.dead_letters == Some(id) {
            self.dead_letters = None;
        }
        self.counters.exited += 1;
        match reason {
            ExitReason::Killed { .. } => self.counters.killed += 1,
            ExitReason::FailedToStart { .. } => self.counters.failed_starts += 1,
            _ => {}
        }
        (parent != admin).then(|| ChildExited {
            child: child.clone(),
            reason,
        })
    }

    /// Decide what becomes of `message`, sent by `sender` to `target`, which is not running; the
    /// outcome is counted in `ledger`.
    pub(crate) fn dead_letter(
        &mut self,
        target: Address,
        sender: Address,
        message: Message,
        ledger: &mut dyn Tally,
    ) -> DeadLetter {
        match self.dead_letters {
            Some(handler) if !message.is::<DeadEnvelope>() && !message.is::<ChildExited>() => {
                self.counters.dead_letters_delivered += 1;
                ledger.count(Count::DeadLettered);
                DeadLetter::Deliver(
                    handler,
                    DeadEnvelope {
                        target,
                        sender,
                        message,
                    },
                )
            }
            _ => {
                log::debug!("dropped a {} message to {target}", message.type_name());
                self.counters.dead_letters_dropped += 1;
                ledger.count(Count::Dropped);
                DeadLetter::Drop
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ledger::Ledger;

    fn a(id: u64) -> Address {
        format!("{id}@/d").parse().unwrap()
    }

    #[test]
    fn dead_letters_go_to_the_newest_handler_until_it_ends() {
        let (mut d, mut l) = (Directory::default(), Ledger::default());
        let msg = Message::new("x").unwrap();
        assert!(matches!(
            d.dead_letter(a(1), a(2), msg.clone(), &mut l),
            DeadLetter::Drop
        ));
        d.handle_dead_letters(5, true);
        d.handle_dead_letters(6, true);
        match d.dead_letter(a(1), a(2), msg.clone(), &mut l) {
            DeadLetter::Deliver(6, env) => assert_eq!(env.message, msg),
            other => panic!("{other:?}"),
        }
        d.handle_dead_letters(5, false);
        assert_eq!(d.dead_letter_handler(), Some(6));
        assert!(
            d.ended(&a(6), &a(0), &a(0), ExitReason::Requested)
                .is_none()
        );
        assert!(matches!(
            d.dead_letter(a(1), a(2), msg, &mut l),
            DeadLetter::Drop
        ));
        assert_eq!((l.dead_lettered, l.dropped), (1, 2));
    }

    #[test]
    fn notices_and_dead_letters_are_never_dead_lettered() {
        let (mut d, mut l) = (Directory::default(), Ledger::default());
        d.handle_dead_letters(9, true);
        let notice = Message::new(&ChildExited {
            child: a(1),
            reason: ExitReason::Requested,
        })
        .unwrap();
        assert!(matches!(
            d.dead_letter(a(3), a(0), notice, &mut l),
            DeadLetter::Drop
        ));
        assert_eq!(l.dropped, 1);
    }

    #[test]
    fn names_are_freed_when_their_actor_ends() {
        let mut d = Directory::default();
        d.name("svc".into(), 4);
        assert_eq!(d.named("svc"), Some(4));
        let killed = ExitReason::Killed {
            signal: 9,
            name: "SIGKILL".into(),
        };
        let notice = d.ended(&a(4), &a(3), &a(0), killed.clone()).unwrap();
        assert_eq!((notice.child, notice.reason), (a(4), killed));
        assert_eq!(d.named("svc"), None);
        assert_eq!((d.counters.exited, d.counters.killed), (1, 1));
    }
}
