//! Ready-made actor shapes: a [`Troupe`] of workers behind one address, and a [`Transient`]
//! actor that exits by itself. Both wrap an actor type of yours and run on either base.
//!
//! ```no_run
//! use std::time::Duration;
//! use greenroom::{Actor, Context, Handled, Message, Transient, TransientActor, Troupe,
//!     TroupeMember, TroupeWorker};
//!
//! #[derive(Default)]
//! struct Resize;
//!
//! impl Actor for Resize {
//!     fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
//!         // ctx.sender() is whoever sent the work to the troupe.
//!         ctx.reply(&format!("resized {}", msg.decode::<String>()?))?;
//!         Ok(())
//!     }
//! }
//!
//! impl TroupeWorker for Resize {
//!     const MAX_WORKERS: usize = 8;
//! }
//!
//! #[derive(Default)]
//! struct Session;
//!
//! impl Actor for Session {
//!     fn receive(&mut self, _msg: &Message, _ctx: &mut Context<'_>) -> Handled {
//!         Ok(())
//!     }
//! }
//!
//! impl TransientActor for Session {
//!     const LIFETIME: Duration = Duration::from_secs(30);
//! }
//!
//! fn main() {
//!     // The troupe's manager and its members are both actor types to register.
//!     greenroom::actors!(Troupe<Resize>, TroupeMember<Resize>, Transient<Session>);
//! }
//! ```

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actor::{Actor, Context, Handled};
use crate::address::Address;
use crate::core::handler::invoke;
use crate::message::{ChildExited, ExitRequest, Message, Poison, Wakeup};

/// An actor type that can work in a [`Troupe`].
pub trait TroupeWorker: Actor + Default {
    /// The most workers the troupe runs at once.
    const MAX_WORKERS: usize = 4;

    /// True while the work handed to this worker is not finished although its handler has
    /// returned: it passed the work on (to a child, say) and waits for the answer. The member
    /// then stays busy (it gets no new work and is not retired) until a later message leaves
    /// this false. Thespian's `troupe_work_in_progress`. False unless overridden.
    fn work_in_progress(&self) -> bool {
        false
    }
}

/// Start arguments of a [`Troupe`], to size it by value rather than by type:
/// `create_actor_with::<Troupe<W>, _>(&TroupeConfig { max_workers: 8 })`. Without them the
/// troupe runs at most [`TroupeWorker::MAX_WORKERS`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct TroupeConfig {
    /// The most workers the troupe runs at once (at least one).
    pub max_workers: usize,
}

/// A piece of work handed from a troupe's manager to one of its members.
#[derive(Serialize, Deserialize)]
struct TroupeTask {
    sender: Address,
    msg: Message,
}

/// A member tells its manager it is free again.
#[derive(Serialize, Deserialize)]
struct TroupeDone {}

/// The manager of a troupe of `W` workers: one address for all of them.
///
/// Each message it receives goes to an idle member, created on demand up to
/// [`TroupeWorker::MAX_WORKERS`]; when all are busy, messages wait in the order they came. The
/// member's handler sees the original sender, so replies go straight back to it. A member that
/// finishes while nothing waits is retired if another member is already idle. If a member dies
/// while working, its message goes back to the sender as [`Poison`]. Register both
/// `Troupe<W>` and `TroupeMember<W>`.
pub struct Troupe<W> {
    idle: Vec<Address>,
    busy: HashMap<Address, TroupeTask>,
    waiting: VecDeque<TroupeTask>,
    /// Set from its [`TroupeConfig`], if it was created with one.
    max_workers: Option<usize>,
    _worker: PhantomData<fn() -> W>,
}

impl<W> std::fmt::Debug for Troupe<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Troupe")
            .field("idle", &self.idle.len())
            .field("busy", &self.busy.len())
            .finish_non_exhaustive()
    }
}

impl<W> Default for Troupe<W> {
    fn default() -> Self {
        Troupe {
            idle: Vec::new(),
            busy: HashMap::new(),
            waiting: VecDeque::new(),
            max_workers: None,
            _worker: PhantomData,
        }
    }
}

impl<W: TroupeWorker> Troupe<W> {
    fn hand_to(&mut self, member: Address, task: TroupeTask, ctx: &mut Context<'_>) -> Handled {
        ctx.send(&member, &task)?;
        self.busy.insert(member, task);
        Ok(())
    }
}

impl<W: TroupeWorker> Actor for Troupe<W> {
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.max_workers = ctx.start_args::<TroupeConfig>()?.map(|c| c.max_workers);
        Ok(())
    }

    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if msg.is::<TroupeDone>() {
            let member = ctx.sender();
            self.busy.remove(&member);
            if let Some(task) = self.waiting.pop_front() {
                return self.hand_to(member, task, ctx);
            }
            if self.idle.is_empty() {
                self.idle.push(member);
            } else {
                ctx.send(&member, &ExitRequest::default())?;
            }
            return Ok(());
        }
        if let Some(exited) = msg.get::<ChildExited>() {
            self.idle.retain(|m| *m != exited.child);
            if let Some(task) = self.busy.remove(&exited.child) {
                // The member held the work when it ended: it may have done some or all of it.
                let poison = Poison {
                    original: task.msg,
                    details: format!("troupe member {} {}", exited.child, exited.reason),
                    possibly_handled: !matches!(
                        exited.reason,
                        crate::ExitReason::FailedToStart { .. }
                    ),
                };
                ctx.send(&task.sender, &poison)?;
            }
            return Ok(());
        }
        if msg.is_system() {
            return Ok(());
        }
        let task = TroupeTask {
            sender: ctx.sender(),
            msg: msg.clone(),
        };
        if let Some(member) = self.idle.pop() {
            self.hand_to(member, task, ctx)
        } else if self.busy.len() < self.max_workers.unwrap_or(W::MAX_WORKERS).max(1) {
            let member = ctx.create_actor::<TroupeMember<W>>()?;
            self.hand_to(member, task, ctx)
        } else {
            self.waiting.push_back(task);
            Ok(())
        }
    }
}

/// A member of a [`Troupe`]: runs a `W` on the work its manager hands it.
#[derive(Debug)]
pub struct TroupeMember<W> {
    inner: W,
    /// The manager to tell once the worker's work in progress is finished.
    owes_done: Option<Address>,
}

impl<W: Default> Default for TroupeMember<W> {
    fn default() -> Self {
        TroupeMember {
            inner: W::default(),
            owes_done: None,
        }
    }
}

impl<W: TroupeWorker> Actor for TroupeMember<W> {
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.inner.started(ctx)
    }

    fn stopping(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.inner.stopping(ctx)
    }

    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        let Some(task) = msg.get::<TroupeTask>() else {
            let handled = self.inner.receive(msg, ctx);
            // An answer to work it passed on may have finished it.
            if !self.inner.work_in_progress()
                && let Some(manager) = self.owes_done.take()
            {
                ctx.send(&manager, &TroupeDone {})?;
            }
            return handled;
        };
        // The work is handled as if the original sender had sent it here (with the usual retry),
        // and a failure goes back to that sender, not to the manager.
        if let Some(poison) = invoke(&mut self.inner, &mut *ctx.ops, &task.sender, &task.msg) {
            ctx.send(&task.sender, &poison)?;
        }
        let manager = ctx.sender();
        if self.inner.work_in_progress() {
            self.owes_done = Some(manager);
        } else {
            ctx.send(&manager, &TroupeDone {})?;
        }
        Ok(())
    }
}

/// An actor type that can live as a [`Transient`].
pub trait TransientActor: Actor + Default {
    /// How long the actor lives, unless [`lifetime`](Self::lifetime) says otherwise.
    const LIFETIME: Duration;
    /// Count the lifetime from the last message (`true`, the default) or from the first.
    const SINCE_LAST: bool = true;

    /// How long this actor lives: [`LIFETIME`](Self::LIFETIME) unless overridden, say with a
    /// value from its start arguments (read in `started`, which runs first).
    fn lifetime(&self) -> Duration {
        Self::LIFETIME
    }

    /// Whether the lifetime counts from the last message: [`SINCE_LAST`](Self::SINCE_LAST)
    /// unless overridden.
    fn since_last(&self) -> bool {
        Self::SINCE_LAST
    }
}

/// The timer a [`Transient`] sets for itself.
#[derive(Serialize, Deserialize)]
struct TransientTimeout {
    generation: u64,
}

/// An `A` that exits by itself [`TransientActor::lifetime`] after its first or its last message
/// (its parent then receives `ChildExited` with reason `Requested`). System messages do not
/// count as messages here.
#[derive(Debug)]
pub struct Transient<A> {
    inner: A,
    generation: u64,
}

impl<A: Default> Default for Transient<A> {
    fn default() -> Self {
        Transient {
            inner: A::default(),
            generation: 0,
        }
    }
}

impl<A: TransientActor> Actor for Transient<A> {
    fn started(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.inner.started(ctx)
    }

    fn stopping(&mut self, ctx: &mut Context<'_>) -> Handled {
        self.inner.stopping(ctx)
    }

    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if let Some(wakeup) = msg.get::<Wakeup>()
            && wakeup.payload.is::<TransientTimeout>()
        {
            let timeout: TransientTimeout = wakeup.payload.decode()?;
            if timeout.generation == self.generation {
                let me = ctx.my_address().clone();
                ctx.send(&me, &ExitRequest::default())?;
            }
            return Ok(());
        }
        if !msg.is_system() && (self.inner.since_last() || self.generation == 0) {
            self.generation += 1;
            let timeout = TransientTimeout {
                generation: self.generation,
            };
            ctx.wakeup_after(self.inner.lifetime(), &timeout)?;
        }
        self.inner.receive(msg, ctx)
    }
}
