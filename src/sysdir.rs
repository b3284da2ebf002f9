//! Where a system lives: `$XDG_RUNTIME_DIR/greenroom/NAME`, or `/dev/shm/greenroom-$UID/NAME`
//! when `XDG_RUNTIME_DIR` is unset (as it is for root in CI), or `/tmp/greenroom-$UID/NAME`
//! without `/dev/shm`. Both the base and the system directory are created with mode 0700, so
//! only the owner can reach the sockets inside.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub(crate) use crate::sys::{FileHow, PrivateDir};

/// The environment variable naming the system when `--system` is not given.
pub const SYSTEM_ENV: &str = "GREENROOM_SYSTEM";

/// The system name used when none is given.
pub const DEFAULT_SYSTEM: &str = "default";

/// The system name from `GREENROOM_SYSTEM`, else `default`.
pub fn system_name_from_env() -> String {
    std::env::var(SYSTEM_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SYSTEM.to_string())
}

/// Check that `name` can be used as a directory name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadSystemName(name.to_string()))
    }
}

/// The directory of system `name` (not created).
pub fn system_dir(name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    Ok(base_dir().join(name))
}

/// Where systems live: `$XDG_RUNTIME_DIR/greenroom`, else `/dev/shm/greenroom-UID`, else
/// `/tmp/greenroom-UID`. Memory-backed places come first: every actor's ledger page is a file
/// there, written for every message, which a disk would only slow down.
fn base_dir() -> PathBuf {
    let uid = crate::sys::uid();
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).is_dir() => Path::new(&d).join("greenroom"),
        _ if Path::new("/dev/shm").is_dir() => PathBuf::from(format!("/dev/shm/greenroom-{uid}")),
        _ => PathBuf::from(format!("/tmp/greenroom-{uid}")),
    }
}

/// Create `dir` (and its parent) with mode 0700, or open them if they exist, without following
/// symbolic links; refuse a directory that is not safely this user's own (see
/// [`Error::UnsafeDirectory`]).
pub(crate) fn create_private_dir(dir: &Path) -> Result<PrivateDir> {
    PrivateDir::open(dir)
}

/// The admin's control socket in a system directory.
pub fn admin_socket(dir: &Path) -> PathBuf {
    dir.join("admin.sock")
}

/// The admin's pid file in a system directory.
pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("admin.pid")
}

/// The lock the running admin holds in a system directory.
pub fn lock_file(dir: &Path) -> PathBuf {
    dir.join("admin.lock")
}

/// The log file of an admin started in the background.
pub fn log_file(dir: &Path) -> PathBuf {
    dir.join("admin.log")
}

/// Create the system directory `dir` safely if needed (see [`Error::UnsafeDirectory`]), and open
/// its `admin.log` for appending: where an admin started in the background writes.
pub fn open_admin_log(dir: &Path) -> Result<std::fs::File> {
    create_private_dir(dir)?.file("admin.log", FileHow::Append)
}
