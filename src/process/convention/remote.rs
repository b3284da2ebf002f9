//! Requests between admins: creating an actor on another member, its answer, and the end of an
//! actor whose parent is on another member. The convention checks who may say what; the admin
//! carries them out.

use super::*;
use wire::LinkMsg;

/// A create another member asked this one for: an actor of `type_name`, child of `parent` (an
/// actor or program on member `peer`), answering its create number `request`.
#[derive(Debug)]
pub(crate) struct Wanted {
    pub(crate) peer: String,
    pub(crate) request: u64,
    pub(crate) type_name: String,
    pub(crate) parent: Address,
    pub(crate) args: Option<Vec<u8>>,
    pub(crate) requirements: BTreeMap<String, String>,
}

/// What a peer asked of this admin, or told it, for the admin to carry out.
#[derive(Debug)]
pub(crate) enum FromPeer {
    /// Create an actor here for another member.
    Create {
        wanted: Wanted,
        /// The SHA-256 of the asker's binary for the type, if it has one.
        binary: Option<String>,
    },
    /// `peer` asks for the binary `sha256`.
    Fetch { peer: String, sha256: String },
    /// A piece of the binary `sha256` this admin asked `peer` for.
    Chunk {
        peer: String,
        sha256: String,
        offset: u64,
        size: u64,
        bytes: Vec<u8>,
    },
    /// `peer` has no binary `sha256`.
    NoBinary { peer: String, sha256: String },
    /// A message about global names (`Claim`, `Name`, `Bind`, `Unbind`) from `peer`.
    Names { peer: String, msg: NameMsg },
    /// The answer to this admin's `Create` number `request`.
    Created {
        peer: String,
        request: u64,
        result: std::result::Result<Address, String>,
    },
    /// An actor this admin had created on `peer` has ended.
    ChildGone { child: Address },
}

/// What members say about global names (see `LinkMsg::Claim` and the rest).
#[derive(Debug, Clone)]
pub(crate) enum NameMsg {
    Claim {
        request: u64,
        name: String,
    },
    Name {
        request: u64,
        name: String,
        holder: Option<Address>,
    },
    Bind {
        name: String,
        address: Address,
    },
    Unbind {
        name: String,
        address: Option<Address>,
    },
}

/// A create to ask of another member.
pub(crate) struct RemoteCreate<'a> {
    pub(crate) request: u64,
    pub(crate) type_name: &'a str,
    pub(crate) parent: &'a Address,
    pub(crate) args: Option<&'a [u8]>,
    pub(crate) requirements: &'a BTreeMap<String, String>,
    /// The SHA-256 of this member's binary for the type, if it has one.
    pub(crate) binary: Option<&'a str>,
}

impl Convention {
    /// A request or notice from `peer`: queued for the admin. False if the peer may not say it
    /// (the link then ends).
    pub(super) fn take_from_peer(&mut self, peer: &str, msg: LinkMsg) -> bool {
        let item = match msg {
            LinkMsg::Create {
                request,
                type_name,
                parent,
                args,
                requirements,
                binary,
            } => {
                if parent.member() != Some(peer) {
                    return false;
                }
                let wanted = Wanted {
                    peer: peer.to_string(),
                    request,
                    type_name,
                    parent,
                    args: args.map(|a| a.into_vec()),
                    requirements,
                };
                FromPeer::Create { wanted, binary }
            }
            LinkMsg::Fetch { sha256 } => FromPeer::Fetch {
                peer: peer.to_string(),
                sha256,
            },
            LinkMsg::Chunk {
                sha256,
                offset,
                size,
                bytes,
            } => FromPeer::Chunk {
                peer: peer.to_string(),
                sha256,
                offset,
                size,
                bytes: bytes.into_vec(),
            },
            LinkMsg::NoBinary { sha256 } => FromPeer::NoBinary {
                peer: peer.to_string(),
                sha256,
            },
            LinkMsg::Claim { request, name } => FromPeer::Names {
                peer: peer.to_string(),
                msg: NameMsg::Claim { request, name },
            },
            LinkMsg::Name {
                request,
                name,
                holder,
            } => FromPeer::Names {
                peer: peer.to_string(),
                msg: NameMsg::Name {
                    request,
                    name,
                    holder,
                },
            },
            LinkMsg::Bind { name, address } if address.member() == Some(peer) => FromPeer::Names {
                peer: peer.to_string(),
                msg: NameMsg::Bind { name, address },
            },
            LinkMsg::Unbind { name, address }
                if address.as_ref().is_none_or(|a| a.member() == Some(peer)) =>
            {
                FromPeer::Names {
                    peer: peer.to_string(),
                    msg: NameMsg::Unbind { name, address },
                }
            }
            LinkMsg::Created {
                request,
                address,
                error,
            } => {
                let result = match (address, error) {
                    (Some(a), None) if a.member() == Some(peer) => Ok(a),
                    (None, Some(e)) => Err(e),
                    _ => return false,
                };
                FromPeer::Created {
                    peer: peer.to_string(),
                    request,
                    result,
                }
            }
            LinkMsg::ChildGone { child } if child.member() == Some(peer) => {
                FromPeer::ChildGone { child }
            }
            _ => return false,
        };
        self.from_peers.push(item);
        true
    }

    /// What peers asked or told since the last call.
    pub(crate) fn take_from_peers(&mut self) -> Vec<FromPeer> {
        std::mem::take(&mut self.from_peers)
    }

    /// Members lost since the last call (gone from the view, or left).
    pub(crate) fn take_lost(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lost)
    }

    /// Send `msg` to `member` now. False if this admin has no link with it.
    fn tell_member(&mut self, member: &str, msg: &LinkMsg) -> bool {
        let Some(token) = self.link_of.get(member).copied() else {
            return false;
        };
        let Some(link) = self.links.get_mut(&token) else {
            return false;
        };
        match link.send(msg, &self.registry) {
            Ok(()) => true,
            Err(why) => {
                self.drop_link(token, &why);
                false
            }
        }
    }

    /// Ask `member` to create an actor (see [`LinkMsg::Create`]). False if there is no link.
    pub(crate) fn ask_create(&mut self, member: &str, ask: RemoteCreate<'_>) -> bool {
        // The answer, and then the first messages to the new actor, follow soon.
        self.carried = Some(Instant::now());
        let msg = LinkMsg::Create {
            request: ask.request,
            type_name: ask.type_name.to_string(),
            parent: ask.parent.clone(),
            args: ask.args.map(|a| serde_bytes::ByteBuf::from(a.to_vec())),
            requirements: ask.requirements.clone(),
            binary: ask.binary.map(str::to_string),
        };
        self.tell_member(member, &msg)
    }

    /// Ask `member` for the binary `sha256`. False if there is no link.
    pub(crate) fn fetch(&mut self, member: &str, sha256: &str) -> bool {
        let sha256 = sha256.to_string();
        self.tell_member(member, &LinkMsg::Fetch { sha256 })
    }

    /// Send `member` a piece of binary `sha256` (or, with `size` `None`, say there is none).
    pub(crate) fn send_chunk(
        &mut self,
        member: &str,
        sha256: &str,
        piece: Option<(u64, u64, Vec<u8>)>,
    ) -> bool {
        let sha256 = sha256.to_string();
        let msg = match piece {
            Some((offset, size, bytes)) => LinkMsg::Chunk {
                sha256,
                offset,
                size,
                bytes: serde_bytes::ByteBuf::from(bytes),
            },
            None => LinkMsg::NoBinary { sha256 },
        };
        self.tell_member(member, &msg)
    }

    /// Say `msg` about global names to `member`. False if there is no link.
    pub(crate) fn tell_names(&mut self, member: &str, msg: NameMsg) -> bool {
        let msg = match msg {
            NameMsg::Claim { request, name } => LinkMsg::Claim { request, name },
            NameMsg::Name {
                request,
                name,
                holder,
            } => LinkMsg::Name {
                request,
                name,
                holder,
            },
            NameMsg::Bind { name, address } => LinkMsg::Bind { name, address },
            NameMsg::Unbind { name, address } => LinkMsg::Unbind { name, address },
        };
        self.tell_member(member, &msg)
    }

    /// The convention's keeper of global names as this member sees it: the lowest-addressed
    /// live leader (this member, if it is a leader and the lowest). Worked out when the members
    /// change ([`refresh_keeper`](Self::refresh_keeper)), not at every turn.
    pub(crate) fn keeper(&self) -> &str {
        &self.keeper
    }

    /// Work out the keeper again (the members changed).
    pub(super) fn refresh_keeper(&mut self) {
        let me: SocketAddr = self.view.address().parse().expect("a bound address");
        let leaders = self.leaders.iter().copied();
        let live = leaders.filter(|l| *l == me || self.view.is_alive(&l.to_string()));
        let lowest = live.chain(self.leader.then_some(me)).min();
        self.keeper = lowest.map_or_else(|| self.view.address().to_string(), |l| l.to_string());
    }

    /// Bytes waiting to be written on the link to `member`, if there is one.
    pub(crate) fn link_backlog(&self, member: &str) -> Option<usize> {
        let token = self.link_of.get(member)?;
        self.links.get(token).map(|l| l.backlog())
    }

    /// What `member` says its `greenroom.os` and `greenroom.arch` are, if it is known.
    pub(crate) fn platform_of(&self, member: &str) -> Option<(String, String)> {
        let m = self.members().into_iter().find(|m| m.address == member)?;
        let get = |k: &str| m.capabilities.get(k).cloned().unwrap_or_default();
        Some((get("greenroom.os"), get("greenroom.arch")))
    }

    /// Answer `peer`'s `Create` number `request`.
    pub(crate) fn answer_create(
        &mut self,
        peer: &str,
        request: u64,
        result: std::result::Result<Address, String>,
    ) {
        self.carried = Some(Instant::now());
        let (address, error) = match result {
            Ok(a) => (Some(a), None),
            Err(mut e) => {
                e.truncate(4 * wire::MAX_TEXT);
                (None, Some(e))
            }
        };
        self.tell_member(
            peer,
            &LinkMsg::Created {
                request,
                address,
                error,
            },
        );
    }

    /// Tell `member` (where `child`'s parent is) that `child` has ended.
    pub(crate) fn child_gone(&mut self, member: &str, child: &Address) {
        self.tell_member(
            member,
            &LinkMsg::ChildGone {
                child: child.clone(),
            },
        );
    }

    /// The live members, other than this one, that meet `requirements`.
    pub(crate) fn members_meeting(
        &self,
        requirements: &crate::core::placement::Requirements,
    ) -> Vec<String> {
        self.members()
            .into_iter()
            .filter(|m| {
                m.state == MemberState::Alive
                    && m.address != self.address()
                    && crate::core::placement::unmet(&m.capabilities, requirements).is_empty()
            })
            .map(|m| m.address)
            .collect()
    }
}
