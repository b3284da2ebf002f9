//! Registering actor types in a binary: the [`actors!`](crate::actors) macro and the dispatch it
//! runs at the top of `main`.
//!
//! A greenroom binary is started in one of four ways, told apart by its first argument:
//!
//! | first argument | what happens |
//! |---|---|
//! | `--greenroom-actor TYPE ...` | the admin started it to run one actor; it never returns to `main` |
//! | `--greenroom-admin ...` | a program of this binary started it as its embedded admin |
//! | `--greenroom-list-types` | prints `greenroom-actor-binary 1` and one type name per line, for `greenroom load` |
//! | anything else | `main` goes on, and the system API knows which types this binary provides |
//!
//! A plain `macro_rules!` table is used rather than `inventory`/`linkme`-style registration,
//! which silently drops types from crates the binary never names, and runs nothing before `main`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::actor::Actor;

/// The first line `--greenroom-list-types` prints; `greenroom load` checks for it.
pub const LIST_TYPES_MAGIC: &str = "greenroom-actor-binary 1";

/// One registered actor type. Built by [`actors!`](crate::actors); not for direct use.
#[doc(hidden)]
pub struct ActorType {
    pub(crate) name: String,
    pub(crate) make: fn() -> Box<dyn Actor>,
    /// What [`Actor::requires`] says for the type.
    pub(crate) requires: &'static [(&'static str, &'static str)],
}

impl std::fmt::Debug for ActorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorType")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The constructor of a registered actor type, for running it inside this process.
pub(crate) fn constructor(type_name: &str) -> Option<fn() -> Box<dyn Actor>> {
    TYPES
        .get()?
        .iter()
        .find(|a| a.name == type_name)
        .map(|a| a.make)
}

static TYPES: OnceLock<Vec<ActorType>> = OnceLock::new();

/// What a type this binary registered requires of a system (see [`Actor::requires`]).
pub(crate) fn requirements_of(type_name: &str) -> BTreeMap<String, String> {
    TYPES
        .get()
        .into_iter()
        .flatten()
        .filter(|a| a.name == type_name)
        .flat_map(|a| a.requires.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The actor types this binary registered (empty if it never invoked `actors!`).
pub fn registered_types() -> Vec<String> {
    TYPES
        .get()
        .map(|t| t.iter().map(|a| a.name.clone()).collect())
        .unwrap_or_default()
}

/// True if this binary registered an actor type of that name.
pub(crate) fn provides(type_name: &str) -> bool {
    TYPES
        .get()
        .is_some_and(|t| t.iter().any(|a| a.name == type_name))
}

/// True once `actors!` has run in this process.
pub(crate) fn is_actor_binary() -> bool {
    TYPES.get().is_some()
}

/// Record this binary's table of actor types (once; later calls change nothing) and return it.
pub(crate) fn install(types: Vec<ActorType>) -> &'static [ActorType] {
    let _ = TYPES.set(types);
    TYPES.get().expect("set above")
}

/// Give message types wire names of your choosing, instead of their Rust type names without
/// module paths: two types of the same short name (`a::Ping`, `b::Ping`) then stay apart, and
/// types that differ only in a parameter can share one name (a body of the wrong shape then fails
/// the handler, which `get` reports). Invoke it first thing in `main`, before
/// [`actors!`](crate::actors), in every binary that sends or receives those types. Names must be
/// non-empty, without spaces, and outside the `greenroom.` namespace.
///
/// ```no_run
/// mod billing {
///     #[derive(serde::Serialize, serde::Deserialize)]
///     pub struct Ping;
/// }
/// mod health {
///     #[derive(serde::Serialize, serde::Deserialize)]
///     pub struct Ping;
/// }
///
/// fn main() {
///     greenroom::message_names!(billing::Ping => "billing.Ping", health::Ping => "health.Ping");
/// }
/// ```
#[macro_export]
macro_rules! message_names {
    ($($ty:ty => $name:expr),* $(,)?) => {
        $crate::__private::name_messages(&[$((::std::any::type_name::<$ty>(), $name)),*])
    };
}

/// Register the actor types this binary provides. Invoke it first thing in `main`.
///
/// When the admin starts this binary to run an actor, the macro runs that actor and never
/// returns; otherwise `main` goes on, and [`ActorSystem`](crate::ActorSystem) knows which types
/// this binary provides (it registers the binary with the admin when it attaches).
///
/// ```no_run
/// use greenroom::{Actor, Context, Handled, Message};
///
/// #[derive(Default)]
/// struct Echo;
///
/// impl Actor for Echo {
///     fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
///         ctx.send_message(&ctx.sender(), msg.clone())?;
///         Ok(())
///     }
/// }
///
/// fn main() {
///     greenroom::actors!(Echo);
///     // ... drive the actors from here, or do nothing: a pure actor binary.
/// }
/// ```
#[macro_export]
macro_rules! actors {
    ($($actor:ty),* $(,)?) => {
        $crate::__private::dispatch(::std::vec![$($crate::__private::ActorType::of::<$actor>()),*])
    };
}
