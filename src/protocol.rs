//! The messages exchanged on greenroom's sockets. `docs/PROTOCOL.md` describes them for
//! implementers in other languages; this module is the source of truth.
//!
//! Two kinds of connection exist, and on both the first frame names the protocol version:
//! - **message sockets** (`DIR/ID.sock`): a [`SenderHello`], then one frame per message (the
//!   [`Message`] map); one way, no reply.
//! - **control connections** (`DIR/admin.sock`, and a socket pair between the admin and each
//!   actor process): the client says [`Request::Hello`], then sends requests; the admin answers
//!   each client request with one [`Response`], in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::message::{ExitReason, Message};

mod answers;
mod status;

pub use status::{ActorInfo, Counters, ElsewhereInfo, MemberInfo, MemberState, SystemStatus};

/// The version of the wire protocol this build speaks. A peer that names another version in its
/// first frame is refused.
pub const PROTOCOL_VERSION: u32 = 3;

/// The first frame on a message socket: which protocol, who is sending, and which connection of
/// theirs this is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SenderHello {
    /// Must be [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The sender; every message on this connection is from it.
    pub from: Address,
    /// A number the sender picks to tell its connections apart (not zero); the receiver's
    /// ledger page slot for this connection carries it.
    pub conn: u64,
    /// True if the sender counts its own sends in a ledger page of its own (greenroom's
    /// processes do). The receiver counts a sender's messages as sent when it reads them
    /// otherwise, so that the system's ledger still adds up.
    #[serde(default)]
    pub ledger: bool,
    /// The receiver, on a stream to the gateway (`DIR/gateway.sock`) for another member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Address>,
}

/// A message as received: who sent it, to whom, and the message. On the wire only the message
/// travels; the sender is named once per connection, by its [`SenderHello`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender, to which replies go.
    pub from: Address,
    /// The receiver.
    pub to: Address,
    /// The message.
    pub msg: Message,
}

/// What a client says first on `admin.sock`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Role {
    /// A program or the CLI that sends and receives messages from outside the actors.
    Client {
        /// The client's pid, for status and logs.
        pid: u32,
        /// If true, the admin shuts down when this connection closes (an admin that the
        /// program started for itself).
        owner: bool,
    },
    /// An actor process, on the control socket the admin handed it. Not answered.
    Actor {
        /// The actor process's pid.
        pid: u32,
    },
}

/// A request on a control connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// The first request on every control connection. A client on `admin.sock` is answered
    /// with [`Response::Welcome`]; an actor is not answered.
    Hello {
        /// Must be [`PROTOCOL_VERSION`].
        version: u32,
        /// Who is connecting.
        role: Role,
    },
    /// Make the admin know which actor types a binary provides; answered with
    /// [`Response::Loaded`].
    Load {
        /// Absolute path of the binary.
        path: String,
        /// The actor type names it provides.
        types: Vec<String>,
        /// What types require of a system (see `Actor::requires`), by type; absent for none.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        requires: BTreeMap<String, BTreeMap<String, String>>,
    },
    /// Start an actor; answered with [`Response::Created`] once its socket exists.
    Create {
        /// The actor type.
        type_name: String,
        /// The binary to run it from; if absent the admin uses the binary last loaded for the
        /// type.
        binary: Option<String>,
        /// The actor's logical parent, which receives its `ChildExited`.
        parent: Address,
        /// A system-wide name: if an actor already has it, its address is returned and nothing
        /// is created.
        #[serde(default)]
        name: Option<String>,
        /// Start arguments (MessagePack) for the new actor, handed to it in `Assign`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<serde_bytes::ByteBuf>,
        /// Capabilities the system must have (each key with exactly that value); else the
        /// answer is an `Error` of kind `NoCompatibleSystem`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        requirements: BTreeMap<String, String>,
    },
    /// Make the sending actor the dead-letter handler (`on`), or stop; answered with
    /// [`Response::Ok`].
    DeadLetters {
        /// Whether to handle dead letters.
        on: bool,
    },
    /// A message could not be delivered because its target is not running. Not answered; the
    /// admin passes it to the dead-letter handler as a `DeadEnvelope`, if there is one.
    DeadLetter {
        /// The address the message was sent to.
        target: Address,
        /// Who sent it.
        sender: Address,
        /// The message.
        message: Message,
        /// If the sender kept a copy in its out ring, which one: `[conn, seq]`, its connection's
        /// number and the message's number on it (so that the admin never returns that copy a
        /// second time if the sender dies). Optional; absent means none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<[u64; 2]>,
        /// If the message is one the sender had taken into its own queue ring and now returns
        /// (it exits, or closes its endpoint), the entry's position there (so that the admin
        /// never returns it a second time if the sender dies before settling it). Optional.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queued: Option<u64>,
    },
    /// List the live actors; answered with [`Response::Status`].
    Status,
    /// Stop every actor and then the admin; answered with [`Response::Ok`] when done.
    Shutdown,
    /// Sent by an actor process on its control connection just before it exits, so that the
    /// admin can tell a requested exit or a failed start from any other exit.
    Exiting {
        /// Why the actor is exiting.
        reason: ExitReason,
    },
    /// List the members of the convention this system belongs to; answered with
    /// [`Response::Members`], whose list is empty if the system belongs to none.
    Members,
    /// Start (`on`) or stop sending `ConventionUpdate`s to the requester (an actor, or a
    /// client's endpoint); answered with [`Response::Ok`].
    WatchConvention {
        /// Whether to watch.
        on: bool,
    },
    /// Set (`value`) or remove (no `value`) one of this system's capabilities; answered with
    /// [`Response::Ok`]. Names starting with `greenroom.` are greenroom's own and read-only.
    SetCapability {
        /// The capability's name.
        key: String,
        /// Its new value; absent removes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
}

/// The admin's answer to a [`Request`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Hello`: the client's own address (its message socket must be bound by the
    /// client at `DIR/ID.sock`) and the system's frame limit.
    Welcome {
        /// The address assigned to the client.
        endpoint: Address,
        /// The largest frame the system's processes accept.
        max_frame: u64,
    },
    /// Answer to `Load`.
    Loaded {
        /// The types now known from that binary.
        types: Vec<String>,
    },
    /// Answer to `Create`.
    Created {
        /// The new actor's address; messages may be sent to it at once.
        address: Address,
    },
    /// Answer to `Status`.
    Status(SystemStatus),
    /// Answer to `Members`: every member ever seen, the answering one included, by address
    /// (empty if the system is in no convention).
    Members {
        /// The members.
        members: Vec<MemberInfo>,
    },
    /// Sent unasked by the admin to a *spare* process (one started ahead of need, with its
    /// address and socket already set up): become an actor of this type.
    Assign {
        /// The actor type to run.
        type_name: String,
        /// The actor's logical parent.
        parent: Address,
        /// Its start arguments (MessagePack), if its creator gave any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<serde_bytes::ByteBuf>,
    },
    /// Success with nothing to report.
    Ok,
    /// The request failed; the text says why and what to do.
    Error {
        /// What the `greenroom::Error` kind was (`UnknownType`, `ShuttingDown`, `BadRequest`, ...).
        kind: String,
        /// A message for people.
        message: String,
        /// With kind `UnknownType`: its particulars, so that a client can rebuild the error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unknown_type: Option<UnknownTypeDetail>,
        /// With kind `NotActorBinary`: its particulars.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_actor_binary: Option<NotActorBinaryDetail>,
        /// With kind `NoCompatibleSystem`: each unmet requirement, `KEY=VALUE` and what the
        /// system has instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unmet: Option<Vec<String>>,
    },
}

/// The particulars of a `NotActorBinary` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotActorBinaryDetail {
    /// The path that was refused.
    pub path: String,
    /// Why it was refused.
    pub why: String,
}

/// The particulars of an `UnknownType` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownTypeDetail {
    /// The type asked for.
    pub type_name: String,
    /// The types known: those of `binary` if the request named one, else of every loaded binary.
    pub known: Vec<String>,
    /// The binary the request named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

// ---- the launch contract: how the admin starts an actor process ----

/// The type name on the command line of a spare process: it waits for [`Response::Assign`].
pub(crate) const SPARE: &str = "?";

/// How an actor process was told who it is (its command line after `--greenroom-actor`).
pub(crate) struct ActorArgs {
    pub(crate) type_name: String,
    pub(crate) me: Address,
    pub(crate) parent: Address,
    pub(crate) listen_fd: i32,
    pub(crate) control_fd: i32,
    pub(crate) ledger_fd: i32,
    pub(crate) max_frame: usize,
    /// Start arguments, from `Assign` (never on the command line).
    pub(crate) start_args: Option<Vec<u8>>,
}

impl ActorArgs {
    pub(crate) fn to_argv(&self) -> Vec<String> {
        vec![
            "--greenroom-actor".into(),
            self.type_name.clone(),
            self.me.to_string(),
            self.parent.to_string(),
            self.listen_fd.to_string(),
            self.control_fd.to_string(),
            self.ledger_fd.to_string(),
            self.max_frame.to_string(),
        ]
    }

    pub(crate) fn parse(args: &[String]) -> Option<ActorArgs> {
        let [
            type_name,
            me,
            parent,
            listen_fd,
            control_fd,
            ledger_fd,
            max_frame,
        ] = args
        else {
            return None;
        };
        Some(ActorArgs {
            type_name: type_name.clone(),
            me: me.parse().ok()?,
            parent: parent.parse().ok()?,
            listen_fd: listen_fd.parse().ok()?,
            control_fd: control_fd.parse().ok()?,
            ledger_fd: ledger_fd.parse().ok()?,
            max_frame: max_frame.parse().ok()?,
            start_args: None,
        })
    }
}
