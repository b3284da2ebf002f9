//! Where a system lives: `$XDG_RUNTIME_DIR/greenroom/NAME`, or `/tmp/greenroom-$UID/NAME` when
//! `XDG_RUNTIME_DIR` is unset (as it is for root in CI). Both the base and the system directory
//! are created with mode 0700, so only the owner can reach the sockets inside.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

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

fn base_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).is_dir() => Path::new(&d).join("greenroom"),
        _ => PathBuf::from(format!("/tmp/greenroom-{}", nix::unistd::getuid())),
    }
}

/// Create `dir` (and its parent) with mode 0700, refusing a directory owned by someone else.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    for d in [dir.parent(), Some(dir)].into_iter().flatten() {
        match fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx(|| format!("creating {}", d.display())),
        }
        let meta = fs::metadata(d).ctx(|| format!("checking {}", d.display()))?;
        if meta.uid() != nix::unistd::getuid().as_raw() {
            return Err(Error::Io {
                context: format!("{} belongs to another user", d.display()),
                source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            });
        }
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(d, fs::Permissions::from_mode(0o700))
                .ctx(|| format!("making {} private", d.display()))?;
        }
    }
    Ok(())
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
