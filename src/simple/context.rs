//! What a handler reaches through its `Context` on the simple base, and what the core's
//! sequence around the handler does here.

use super::*;
use crate::core::stage::Stage;

impl SimpleOps<'_> {
    fn slot(&mut self) -> &mut Slot {
        // An actor's slot stays while it starts and handles messages: only `end` removes it,
        // after the sequence is over.
        self.sys
            .actors
            .get_mut(&self.me.id())
            .expect("an actor on stage has a slot")
    }
}

impl Stage for SimpleOps<'_> {
    type Clock = Duration;
    type Place = ();

    fn cell(&mut self) -> &mut Cell<Duration> {
        &mut self.slot().cell
    }

    fn count(&mut self, what: Count) {
        let id = self.me.id();
        self.sys.tally(Some(id), what);
    }

    fn ledger(&mut self) -> Ledger {
        self.slot().ledger
    }

    fn pid(&self) -> u32 {
        self.sys.pid
    }

    fn post_system(&mut self, to: &Address, msg: Message) -> Result<()> {
        let limit = self.sys.max_frame + wire::WRAP_SLACK;
        self.sys.post(&self.me, to, &msg, limit, true)
    }

    fn answering(&mut self, ask: Option<u64>) {
        self.sys.current_ask = ask;
    }
}

/// What a handler in the deterministic base reaches through its context.
pub(super) struct SimpleOps<'a> {
    pub(super) sys: &'a mut SimpleSystem,
    pub(super) me: Address,
}

impl ContextOps for SimpleOps<'_> {
    fn me(&self) -> &Address {
        &self.me
    }

    fn send_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        let limit = self.sys.max_frame;
        self.sys.post(&self.me, to, &msg, limit, true)
    }

    fn create(&mut self, type_name: &str, spec: Spec<'_>) -> Result<Address> {
        let me = self.me.clone();
        let address = self.sys.create(type_name, &me, spec)?;
        if let Some(slot) = self.sys.actors.get_mut(&me.id()) {
            slot.cell.child_created(&address);
        }
        Ok(address)
    }

    fn start_args(&self) -> Option<&[u8]> {
        self.sys.actors.get(&self.me.id())?.start_args.as_deref()
    }

    fn wakeup_after(&mut self, after: Duration, payload: Message) {
        let due = self.sys.clock.saturating_add(after.max(TICK));
        if let Some(slot) = self.sys.actors.get_mut(&self.me.id()) {
            slot.cell.timers.add(due, payload);
        }
    }

    fn handle_dead_letters(&mut self, on: bool) -> Result<()> {
        self.sys.directory.handle_dead_letters(self.me.id(), on);
        Ok(())
    }

    fn watch_convention(&mut self, _on: bool) -> Result<()> {
        Err(Error::NoConvention {
            system: self.sys.name.clone(),
        })
    }

    fn global_name(&mut self) -> Result<Option<String>> {
        let me = self.me.id();
        Ok(self
            .sys
            .directory
            .names()
            .find(|&(_, id)| id == me)
            .map(|(name, _)| name.clone()))
    }
}
