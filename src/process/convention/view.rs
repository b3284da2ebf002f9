//! Who is in the convention, as one admin sees it, free of I/O (time is milliseconds on the
//! admin's own clock).
//!
//! An admin knows first-hand itself and the admins it has a live, authenticated link with; each
//! of those sends what *it* knows first-hand. A member is alive here if it is this admin, a
//! live link, or in the first-hand view of a live link: every claim comes from a link that is
//! up, so a member that dies drops out as soon as the links to it close (or fall silent), with
//! no stale gossip to outlive it. Every member links to every leader, so each member hears of
//! every other through the leaders' views. A member once seen and no longer alive is *gone*.

use std::collections::{BTreeMap, BTreeSet};

use super::wire::Heard;
use crate::protocol::{MemberInfo, MemberState};

/// A live link's peer, as it said.
#[derive(Debug)]
struct Direct {
    system: String,
    capabilities: BTreeMap<String, String>,
    /// When anything was last read from it.
    heard_ms: u64,
    /// Its latest first-hand view, and when it arrived.
    view: Vec<Heard>,
    view_at_ms: u64,
}

/// A member this admin has seen alive at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    system: String,
    capabilities: BTreeMap<String, String>,
    alive: bool,
    heard_ms: u64,
}

/// A change in who is alive, or in what a member offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Joined(String),
    Left(String),
    Capabilities(String),
}

/// One admin's view of the convention.
#[derive(Debug)]
pub(crate) struct View {
    me: Heard,
    direct: BTreeMap<String, Direct>,
    known: BTreeMap<String, Known>,
}

impl View {
    /// The view of the admin `me` (its `ago_ms` is ignored), alone so far.
    pub(crate) fn new(me: Heard) -> View {
        View {
            me,
            direct: BTreeMap::new(),
            known: BTreeMap::new(),
        }
    }

    /// This admin's address in the convention.
    pub(crate) fn address(&self) -> &str {
        &self.me.address
    }

    /// This admin's capabilities.
    pub(crate) fn capabilities(&self) -> &BTreeMap<String, String> {
        &self.me.capabilities
    }

    /// Change this admin's capabilities.
    pub(crate) fn set_capabilities(&mut self, capabilities: BTreeMap<String, String>) {
        self.me.capabilities = capabilities;
    }

    /// A link to `address` is up and its peer said hello.
    pub(crate) fn linked(
        &mut self,
        address: &str,
        system: String,
        capabilities: BTreeMap<String, String>,
        now: u64,
    ) {
        self.direct.insert(
            address.to_string(),
            Direct {
                system,
                capabilities,
                heard_ms: now,
                view: Vec::new(),
                view_at_ms: now,
            },
        );
    }

    /// The peer at `address` was heard from.
    pub(crate) fn heard(&mut self, address: &str, now: u64) {
        if let Some(d) = self.direct.get_mut(address) {
            d.heard_ms = now;
        }
    }

    /// The peer at `address` sent its first-hand view (its own entry first). Returns true if
    /// its own capabilities changed (something this admin knows first-hand).
    pub(crate) fn viewed(&mut self, address: &str, members: Vec<Heard>, now: u64) -> bool {
        let Some(d) = self.direct.get_mut(address) else {
            return false;
        };
        let mut changed = false;
        if let Some(own) = members.iter().find(|m| m.address == address)
            && own.capabilities != d.capabilities
        {
            d.capabilities = own.capabilities.clone();
            changed = true;
        }
        d.heard_ms = now;
        d.view = members;
        d.view_at_ms = now;
        changed
    }

    /// The link to `address` is down.
    pub(crate) fn unlinked(&mut self, address: &str) {
        self.direct.remove(address);
    }

    /// Peers whose links have been silent since before `before`.
    pub(crate) fn silent_since(&self, before: u64) -> Vec<String> {
        self.direct
            .iter()
            .filter(|(_, d)| d.heard_ms < before)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// What this admin knows first-hand, itself first: what it sends its peers.
    pub(crate) fn first_hand(&self, now: u64) -> Vec<Heard> {
        let mut out = vec![Heard {
            ago_ms: 0,
            ..self.me.clone()
        }];
        out.extend(self.direct.iter().map(|(a, d)| Heard {
            address: a.clone(),
            system: d.system.clone(),
            capabilities: d.capabilities.clone(),
            ago_ms: now.saturating_sub(d.heard_ms),
        }));
        out
    }

    /// Work out who is alive now, and what changed since the last time.
    pub(crate) fn refresh(&mut self) -> Vec<Change> {
        let mut alive: BTreeMap<String, Known> = BTreeMap::new();
        let mut consider = |address: &str,
                            system: &str,
                            caps: &BTreeMap<String, String>,
                            heard: u64,
                            first_hand: bool| {
            let entry = alive.entry(address.to_string()).or_insert_with(|| Known {
                system: system.to_string(),
                capabilities: caps.clone(),
                alive: true,
                heard_ms: heard,
            });
            if first_hand || heard > entry.heard_ms {
                entry.system = system.to_string();
                entry.capabilities = caps.clone();
            }
            entry.heard_ms = entry.heard_ms.max(heard);
        };
        for (address, d) in &self.direct {
            consider(address, &d.system, &d.capabilities, d.heard_ms, true);
        }
        for d in self.direct.values() {
            for m in &d.view {
                if m.address != self.me.address && !self.direct.contains_key(&m.address) {
                    let heard = d.view_at_ms.saturating_sub(m.ago_ms);
                    consider(&m.address, &m.system, &m.capabilities, heard, false);
                }
            }
        }
        let mut changes = Vec::new();
        for (address, now_known) in &alive {
            match self.known.get(address) {
                Some(before) if before.alive => {
                    if before.capabilities != now_known.capabilities {
                        changes.push(Change::Capabilities(address.clone()));
                    }
                }
                _ => changes.push(Change::Joined(address.clone())),
            }
        }
        let alive_now: BTreeSet<&String> = alive.keys().collect();
        for (address, before) in self.known.iter_mut() {
            if before.alive && !alive_now.contains(address) {
                before.alive = false;
                changes.push(Change::Left(address.clone()));
            }
        }
        self.known.extend(alive);
        changes
    }

    /// True if `address` is another member, alive as of the last [`refresh`](Self::refresh).
    pub(crate) fn is_alive(&self, address: &str) -> bool {
        self.known.get(address).is_some_and(|k| k.alive)
    }

    /// The other members alive as of the last [`refresh`](Self::refresh).
    pub(crate) fn alive(&self) -> impl Iterator<Item = &str> {
        self.known
            .iter()
            .filter(|(_, k)| k.alive)
            .map(|(a, _)| a.as_str())
    }

    /// Every member ever seen, this admin included, by address.
    pub(crate) fn members(&self, now: u64) -> Vec<MemberInfo> {
        let mut out = vec![MemberInfo {
            address: self.me.address.clone(),
            system: self.me.system.clone(),
            capabilities: self.me.capabilities.clone(),
            state: MemberState::Alive,
            last_heard_ms: 0,
        }];
        out.extend(self.known.iter().map(|(a, k)| MemberInfo {
            address: a.clone(),
            system: k.system.clone(),
            capabilities: k.capabilities.clone(),
            state: if k.alive {
                MemberState::Alive
            } else {
                MemberState::Gone
            },
            last_heard_ms: now.saturating_sub(match (k.alive, self.direct.get(a)) {
                (true, Some(d)) => d.heard_ms,
                _ => k.heard_ms,
            }),
        }));
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out
    }
}

#[cfg(test)]
mod tests;
