//! Messages: a type name and a MessagePack body, plus the system messages the framework sends.
//!
//! A [`Message`] is what an actor receives. Its type name is what [`Message::is`] tests and its
//! body is what [`Message::decode`] turns into any `serde` type. Values sent with
//! [`Context::send`](crate::Context::send) or [`ActorSystem::tell`](crate::ActorSystem::tell) are
//! named after their Rust type without its module path (`Greeting`, `String`, `Vec<u32>`), so a
//! program in another language — or the CLI's `--type` flag — can produce them.
//!
//! The names `ExitRequest`, `ChildExited` and `Poison` are reserved for the system messages
//! defined here.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasherDefault;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::error::{Error, Result};
use crate::intern::Fnv;

/// One message: its type name and its MessagePack body.
///
/// Two messages are equal when their types and bodies are; the request they answer (see
/// [`ask`](crate::ActorSystem::ask)) is not part of the comparison, nor of the serialised form
/// of a message inside another.
#[derive(Clone, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "type")]
    type_name: Cow<'static, str>,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    /// The ask this message belongs to: set by `ask` on the request, carried by everything an
    /// actor sends while handling it, and matched by `ask` on the way back.
    #[serde(skip)]
    pub(crate) ask: Option<u64>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.type_name == other.type_name && self.body == other.body
    }
}

impl Eq for Message {}

impl Message {
    /// Encode `value` as a message named after its type.
    ///
    /// A value that is already a `Message` is taken as it is, not wrapped in a message of
    /// type `Message` (which no actor would recognise): `tell(&to, &msg)` sends `msg`.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Message> {
        if std::any::type_name::<T>().trim_start_matches('&') == std::any::type_name::<Message>() {
            // Its serialised form is the wire form, `{"type": str, "body": bin}`.
            let wire = rmp_serde::to_vec_named(value).map_err(|e| Error::Encode(Box::new(e)))?;
            return Message::decode_frame_body(&wire);
        }
        Message::encode(Cow::Borrowed(type_name_of::<T>()), value)
    }

    /// Encode `value` as a message with an explicit type name.
    pub fn with_type<T: Serialize + ?Sized>(type_name: &str, value: &T) -> Result<Message> {
        Message::encode(Cow::Owned(type_name.to_string()), value)
    }

    fn encode<T: Serialize + ?Sized>(type_name: Cow<'static, str>, value: &T) -> Result<Message> {
        let body = rmp_serde::to_vec_named(value).map_err(|e| Error::Encode(Box::new(e)))?;
        Ok(Message {
            type_name,
            body,
            ask: None,
        })
    }

    /// A message from an already-encoded MessagePack body.
    pub fn from_parts(type_name: impl Into<String>, body: Vec<u8>) -> Message {
        Message {
            type_name: Cow::Owned(type_name.into()),
            body,
            ask: None,
        }
    }

    /// Append this message as one frame: `{"type": str, "body": bin}` in MessagePack, the same
    /// bytes `wire::encode_into` writes, without serde's generic machinery (this runs for every
    /// message of the simple base).
    pub(crate) fn encode_frame_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        // Writing to a Vec cannot fail.
        let _ = rmp::encode::write_map_len(out, 2 + self.ask.is_some() as u32);
        let _ = rmp::encode::write_str(out, "type");
        let _ = rmp::encode::write_str(out, &self.type_name);
        let _ = rmp::encode::write_str(out, "body");
        let _ = rmp::encode::write_bin(out, &self.body);
        if let Some(ask) = self.ask {
            let _ = rmp::encode::write_str(out, "ask");
            let _ = rmp::encode::write_uint(out, ask);
        }
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// The length of this message's frame body, as [`encode_frame_into`](Self::encode_frame_into)
    /// writes it (without the 4-byte length prefix).
    pub(crate) fn frame_len(&self) -> usize {
        fn str_head(n: usize) -> usize {
            match n {
                0..32 => 1,
                32..256 => 2,
                256..65536 => 3,
                _ => 5,
            }
        }
        fn bin_head(n: usize) -> usize {
            match n {
                0..256 => 2,
                256..65536 => 3,
                _ => 5,
            }
        }
        fn uint_len(n: u64) -> usize {
            match n {
                0..128 => 1,
                128..256 => 2,
                256..65536 => 3,
                65536..=0xffff_ffff => 5,
                _ => 9,
            }
        }
        let (t, b) = (self.type_name.len(), self.body.len());
        let ask = self.ask.map_or(0, |a| 4 + uint_len(a));
        1 + 5 + str_head(t) + t + 5 + bin_head(b) + b + ask
    }

    /// Decode a message frame body strictly: a map with the string keys `type` (a string) and
    /// `body` (bytes), each once, and optionally `ask` (an unsigned integer); other keys are
    /// skipped (a newer sender may add fields), and nothing may follow the map. Any other shape
    /// is refused.
    pub(crate) fn decode_frame_body(frame: &[u8]) -> Result<Message> {
        let (type_name, body, ask) = read_message_map(frame).map_err(|why| Error::Decode {
            what: "a message frame".into(),
            why,
        })?;
        let mut msg = Message::decoded(type_name, body);
        msg.ask = ask;
        Ok(msg)
    }

    /// A message decoded off the wire.
    pub(crate) fn decoded(type_name: &str, body: &[u8]) -> Message {
        Message {
            type_name: intern_type_name(type_name),
            body: body.to_vec(),
            ask: None,
        }
    }

    /// The message's type name.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The MessagePack body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// True if the message was sent as a `T` (its type name is `T`'s).
    pub fn is<T: ?Sized>(&self) -> bool {
        self.type_name == type_name_of::<T>()
    }

    /// Decode the body as a `T`, whatever the type name says.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        rmp_serde::from_slice(&self.body).map_err(|e| Error::Decode {
            what: format!(
                "a {} message as {}",
                self.type_name,
                std::any::type_name::<T>()
            ),
            why: e.to_string(),
        })
    }

    /// Decode the body as a `T` only if the message was sent as a `T`.
    ///
    /// A message sent as a `T` whose body does not decode as one gives `None` here, and makes
    /// the handler that asked fail as if it had returned the decode error (so it is retried
    /// once, then returned to its sender as [`Poison`]): a message of the right name and the
    /// wrong shape never vanishes in silence.
    pub fn get<T: DeserializeOwned>(&self) -> Option<T> {
        if !self.is::<T>() {
            return None;
        }
        match self.decode() {
            Ok(value) => Some(value),
            Err(e) => {
                UNDECODED.with(|u| *u.borrow_mut() = Some((self.addr(), e.to_string())));
                None
            }
        }
    }

    fn addr(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Why [`get`](Self::get) could not decode this message, if it could not since the last
    /// call (which forgets it).
    pub(crate) fn take_undecoded(&self) -> Option<String> {
        UNDECODED.with(|u| {
            let mut u = u.borrow_mut();
            match u.take() {
                Some((addr, why)) if addr == self.addr() => Some(why),
                _ => None,
            }
        })
    }

    /// True for the framework's own messages (`ExitRequest`, `ChildExited`, `Poison`).
    pub fn is_system(&self) -> bool {
        matches!(
            &*self.type_name,
            "greenroom.ExitRequest"
                | "greenroom.ChildExited"
                | "greenroom.Poison"
                | "greenroom.Wakeup"
                | "greenroom.DeadEnvelope"
                | "greenroom.StatusRequest"
        )
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message({}, {} bytes)", self.type_name, self.body.len())
    }
}

thread_local! {
    /// The last [`Message::get`] on this thread whose type matched and whose body did not
    /// decode: the message (by address) and why.
    static UNDECODED: std::cell::RefCell<Option<(usize, String)>> =
        const { std::cell::RefCell::new(None) };
}

/// The `type`, `body` and `ask` of a message frame, read without copying; the error says what
/// is wrong.
fn read_message_map(frame: &[u8]) -> std::result::Result<(&str, &[u8], Option<u64>), String> {
    let mut rest = frame;
    let fields = rmp::decode::read_map_len(&mut rest)
        .map_err(|_| "expected a map with the keys \"type\" and \"body\"".to_string())?;
    let (mut type_name, mut body, mut ask) = (None, None, None);
    for _ in 0..fields {
        let (key, after) = rmp::decode::read_str_from_slice(rest)
            .map_err(|_| "map keys must be strings".to_string())?;
        rest = after;
        match key {
            "type" if type_name.is_none() => {
                let (t, after) = rmp::decode::read_str_from_slice(rest)
                    .map_err(|_| "\"type\" must be a string".to_string())?;
                type_name = Some(t);
                rest = after;
            }
            "body" if body.is_none() => {
                let len = rmp::decode::read_bin_len(&mut rest)
                    .map_err(|_| "\"body\" must be bytes (bin)".to_string())?
                    as usize;
                body = Some(rest.get(..len).ok_or("the frame ends inside \"body\"")?);
                rest = &rest[len..];
            }
            "ask" if ask.is_none() => {
                ask = Some(
                    rmp::decode::read_int::<u64, _>(&mut rest)
                        .map_err(|_| "\"ask\" must be an unsigned integer".to_string())?,
                );
            }
            "type" | "body" | "ask" => return Err(format!("\"{key}\" appears twice")),
            _ => crate::wire::strict::skip(&mut rest).map_err(|e| e.message)?,
        }
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the message", rest.len()));
    }
    match (type_name, body) {
        (Some(t), Some(b)) => Ok((t, b, ask)),
        _ => Err("a message needs both \"type\" and \"body\"".into()),
    }
}

/// The name greenroom gives to messages of type `T`: its Rust type name without module paths
/// or references, with `str` written `String` (`&str` and `String` encode alike). greenroom's own
/// messages are named in a namespace of their own, `greenroom.` (`greenroom.ExitRequest`,
/// `greenroom.Poison`, ...), so that a type of yours named `Poison` is just another message.
///
/// Each type's name is worked out once per thread and then served from a cache, because this
/// runs for every message sent and every [`Message::is`] test.
pub fn type_name_of<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let key = (full.as_ptr() as usize, full.len());
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(&name) = names.by_type.get(&key) {
            return name;
        }
        let short = short_type_name(full);
        let name = if let Some(given) = given_name(full) {
            given.to_string()
        } else if full.starts_with("greenroom::") && RESERVED.contains(&short.as_str()) {
            format!("{SYSTEM_PREFIX}{short}")
        } else {
            short
        };
        let name: &'static str = Box::leak(name.into_boxed_str());
        names.by_type.insert(key, name);
        names.known.insert(name);
        name
    })
}

/// Names given to message types with [`message_names!`](crate::message_names), by the types'
/// full Rust names.
static GIVEN: std::sync::RwLock<Vec<(&str, &str)>> = std::sync::RwLock::new(Vec::new());

fn given_name(full: &str) -> Option<&'static str> {
    let given = GIVEN.read().unwrap_or_else(|e| e.into_inner());
    given.iter().find(|(t, _)| *t == full).map(|&(_, n)| n)
}

/// Give message types names of your choosing. Called by [`message_names!`](crate::message_names).
#[doc(hidden)]
pub fn name_messages(pairs: &[(&'static str, &'static str)]) {
    let mut given = GIVEN.write().unwrap_or_else(|e| e.into_inner());
    for &(full, name) in pairs {
        assert!(
            !name.is_empty()
                && !name.starts_with(SYSTEM_PREFIX)
                && !name.contains(char::is_whitespace),
            "greenroom::message_names!: {name:?} (for {full}) is not a message name: it must be non-empty, without spaces, and not start with {SYSTEM_PREFIX:?}"
        );
        if !given.iter().any(|(t, _)| *t == full) {
            given.push((full, name));
        }
    }
}

/// The namespace of greenroom's own message names.
pub(crate) const SYSTEM_PREFIX: &str = "greenroom.";

/// greenroom's own message types: their names take [`SYSTEM_PREFIX`].
const RESERVED: &[&str] = &[
    "ExitRequest",
    "ChildExited",
    "Poison",
    "Wakeup",
    "DeadEnvelope",
    "StatusRequest",
    "ActorStatus",
    "TroupeTask",
    "TroupeDone",
    "TransientTimeout",
];

/// Per thread: each Rust type's message name, and every such name (so that a decoded message
/// whose name is one of them can borrow it instead of allocating).
#[derive(Default)]
struct Names {
    by_type: HashMap<(usize, usize), &'static str, BuildHasherDefault<Fnv>>,
    known: HashSet<&'static str, BuildHasherDefault<Fnv>>,
}

thread_local! {
    static NAMES: RefCell<Names> = RefCell::new(Names::default());
}

/// A type name read off the wire: borrowed if this thread already knows it, else owned.
pub(crate) fn intern_type_name(name: &str) -> Cow<'static, str> {
    NAMES.with(|names| match names.borrow().known.get(name) {
        Some(&known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_string()),
    })
}

fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else {
            out.push_str(if word == "str" { "String" } else { &word });
            word.clear();
            if c != '&' {
                out.push(c);
            }
        }
    }
    out.push_str(if word == "str" { "String" } else { &word });
    out.trim_start_matches("mut ").to_string()
}

/// Asks an actor to exit. Its handler sees it first; then (if `recursive`, the default) its
/// children are asked to exit too, then it stops and its parent receives [`ChildExited`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRequest {
    /// Ask the actor's children to exit as well. `ExitRequest::default()` does.
    #[serde(default = "yes")]
    pub recursive: bool,
}

fn yes() -> bool {
    true
}

impl Default for ExitRequest {
    fn default() -> ExitRequest {
        ExitRequest { recursive: true }
    }
}

impl ExitRequest {
    /// An exit request that leaves the actor's children running.
    pub fn non_recursive() -> ExitRequest {
        ExitRequest { recursive: false }
    }
}

/// Asks an actor about itself. The framework answers with [`ActorStatus`]; the actor's handler
/// never sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {}

/// The framework's answer to [`StatusRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorStatus {
    /// The actor's address.
    pub address: Address,
    /// Its type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its process id (the program's own on the simple base).
    pub pid: u32,
    /// Its parent.
    pub parent: Address,
    /// The children it created that have not exited (as far as it has heard).
    pub children: Vec<Address>,
    /// Timers set with `wakeup_after` that have not fired.
    pub pending_timers: usize,
    /// Messages its handler has been given.
    pub handled: u64,
    /// This actor's part of the system's accounting: what it sent, and what became of the
    /// messages sent to it that it settled (handled, or poisoned back).
    #[serde(default)]
    pub ledger: crate::Ledger,
}

/// Delivered to an actor by itself when a timer set with
/// [`Context::wakeup_after`](crate::Context::wakeup_after) expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wakeup {
    /// The payload given when the timer was set.
    pub payload: Message,
}

/// Delivered to the system's dead-letter handler (see
/// [`Context::handle_dead_letters`](crate::Context::handle_dead_letters)) for a message whose
/// target is not running: it has exited, failed to start, or never existed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadEnvelope {
    /// The address the message was sent to.
    pub target: Address,
    /// Who sent it.
    pub sender: Address,
    /// The message.
    pub message: Message,
}

/// Why an actor's process ended, built from what the admin learned when it reaped it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// It handled an [`ExitRequest`] and exited.
    Requested,
    /// Its process exited on its own with this code (for example `std::process::exit`).
    Exited {
        /// The exit code.
        code: i32,
    },
    /// Its process was killed by a signal (SIGKILL, SIGSEGV, SIGABRT, ...).
    Killed {
        /// The signal number.
        signal: i32,
        /// The signal's name, such as `SIGKILL`.
        name: String,
    },
    /// It never ran: the binary could not start it (unknown type, constructor panic, ...).
    FailedToStart {
        /// What went wrong.
        error: String,
    },
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Requested => write!(f, "exited on request"),
            ExitReason::Exited { code } => write!(f, "exited with code {code}"),
            ExitReason::Killed { name, signal } => write!(f, "killed by {name} ({signal})"),
            ExitReason::FailedToStart { error } => write!(f, "failed to start: {error}"),
        }
    }
}

/// Sent to an actor's parent when the actor has ended, for any reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildExited {
    /// The child that ended.
    pub child: Address,
    /// Why.
    pub reason: ExitReason,
}

/// Sent back to the sender of a message that could not be handled: its handler failed twice
/// in a row on it, its actor could not start, or its actor's process died while handling it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poison {
    /// The message that could not be handled.
    pub original: Message,
    /// The panic text or error of the last failure, or what happened to the actor.
    pub details: String,
    /// True if the actor's process died while handling the message: its handler may have run
    /// (partly or to the end) before the process ended. Exactly-once is impossible without
    /// persistence; this says when it could not be kept.
    #[serde(default)]
    pub possibly_handled: bool,
}

/// One handler per message type, with a fallback for the rest: Thespian's `receiveMsg_<Type>`
/// without hand-written decoding.
///
/// Each arm names a binding and a type; the first arm whose type the message was sent as gets
/// the decoded value. A body that does not decode as that type makes the handler fail (and the
/// message is retried, then poisoned back), as any handler error does.
///
/// ```
/// use greenroom::{Context, ExitRequest, Handled, Message};
///
/// fn receive(msg: &Message, ctx: &mut Context<'_>) -> Handled {
///     greenroom::dispatch!(msg, {
///         text: String => { ctx.reply(&text.to_uppercase())?; Ok(()) },
///         n: u64 => { ctx.reply(&(n + 1))?; Ok(()) },
///         _exit: ExitRequest => Ok(()),
///         _ => Ok(()),
///     })
/// }
/// ```
#[macro_export]
macro_rules! dispatch {
    ($msg:expr, { $($var:ident : $ty:ty => $body:expr),+ , _ => $fallback:expr $(,)? }) => {{
        let __greenroom_msg: &$crate::Message = &$msg;
        $(
            if __greenroom_msg.is::<$ty>() {
                match __greenroom_msg.decode::<$ty>() {
                    ::std::result::Result::Ok($var) => $body,
                    ::std::result::Result::Err(e) => ::std::result::Result::Err(e.into()),
                }
            } else
        )+
        { $fallback }
    }};
}

#[cfg(test)]
mod tests;
