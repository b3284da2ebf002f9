//! What the names need each turn of the admin's loop: a new keeper seen to, claims said, a new
//! keeper's grace ended, claims too long unanswered.

use super::*;

impl Admin {
    /// See to names each turn: a new keeper (bind this member's names there, and ask it the
    /// claims that waited), claims not yet said, the end of a new keeper's grace, what this
    /// admin said to itself as the keeper, claims too long unanswered. Runs every turn of the
    /// admin's loop: it allocates only when there is something to do.
    pub(in crate::process::admin) fn names_turn(&mut self) {
        let Some(c) = &self.convention else {
            return;
        };
        if self.names.keeper.as_deref() != Some(c.keeper()) {
            let keeper = c.keeper().to_string();
            self.keeper_changed(keeper);
        }
        if self.names.claims.values().any(|c| !c.sent) {
            self.say_unsent_claims();
        }
        // A new keeper's grace is over: the claims it held back are answered now.
        if self
            .names
            .keeping_since
            .is_some_and(|t| t.elapsed() >= KEEPER_GRACE)
        {
            self.names.keeping_since = None;
            for (from, request, name) in std::mem::take(&mut self.names.held_back) {
                self.names_said(&from, NameMsg::Claim { request, name });
            }
        }
        if !self.names.own.is_empty() {
            let me = self.my_member();
            while let Some(msg) = self.names.own.pop_front() {
                self.names_said(&me, msg);
            }
        }
        let late: Vec<u64> = self
            .names
            .claims
            .iter()
            .filter(|(_, c)| c.at.elapsed() > CLAIM_PATIENCE)
            .map(|(r, _)| *r)
            .collect();
        for request in late {
            let keeper = self.names.keeper.clone().unwrap_or_default();
            let why = format!(
                "the keeper of names, leader {keeper}, did not answer within {CLAIM_PATIENCE:?}"
            );
            self.claim_failed(request, &why);
        }
    }

    /// The keeper is now `keeper`: unless it is the first, this member's names are bound there
    /// again and the claims that waited are said to it anew.
    fn keeper_changed(&mut self, keeper: String) {
        let first = self.names.keeper.is_none();
        self.names.keeping_since = (!first && keeper == self.my_member()).then(Instant::now);
        self.names.keeper = Some(keeper.clone());
        if first {
            return;
        }
        log::info!("convention: {keeper} now keeps the global names");
        let held: Vec<(String, u64)> = self
            .directory
            .names()
            .map(|(n, id)| (n.clone(), id))
            .collect();
        for (name, id) in held {
            let address = self.me.sibling(id);
            self.tell_names(&keeper, NameMsg::Bind { name, address });
        }
        for c in self.names.claims.values_mut() {
            c.sent = false;
        }
    }

    /// Say to the keeper the claims not said yet: it had no link with this member, or is new.
    fn say_unsent_claims(&mut self) {
        let keeper = self.names.keeper.clone().unwrap_or_default();
        let unsent: Vec<(u64, String)> = self
            .names
            .claims
            .iter()
            .filter(|(_, c)| !c.sent)
            .map(|(r, c)| (*r, c.name.clone()))
            .collect();
        for (request, name) in unsent {
            if self.tell_names(&keeper, NameMsg::Claim { request, name })
                && let Some(c) = self.names.claims.get_mut(&request)
            {
                c.sent = true;
            }
        }
    }
}
