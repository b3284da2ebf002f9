//! The program's side of the simple base: what `ActorSystem` calls, run in the calling thread.

use super::*;
use crate::message::ExitRequest;

impl SystemBase for SimpleSystem {
    fn address(&self) -> &Address {
        &self.me
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn load(&mut self, path: &Path) -> Result<Vec<String>> {
        let own = std::env::current_exe()
            .ok()
            .and_then(|p| p.canonicalize().ok());
        if path.canonicalize().ok() == own {
            return Ok(registry::registered_types());
        }
        Err(Error::NotActorBinary {
            path: path.to_path_buf(),
            why: "the simple base runs only the actor types registered in this program".into(),
        })
    }

    fn create(&mut self, type_name: &str, spec: Spec<'_>) -> Result<Address> {
        let me = self.me.clone();
        SimpleSystem::create(self, type_name, &me, spec)
    }

    fn tell_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        // A target that is not running refuses the message: the caller keeps it.
        if *to != self.me && self.actor_id(to).is_none() {
            return Err(Error::DeadActor(to.clone()));
        }
        let (me, limit) = (self.me.clone(), self.max_frame);
        self.post(&me, to, &msg, limit, true)?;
        self.run_until_idle();
        Ok(())
    }

    fn new_ask(&mut self) -> u64 {
        self.next_ask += 1;
        self.next_ask
    }

    fn next_envelope(
        &mut self,
        timeout: Duration,
        wanted: &dyn Fn(&Message) -> bool,
    ) -> Result<Option<Envelope>> {
        let deadline = self.clock.saturating_add(timeout);
        loop {
            if let Some(i) = self.inbox.iter().position(|e| wanted(&e.msg)) {
                // Taken by the program: handled, as far as the system is concerned.
                self.tally(None, Count::Handled);
                return Ok(self.inbox.remove(i));
            }
            if self.step() {
                continue;
            }
            match self.next_timer() {
                Some((due, id)) if due <= deadline => {
                    self.clock = self.clock.max(due);
                    let now = self.clock;
                    let slot = self.actors.get_mut(&id).expect("timer of a live actor");
                    let wakeup = slot.cell.due_wakeup(now).expect("due now");
                    let me = Address::new(&self.dir, id);
                    let limit = self.max_frame + wire::WRAP_SLACK;
                    if let Err(e) = self.post(&me, &me, &wakeup, limit, false) {
                        log::error!("could not deliver a wakeup to {me}: {e}");
                    }
                }
                _ => {
                    self.clock = deadline;
                    return Ok(None);
                }
            }
        }
    }

    fn status(&mut self) -> Result<SystemStatus> {
        let exe = std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let actors = self
            .actors
            .values()
            .map(|s| ActorInfo {
                address: s.cell.me.clone(),
                type_name: s.cell.type_name.clone(),
                pid: std::process::id(),
                parent: s.cell.parent.clone(),
            })
            .collect();
        let binaries = [(exe, registry::registered_types())].into_iter().collect();
        Ok(self
            .directory
            .system_status(&self.me, actors, binaries, self.ledger.settle()))
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        // Top-level actors only: the others are asked by their parents.
        let ids: Vec<u64> = self
            .actors
            .iter()
            .filter(|(_, s)| self.actor_id(&s.cell.parent).is_none())
            .map(|(&id, _)| id)
            .collect();
        let admin = self.admin.clone();
        for id in ids {
            let to = Address::new(&self.dir, id);
            self.system_send(&admin, &to, &ExitRequest::default());
        }
        self.run_until_idle();
        self.actors.clear();
        Ok(())
    }
}
