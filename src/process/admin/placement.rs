//! Actors created with requirements: checked against this system's capabilities when they are
//! created, and asked to exit when a change of capabilities breaks them.

use std::collections::BTreeMap;

use super::Admin;
use crate::core::placement::{self, Requirements};
use crate::error::{Error, Result};
use crate::message::{ExitRequest, Message};
use crate::protocol::MemberState;

impl Admin {
    /// This system's capabilities: its convention's, else greenroom's own.
    fn capabilities(&self) -> BTreeMap<String, String> {
        match &self.convention {
            Some(c) => c.capabilities().clone(),
            None => crate::sys::own_capabilities(),
        }
    }

    /// Whether an actor with `requirements` can run here; if not, why.
    pub(super) fn can_run(&self, requirements: &Requirements) -> Result<()> {
        if requirements.is_empty() {
            return Ok(());
        }
        let unmet = placement::unmet(&self.capabilities(), requirements);
        if unmet.is_empty() {
            return Ok(());
        }
        // Another member may qualify; creating there comes with messages between members.
        let elsewhere = self.convention.as_ref().and_then(|c| {
            c.members().into_iter().find(|m| {
                m.state == MemberState::Alive
                    && m.address != c.address()
                    && placement::unmet(&m.capabilities, requirements).is_empty()
            })
        });
        match elsewhere {
            Some(m) => Err(Error::Convention {
                why: format!(
                    "member {} (system '{}') has what the actor requires ({}), but creating actors on other members is not available yet; create it there",
                    m.address,
                    m.system,
                    unmet.join(", ")
                ),
            }),
            None => Err(Error::NoCompatibleSystem { unmet }),
        }
    }

    /// This system's capabilities changed: every actor whose requirements no longer hold is
    /// asked to exit (once).
    pub(super) fn requirements_changed(&mut self) {
        let capabilities = self.capabilities();
        let broken: Vec<(u64, Vec<String>)> = self
            .actors
            .iter_mut()
            .filter(|(_, rec)| !rec.spare && !rec.requirements.is_empty())
            .filter_map(|(&id, rec)| {
                let unmet = placement::unmet(&capabilities, &rec.requirements);
                if unmet.is_empty() {
                    return None;
                }
                rec.requirements.clear();
                Some((id, unmet))
            })
            .collect();
        for (id, unmet) in broken {
            let to = self.me.sibling(id);
            log::info!(
                "actor {to} requires what this system no longer has ({}); asking it to exit",
                unmet.join(", ")
            );
            let msg = Message::new(&ExitRequest::default()).expect("ExitRequest encodes");
            self.send(&to, msg);
        }
    }
}
