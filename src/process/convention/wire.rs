//! What admins say to each other on a link (each a frame inside the encrypted stream).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;

/// The version of the link's messages; a `Hello` of another version ends the link.
pub(crate) const LINK_VERSION: u32 = 1;

/// One member as an admin knows it first-hand (itself, or a peer it has a live link with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Heard {
    /// Where it listens: `HOST:PORT`, its name in the convention.
    pub(crate) address: String,
    /// Its system's name.
    pub(crate) system: String,
    /// Its capabilities.
    pub(crate) capabilities: BTreeMap<String, String>,
    /// How long ago the sender last heard from it, in ms (0 for the sender itself).
    pub(crate) ago_ms: u64,
}

/// A message on an admin-to-admin link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LinkMsg {
    /// The first frame each way: who the sender is.
    Hello {
        version: u32,
        system: String,
        address: String,
        capabilities: BTreeMap<String, String>,
    },
    /// The members the sender knows first-hand, itself first. Sent when that changes, and every
    /// second.
    View { members: Vec<Heard> },
    /// Nothing new: the sender is alive (sent when nothing else was, every 200 ms).
    Heartbeat,
    /// The sender is shutting down.
    Leaving,
    /// A stream of messages from `from` (an actor or program on the sender's member) to `to`
    /// (on the receiver's) opens, numbered `stream` by the sender.
    Open {
        stream: u64,
        from: Address,
        to: Address,
    },
    /// Messages of stream `stream`, in order: whole message frames (each a 4-byte big-endian
    /// length and the message), as the local sender wrote them.
    Data {
        stream: u64,
        #[serde(with = "serde_bytes")]
        frames: Vec<u8>,
    },
    /// The receiver has taken stream `stream`'s messages up to number `taken` (from 1): its
    /// member keeps them from now on, and the sender's copies can go.
    Took { stream: u64, taken: u64 },
    /// Stream `stream` is over on the receiver's side (the receiver ended, refused the stream,
    /// never existed, or the sender closed it and everything was taken): `taken` is final, and
    /// what came after it was never taken.
    End { stream: u64, taken: u64 },
    /// The sender closed stream `stream`: nothing follows.
    Close { stream: u64 },
    /// Create an actor of `type_name` here, child of `parent` (on the sender's member), with
    /// `args` for its constructor and `requirements` this member must meet; answered by
    /// `Created` with the same `request`.
    Create {
        request: u64,
        type_name: String,
        parent: Address,
        args: Option<serde_bytes::ByteBuf>,
        requirements: BTreeMap<String, String>,
        /// The SHA-256 (hex) of the sender's binary for the type, if it has one: the receiver
        /// fetches it (`Fetch`) if it has no binary loaded for the type.
        binary: Option<String>,
    },
    /// Send the binary whose SHA-256 (hex) is `sha256`, in `Chunk`s (or say `NoBinary`).
    Fetch { sha256: String },
    /// Bytes `offset..offset + bytes.len()` of the binary `sha256`, `size` bytes in all.
    Chunk {
        sha256: String,
        offset: u64,
        size: u64,
        bytes: serde_bytes::ByteBuf,
    },
    /// The sender has no binary `sha256` (any more).
    NoBinary { sha256: String },
    /// To the convention's keeper of names (its lowest-addressed live leader): who holds the
    /// global name `name`? Answered by `Name`; a name nobody holds is reserved for the sender,
    /// which creates its actor and says `Bind` (or `Unbind` if it could not).
    Claim { request: u64, name: String },
    /// The answer to `Claim` number `request`: `holder`, or none (the name is the asker's to
    /// take).
    Name {
        request: u64,
        name: String,
        holder: Option<Address>,
    },
    /// `name` is held by `address` (on the sender's member): after a `Claim`, or to a new
    /// keeper of names.
    Bind { name: String, address: Address },
    /// The sender gives up `name`: its holder `address` has ended, or (none) the create it
    /// reserved the name for failed.
    Unbind {
        name: String,
        address: Option<Address>,
    },
    /// The answer to `Create`: the new actor's address, or why there is none.
    Created {
        request: u64,
        address: Option<Address>,
        error: Option<String>,
    },
    /// An actor the receiver created here (its parent is on the receiver's member) has ended;
    /// its parent has been sent `ChildExited`.
    ChildGone { child: Address },
}

/// Limits on what a peer may claim, checked on every `Hello` and `View`.
pub(crate) const MAX_MEMBERS: usize = 4096;
pub(crate) const MAX_CAPABILITIES: usize = 256;
pub(crate) const MAX_TEXT: usize = 1024;

/// A text of 1 to [`MAX_TEXT`] bytes; else what it is.
fn text(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_TEXT {
        Err(format!("{what} of {} bytes", s.len()))
    } else {
        Ok(())
    }
}

/// Capabilities a member may have: at most [`MAX_CAPABILITIES`], names of 1 to [`MAX_TEXT`]
/// bytes, values of at most [`MAX_TEXT`]. Checked on what peers say and on a member's own, so
/// that a member never says what its peers would refuse.
pub(crate) fn check_capabilities(c: &BTreeMap<String, String>) -> Result<(), String> {
    if c.len() > MAX_CAPABILITIES {
        return Err(format!(
            "{} capabilities (at most {MAX_CAPABILITIES})",
            c.len()
        ));
    }
    for (k, v) in c {
        text("a capability name", k)?;
        if v.len() > MAX_TEXT {
            return Err(format!(
                "a capability value of {} bytes (at most {MAX_TEXT})",
                v.len()
            ));
        }
    }
    Ok(())
}

/// The largest piece of a binary in one `Chunk`.
pub(crate) const CHUNK: usize = 60 * 1024;
/// The largest binary a member fetches.
pub(crate) const MAX_BINARY: u64 = 1 << 30;

/// True if `s` is a SHA-256 written as 64 lowercase hex digits.
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How many message frames `bytes` holds, if it is nothing but whole frames of at most `limit`
/// bytes each; else what is wrong.
pub(crate) fn whole_frames(bytes: &[u8], limit: usize) -> Result<u64, String> {
    let (mut at, mut count) = (0, 0);
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 4) else {
            return Err("messages with a cut-off length".into());
        };
        let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
        if len > limit {
            return Err(format!("a message of {len} bytes (the limit is {limit})"));
        }
        at += 4 + len;
        count += 1;
    }
    if at != bytes.len() {
        return Err("a message cut short".into());
    }
    Ok(count)
}

/// Check the sizes in what a peer said (messages up to `limit` bytes); says what is wrong.
pub(crate) fn check(msg: &LinkMsg, limit: usize) -> Result<(), String> {
    let caps = check_capabilities;
    match msg {
        LinkMsg::Hello {
            system,
            address,
            capabilities,
            ..
        } => {
            text("a system name", system)?;
            text("an address", address)?;
            caps(capabilities)
        }
        LinkMsg::View { members } => {
            if members.len() > MAX_MEMBERS {
                return Err(format!("a view of {} members", members.len()));
            }
            for m in members {
                text("a system name", &m.system)?;
                text("an address", &m.address)?;
                caps(&m.capabilities)?;
            }
            Ok(())
        }
        LinkMsg::Data { frames, .. } => whole_frames(frames, limit).map(|_| ()),
        LinkMsg::Create {
            type_name,
            args,
            requirements,
            binary,
            ..
        } => {
            text("a type name", type_name)?;
            if binary.as_ref().is_some_and(|h| !is_sha256(h)) {
                return Err("a binary named by something other than a SHA-256 in hex".into());
            }
            if args.as_ref().is_some_and(|a| a.len() > limit) {
                return Err("a create whose arguments are over the frame limit".into());
            }
            caps(requirements)
        }
        LinkMsg::Fetch { sha256: h } | LinkMsg::NoBinary { sha256: h } if !is_sha256(h) => {
            Err("a binary named by something other than a SHA-256 in hex".into())
        }
        LinkMsg::Chunk {
            sha256,
            offset,
            size,
            bytes,
        } => {
            if !is_sha256(sha256) {
                return Err("a binary named by something other than a SHA-256 in hex".into());
            }
            if bytes.len() > CHUNK || *size > MAX_BINARY || offset + bytes.len() as u64 > *size {
                return Err(format!(
                    "a chunk of {} bytes at {offset} of a binary of {size}",
                    bytes.len()
                ));
            }
            Ok(())
        }
        LinkMsg::Created { error, .. } => match error {
            Some(e) if e.len() > 4 * MAX_TEXT => Err(format!("an error of {} bytes", e.len())),
            _ => Ok(()),
        },
        LinkMsg::Heartbeat
        | LinkMsg::Leaving
        | LinkMsg::Open { .. }
        | LinkMsg::Took { .. }
        | LinkMsg::End { .. }
        | LinkMsg::Close { .. }
        | LinkMsg::ChildGone { .. }
        | LinkMsg::Fetch { .. }
        | LinkMsg::NoBinary { .. } => Ok(()),
        LinkMsg::Claim { name, .. }
        | LinkMsg::Name { name, .. }
        | LinkMsg::Bind { name, .. }
        | LinkMsg::Unbind { name, .. } => text("a global name", name),
    }
}
