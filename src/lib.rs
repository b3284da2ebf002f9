//! # greenroom: actors as OS processes
//!
//! greenroom is an actor system in which **every actor is its own OS process**, after Python's
//! Thespian. An admin process per system starts one process per actor, delivers exit requests,
//! and tells a parent when its child dies — for any reason, `kill -9` included. Actors exchange
//! MessagePack frames directly over Unix sockets.
//!
//! A complete program: it defines an actor, registers it, and drives it from `main`. Run it with
//! nothing started beforehand; it starts an admin for itself and stops it at the end.
//!
//! ```no_run
//! use std::time::Duration;
//! use greenroom::{Actor, ActorSystem, Context, ExitRequest, Handled, Message};
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Actor for Hello {
//!     fn receive(&mut self, _msg: &Message, ctx: &mut Context<'_>) -> Handled {
//!         ctx.reply("Hello, World!")?;
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> Result<(), greenroom::Error> {
//!     // When the admin starts this binary to run a `Hello`, this line runs it and never returns.
//!     greenroom::actors!(Hello);
//!
//!     let mut system = ActorSystem::new()?;
//!     let hello = system.create_actor::<Hello>()?;
//!     let reply: String = system.ask_as(&hello, "hi", Duration::from_secs(1))?;
//!     println!("{reply}");
//!     system.tell(&hello, &ExitRequest::default())?;
//!     Ok(())
//! }
//! ```
//!
//! ## The pieces
//!
//! - [`Actor`] — a type with a handler that receives one [`Message`] at a time through a
//!   [`Context`] (sender, own address, `send`, `reply`, `create_actor`, `create_global`,
//!   `wakeup_after`, `handle_dead_letters`), and optional `started`/`stopping` hooks.
//!   [`dispatch!`] writes one handler per message type.
//! - [`actors!`] — registers the actor types of a binary; invoke it first thing in `main`.
//! - [`ActorSystem`] — the API for programs outside the actors: start or attach, create, `tell`,
//!   `ask` (matched to its request: the answer may come from any actor the request passed
//!   through, other messages stay queued for `listen`), `listen`, `status`, `shutdown`.
//! - System messages: [`ExitRequest`], [`ChildExited`] with an [`ExitReason`], [`Poison`],
//!   [`Wakeup`], [`DeadEnvelope`], and [`StatusRequest`] (answered by the framework with
//!   [`ActorStatus`]).
//! - Helpers: [`Troupe`] (workers behind one address) and [`Transient`] (exits by itself).
//! - Two [`Base`]s run the same actors: one OS process per actor (the default), or all of them
//!   deterministically inside the calling program (`GREENROOM_BASE=simple`), for tests and
//!   debugging.
//! - The `greenroom-admin` binary runs an admin in the foreground; the `greenroom` CLI starts
//!   one in the background and talks to actors from a shell.
//! - Conventions: admins started with `--listen` (see [`admin::ConventionConfig`]) link to each
//!   other over TCP, authenticated and encrypted with a shared secret, and advertise
//!   capabilities; [`ActorSystem::members`] lists them, alive or gone. Their addresses name
//!   their member ([`Address::member`]) and work on every member, with the same accounting; an
//!   actor is created on a member whose capabilities meet its requirements (which fetches its
//!   binary by hash if it lacks it), its parent hears [`ChildExited`] across members
//!   ([`ExitReason::HostLost`] when that member is lost), and global names are the
//!   convention's.
//!
//! ## A member of a convention
//!
//! A program whose admin joins a convention, and creates an actor where the capabilities its
//! type or its create require hold: here, or on another member (the same flags work on
//! `greenroom start`):
//!
//! ```no_run
//! use greenroom::admin::ConventionConfig;
//! use greenroom::{Actor, ActorSystem, Context, Handled, Message, SystemConfig};
//!
//! #[derive(Default)]
//! struct Render;
//!
//! impl Actor for Render {
//!     fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
//!         Ok(ctx.send_message(&ctx.sender(), msg.clone())?)
//!     }
//!     // Whoever creates it, it runs only where the system has `gpu=yes`.
//!     fn requires() -> &'static [(&'static str, &'static str)] {
//!         &[("gpu", "yes")]
//!     }
//! }
//!
//! fn main() -> greenroom::Result<()> {
//!     greenroom::actors!(Render);
//!     let mut system = ActorSystem::with_config(SystemConfig {
//!         convention: Some(ConventionConfig {
//!             listen: "192.0.2.7:7001".into(),
//!             leaders: vec!["192.0.2.1:7001".into()],
//!             capabilities: [("gpu".to_string(), "yes".to_string())].into(),
//!             secret_file: "/etc/greenroom/convention.key".into(),
//!             refuse_binaries: false,
//!         }),
//!         ..SystemConfig::default()
//!     })?;
//!     for m in system.members()? {
//!         println!("{} ({}): {:?}", m.address, m.system, m.state);
//!     }
//!     let render = system.create_actor::<Render>()?; // NoCompatibleSystem without gpu=yes
//!     system.watch_convention(true)?; // a ConventionUpdate per member, then per change
//!     let _ = render;
//!     Ok(())
//! }
//! ```
//!
//! ## Guarantees
//!
//! - **Every message accounted for**: every message whose send returned `Ok` ends in exactly
//!   one of *handled*, *poisoned* (back to its sender as [`Poison`]), *dead-lettered* (a
//!   [`DeadEnvelope`] to the dead-letter handler) or *dropped* (no handler registered; counted).
//!   `kill -9` of the receiver, the sender or both included: each process keeps what it has not
//!   handed over in a ledger page that outlives it, and the admin returns what the dead leave
//!   behind. A message whose receiver died while handling it comes back as a [`Poison`] with
//!   `possibly_handled: true` (its handler may have run to the end). A send that cannot be
//!   accepted returns an [`Error`] and the caller keeps running.
//! - **The ledger is visible**: [`Ledger`] counts per actor ([`ActorStatus::ledger`]) and for the
//!   system ([`SystemStatus::ledger`](crate::protocol::SystemStatus), `greenroom status`).
//! - **Ordering**: messages from one sender to one receiver arrive in the order sent (each pair
//!   uses one stream).
//! - **Sends leave at once**: a send inside a handler is written to the socket immediately, not
//!   when the handler returns; a sender that outpaces its receiver waits (at 1 MiB unwritten),
//!   reading its own sockets meanwhile, and fails with [`Error::Backpressure`] after 30 s.
//! - **Early messages**: the address returned by `create_actor` works at once; messages sent before
//!   the process is ready are queued by the kernel and delivered in order.
//! - **Death is reported**: the parent receives [`ChildExited`] whether the child exited on
//!   request, exited by itself, failed to start, or was killed by a signal.
//! - **No orphans**: if the admin dies, its actor processes exit too.
//! - **Every byte distrusted**: frames are versioned and decoded strictly; memory grows with the
//!   bytes received, never with a length header; a frame longer than the limit (64 MiB by default,
//!   `GREENROOM_MAX_FRAME`) or malformed closes only its own connection.
//!
//! greenroom runs on Linux only. The wire protocol, the ledger page and what each bad frame does
//! are described in `docs/PROTOCOL.md` in the repository.

#![deny(missing_docs, missing_debug_implementations)]

mod actor;
mod address;
mod base;
mod core;
mod error;
mod helpers;
mod intern;
// Public for greenroom's own binaries and tests, not part of the API.
#[doc(hidden)]
pub mod logging;
mod message;
mod process;
pub mod protocol;
mod registry;
mod simple;
mod sys;
#[doc(hidden)]
pub mod sysdir;
mod system;
#[doc(hidden)]
pub mod wire;

pub use crate::core::ledger::Ledger;
pub use actor::{Actor, Context, Handled};
pub use address::Address;
pub use error::{Error, Result};
pub use helpers::{Transient, TransientActor, Troupe, TroupeConfig, TroupeMember, TroupeWorker};
pub use message::{
    ActorStatus, ChildExited, ConventionUpdate, DeadEnvelope, ExitReason, ExitRequest, Message,
    Poison, StatusRequest, Wakeup, type_name_of,
};
pub use process::launcher::list_types;
pub use protocol::{MemberInfo, MemberState};
pub use registry::{LIST_TYPES_MAGIC, registered_types};
pub use sys::spawn::signal_name;
pub use system::{ActorSystem, BASE_ENV, Base, SystemConfig, WhenMissing};

/// Running an admin inside a program: what the `greenroom-admin` binary does.
pub mod admin {
    pub use crate::process::admin::{AdminConfig, run};
    pub use crate::process::convention::{ConventionConfig, SECRET_ENV, new_secret};
}

/// Items the [`actors!`] macro expands to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::message::name_messages;
    pub use crate::process::launch::dispatch;
    pub use crate::registry::ActorType;
}
