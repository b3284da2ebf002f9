//! What admins say to each other on a link (each a frame inside the encrypted stream).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// Check the sizes in what a peer said; says what is wrong.
pub(crate) fn check(msg: &LinkMsg) -> Result<(), String> {
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
        LinkMsg::Heartbeat | LinkMsg::Leaving => Ok(()),
    }
}
