//! The system API: how a program outside the actors starts or attaches to a system, creates
//! actors, and talks to them.
//!
//! An [`ActorSystem`] is an *external endpoint*: it has an address of its own (so that actors can
//! reply to it) and a control connection to the admin. If no admin runs for the system,
//! [`ActorSystem::new`] starts one for this program (the embedded default), which goes away when
//! this handle is shut down or dropped.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::actor::Actor;
use crate::actor::Spec;
use crate::address::{ADMIN_ID, Address};
use crate::base::SystemBase;
pub use crate::base::{BASE_ENV, Base, SystemConfig, WhenMissing};
use crate::error::{Error, Result};
use crate::message::{ActorStatus, ExitRequest, Message, Poison, StatusRequest, type_name_of};
use crate::process::endpoint::ProcessSystem;
use crate::protocol::{ActorInfo, Envelope, MemberInfo, SystemStatus};
use crate::sysdir;

/// A connection to an actor system from outside the actors: an *external endpoint* with an
/// address of its own, so that actors can reply to it.
///
/// With the process base (the default) it talks to the system's admin, starting one for this
/// program if none runs; that admin goes away when this handle is shut down or dropped. With the
/// simple base ([`Base::Simple`], `GREENROOM_BASE=simple`) the actors run inside this program.
pub struct ActorSystem {
    inner: Box<dyn SystemBase>,
    base: Base,
}

impl std::fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorSystem")
            .field("name", &self.inner.name())
            .field("address", self.inner.address())
            .field("base", &self.base)
            .finish()
    }
}

impl ActorSystem {
    /// Attach to the system named by `GREENROOM_SYSTEM` (default `default`), starting an admin
    /// for this program if none runs. `GREENROOM_BASE` chooses the base.
    pub fn new() -> Result<ActorSystem> {
        ActorSystem::with_config(SystemConfig::default())
    }

    /// Attach to the running admin of system `name`; fail if there is none.
    pub fn attach(name: &str) -> Result<ActorSystem> {
        ActorSystem::with_config(SystemConfig {
            name: name.to_string(),
            when_missing: WhenMissing::Fail,
            base: Some(Base::Multiproc),
            ..SystemConfig::default()
        })
    }

    /// Attach to (or start) a system as `config` says.
    pub fn with_config(config: SystemConfig) -> Result<ActorSystem> {
        let base = match config.base {
            Some(b) => b,
            None => Base::from_env()?,
        };
        let inner: Box<dyn SystemBase> = match base {
            Base::Multiproc => Box::new(ProcessSystem::open(config)?),
            Base::Simple => {
                sysdir::validate_name(&config.name)?;
                Box::new(crate::simple::SimpleSystem::new(&config.name))
            }
        };
        Ok(ActorSystem { inner, base })
    }

    /// Which base runs this system's actors.
    pub fn base(&self) -> Base {
        self.base
    }

    /// This endpoint's own address (actors reply to it).
    pub fn address(&self) -> &Address {
        self.inner.address()
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The system's directory.
    pub fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// The address the admin uses as a sender (for example of `ChildExited`).
    pub fn admin_address(&self) -> Address {
        self.inner.address().sibling(ADMIN_ID)
    }

    /// Register an actor binary: run it with `--greenroom-list-types`, and tell the admin which
    /// types it provides. Returns those types.
    pub fn load(&mut self, path: &Path) -> Result<Vec<String>> {
        self.inner.load(path)
    }

    /// Create an actor of type `A`, a child of this endpoint. The address is usable at once:
    /// messages sent to it before it is ready are delivered, in order, once it is.
    pub fn create_actor<A: Actor>(&mut self) -> Result<Address> {
        self.inner.create(type_name_of::<A>(), Spec::default())
    }

    /// [`create_actor_with`](Self::create_actor_with) by type name (and, optionally, binary),
    /// for types this program does not define.
    pub fn create_by_name_with<T: Serialize + ?Sized>(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
        args: &T,
    ) -> Result<Address> {
        let args = crate::message::encode_value(args)?;
        self.inner
            .create(type_name, Spec::with_args(args).in_binary(binary))
    }

    /// Create an actor of type `A` with start arguments: it is built with `Default`, then reads
    /// `args` with [`Context::start_args`](crate::Context::start_args) (in its
    /// [`started`](crate::Actor::started) hook, say).
    pub fn create_actor_with<A: Actor, T: Serialize + ?Sized>(
        &mut self,
        args: &T,
    ) -> Result<Address> {
        let args = crate::message::encode_value(args)?;
        self.inner
            .create(type_name_of::<A>(), Spec::with_args(args))
    }

    /// Create an actor by type name, from `binary` if given (it is loaded first if the admin
    /// does not know it), else from this program if it registered the type, else from the
    /// binary the admin last loaded for that type.
    pub fn create_actor_by_name(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
    ) -> Result<Address> {
        self.inner
            .create(type_name, Spec::default().in_binary(binary))
    }

    /// Create an actor of type `A` on a system whose capabilities meet `requirements` (`KEY`,
    /// `VALUE` pairs: each capability must have exactly that value); fails with
    /// [`Error::NoCompatibleSystem`] if none does. While it runs, a change of capabilities that
    /// breaks them sends it an [`ExitRequest`](crate::ExitRequest).
    pub fn create_actor_requiring<A: Actor>(
        &mut self,
        requirements: &[(&str, &str)],
    ) -> Result<Address> {
        self.inner
            .create(type_name_of::<A>(), Spec::requiring(requirements))
    }

    /// [`create_actor_requiring`](Self::create_actor_requiring) by type name (and, optionally,
    /// binary), for types this program does not define.
    pub fn create_by_name_requiring(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
        requirements: &[(&str, &str)],
    ) -> Result<Address> {
        self.inner
            .create(type_name, Spec::requiring(requirements).in_binary(binary))
    }

    /// The actor registered under `global_name`; if there is none, create one of type `A`
    /// under that name. In a convention the name is the convention's: the holder may run on
    /// another member. The name is freed when that actor exits, or its member is lost.
    pub fn create_global<A: Actor>(&mut self, global_name: &str) -> Result<Address> {
        self.inner
            .create(type_name_of::<A>(), Spec::named(global_name))
    }

    /// [`create_global`](Self::create_global) by type name, for types this program does not
    /// define.
    pub fn create_global_by_name(&mut self, type_name: &str, global_name: &str) -> Result<Address> {
        self.inner.create(type_name, Spec::named(global_name))
    }

    /// Send `value` to `to`, named after its type. Fails with [`Error::DeadActor`] if `to` is not
    /// running (the message also goes to the dead-letter handler, if there is one).
    pub fn tell<T: Serialize + ?Sized>(&mut self, to: &Address, value: &T) -> Result<()> {
        let msg = Message::new(value)?;
        self.inner.tell_message(to, msg)
    }

    /// Send an already built message.
    pub fn tell_message(&mut self, to: &Address, msg: Message) -> Result<()> {
        self.inner.tell_message(to, msg)
    }

    /// Ask an actor (and, by default, its children) to exit: send it [`ExitRequest`].
    pub fn tell_exit(&mut self, to: &Address) -> Result<()> {
        self.tell(to, &ExitRequest::default())
    }

    /// Send `value` to `to` and wait up to `timeout` for its answer: the first message to this
    /// endpoint that is part of this request. An actor's reply is (as is everything an actor
    /// sends while handling the request, so an answer that comes back through other actors
    /// counts too), and so is the `Poison` that says it could not be handled. Other messages
    /// that arrive meanwhile, answers to other requests included, stay queued for
    /// [`listen`](Self::listen). Nothing in time is [`Error::NoReply`].
    pub fn ask<T: Serialize + ?Sized>(
        &mut self,
        to: &Address,
        value: &T,
        timeout: Duration,
    ) -> Result<Message> {
        let mut msg = Message::new(value)?;
        let id = self.inner.new_ask();
        msg.ask = Some(id);
        self.inner.tell_message(to, msg)?;
        match self
            .inner
            .next_envelope(timeout, &|m: &Message| m.ask == Some(id))?
        {
            Some(env) => Ok(env.msg),
            None => Err(Error::NoReply {
                to: to.clone(),
                waited: timeout,
            }),
        }
    }

    /// [`ask`](Self::ask), with the answer decoded as an `R`. An answer that is a [`Poison`]
    /// is [`Error::Poisoned`]; one that is not an `R` is [`Error::Decode`].
    pub fn ask_as<R: DeserializeOwned, T: Serialize + ?Sized>(
        &mut self,
        to: &Address,
        value: &T,
        timeout: Duration,
    ) -> Result<R> {
        let answer = self.ask(to, value, timeout)?;
        if let Some(p) = answer.get::<Poison>() {
            return Err(Error::Poisoned {
                details: p.details,
                possibly_handled: p.possibly_handled,
            });
        }
        answer.decode()
    }

    /// Let `duration` pass without taking any message: on the simple base, virtual time (timers
    /// due meanwhile fire, and what they cause runs); on the process base, real time. Messages
    /// that arrive meanwhile stay queued for [`listen`](Self::listen).
    pub fn sleep(&mut self, duration: Duration) -> Result<()> {
        self.inner.next_envelope(duration, &|_| false).map(|_| ())
    }

    /// Wait up to `timeout` for the next message to this endpoint. System messages other than
    /// [`Poison`] (such as `ChildExited` for actors this endpoint created) are left queued for
    /// [`listen_any`](Self::listen_any).
    pub fn listen(&mut self, timeout: Duration) -> Result<Option<Message>> {
        Ok(self.listen_envelope(timeout)?.map(|e| e.msg))
    }

    /// Like [`listen`](Self::listen), but also says who sent the message.
    pub fn listen_envelope(&mut self, timeout: Duration) -> Result<Option<Envelope>> {
        self.inner
            .next_envelope(timeout, &|msg| !msg.is_system() || msg.is::<Poison>())
    }

    /// Wait up to `timeout` for the next message of any kind, system messages included.
    pub fn listen_any(&mut self, timeout: Duration) -> Result<Option<Envelope>> {
        self.inner.next_envelope(timeout, &|_| true)
    }

    /// Every live actor: address, type, pid and parent.
    pub fn status(&mut self) -> Result<Vec<ActorInfo>> {
        Ok(self.inner.status()?.actors)
    }

    /// What the system knows about itself: actors, global names, the dead-letter handler,
    /// loaded binaries and counters.
    pub fn system_status(&mut self) -> Result<SystemStatus> {
        self.inner.status()
    }

    /// The members of the convention this system belongs to, itself included, by address
    /// ([`Error::NoConvention`] if it belongs to none: start its admin with `--listen`).
    pub fn members(&mut self) -> Result<Vec<MemberInfo>> {
        let members = self.inner.members()?;
        if members.is_empty() {
            return Err(Error::NoConvention {
                system: self.inner.name().to_string(),
            });
        }
        Ok(members)
    }

    /// Receive a [`ConventionUpdate`](crate::ConventionUpdate) (through `listen`) for every
    /// other member of the system's convention now, and whenever one joins, is lost, leaves or
    /// changes its capabilities (`true`); or stop (`false`).
    pub fn watch_convention(&mut self, on: bool) -> Result<()> {
        self.inner.watch_convention(on)
    }

    /// Set one of this system's capabilities (`Some(value)`), or remove it (`None`); the other
    /// members of its convention hear of it. Names starting with `greenroom.` are read-only.
    pub fn set_capability(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        self.inner.set_capability(key, value)
    }

    /// Ask one actor about itself (children, pending timers, messages handled): the framework
    /// answers, not the actor's handler, as soon as the actor is between two messages. An
    /// [`ask`](Self::ask): other messages stay queued; nothing in time is
    /// [`Error::NoReply`].
    pub fn actor_status(&mut self, actor: &Address, timeout: Duration) -> Result<ActorStatus> {
        let reply = self.ask(actor, &StatusRequest {}, timeout)?;
        if !reply.is::<ActorStatus>() {
            return Err(Error::Protocol(format!(
                "expected an ActorStatus from {actor}, got a {} message",
                reply.type_name()
            )));
        }
        reply.decode()
    }

    /// Create an actor of a type, from a binary, under a global name: the general form of the
    /// `create_*` methods (`None` leaves each choice to the defaults).
    pub fn create(
        &mut self,
        type_name: &str,
        binary: Option<&Path>,
        global_name: Option<&str>,
    ) -> Result<Address> {
        let spec = Spec {
            binary,
            global_name,
            ..Spec::default()
        };
        self.inner.create(type_name, spec)
    }

    /// Shut the whole system down: every actor is asked to exit (then, for processes, SIGTERM
    /// and SIGKILL after deadlines), the system directory is removed, and the admin exits.
    pub fn shutdown(mut self) -> Result<()> {
        self.inner.shutdown()
    }
}
