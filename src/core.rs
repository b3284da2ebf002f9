//! The semantics both bases share, free of I/O.
//!
//! The process base (an actor runtime per process, an admin) and the simple base (every actor
//! in the calling program) drive the same pieces and carry out what they decide:
//!
//! - [`cell`]: one actor as the framework sees it: its parent, children and timers, the
//!   framework's part of receiving a message (status requests are answered here, `ChildExited`
//!   updates the children), and what an `ExitRequest` leads to.
//! - [`stage`]: the sequence around the handler, the same for every base: starting an actor,
//!   handing it one message (the count, the ask its sends answer, the `Poison` of a failed
//!   handler, what an exit leads to), and returning what an actor that could not start was sent.
//! - [`handler`]: calling the user's code: the handler with its retry and `Poison`, the
//!   lifecycle hooks, panics caught.
//! - [`directory`]: what a system knows besides its actors: global names, the dead-letter
//!   handler, and what becomes of a message whose target is not running.
//! - [`ledger`]: the accounting: every message whose send returned `Ok` ends handled,
//!   poisoned, dead-lettered or dropped, and the counts say so.
//! - [`placement`]: requirements an actor is created with, against a system's capabilities.
//! - [`timers`]: pending `wakeup_after` timers, earliest first, for either kind of clock.

pub(crate) mod cell;
pub(crate) mod directory;
pub(crate) mod handler;
pub(crate) mod ledger;
pub(crate) mod placement;
pub(crate) mod stage;
pub(crate) mod timers;
