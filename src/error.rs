//! Errors of the greenroom library: one enum, one `Result` alias.

use std::io;
use std::path::PathBuf;

use crate::address::Address;

/// What went wrong in a greenroom operation. Every message says what to do about it.
///
/// `Debug` prints the same message as `Display`, so that `main` returning this error shows the
/// message rather than the variant.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No admin answers on the system's control socket, and none could be started.
    #[error(
        "no greenroom admin is running for system '{system}' (looked for {socket}); start one with `greenroom start --system {system}` or `greenroom-admin --system {system}`"
    )]
    NoAdmin {
        /// The system's name.
        system: String,
        /// The control socket that was tried.
        socket: PathBuf,
    },
    /// An admin for this system already runs (returned when starting a second one).
    #[error(
        "a greenroom admin for system '{system}' is already running (pid file {pidfile}); stop it with `greenroom shutdown --system {system}` or use another --system name"
    )]
    AlreadyRunning {
        /// The system's name.
        system: String,
        /// The admin's pid file.
        pidfile: PathBuf,
    },
    /// The admin is shutting down and refuses new work.
    #[error("the greenroom admin is shutting down; wait for it to finish, then start a new one")]
    ShuttingDown,
    /// The requested actor type is not provided by any loaded binary (or not by the binary
    /// named). The same error on both bases.
    #[error("unknown actor type '{type_name}'{}{}; load the binary that provides it with `greenroom load PATH`, or pass `--binary PATH`", in_binary(.binary), known_list(.known))]
    UnknownType {
        /// The requested type name.
        type_name: String,
        /// The types known: those of `binary` if one was named, else of every loaded binary.
        known: Vec<String>,
        /// The binary named in the request, if any.
        binary: Option<PathBuf>,
    },
    /// A path given as an actor binary is not one.
    #[error(
        "{path} is not a greenroom actor binary: {why}; build it with `greenroom::actors!(...)` at the top of `main`"
    )]
    NotActorBinary {
        /// The path.
        path: PathBuf,
        /// Why it was refused.
        why: String,
    },
    /// The target of a message has exited (or never existed).
    #[error(
        "actor {0} is not running (it has exited or never existed); check `greenroom status` for live actors"
    )]
    DeadActor(Address),
    /// An address string did not parse.
    #[error(
        "'{text}' is not a greenroom address ({why}); addresses look like `7@/run/user/1000/greenroom/default`, as printed by `greenroom create`"
    )]
    BadAddress {
        /// The text that was given.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// A directory greenroom would create or use is not safely its own: a symbolic link, a
    /// directory of another user, or one others may write to.
    #[error(
        "refusing to use {path}: {why}; remove it, or choose another place with XDG_RUNTIME_DIR or --dir"
    )]
    UnsafeDirectory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A system name is not usable as a directory name.
    #[error(
        "'{0}' is not a valid system name; use letters, digits, '-', '_' and '.', not starting with '.'"
    )]
    BadSystemName(String),
    /// `GREENROOM_BASE` (or a base name) is not one greenroom knows.
    #[error(
        "'{0}' is not a greenroom base; set GREENROOM_BASE to 'multiproc' (the default) or 'simple'"
    )]
    BadBase(String),
    /// A frame was longer than the configured limit.
    #[error(
        "frame of {len} bytes exceeds the limit of {limit} bytes; send smaller messages or raise GREENROOM_MAX_FRAME"
    )]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// A value could not be encoded as MessagePack (the serialiser's error is the source).
    #[error("could not encode message: {0}")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A frame or message body could not be decoded.
    #[error("could not decode {what}: {why}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The decoder's complaint.
        why: String,
    },
    /// The admin answered a request with an error.
    #[error("admin refused: {0}")]
    Admin(String),
    /// A convention setting is unusable (a secret file, an address to listen on or to join);
    /// the text says what to do.
    #[error("convention: {why}")]
    Convention {
        /// What is wrong, and the fix.
        why: String,
    },
    /// No system can run the actor: its requirements are not met.
    #[error(
        "no system has what the actor requires: {}; give a member the capability (`greenroom capability set KEY VALUE`, or `--capability KEY=VALUE` at start)", .unmet.join(", ")
    )]
    NoCompatibleSystem {
        /// Each unmet requirement, `KEY=VALUE`, with what this system has instead.
        unmet: Vec<String>,
    },
    /// The system is not a member of a convention.
    #[error(
        "system '{system}' is not in a convention; start its admin with `greenroom start --listen HOST:PORT --secret-file PATH`"
    )]
    NoConvention {
        /// The system's name.
        system: String,
    },
    /// The admin closed the control connection before answering.
    #[error(
        "the admin closed the connection before answering (it may be shutting down or have died); check it with `greenroom status`"
    )]
    AdminClosed,
    /// The peer broke the protocol (an unexpected reply).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The admin did not answer in time.
    #[error(
        "timed out after {0:?} waiting for the admin; check that it is alive with `greenroom status`"
    )]
    Timeout(std::time::Duration),
    /// An [`ask`](crate::ActorSystem::ask) got no answer in time.
    #[error(
        "actor {to} did not answer within {waited:?}: it may be busy or stuck (check it with `greenroom status {to}`), or it does not answer this message"
    )]
    NoReply {
        /// The actor asked.
        to: Address,
        /// How long the ask waited.
        waited: std::time::Duration,
    },
    /// The answer to an [`ask_as`](crate::ActorSystem::ask_as) was a `Poison`: the actor could
    /// not handle the request.
    #[error("the actor could not handle the request: {details}")]
    Poisoned {
        /// Why (the `Poison`'s details).
        details: String,
        /// True if the actor died while handling it, so it may have been handled after all.
        possibly_handled: bool,
    },
    /// A send waited for its receiver to take what was already sent to it, in vain.
    #[error(
        "actor {to} took nothing sent to it for {waited:?}: it is stuck or far behind; the message was not sent (try again later, or check the actor with `greenroom status`)"
    )]
    Backpressure {
        /// The receiver.
        to: Address,
        /// How long the send waited.
        waited: std::time::Duration,
    },
    /// An actor sent itself more than its queue holds (64 MiB of messages it has not handled).
    #[error(
        "this actor has sent itself more than 64 MiB of messages it has not handled yet; handle some before sending more"
    )]
    SelfBacklog,
    /// The system ran out of something greenroom needed: open files, memory or processes.
    #[error("{context}: {source}; {fix}")]
    Exhausted {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
        /// What to do about it.
        fix: &'static str,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn in_binary(binary: &Option<PathBuf>) -> String {
    binary
        .as_ref()
        .map(|b| format!(" in {}", b.display()))
        .unwrap_or_default()
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (no actor binaries are loaded)".to_string()
    } else {
        format!(" (known types: {})", known.join(", "))
    }
}

impl Error {
    /// The error to report for an OS error that means the system ran out of something, or
    /// `None` for any other.
    pub(crate) fn exhausted(context: &str, e: &io::Error) -> Option<Error> {
        let fix = match e.raw_os_error()? {
            libc::EMFILE | libc::ENFILE => {
                "too many files are open: raise the limit (`ulimit -n`) or end some actors"
            }
            libc::ENOMEM | libc::ENOBUFS => "memory is short: end some actors or add memory",
            libc::ENOSPC => "the disk is full: free some space",
            _ => return None,
        };
        Some(Error::Exhausted {
            context: context.to_string(),
            source: io::Error::from_raw_os_error(e.raw_os_error()?),
            fix,
        })
    }
}

/// The result type of greenroom operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a description of the operation to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| {
            let context = context();
            Error::exhausted(&context, &source).unwrap_or(Error::Io { context, source })
        })
    }
}
