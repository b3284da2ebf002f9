//! Actors created with requirements: checked against this system's capabilities when they are
//! created, and asked to exit when a change of capabilities breaks them.

use std::collections::BTreeMap;

use super::Admin;
use crate::core::placement::{self, Requirements};
use crate::error::{Error, Result};
use crate::message::{ExitRequest, Message};

impl Admin {
    /// This system's capabilities: its convention's, else greenroom's own.
    fn capabilities(&self) -> BTreeMap<String, String> {
        match &self.convention {
            Some(c) => c.capabilities().clone(),
            None => crate::sys::own_capabilities(),
        }
    }

    /// Where an actor with `requirements` runs: here (`None`), on another member that meets
    /// them (`Some(member)`; only if `here_only` is false), or nowhere (why). Among members that
    /// meet them, the one running the fewest actors this admin created there, then the first by
    /// address.
    pub(super) fn place(
        &self,
        requirements: &Requirements,
        here_only: bool,
    ) -> Result<Option<String>> {
        if requirements.is_empty() {
            return Ok(None);
        }
        let unmet = placement::unmet(&self.capabilities(), requirements);
        if unmet.is_empty() {
            return Ok(None);
        }
        let elsewhere = match &self.convention {
            Some(c) if !here_only => c.members_meeting(requirements),
            _ => Vec::new(),
        };
        elsewhere
            .into_iter()
            .min_by_key(|m| self.remote.running_on(m))
            .map(Some)
            .ok_or(Error::NoCompatibleSystem { unmet })
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
