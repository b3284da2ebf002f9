//! The [`Actor`] trait and the [`Context`] a handler works through.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::address::Address;
use crate::error::Result;
use crate::message::{Message, type_name_of};

/// What a handler returns. An `Err` counts as a failure, like a panic: the message is retried
/// once, and if it fails again its sender receives [`Poison`](crate::Poison).
pub type Handled = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// An actor: state plus a handler that receives one message at a time.
///
/// Register actor types with [`actors!`](crate::actors) at the top of `main`; each one must
/// implement `Default`, which builds the actor when its process starts.
pub trait Actor: 'static {
    /// Handle one message. `ctx` gives the sender, this actor's address, and ways to send and
    /// to create actors. System messages ([`ExitRequest`](crate::ExitRequest),
    /// [`ChildExited`](crate::ChildExited), [`Poison`](crate::Poison)) arrive here too.
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled;

    /// Called once when the actor has been built, before its first message (`ctx.sender()` is
    /// its parent). It may send and create actors. A failure (panic or `Err`) is a failed start:
    /// the parent hears [`ExitReason::FailedToStart`](crate::ExitReason), and messages already
    /// sent to the actor go back as [`Poison`](crate::Poison). Does nothing unless overridden.
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        let _ = ctx;
        Ok(())
    }

    /// Called once when the actor exits on request, after its handler has seen the
    /// [`ExitRequest`](crate::ExitRequest) and before its children are asked to exit
    /// (`ctx.sender()` is who asked). It may still send. A failure is logged; the actor exits
    /// all the same. Not called when the process is killed. Does nothing unless overridden.
    fn stopping(&mut self, ctx: &mut Context<'_>) -> Handled {
        let _ = ctx;
        Ok(())
    }

    /// Capabilities every actor of this type needs, whoever creates it (`KEY`, `VALUE` pairs:
    /// each must be a capability of the system with exactly that value), on top of those a
    /// create asks for. A system without them refuses to create the actor
    /// ([`Error::NoCompatibleSystem`](crate::Error::NoCompatibleSystem)), and asks it to exit if
    /// a change of capabilities breaks them. None unless overridden.
    fn requires() -> &'static [(&'static str, &'static str)]
    where
        Self: Sized,
    {
        &[]
    }
}

/// What a create asks for besides the type: the general form behind every `create_*`.
#[derive(Debug, Default)]
pub(crate) struct Spec<'a> {
    /// The binary that provides the type (programs only; an actor creates from its own binary
    /// or the one loaded for the type).
    pub(crate) binary: Option<&'a Path>,
    /// A global name: an actor holding it is returned instead of a new one.
    pub(crate) global_name: Option<&'a str>,
    /// Start arguments (MessagePack).
    pub(crate) args: Option<Vec<u8>>,
    /// Capabilities the system must have to run it.
    pub(crate) requirements: BTreeMap<String, String>,
}

impl<'a> Spec<'a> {
    /// Under a global name.
    pub(crate) fn named(global_name: &'a str) -> Spec<'a> {
        Spec {
            global_name: Some(global_name),
            ..Spec::default()
        }
    }

    /// With start arguments (MessagePack).
    pub(crate) fn with_args(args: Vec<u8>) -> Spec<'a> {
        Spec {
            args: Some(args),
            ..Spec::default()
        }
    }

    /// Requiring capabilities, as `KEY`/`VALUE` pairs.
    pub(crate) fn requiring(pairs: &[(&str, &str)]) -> Spec<'a> {
        Spec {
            requirements: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Spec::default()
        }
    }

    /// From this binary.
    pub(crate) fn in_binary(mut self, binary: Option<&'a Path>) -> Spec<'a> {
        self.binary = binary;
        self
    }
}

/// What a base (the process runtime or the deterministic one) provides to handlers.
pub(crate) trait ContextOps {
    fn me(&self) -> &Address;
    fn send_message(&mut self, to: &Address, msg: Message) -> Result<()>;
    fn create(&mut self, type_name: &str, spec: Spec<'_>) -> Result<Address>;
    /// The start arguments this actor was created with (MessagePack).
    fn start_args(&self) -> Option<&[u8]>;
    fn wakeup_after(&mut self, after: Duration, payload: Message);
    fn handle_dead_letters(&mut self, on: bool) -> Result<()>;
    fn global_name(&mut self) -> Result<Option<String>>;
    fn watch_convention(&mut self, on: bool) -> Result<()>;
}

/// The handler's view of the system: who sent the message, who it is, and what it can do.
pub struct Context<'a> {
    pub(crate) ops: &'a mut dyn ContextOps,
    pub(crate) sender: Address,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("me", self.ops.me())
            .field("sender", &self.sender)
            .finish()
    }
}

impl Context<'_> {
    /// The sender of the message being handled. An owned address (a reference-count increment,
    /// not a copy), so that `ctx.send(&ctx.sender(), &value)` compiles.
    pub fn sender(&self) -> Address {
        self.sender.clone()
    }

    /// This actor's own address.
    pub fn my_address(&self) -> &Address {
        self.ops.me()
    }

    /// Send `value` to `to`, named after its type. The message leaves now, not when the handler
    /// returns. A message to an actor that is not running becomes a
    /// [`DeadEnvelope`](crate::DeadEnvelope) for the dead-letter handler (if there is none it is
    /// logged and dropped); that is not an error.
    pub fn send<T: Serialize + ?Sized>(&mut self, to: &Address, value: &T) -> Result<()> {
        let msg = Message::new(value)?;
        self.ops.send_message(to, msg)
    }

    /// Send an already built message.
    pub fn send_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        self.ops.send_message(to, msg)
    }

    /// Send `value` back to the sender of the message being handled.
    pub fn reply<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let to = self.sender.clone();
        self.send(&to, value)
    }

    /// Create a child actor of type `A`. The address is usable at once: messages sent to it
    /// before its process is ready are delivered, in order, once it is. This actor is its parent
    /// and receives its [`ChildExited`](crate::ChildExited).
    pub fn create_actor<A: Actor>(&mut self) -> Result<Address> {
        self.ops.create(type_name_of::<A>(), Spec::default())
    }

    /// Create a child actor of type `A` with start arguments, which it reads with
    /// [`start_args`](Self::start_args).
    pub fn create_actor_with<A: Actor, T: Serialize + ?Sized>(
        &mut self,
        args: &T,
    ) -> Result<Address> {
        let args = crate::message::encode_value(args)?;
        self.ops.create(type_name_of::<A>(), Spec::with_args(args))
    }

    /// The start arguments this actor was created with
    /// ([`create_actor_with`](crate::ActorSystem::create_actor_with)), decoded as a `T`;
    /// `None` if it was created without. Read them in [`Actor::started`] to set the actor up.
    pub fn start_args<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>> {
        self.ops
            .start_args()
            .map(|bytes| {
                rmp_serde::from_slice(bytes).map_err(|e| crate::error::Error::Decode {
                    what: format!("start arguments as {}", std::any::type_name::<T>()),
                    why: e.to_string(),
                })
            })
            .transpose()
    }

    /// Create a child actor of type `A` on a system whose capabilities meet `requirements`
    /// (`KEY`, `VALUE` pairs: each capability must have exactly that value). Fails with
    /// [`Error::NoCompatibleSystem`](crate::Error::NoCompatibleSystem) if none does. While it
    /// runs, a change of capabilities that breaks them sends it an
    /// [`ExitRequest`](crate::ExitRequest).
    pub fn create_actor_requiring<A: Actor>(
        &mut self,
        requirements: &[(&str, &str)],
    ) -> Result<Address> {
        self.ops
            .create(type_name_of::<A>(), Spec::requiring(requirements))
    }

    /// Create a child actor by type name, for types this binary does not define.
    pub fn create_actor_by_name(&mut self, type_name: &str) -> Result<Address> {
        self.ops.create(type_name, Spec::default())
    }

    /// The actor registered under `global_name` in this system; if there is none, create one of
    /// type `A` under that name (as this actor's child). The name is freed when that actor
    /// exits. Concurrent creates of one name give one actor.
    pub fn create_global<A: Actor>(&mut self, global_name: &str) -> Result<Address> {
        self.ops
            .create(type_name_of::<A>(), Spec::named(global_name))
    }

    /// [`create_global`](Self::create_global) by type name, for types this binary does not
    /// define.
    pub fn create_global_by_name(&mut self, type_name: &str, global_name: &str) -> Result<Address> {
        self.ops.create(type_name, Spec::named(global_name))
    }

    /// The global name this actor holds, if any. It is asked of the system (on the process
    /// base, a round trip to the admin): keep it rather than ask for every message.
    pub fn global_name(&mut self) -> Result<Option<String>> {
        self.ops.global_name()
    }

    /// Deliver [`Wakeup`](crate::Wakeup) with `payload` to this actor after `after` — never
    /// earlier, exactly once. Several may be pending; pending ones are dropped when the actor
    /// exits.
    pub fn wakeup_after<T: Serialize + ?Sized>(
        &mut self,
        after: Duration,
        payload: &T,
    ) -> Result<()> {
        let payload = Message::new(payload)?;
        self.ops.wakeup_after(after, payload);
        Ok(())
    }

    /// Receive a [`ConventionUpdate`](crate::ConventionUpdate) for every other member of the
    /// system's convention now, and whenever one joins, is lost, leaves or changes its
    /// capabilities (`true`); or stop (`false`). Watching ends with the actor.
    /// [`Error::NoConvention`](crate::Error::NoConvention) if the system is in none.
    pub fn watch_convention(&mut self, on: bool) -> Result<()> {
        self.ops.watch_convention(on)
    }

    /// Make this actor the system's dead-letter handler (`true`), or stop being it (`false`). The
    /// newest registration wins; when the handler exits, dead letters are dropped again.
    pub fn handle_dead_letters(&mut self, on: bool) -> Result<()> {
        self.ops.handle_dead_letters(on)
    }
}
