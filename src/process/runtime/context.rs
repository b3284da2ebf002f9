//! What a handler reaches through its `Context` in an actor process, and what the core's
//! sequence around the handler does here.

use super::*;
use crate::actor::Spec;
use crate::core::ledger::Ledger;
use crate::core::stage::Stage;

impl Stage for Runtime {
    type Clock = Instant;
    type Place = Origin;

    fn cell(&mut self) -> &mut Cell<Instant> {
        &mut self.cell
    }

    fn count(&mut self, what: Count) {
        (&*self.page).count(what);
    }

    fn ledger(&mut self) -> Ledger {
        self.page.counts()
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn post_system(&mut self, to: &Address, msg: Message) -> Result<()> {
        self.post(to, msg)
    }

    fn answering(&mut self, ask: Option<u64>) {
        self.current_ask = ask;
    }

    fn handling(&mut self, place: Origin) {
        self.inbound.started(place);
    }

    fn settled(&mut self, place: Origin) {
        self.inbound.done(place);
    }

    fn call_ended(&mut self) {
        self.end_of_call();
    }
}

impl ContextOps for Runtime {
    fn me(&self) -> &Address {
        &self.cell.me
    }

    fn send_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        let len = msg.frame_len();
        if len > self.max_frame {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                limit: self.max_frame,
            });
        }
        self.post(to, msg)
    }

    fn create(&mut self, type_name: &str, spec: Spec<'_>) -> Result<Address> {
        let binary = if registry::provides(type_name) {
            self.exe.clone()
        } else {
            None
        };
        let req = Request::Create {
            type_name: type_name.to_string(),
            binary,
            parent: self.cell.me.clone(),
            name: spec.global_name.map(str::to_string),
            args: spec.args.map(serde_bytes::ByteBuf::from),
            requirements: spec.requirements,
        };
        match self.control.request(&req)? {
            Response::Created { address } => {
                self.cell.child_created(&address);
                Ok(address)
            }
            other => Err(Error::Protocol(format!(
                "unexpected answer to create: {other:?}"
            ))),
        }
    }

    fn wakeup_after(&mut self, after: Duration, payload: Message) {
        // A delay too long for the clock is a timer that never fires while anyone waits.
        let now = Instant::now();
        let due = now
            .checked_add(after)
            .unwrap_or_else(|| now + Duration::from_secs(u32::MAX as u64));
        self.cell.timers.add(due, payload);
    }

    fn handle_dead_letters(&mut self, on: bool) -> Result<()> {
        self.control
            .request(&Request::DeadLetters { on })
            .map(|_| ())
    }

    fn watch_convention(&mut self, on: bool) -> Result<()> {
        self.control
            .request(&Request::WatchConvention { on })
            .map(|_| ())
    }

    fn start_args(&self) -> Option<&[u8]> {
        self.start_args.as_deref()
    }

    fn global_name(&mut self) -> Result<Option<String>> {
        match self.control.request(&Request::Status)? {
            Response::Status(status) => Ok(status
                .names
                .into_iter()
                .find(|(_, a)| *a == self.cell.me)
                .map(|(name, _)| name)),
            other => Err(Error::Protocol(format!(
                "unexpected answer to status: {other:?}"
            ))),
        }
    }
}
