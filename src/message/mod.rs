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

mod names;
mod system;

pub(crate) use names::intern_type_name;
pub use names::{name_messages, type_name_of};
pub use system::{
    ActorStatus, ChildExited, ConventionUpdate, DeadEnvelope, ExitReason, ExitRequest, Poison,
    StatusRequest, Wakeup,
};

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
            let wire = encode_value(value)?;
            return Message::decode_frame_body(&wire);
        }
        Message::encode(Cow::Borrowed(type_name_of::<T>()), value)
    }

    /// Encode `value` as a message with an explicit type name.
    pub fn with_type<T: Serialize + ?Sized>(type_name: &str, value: &T) -> Result<Message> {
        Message::encode(Cow::Owned(type_name.to_string()), value)
    }

    fn encode<T: Serialize + ?Sized>(type_name: Cow<'static, str>, value: &T) -> Result<Message> {
        let body = encode_value(value)?;
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

/// `value` in MessagePack, with named fields (the form every message body and start argument
/// takes).
pub(crate) fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| Error::Encode(Box::new(e)))
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
