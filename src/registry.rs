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

use std::sync::OnceLock;

use crate::actor::Actor;
use crate::message::type_name_of;
use crate::process::control::ControlClient;
use crate::process::runtime::{self, ActorArgs};

/// The first line `--greenroom-list-types` prints; `greenroom load` checks for it.
pub const LIST_TYPES_MAGIC: &str = "greenroom-actor-binary 1";

/// One registered actor type. Built by [`actors!`](crate::actors); not for direct use.
#[doc(hidden)]
pub struct ActorType {
    name: String,
    run: fn(ActorArgs, ControlClient) -> !,
    make: fn() -> Box<dyn Actor>,
}

impl std::fmt::Debug for ActorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorType")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ActorType {
    /// The entry for actor type `A`.
    pub fn of<A: Actor + Default>() -> ActorType {
        ActorType {
            name: type_name_of::<A>().to_string(),
            run: runtime::run::<A>,
            make: || Box::new(A::default()),
        }
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

/// Record the table and act on the command line. Called by [`actors!`](crate::actors).
#[doc(hidden)]
pub fn dispatch(types: Vec<ActorType>) {
    let args: Vec<String> = std::env::args().collect();
    let _ = TYPES.set(types);
    let types = TYPES.get().expect("set above");
    match args.get(1).map(String::as_str) {
        Some("--greenroom-actor") => {
            let Some(mut actor_args) = ActorArgs::parse(&args[2..]) else {
                eprintln!("greenroom: malformed --greenroom-actor command line: {args:?}");
                std::process::exit(2);
            };
            crate::logging::init_actor(&actor_args.me);
            let control = runtime::control_and_assignment(&mut actor_args);
            match types.iter().find(|t| t.name == actor_args.type_name) {
                Some(t) => (t.run)(actor_args, control),
                None => {
                    let error = format!(
                        "binary {} does not provide actor type '{}' (it provides: {})",
                        args[0],
                        actor_args.type_name,
                        registered_types().join(", ")
                    );
                    runtime::refuse(actor_args, control, error)
                }
            }
        }
        Some("--greenroom-admin") => {
            std::process::exit(crate::process::admin::main_from_args(&args[2..]))
        }
        Some("--greenroom-list-types") => {
            println!("{LIST_TYPES_MAGIC}");
            for t in types {
                println!("{}", t.name);
            }
            std::process::exit(0)
        }
        _ => {}
    }
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
