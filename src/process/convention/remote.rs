//! Requests between admins: creating an actor on another member, its answer, and the end of an
//! actor whose parent is on another member. The convention checks who may say what; the admin
//! carries them out.

use super::*;
use wire::LinkMsg;

/// What a peer asked of this admin, or told it, for the admin to carry out.
#[derive(Debug)]
pub(crate) enum FromPeer {
    /// Create an actor here for `peer`, child of `parent` (an actor or program there).
    Create {
        peer: String,
        request: u64,
        type_name: String,
        parent: Address,
        args: Option<Vec<u8>>,
        requirements: BTreeMap<String, String>,
    },
    /// The answer to this admin's `Create` number `request`.
    Created {
        peer: String,
        request: u64,
        result: std::result::Result<Address, String>,
    },
    /// An actor this admin had created on `peer` has ended.
    ChildGone { child: Address },
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
            } => {
                if parent.member() != Some(peer) {
                    return false;
                }
                FromPeer::Create {
                    peer: peer.to_string(),
                    request,
                    type_name,
                    parent,
                    args: args.map(|a| a.into_vec()),
                    requirements,
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
    pub(crate) fn ask_create(
        &mut self,
        member: &str,
        request: u64,
        type_name: &str,
        parent: &Address,
        args: Option<&[u8]>,
        requirements: &BTreeMap<String, String>,
    ) -> bool {
        let msg = LinkMsg::Create {
            request,
            type_name: type_name.to_string(),
            parent: parent.clone(),
            args: args.map(|a| serde_bytes::ByteBuf::from(a.to_vec())),
            requirements: requirements.clone(),
        };
        self.tell_member(member, &msg)
    }

    /// Answer `peer`'s `Create` number `request`.
    pub(crate) fn answer_create(
        &mut self,
        peer: &str,
        request: u64,
        result: std::result::Result<Address, String>,
    ) {
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
