//! How an admin is set up: [`AdminConfig`], and the command line of an embedded admin.

use std::path::PathBuf;
use std::time::Duration;

use super::run;
use crate::error::Error;
use crate::process::convention::ConventionConfig;
use crate::{sysdir, wire};

/// How an admin is set up. Build it with [`AdminConfig::new`] and change the fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The system's name.
    pub system: String,
    /// If true, the admin shuts down when its owner (the first client that says so) disconnects.
    pub owned: bool,
    /// How long shutdown waits for actors to honour `ExitRequest` before SIGTERM.
    pub exit_grace: Duration,
    /// The largest frame accepted.
    pub max_frame: usize,
    /// The system directory, if not the one derived from the name and `XDG_RUNTIME_DIR`.
    pub dir: Option<PathBuf>,
    /// Take part in a convention of admins (on this host or others), as this says.
    pub convention: Option<ConventionConfig>,
}

impl AdminConfig {
    /// Defaults for system `name`: not owned, 3 s exit grace, frame limit from the environment.
    pub fn new(name: &str) -> AdminConfig {
        AdminConfig {
            system: name.to_string(),
            owned: false,
            exit_grace: Duration::from_millis(
                std::env::var("GREENROOM_EXIT_GRACE_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .filter(|&ms: &u64| ms <= MAX_EXIT_GRACE_MS)
                    .unwrap_or(3000),
            ),
            max_frame: wire::max_frame_from_env(),
            dir: None,
            convention: None,
        }
    }
}

/// The longest exit grace accepted (an hour); longer values are refused by `greenroom-admin`
/// and ignored in the environment of an embedded admin.
const MAX_EXIT_GRACE_MS: u64 = 3_600_000;

/// Entry point of an embedded admin (`BINARY --greenroom-admin --system NAME [--dir DIR]
/// [--owned] [--listen HOST:PORT --secret-file PATH [--convention LEADERS]...
/// [--capability KEY=VALUE]...]`).
pub(crate) fn main_from_args(args: &[String]) -> i32 {
    let mut cfg = AdminConfig::new(&sysdir::system_name_from_env());
    let (mut listen, mut secret, mut leaders, mut caps) = (None, None, Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--system" => cfg.system = it.next().cloned().unwrap_or_default(),
            "--owned" => cfg.owned = true,
            "--dir" => cfg.dir = it.next().map(PathBuf::from),
            "--listen" => listen = it.next().cloned(),
            "--secret-file" => secret = it.next().map(PathBuf::from),
            "--convention" => leaders.extend(it.next().cloned()),
            "--capability" => caps.extend(it.next().cloned()),
            other => {
                eprintln!("greenroom admin: unknown argument {other}");
                return 2;
            }
        }
    }
    cfg.convention =
        match ConventionConfig::from_flags(listen.as_deref(), &leaders, &caps, secret.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("greenroom admin: {e}");
                return 2;
            }
        };
    match run(cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("greenroom admin: {e}");
            if matches!(e, Error::AlreadyRunning { .. }) {
                4
            } else {
                1
            }
        }
    }
}
