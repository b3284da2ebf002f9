//! greenroom's own messages.

use super::*;

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

/// Delivered to an actor or program that watches its system's convention (see
/// [`Context::watch_convention`](crate::Context::watch_convention)): once per other member
/// when it starts watching, then whenever a member joins (`added`), is lost or leaves (not
/// `added`), or changes its capabilities (`added`, with the new ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConventionUpdate {
    /// The member's address in the convention (`HOST:PORT`).
    pub member: String,
    /// Its system's name.
    pub system: String,
    /// Its capabilities.
    pub capabilities: std::collections::BTreeMap<String, String>,
    /// True if it is (still) a member; false if it has been lost or has left.
    pub added: bool,
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
    /// It ran on another member of the convention, which was lost (its admin died, it shut
    /// down, or it fell silent): whatever became of the actor, it is gone from here.
    HostLost {
        /// The member it ran on (`IP:PORT`).
        member: String,
    },
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Requested => write!(f, "exited on request"),
            ExitReason::Exited { code } => write!(f, "exited with code {code}"),
            ExitReason::Killed { name, signal } => write!(f, "killed by {name} ({signal})"),
            ExitReason::FailedToStart { error } => write!(f, "failed to start: {error}"),
            ExitReason::HostLost { member } => write!(f, "lost with its member {member}"),
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
