//! What `ActorSystem` calls on the process base.

use super::*;
use crate::actor::Spec;
use crate::protocol::MemberInfo;

impl SystemBase for ProcessSystem {
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
        let declared = declared_types(path)?;
        let path = std::fs::canonicalize(path).ctx(|| format!("resolving {}", path.display()))?;
        self.loaded.insert(path.clone());
        let types = declared.iter().map(|(t, _)| t.clone()).collect();
        let requires = declared
            .into_iter()
            .filter(|(_, r)| !r.is_empty())
            .collect();
        match self.control.request(&Request::Load {
            path: path.to_string_lossy().into_owned(),
            types,
            requires,
        })? {
            Response::Loaded { types } => Ok(types),
            other => Err(Error::Protocol(format!(
                "unexpected answer to load: {other:?}"
            ))),
        }
    }

    fn create(&mut self, type_name: &str, spec: Spec<'_>) -> Result<Address> {
        let binary = match spec.binary {
            Some(b) => Some(std::fs::canonicalize(b).map_err(|e| Error::NotActorBinary {
                path: b.to_path_buf(),
                why: e.to_string(),
            })?),
            None if registry::provides(type_name) => self.own_exe.clone(),
            None => None,
        };
        // A binary is checked and announced to the admin once per endpoint (this program's own
        // was announced when the endpoint opened).
        if let Some(b) = &binary
            && !self.loaded.contains(b)
        {
            self.load(b)?;
        }
        let req = Request::Create {
            type_name: type_name.to_string(),
            binary: binary.map(|b| b.to_string_lossy().into_owned()),
            parent: self.me.clone(),
            name: spec.global_name.map(str::to_string),
            args: spec.args.map(serde_bytes::ByteBuf::from),
            requirements: spec.requirements,
        };
        match self.control.request(&req)? {
            Response::Created { address } => Ok(address),
            other => Err(Error::Protocol(format!(
                "unexpected answer to create: {other:?}"
            ))),
        }
    }

    fn tell_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        let len = msg.frame_len();
        if len > self.max_frame {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                limit: self.max_frame,
            });
        }
        // Take in what happened meanwhile, so that a receiver that has ended since the last
        // send to it is known to have ended (and refuses this message) rather than found out
        // after. A new connection cannot be stale.
        if self.outbox.connected(to) {
            self.pump(Duration::ZERO)?;
        }
        self.wait_for_room(to)?;
        // A target that is not running refuses the message: the caller keeps it.
        let accepted = self.send_waiting(to, &msg)?;
        let mut page: &LedgerPage = &self.page;
        page.count(Count::Sent);
        if accepted == Accepted::AtMostOnce {
            page.count(Count::Handled);
        }
        self.carry_out_returns();
        Ok(())
    }

    fn new_ask(&mut self) -> u64 {
        // Random, not counted from 1: an actor's answer to another program's ask must not
        // match one of this program's.
        self.next_ask = self.next_ask.wrapping_add(1);
        self.next_ask
    }

    fn next_envelope(
        &mut self,
        timeout: Duration,
        wanted: &dyn Fn(&Message) -> bool,
    ) -> Result<Option<Envelope>> {
        // A timeout too long to add to the clock means no deadline at all.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(Queued { env, origin }) = self.inbox.take_first(|q| wanted(&q.env.msg)) {
                // Taken by the program: handled, as far as the system is concerned (a notice
                // released earlier was counted then).
                if origin != Origin::Memory {
                    (&*self.page).count(Count::Handled);
                }
                self.inbound.taken(origin, &self.inbox);
                self.inbound.compact(&mut self.inbox);
                return Ok(Some(env));
            }
            // System notices this wait passes over (a ChildExited the program may never ask
            // for) leave the ring: they count as handled, and stay queued for `listen_any`,
            // rather than pin the ring's head while later messages are taken.
            let released = self
                .inbox
                .release(|q| q.env.msg.is_system() && !wanted(&q.env.msg));
            for _ in &released {
                (&*self.page).count(Count::Handled);
            }
            self.inbound.released(&released, &self.inbox);
            let left = || {
                deadline.map_or(Duration::from_secs(3600), |d| {
                    d.saturating_duration_since(Instant::now())
                })
            };
            if self.look(left().min(SPIN))? {
                continue;
            }
            if !self.pump(left())? && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    fn status(&mut self) -> Result<SystemStatus> {
        match self.control.request(&Request::Status)? {
            Response::Status(status) => Ok(status),
            other => Err(Error::Protocol(format!(
                "unexpected answer to status: {other:?}"
            ))),
        }
    }

    fn members(&mut self) -> Result<Vec<MemberInfo>> {
        match self.control.request(&Request::Members)? {
            Response::Members { members } => Ok(members),
            other => Err(Error::Protocol(format!(
                "unexpected answer to members: {other:?}"
            ))),
        }
    }

    fn watch_convention(&mut self, on: bool) -> Result<()> {
        match self.control.request(&Request::WatchConvention { on })? {
            Response::Ok => Ok(()),
            other => Err(Error::Protocol(format!(
                "unexpected answer to watching the convention: {other:?}"
            ))),
        }
    }

    fn set_capability(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        let request = Request::SetCapability {
            key: key.to_string(),
            value: value.map(str::to_string),
        };
        match self.control.request(&request)? {
            Response::Ok => Ok(()),
            other => Err(Error::Protocol(format!(
                "unexpected answer to a capability change: {other:?}"
            ))),
        }
    }

    fn shutdown(&mut self) -> Result<()> {
        self.shutdown_inner()
    }
}
