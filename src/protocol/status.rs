//! What the admin reports about its system and its convention.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;

/// Whether a member of a convention is reachable.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// It, or a link that vouches for it, has been heard from recently.
    Alive,
    /// It was a member, and no live link vouches for it any more.
    Gone,
}

/// One member of a convention, as reported by [`Response::Members`](super::Response::Members).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberInfo {
    /// Where its admin listens (`HOST:PORT`): its name in the convention.
    pub address: String,
    /// Its system's name.
    pub system: String,
    /// Its capabilities (greenroom's own start with `greenroom.`).
    pub capabilities: BTreeMap<String, String>,
    /// Whether it is reachable.
    pub state: MemberState,
    /// How long ago it was last heard from, in ms (0 for the member answering).
    pub last_heard_ms: u64,
}

/// One live actor, as reported by [`Response::Status`](super::Response::Status).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActorInfo {
    /// Its address.
    pub address: Address,
    /// Its type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its process id.
    pub pid: u32,
    /// Its logical parent.
    pub parent: Address,
}

/// What the admin knows about its system.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SystemStatus {
    /// Every live actor, in creation order.
    pub actors: Vec<ActorInfo>,
    /// Global names and the actors that hold them.
    #[serde(default)]
    pub names: BTreeMap<String, Address>,
    /// The actor that receives dead letters, if any.
    #[serde(default)]
    pub dead_letter_handler: Option<Address>,
    /// Loaded binaries and the actor types each provides.
    #[serde(default)]
    pub binaries: BTreeMap<String, Vec<String>>,
    /// Counts since the admin started.
    #[serde(default)]
    pub counters: Counters,
    /// The system's accounting of messages: sent, and handled, poisoned, dead-lettered,
    /// dropped or still in flight.
    #[serde(default)]
    pub ledger: crate::Ledger,
    /// The system's address in its convention (`HOST:PORT`), if it takes part in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convention: Option<String>,
    /// Actors its actors and programs created on other members of the convention, still
    /// running as far as it knows (their addresses name their members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<ElsewhereInfo>,
}

/// An actor created on another member for one of this system's actors or programs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ElsewhereInfo {
    /// Its address (naming the member it runs on).
    pub address: Address,
    /// Its parent, here.
    pub parent: Address,
}

/// Counts kept by the admin since it started.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// Actors created.
    pub created: u64,
    /// Actors that have ended (for any reason).
    pub exited: u64,
    /// Of those, how many were killed by a signal.
    pub killed: u64,
    /// Of those, how many failed to start.
    pub failed_starts: u64,
    /// Creates served by a spare process.
    pub spares_used: u64,
    /// Dead letters passed to a handler.
    pub dead_letters_delivered: u64,
    /// Dead letters dropped (no handler, or about `ChildExited`/`DeadEnvelope`).
    pub dead_letters_dropped: u64,
    /// Connections to the convention port that were refused: no secret, garbage, too slow, or
    /// too many at once.
    #[serde(default)]
    pub links_refused: u64,
}
