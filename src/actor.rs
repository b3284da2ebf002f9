//! The [`Actor`] trait and the [`Context`] a handler works through.

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
}

/// What a base (the process runtime, or later others) provides to handlers.
pub(crate) trait ContextOps {
    fn me(&self) -> &Address;
    fn send_message(&mut self, to: &Address, msg: Message) -> Result<()>;
    fn create(&mut self, type_name: &str) -> Result<Address>;
}

/// The handler's view of the system: who sent the message, who it is, and what it can do.
pub struct Context<'a> {
    pub(crate) ops: &'a mut dyn ContextOps,
    pub(crate) sender: Address,
}

impl Context<'_> {
    /// The sender of the message being handled.
    pub fn sender(&self) -> &Address {
        &self.sender
    }

    /// This actor's own address.
    pub fn my_address(&self) -> &Address {
        self.ops.me()
    }

    /// Send `value` to `to`, named after its type. The message leaves now, not when the handler
    /// returns. An error means `to` is not running.
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
        self.ops.create(type_name_of::<A>())
    }

    /// Create a child actor by type name, for types this binary does not define.
    pub fn create_actor_by_name(&mut self, type_name: &str) -> Result<Address> {
        self.ops.create(type_name)
    }
}
