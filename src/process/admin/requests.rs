//! What the admin does for each request: hello, load, create, dead letters, status, shutdown,
//! and an actor's last word.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Admin, Source};
use crate::address::Address;
use crate::core::ledger::Ledger;
use crate::core::placement;
use crate::error::{Error, Result};
use crate::process::runtime::SPARE;
use crate::protocol::{ActorInfo, PROTOCOL_VERSION, Request, Response, Role, SystemStatus};

/// What a create asks for.
#[derive(Clone, Copy)]
pub(super) struct Creation<'a> {
    pub(super) type_name: &'a str,
    pub(super) parent: &'a Address,
    pub(super) args: Option<&'a [u8]>,
    pub(super) asked: &'a BTreeMap<String, String>,
    /// Only here: a create another member asked for.
    pub(super) here_only: bool,
}

/// Where a create put the actor.
pub(super) enum Placed {
    Here(Address),
    /// This member does not meet the requirements; `member` does.
    There {
        member: String,
        requirements: placement::Requirements,
    },
}

impl Admin {
    pub(super) fn handle(&mut self, source: Source, req: Request) -> Option<Response> {
        Some(match req {
            Request::Hello { version, .. } if version != PROTOCOL_VERSION => {
                let message = format!(
                    "this admin speaks greenroom protocol version {PROTOCOL_VERSION}, not {version}; use a greenroom built from the same version"
                );
                if let Source::Actor(id) = source {
                    log::error!("actor {id}: {message}");
                    self.close_actor_control(id);
                    return None;
                }
                return Some(Response::refusal("BadVersion", message));
            }
            Request::Hello {
                role: Role::Actor { .. },
                ..
            } => {
                return match source {
                    Source::Actor(_) => None,
                    Source::Client(_) => Some(Response::bad_request(
                        "Hello with role Actor is for actor processes, on the socket the admin handed them",
                    )),
                };
            }
            Request::Hello {
                role: Role::Client { pid, owner },
                ..
            } => {
                let Source::Client(token) = source else {
                    return Some(Response::bad_request(
                        "Hello with role Client is for admin.sock",
                    ));
                };
                if self.clients.get(&token).is_some_and(|c| c.greeted) {
                    return Some(Response::bad_request(
                        "Hello was already said on this connection",
                    ));
                }
                if self.shutdown.is_some() {
                    return Some(Response::error(&Error::ShuttingDown));
                }
                let id = self.ids.take();
                if let Some(c) = self.clients.get_mut(&token) {
                    c.endpoint = Some(id);
                    c.greeted = true;
                }
                // Only the program that started an owned admin owns it (its going shuts the
                // admin down): the kernel, not the frame, says who is on the other end.
                let started_us =
                    self.clients.get(&token).and_then(|c| c.peer_pid) == Some(self.parent_pid);
                if owner && self.cfg.owned && self.owner.is_none() && started_us {
                    self.owner = Some(token);
                }
                log::debug!("client pid {pid} attached as {id}");
                Response::Welcome {
                    endpoint: self.me.sibling(id),
                    max_frame: self.cfg.max_frame as u64,
                }
            }
            Request::Load {
                path,
                types,
                requires,
            } => self.load(&path, types, requires),
            Request::Create {
                type_name,
                binary,
                parent,
                name,
                args,
                requirements,
            } => {
                if let Some(id) = name.as_ref().and_then(|n| self.directory.named(n)) {
                    return Some(Response::Created {
                        address: self.me.sibling(id),
                    });
                }
                // In a convention, a global name is the convention's: its keeper says who
                // holds it.
                if let Some(name) = &name
                    && self.convention.is_some()
                {
                    let named = super::names::NamedCreate {
                        name: name.clone(),
                        type_name,
                        binary,
                        parent,
                        args: args.map(|a| a.into_vec()),
                        asked: requirements,
                    };
                    return self.create_named(source, named);
                }
                let args = args.as_deref().map(|a| &a[..]);
                let spec = Creation {
                    type_name: &type_name,
                    parent: &parent,
                    args,
                    asked: &requirements,
                    here_only: false,
                };
                match self.create(spec, binary) {
                    Ok(Placed::Here(address)) => {
                        self.directory.created();
                        if let Some(name) = name {
                            self.directory.name(name, address.id());
                        }
                        Response::Created { address }
                    }
                    Ok(Placed::There { .. }) if name.is_some() => Response::error(&Error::Convention {
                        why: "a named actor is created on the member that names it only (names across members are not available yet); create it without a name, or on a member that meets its requirements".into(),
                    }),
                    Ok(Placed::There {
                        member,
                        requirements,
                    }) => {
                        return self.create_on(source, &member, spec, &requirements);
                    }
                    Err(e) => Response::error(&e),
                }
            }
            Request::DeadLetters { on } => {
                let Source::Actor(id) = source else {
                    return Some(Response::bad_request("only actors can handle dead letters"));
                };
                self.directory.handle_dead_letters(id, on);
                Response::Ok
            }
            Request::DeadLetter {
                target,
                sender,
                message,
                kept,
                queued,
            } => {
                // Named so that the admin never returns the same message again, should the
                // sender die with it still in one of its rings.
                let handed_on = match source {
                    Source::Actor(id) => self.actors.get_mut(&id).map(|r| &mut r.handed_on),
                    Source::Client(t) => self.clients.get_mut(&t).map(|c| &mut c.handed_on),
                };
                if let Some(handed_on) = handed_on {
                    if let Some([conn, seq]) = kept {
                        handed_on.copies.insert((conn, seq));
                    }
                    if let Some(at) = queued {
                        handed_on.queued.insert(at);
                    }
                }
                self.dead_letter(target, sender, message);
                return None;
            }
            Request::Status => Response::Status(self.status()),
            Request::Members => Response::Members {
                members: self
                    .convention
                    .as_ref()
                    .map(|c| c.members())
                    .unwrap_or_default(),
            },
            Request::WatchConvention { on } => {
                let watcher = match source {
                    Source::Actor(id) => Some(id),
                    Source::Client(t) => self.clients.get(&t).and_then(|c| c.endpoint),
                }
                .map(|id| self.me.sibling(id));
                match (&mut self.convention, watcher) {
                    (Some(c), Some(w)) => {
                        c.watch(w, on);
                        Response::Ok
                    }
                    (None, _) => Response::error(&Error::NoConvention {
                        system: self.cfg.system.clone(),
                    }),
                    (_, None) => Response::bad_request("say Hello before watching the convention"),
                }
            }
            Request::SetCapability { key, value } => {
                let set = match &mut self.convention {
                    Some(c) => c.set_capability(&key, value),
                    None => Err(Error::NoConvention {
                        system: self.cfg.system.clone(),
                    }),
                };
                match set {
                    Ok(()) => {
                        self.requirements_changed();
                        Response::Ok
                    }
                    Err(e) => Response::error(&e),
                }
            }
            Request::Shutdown => {
                let waiter = match source {
                    Source::Client(t) => Some(t),
                    Source::Actor(_) => None,
                };
                self.begin_shutdown(waiter);
                return None;
            }
            Request::Exiting { reason } => {
                if let Source::Actor(id) = source
                    && let Some(rec) = self.actors.get_mut(&id)
                {
                    rec.exiting = Some(reason);
                }
                return None;
            }
        })
    }

    /// The system's accounting: the admin's own counts, those of every process that has ended,
    /// and the ledger pages of the live ones.
    fn ledger(&mut self) -> Ledger {
        let mut sum = self.ledger.plus(self.retired);
        for rec in self.actors.values() {
            if let Some(page) = &rec.page {
                sum = sum.plus(page.counts());
            }
        }
        for client in self.clients.values_mut() {
            if let Some(page) = client.page(&self.dir) {
                sum = sum.plus(page.counts());
            }
        }
        sum.settle()
    }

    fn status(&mut self) -> SystemStatus {
        let ledger = self.ledger();
        let actors = self
            .actors
            .iter()
            .filter(|(_, a)| !a.spare)
            .map(|(&id, a)| ActorInfo {
                address: self.me.sibling(id),
                type_name: a.type_name.clone(),
                pid: a.pid,
                parent: a.parent.clone(),
            })
            .collect();
        let mut status =
            self.directory
                .system_status(&self.me, actors, self.binaries.clone(), ledger);
        if let Some(c) = &self.convention {
            status.convention = Some(c.address().to_string());
            status.counters.links_refused = c.refused_total();
        }
        status.elsewhere = self.remote.elsewhere();
        status
    }

    fn load(
        &mut self,
        path: &str,
        types: Vec<String>,
        requires: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Response {
        let path = match std::fs::canonicalize(path) {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => return Response::bad_request(&format!("cannot load {path}: {e}")),
        };
        self.declared.insert(path.clone(), requires);
        for t in &types {
            self.types.insert(t.clone(), path.clone());
        }
        if !types.is_empty() && !self.spares.contains_key(&path) {
            self.replenish.push(path.clone());
        }
        self.binaries.insert(path, types.clone());
        Response::Loaded { types }
    }

    /// Create an actor as `spec` says, from `binary` (else the binary loaded for its type): here,
    /// or say on which member it must run instead.
    pub(super) fn create(&mut self, spec: Creation<'_>, binary: Option<String>) -> Result<Placed> {
        if self.shutdown.is_some() {
            return Err(Error::ShuttingDown);
        }
        let type_name = spec.type_name;
        let unknown = |known: &BTreeMap<String, String>| Error::UnknownType {
            type_name: type_name.to_string(),
            known: known.keys().cloned().collect(),
            binary: None,
        };
        let binary = match binary {
            Some(b) => {
                let canon = std::fs::canonicalize(&b).map_err(|e| Error::NotActorBinary {
                    path: PathBuf::from(&b),
                    why: e.to_string(),
                })?;
                let canon = canon.to_string_lossy().into_owned();
                if let Some(provided) = self.binaries.get(&canon)
                    && !provided.iter().any(|t| t == type_name)
                {
                    return Err(Error::UnknownType {
                        type_name: type_name.to_string(),
                        known: provided.clone(),
                        binary: Some(PathBuf::from(&canon)),
                    });
                }
                Some(canon)
            }
            None => self.types.get(type_name).cloned(),
        };
        // What the type requires (as its binary declared) and what the create asks for.
        let declared = binary
            .as_ref()
            .and_then(|b| self.declared.get(b))
            .and_then(|d| d.get(type_name));
        let requirements = placement::together(declared.into_iter().flatten(), spec.asked);
        if let Some(member) = self.place(&requirements, spec.here_only)? {
            return Ok(Placed::There {
                member,
                requirements,
            });
        }
        let binary = binary.ok_or_else(|| unknown(&self.types))?;
        let address = self.start(type_name, binary, spec.parent, spec.args)?;
        if let Some(rec) = self.actors.get_mut(&address.id()) {
            rec.requirements = requirements;
        }
        Ok(Placed::Here(address))
    }

    /// Start an actor of `type_name` from `binary`: from its spare if one is ready.
    fn start(
        &mut self,
        type_name: &str,
        binary: String,
        parent: &Address,
        args: Option<&[u8]>,
    ) -> Result<Address> {
        if self.binaries.contains_key(&binary) {
            self.replenish.push(binary.clone());
            if let Some(id) = self.spares.remove(&binary)
                && let Some(address) = self.assign(id, type_name, parent, args)
            {
                self.directory.counters.spares_used += 1;
                return Ok(address);
            }
        }
        let Some(args) = args else {
            let id = self.spawn(&binary, type_name, parent)?;
            return Ok(self.me.sibling(id));
        };
        // Start arguments travel in `Assign`: start the process as a spare, and assign it at
        // once (the assignment waits in its control socket).
        let admin = self.me.clone();
        let id = self.spawn(&binary, SPARE, &admin)?;
        self.assign(id, type_name, parent, Some(args))
            .ok_or_else(|| Error::Admin(format!("the process for {type_name} ended at once")))
    }
}
