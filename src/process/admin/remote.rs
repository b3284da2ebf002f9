//! Actors on other members: created there for this member's actors and programs (where only
//! another member meets their requirements), their creators answered in order, and their
//! parents told when they end: by their member, or here, as `HostLost`, when their member is
//! lost.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::requests::{Creation, Placed};
use super::{Admin, Source};
use crate::address::Address;
use crate::core::placement::Requirements;
use crate::error::Error;
use crate::message::{ChildExited, ExitReason, Message};
use crate::process::convention::{FromPeer, RemoteCreate, Wanted};
use crate::protocol::Response;

/// How long a member has to answer a create; the requester's own patience is longer.
const CREATE_PATIENCE: Duration = Duration::from_secs(10);

/// A create another member was asked to carry out.
struct Pending {
    source: Source,
    member: String,
    parent: Address,
    type_name: String,
    asked_at: Instant,
    /// Not said yet: this member had no link with that one (it knew of it through another).
    /// What to say: the arguments, the requirements, the binary's hash.
    unsent: Option<Unsent>,
}

/// A create not yet said to its member: what to say.
struct Unsent {
    args: Option<Vec<u8>>,
    requirements: std::collections::BTreeMap<String, String>,
    binary: Option<String>,
}

/// An answer in a requester's line: one still awaited from another member, or one ready
/// behind it.
pub(super) enum Slot {
    Waiting(u64),
    Ready(Box<Response>),
}

/// What the admin keeps about actors on other members.
#[derive(Default)]
pub(super) struct Remote {
    pub(super) next_request: u64,
    pending: HashMap<u64, Pending>,
    /// Actors this admin created on other members, with their member and parent.
    children: HashMap<Address, (String, Address)>,
    /// Per requester with an answer awaited from another member, its answers in order.
    pub(super) lines: HashMap<Source, VecDeque<Slot>>,
}

impl Remote {
    /// How many actors this admin created on `member` that still run.
    pub(super) fn running_on(&self, member: &str) -> usize {
        self.children.values().filter(|(m, _)| m == member).count()
    }

    /// The actors this admin created on other members that still run, by address.
    pub(super) fn elsewhere(&self) -> Vec<crate::protocol::ElsewhereInfo> {
        let mut out: Vec<_> = self
            .children
            .iter()
            .map(|(address, (_, parent))| crate::protocol::ElsewhereInfo {
                address: address.clone(),
                parent: parent.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out
    }

    /// True if creates wait for answers (the admin then looks at the time now and then).
    pub(super) fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }
}

impl Admin {
    /// Ask `member` to create the actor `spec` describes (its requirements, all together, are
    /// `requirements`); the answer goes to `source` when it comes.
    pub(super) fn create_on(
        &mut self,
        source: Source,
        member: &str,
        spec: Creation<'_>,
        requirements: &Requirements,
    ) -> Option<Response> {
        let request = self.next_request();
        let requirements = requirements.iter().cloned().collect();
        let binary = self
            .types
            .get(spec.type_name)
            .cloned()
            .and_then(|path| self.binary_hash(&path));
        let asked = self.convention.as_mut().is_some_and(|c| {
            c.ask_create(
                member,
                RemoteCreate {
                    request,
                    type_name: spec.type_name,
                    parent: spec.parent,
                    args: spec.args,
                    requirements: &requirements,
                    binary: binary.as_deref(),
                },
            )
        });
        // Without a link to it yet, it is asked once there is one (see `remote_turn`).
        let unsent = (!asked).then(|| Unsent {
            args: spec.args.map(<[u8]>::to_vec),
            requirements,
            binary,
        });
        log::debug!("asking {member} to create a {}", spec.type_name);
        self.wait_in_line(source, request);
        self.remote.pending.insert(
            request,
            Pending {
                source,
                member: member.to_string(),
                parent: spec.parent.clone(),
                type_name: spec.type_name.to_string(),
                asked_at: Instant::now(),
                unsent,
            },
        );
        None
    }

    /// Ask the creates that waited for a link to their member, if it is there now.
    fn ask_unsent(&mut self) {
        let Some(c) = &mut self.convention else {
            return;
        };
        for (request, p) in self.remote.pending.iter_mut() {
            let Some(u) = &p.unsent else {
                continue;
            };
            let ask = RemoteCreate {
                request: *request,
                type_name: &p.type_name,
                parent: &p.parent,
                args: u.args.as_deref(),
                requirements: &u.requirements,
                binary: u.binary.as_deref(),
            };
            if c.ask_create(&p.member, ask) {
                p.unsent = None;
            }
        }
    }

    /// The answer to create `request` has come (or will never): send it, and what waited
    /// behind it.
    fn answered(&mut self, request: u64, resp: Response) {
        let Some(p) = self.remote.pending.remove(&request) else {
            return;
        };
        if let Response::Created { address } = &resp {
            self.remote
                .children
                .insert(address.clone(), (p.member.clone(), p.parent.clone()));
        }
        self.fill_line(p.source, request, resp);
    }

    /// Carry out what other members asked or told, see to members lost, and give up on creates
    /// not answered in time.
    pub(super) fn remote_turn(&mut self) {
        let (items, lost) = match &mut self.convention {
            Some(c) => (c.take_from_peers(), c.take_lost()),
            None => return,
        };
        for item in items {
            self.take_from_peer(item);
        }
        for member in lost {
            self.member_lost(&member);
        }
        self.pump_uploads();
        self.names_turn();
        if self.remote.waiting() {
            self.ask_unsent();
            let late: Vec<(u64, String)> = self
                .remote
                .pending
                .iter()
                .filter(|(_, p)| p.asked_at.elapsed() > CREATE_PATIENCE)
                .map(|(r, p)| (*r, p.member.clone()))
                .collect();
            for (request, member) in late {
                let why =
                    format!("member {member} did not answer a create within {CREATE_PATIENCE:?}");
                self.answered(request, Response::error(&Error::Convention { why }));
            }
        }
    }

    fn take_from_peer(&mut self, item: FromPeer) {
        match item {
            FromPeer::Create { wanted, binary } => {
                match binary {
                    // No binary here for the type, and the asker has one: fetch it first.
                    Some(sha256) if !self.types.contains_key(&wanted.type_name) => {
                        self.create_from_fetched(wanted, sha256)
                    }
                    _ => self.create_wanted(wanted, None),
                }
            }
            FromPeer::Fetch { peer, sha256 } => self.upload(peer, sha256),
            FromPeer::Chunk {
                peer,
                sha256,
                offset,
                size,
                bytes,
            } => self.chunk(&peer, &sha256, offset, size, &bytes),
            FromPeer::NoBinary { peer, sha256 } => self.no_binary(&peer, &sha256),
            FromPeer::Names { peer, msg } => self.names_said(&peer, msg),
            FromPeer::Created {
                peer,
                request,
                result,
            } => {
                let Some(p) = self.remote.pending.get(&request) else {
                    return;
                };
                if p.member != peer {
                    return;
                }
                let resp = match result {
                    Ok(address) => Response::Created { address },
                    Err(e) => Response::error(&Error::Convention {
                        why: format!(
                            "member {peer}, which meets the requirements of {}, could not create it: {e}",
                            p.type_name
                        ),
                    }),
                };
                self.answered(request, resp);
            }
            FromPeer::ChildGone { child } => {
                self.remote.children.remove(&child);
            }
        }
    }

    /// Create the actor another member asked for, here, from `binary` if given; answer it.
    pub(super) fn create_wanted(&mut self, w: Wanted, binary: Option<String>) {
        let spec = Creation {
            type_name: &w.type_name,
            parent: &w.parent,
            args: w.args.as_deref(),
            asked: &w.requirements,
            here_only: true,
        };
        let result = match self.create(spec, binary) {
            Ok(Placed::Here(address)) => {
                self.directory.created();
                log::debug!("created {} as {address} for {}", w.type_name, w.peer);
                Ok(address)
            }
            Ok(Placed::There { .. }) => Err("placed elsewhere".to_string()),
            Err(e) => Err(e.to_string()),
        };
        self.answer_wanted(&w, result);
    }

    /// Answer another member's create.
    pub(super) fn answer_wanted(
        &mut self,
        w: &Wanted,
        result: std::result::Result<Address, String>,
    ) {
        if let Some(c) = &mut self.convention {
            c.answer_create(&w.peer, w.request, result);
        }
    }

    /// `member` is lost: creates it was asked for fail, and the parents of the actors it ran
    /// for this admin hear `ChildExited { reason: HostLost }`.
    fn member_lost(&mut self, member: &str) {
        self.transfers_lost(member);
        self.names_lost(member);
        let unanswered: Vec<u64> = self
            .remote
            .pending
            .iter()
            .filter(|(_, p)| p.member == member)
            .map(|(r, _)| *r)
            .collect();
        for request in unanswered {
            let why = format!("member {member} was lost before it answered a create");
            self.answered(request, Response::error(&Error::Convention { why }));
        }
        let lost: Vec<(Address, Address)> = self
            .remote
            .children
            .iter()
            .filter(|(_, (m, _))| m == member)
            .map(|(c, (_, p))| (c.clone(), p.clone()))
            .collect();
        for (child, parent) in lost {
            self.remote.children.remove(&child);
            log::warn!("{child} is lost with its member {member}");
            let notice = ChildExited {
                child,
                reason: ExitReason::HostLost {
                    member: member.to_string(),
                },
            };
            let msg = Message::new(&notice).expect("ChildExited encodes");
            self.send(&parent, msg);
        }
    }

    /// An actor whose parent is on another member has ended (its parent has been sent
    /// `ChildExited`): tell that member's admin, which forgets it.
    pub(super) fn tell_parent_member(&mut self, child: &Address, parent: &Address) {
        if let (Some(member), Some(c)) = (parent.member(), &mut self.convention)
            && !parent.is_beside(child)
        {
            c.child_gone(member, child);
        }
    }
}
