//! What every base provides behind [`ActorSystem`](crate::ActorSystem), and how a program says
//! which system to reach and with which base. Below the API (`system`) and beside the two
//! bases (`simple`, `process`), which depend on it and not on each other or on the API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::actor::Spec;
use crate::address::Address;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::protocol::{Envelope, MemberInfo, SystemStatus};
use crate::sysdir;

/// What to do when no admin runs for the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhenMissing {
    /// Start an admin owned by this program (it shuts down when the program's handle goes).
    Start,
    /// Fail with [`Error::NoAdmin`].
    Fail,
}

/// How an admin takes part in a convention (see `greenroom start --help`).
#[derive(Clone, Debug, Default)]
pub struct ConventionConfig {
    /// Where this admin listens for other admins (`HOST:PORT`; port 0 picks a free one). Its
    /// address in the convention is the one bound.
    pub listen: String,
    /// The leaders to link to (`HOST:PORT`); empty, or naming this admin, makes it a leader.
    pub leaders: Vec<String>,
    /// Capabilities of this member (names starting with `greenroom.` are greenroom's own).
    pub capabilities: std::collections::BTreeMap<String, String>,
    /// The shared secret's file (`greenroom secret new PATH` writes one).
    pub secret_file: PathBuf,
    /// Refuse to run binaries fetched from other members (`--accept-binaries none`): an actor
    /// another member asks this one to create must then come from a binary loaded here.
    pub refuse_binaries: bool,
}

/// How to reach a system.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// The system's name (default: `GREENROOM_SYSTEM`, else `default`).
    pub name: String,
    /// What to do if no admin runs.
    pub when_missing: WhenMissing,
    /// The admin program to start when this binary registers no actors (default: the
    /// `greenroom-admin` beside this program, else the one on `PATH`).
    pub admin_binary: Option<PathBuf>,
    /// The system directory, if not the one derived from `name` and `XDG_RUNTIME_DIR` (tests that
    /// run several systems in one process use this).
    pub dir: Option<PathBuf>,
    /// Which base runs the actors; `None` reads `GREENROOM_BASE` (`multiproc`, the default, or
    /// `simple`).
    pub base: Option<Base>,
    /// If this program starts the admin (see `when_missing`), it takes part in this convention
    /// (`greenroom start --listen ...` does the same from the shell). Ignored when an admin
    /// already runs, and by the simple base.
    pub convention: Option<ConventionConfig>,
}

/// Which base runs a system's actors. The actors themselves are the same under both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// One OS process per actor, supervised by an admin process (the default).
    Multiproc,
    /// Every actor inside the calling program, one handler at a time, in the order messages
    /// were produced, with a virtual clock: deterministic, for tests and debugging.
    Simple,
}

/// The environment variable that chooses the base: `multiproc` or `simple`.
pub const BASE_ENV: &str = "GREENROOM_BASE";

impl std::str::FromStr for Base {
    type Err = Error;

    fn from_str(s: &str) -> Result<Base> {
        match s {
            "multiproc" => Ok(Base::Multiproc),
            "simple" => Ok(Base::Simple),
            other => Err(Error::BadBase(other.to_string())),
        }
    }
}

impl Base {
    /// The base named by `GREENROOM_BASE`, or `Multiproc` if it is unset or empty.
    pub fn from_env() -> Result<Base> {
        match std::env::var(BASE_ENV) {
            Ok(v) if !v.is_empty() => v.parse(),
            _ => Ok(Base::Multiproc),
        }
    }
}

/// What each base provides behind [`ActorSystem`].
pub(crate) trait SystemBase {
    fn address(&self) -> &Address;
    fn name(&self) -> &str;
    fn dir(&self) -> &Path;
    fn load(&mut self, path: &Path) -> Result<Vec<String>>;
    fn create(&mut self, type_name: &str, spec: Spec<'_>) -> Result<Address>;
    fn tell_message(&mut self, to: &Address, msg: Message) -> Result<()>;
    /// A fresh id for an ask (see `Message::ask`).
    fn new_ask(&mut self) -> u64;
    /// The first queued (or arriving) message `wanted` accepts; others stay queued.
    fn next_envelope(
        &mut self,
        timeout: Duration,
        wanted: &dyn Fn(&Message) -> bool,
    ) -> Result<Option<Envelope>>;
    fn status(&mut self) -> Result<SystemStatus>;
    /// The members of the system's convention (empty if it is in none).
    fn members(&mut self) -> Result<Vec<MemberInfo>> {
        Ok(Vec::new())
    }
    /// Watch the system's convention (see `Context::watch_convention`).
    fn watch_convention(&mut self, on: bool) -> Result<()> {
        let _ = on;
        Err(Error::NoConvention {
            system: self.name().to_string(),
        })
    }
    /// Set or remove one of the system's capabilities.
    fn set_capability(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        let _ = (key, value);
        Err(Error::NoConvention {
            system: self.name().to_string(),
        })
    }
    fn shutdown(&mut self) -> Result<()>;
}

impl Default for SystemConfig {
    fn default() -> SystemConfig {
        SystemConfig {
            name: sysdir::system_name_from_env(),
            when_missing: WhenMissing::Start,
            admin_binary: None,
            dir: None,
            base: None,
            convention: None,
        }
    }
}
