//! Global names across a convention: unique in the whole convention, kept by its *keeper*, the
//! lowest-addressed live leader. A member that is asked to create a named actor it does not
//! hold asks the keeper (`Claim`): the holder's address comes back, or the name is reserved for
//! it; it then creates the actor and binds the name (`Bind`), or gives it up (`Unbind`). Claims
//! for a name being created wait for it. A name is freed when its holder ends, or its member is
//! lost; when the keeper changes (it was lost, or a lower leader came back), every member binds
//! its names again at the new one, and claims waiting on the old one are asked again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::requests::{Creation, Placed};
use super::{Admin, Source};
use crate::address::Address;
use crate::error::Error;
use crate::process::convention::NameMsg;
use crate::protocol::Response;

mod turn;

/// How long a claim waits for the keeper's answer.
const CLAIM_PATIENCE: Duration = Duration::from_secs(10);
/// How long a new keeper waits for the members to bind their names again before it says a
/// name nobody bound is free: as long as a member may take to notice the old keeper's loss.
const KEEPER_GRACE: Duration = crate::process::convention::SILENCE;

/// What the keeper knows of a name.
enum Entry {
    Held(Address),
    /// Member `by` is creating its holder; these members' claims wait for it.
    Reserved {
        by: String,
        waiters: Vec<(String, u64)>,
    },
}

/// A named create waiting for the keeper's answer.
pub(super) struct Claim {
    source: Source,
    name: String,
    type_name: String,
    binary: Option<String>,
    parent: Address,
    args: Option<Vec<u8>>,
    asked: BTreeMap<String, String>,
    at: Instant,
    /// Said to the keeper (else: no link with it yet; said again each turn).
    sent: bool,
}

/// What the admin keeps about global names across its convention.
#[derive(Default)]
pub(super) struct Names {
    /// As the keeper: every name and its holder.
    table: HashMap<String, Entry>,
    /// As a member: named creates waiting for the keeper, by request.
    claims: HashMap<u64, Claim>,
    /// The keeper as last seen.
    keeper: Option<String>,
    /// When this admin became the keeper after another (not at start): until [`KEEPER_GRACE`]
    /// has passed, claims for names nobody bound wait here.
    keeping_since: Option<Instant>,
    held_back: Vec<(String, u64, String)>,
    /// What this admin says to itself while it is the keeper.
    own: VecDeque<NameMsg>,
}

/// A named create, as the request gave it.
pub(super) struct NamedCreate {
    pub(super) name: String,
    pub(super) type_name: String,
    pub(super) binary: Option<String>,
    pub(super) parent: Address,
    pub(super) args: Option<Vec<u8>>,
    pub(super) asked: BTreeMap<String, String>,
}

impl Admin {
    fn my_member(&self) -> String {
        self.me.member().unwrap_or_default().to_string()
    }

    /// Say `msg` to `member` (to this admin itself if it is the one). False if it cannot be
    /// reached.
    fn tell_names(&mut self, member: &str, msg: NameMsg) -> bool {
        if member == self.my_member() {
            self.names.own.push_back(msg);
            return true;
        }
        self.convention
            .as_mut()
            .is_some_and(|c| c.tell_names(member, msg))
    }

    /// Create an actor under a global name of the convention: ask the keeper who holds it; the
    /// answer goes to `source` when it comes.
    pub(super) fn create_named(&mut self, source: Source, named: NamedCreate) -> Option<Response> {
        let Some(keeper) = self.convention.as_ref().map(|c| c.keeper().to_string()) else {
            return Some(Response::error(&Error::NoConvention {
                system: self.cfg.system.clone(),
            }));
        };
        let request = self.next_request();
        self.wait_in_line(source, request);
        let name = named.name.clone();
        self.names.claims.insert(
            request,
            Claim {
                source,
                name: named.name,
                type_name: named.type_name,
                binary: named.binary,
                parent: named.parent,
                args: named.args,
                asked: named.asked,
                at: Instant::now(),
                sent: false,
            },
        );
        // Without a link to the keeper yet, it is said again each turn until it can be.
        let sent = self.tell_names(&keeper, NameMsg::Claim { request, name });
        if let Some(c) = self.names.claims.get_mut(&request) {
            c.sent = sent;
        }
        None
    }

    fn claim_failed(&mut self, request: u64, why: &str) {
        if let Some(c) = self.names.claims.remove(&request) {
            let e = Error::Convention {
                why: format!("the global name '{}': {why}", c.name),
            };
            self.fill_line(c.source, request, Response::error(&e));
        }
    }

    /// A message about names from `from` (a member, or this admin itself).
    pub(super) fn names_said(&mut self, from: &str, msg: NameMsg) {
        match msg {
            NameMsg::Claim { request, name } => {
                let new_keeper = self
                    .names
                    .keeping_since
                    .is_some_and(|t| t.elapsed() < KEEPER_GRACE);
                if new_keeper && !self.names.table.contains_key(&name) {
                    // The members may not have bound their names here yet.
                    self.names.held_back.push((from.to_string(), request, name));
                    return;
                }
                let holder = match self.names.table.get_mut(&name) {
                    Some(Entry::Held(a)) => Some(a.clone()),
                    Some(Entry::Reserved { waiters, .. }) => {
                        waiters.push((from.to_string(), request));
                        return;
                    }
                    None => {
                        let reserved = Entry::Reserved {
                            by: from.to_string(),
                            waiters: Vec::new(),
                        };
                        self.names.table.insert(name.clone(), reserved);
                        None
                    }
                };
                let answer = NameMsg::Name {
                    request,
                    name,
                    holder,
                };
                self.tell_names(from, answer);
            }
            NameMsg::Name {
                request, holder, ..
            } => self.claim_answered(request, holder),
            NameMsg::Bind { name, address } => {
                let waiters = match self.names.table.get(&name) {
                    Some(Entry::Held(a)) if *a != address => {
                        log::warn!(
                            "global name '{name}' is held by {a}; {address} holds it too (bound at a keeper that changed)"
                        );
                        return;
                    }
                    Some(Entry::Reserved { by, .. }) if by != from => return,
                    _ => match self
                        .names
                        .table
                        .insert(name.clone(), Entry::Held(address.clone()))
                    {
                        Some(Entry::Reserved { waiters, .. }) => waiters,
                        _ => Vec::new(),
                    },
                };
                for (member, request) in waiters {
                    let answer = NameMsg::Name {
                        request,
                        name: name.clone(),
                        holder: Some(address.clone()),
                    };
                    self.tell_names(&member, answer);
                }
            }
            NameMsg::Unbind { name, address } => {
                let ours = match (self.names.table.get(&name), &address) {
                    (Some(Entry::Held(a)), Some(b)) => a == b,
                    (Some(Entry::Reserved { by, .. }), None) => by == from,
                    _ => false,
                };
                if ours {
                    self.free_name(&name);
                }
            }
        }
    }

    /// `name` is free again: the first claim that waited for it gets it.
    fn free_name(&mut self, name: &str) {
        let waiters = match self.names.table.remove(name) {
            Some(Entry::Reserved { waiters, .. }) => waiters,
            _ => Vec::new(),
        };
        let mut waiters = waiters.into_iter();
        let Some((member, request)) = waiters.next() else {
            return;
        };
        let reserved = Entry::Reserved {
            by: member.clone(),
            waiters: waiters.collect(),
        };
        self.names.table.insert(name.to_string(), reserved);
        let answer = NameMsg::Name {
            request,
            name: name.to_string(),
            holder: None,
        };
        self.tell_names(&member, answer);
    }

    /// The keeper answered claim `request`: the holder, or the name is ours to take.
    fn claim_answered(&mut self, request: u64, holder: Option<Address>) {
        let Some(c) = self.names.claims.remove(&request) else {
            return;
        };
        if let Some(address) = holder {
            return self.fill_line(c.source, request, Response::Created { address });
        }
        let spec = Creation {
            type_name: &c.type_name,
            parent: &c.parent,
            args: c.args.as_deref(),
            asked: &c.asked,
            here_only: true,
        };
        let keeper = self
            .convention
            .as_ref()
            .map_or_else(String::new, |c| c.keeper().to_string());
        let resp = match self.create(spec, c.binary.clone()) {
            Ok(Placed::Here(address)) => {
                self.directory.created();
                self.directory.name(c.name.clone(), address.id());
                let bind = NameMsg::Bind {
                    name: c.name.clone(),
                    address: address.clone(),
                };
                self.tell_names(&keeper, bind);
                Response::Created { address }
            }
            other => {
                let unbind = NameMsg::Unbind {
                    name: c.name.clone(),
                    address: None,
                };
                self.tell_names(&keeper, unbind);
                match other {
                    Err(e) => Response::error(&e),
                    _ => Response::error(&Error::Convention {
                        why: "a named actor is created on the member that names it only; create it on a member that meets its requirements".into(),
                    }),
                }
            }
        };
        self.fill_line(c.source, request, resp);
    }

    /// The actor at `address` has ended: the names it held are freed at the keeper.
    pub(super) fn names_released(&mut self, address: &Address) {
        let Some(keeper) = self.names.keeper.clone() else {
            return;
        };
        let held: Vec<String> = self
            .directory
            .names()
            .filter(|(_, id)| *id == address.id())
            .map(|(n, _)| n.clone())
            .collect();
        for name in held {
            let unbind = NameMsg::Unbind {
                name,
                address: Some(address.clone()),
            };
            self.tell_names(&keeper, unbind);
        }
    }

    /// `member` is lost: as the keeper, free the names its actors held or it was creating.
    pub(super) fn names_lost(&mut self, member: &str) {
        let freed: Vec<String> = self
            .names
            .table
            .iter()
            .filter(|(_, e)| match e {
                Entry::Held(a) => a.member() == Some(member),
                Entry::Reserved { by, .. } => by == member,
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in freed {
            self.free_name(&name);
        }
    }
}
