//! An actor's life on the simple base: started, handed messages, and ended (on request or
//! failing to start), through the core's sequence; and what becomes of a message whose target
//! is not running.

use super::*;

impl SimpleSystem {
    pub(super) fn start(&mut self, id: u64) {
        let Some(slot) = self.actors.get(&id) else {
            return;
        };
        let make = registry::constructor(&slot.cell.type_name).expect("checked at create");
        let me = Address::new(&self.dir, id);
        match stage::start(&mut SimpleOps { sys: self, me }, make) {
            Ok(actor) => {
                if let Some(slot) = self.actors.get_mut(&id) {
                    slot.actor = Some(actor);
                }
            }
            Err(error) => self.fail_start(id, error),
        }
    }

    /// An actor could not be built: messages already sent to it go back to their senders as
    /// `Poison`, and its parent hears why.
    fn fail_start(&mut self, id: u64, error: String) {
        log::error!("{error}");
        let address = Address::new(&self.dir, id);
        let mut kept = VecDeque::with_capacity(self.queue.len());
        let mut returned = Vec::new();
        for event in std::mem::take(&mut self.queue) {
            match event {
                Event::Deliver {
                    from,
                    to,
                    frame,
                    counted,
                } if to == address => match Message::decode_frame_body(&frame[4..]) {
                    Ok(msg) => returned.push((Envelope { from, to, msg }, counted)),
                    Err(e) => log::error!("dropping an undecodable frame: {e}"),
                },
                event => kept.push_back(event),
            }
        }
        self.queue = kept;
        let mut ops = SimpleOps {
            sys: self,
            me: address,
        };
        for (env, counted) in returned {
            stage::refuse(&mut ops, env, (), counted, &error);
        }
        self.end(id, ExitReason::FailedToStart { error });
    }

    pub(super) fn deliver(&mut self, env: Envelope, counted: bool) {
        if env.to == self.me {
            self.inbox.push_back(env);
            return;
        }
        let id = env.to.id();
        let actor = if self.ours(&env.to) {
            self.actors.get_mut(&id).and_then(|s| s.actor.take())
        } else {
            None
        };
        let Some(mut actor) = actor else {
            if counted {
                self.dead_letter(env);
            }
            return;
        };
        let me = env.to.clone();
        let exit = stage::deliver(
            &mut SimpleOps { sys: self, me },
            &mut *actor,
            &env,
            (),
            counted,
        );
        match exit {
            Some(reason) => self.end(id, reason),
            None => {
                if let Some(slot) = self.actors.get_mut(&id) {
                    slot.actor = Some(actor);
                }
            }
        }
    }

    /// Remove an actor (its timers go with it), free its name, and tell its parent.
    pub(super) fn end(&mut self, id: u64, reason: ExitReason) {
        let Some(slot) = self.actors.remove(&id) else {
            return;
        };
        let (admin, parent) = (self.admin.clone(), slot.cell.parent);
        let child = Address::new(&self.dir, id);
        if let Some(notice) = self.directory.ended(&child, &parent, &admin, reason) {
            self.system_send(&admin, &parent, &notice);
        }
    }

    fn dead_letter(&mut self, env: Envelope) {
        let route = self
            .directory
            .dead_letter(env.to, env.from, env.msg, &mut self.ledger);
        if let DeadLetter::Deliver(handler, dead) = route {
            let (admin, to) = (self.admin.clone(), Address::new(&self.dir, handler));
            self.system_send(&admin, &to, &dead);
        }
    }
}
