//! The seam to the operating system for greenroom's files: directories opened and checked
//! without following symbolic links, and files created relative to them.
//!
//! A system directory lives at a predictable path (`/tmp/greenroom-UID/NAME` when
//! `XDG_RUNTIME_DIR` is unset), so another user can plant a symbolic link or a directory of
//! their own there first. Every directory greenroom creates or cleans is therefore opened with
//! `O_NOFOLLOW | O_DIRECTORY` relative to its already-open parent, checked with `fstat` (owner,
//! mode), and from then on used through its descriptor: stale files are removed with `unlinkat`
//! on it, and cleanup never leaves it.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{Mode, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::error::{Error, Result};

/// A directory of greenroom's own, opened without following links and checked: it is a real
/// directory, owned by this user, with mode 0700; its parent cannot be swapped by another user.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    path: PathBuf,
    fd: OwnedFd,
    parent: OwnedFd,
}

fn unsafe_dir(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::UnsafeDirectory {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

fn os(path: &Path, what: &str, e: Errno) -> Error {
    Error::Io {
        context: format!("{what} {}", path.display()),
        source: e.into(),
    }
}

/// Open `name` in `parent` as a directory, creating it with mode 0700 if it is missing, never
/// following a symbolic link.
fn open_child_dir(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<OwnedFd> {
    match mkdirat(parent, name, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(os(path, "creating", e)),
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        // With O_DIRECTORY, Linux reports a link as "not a directory": say which it is.
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            let link = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
            Err(unsafe_dir(
                path,
                if link {
                    "it is a symbolic link, where greenroom expects its own directory"
                } else {
                    "it is not a directory"
                },
            ))
        }
        Err(e) => Err(os(path, "opening", e)),
    }
}

impl PrivateDir {
    /// Open (creating if needed) `path` and its parent as greenroom's own directories.
    ///
    /// The parent (for example `/tmp/greenroom-0`) must be a real directory owned by this user
    /// or by root, and not writable by others unless sticky (as `/tmp` is). `path` itself must be
    /// a real directory owned by this user; if its mode lets others in, it is made 0700 through
    /// its descriptor. Anything else is refused with [`Error::UnsafeDirectory`].
    pub(crate) fn open(path: &Path) -> Result<PrivateDir> {
        let (grand, parent_name, parent_path) = split(path)
            .and_then(|(parent, _)| split(parent).map(|(g, n)| (g, n, parent)))
            .ok_or_else(|| unsafe_dir(path, "it needs an absolute path with two parents"))?;
        let name = path.file_name().expect("checked by split");
        let grand = nix::fcntl::open(
            grand,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os(grand, "opening", e))?;
        let parent = open_child_dir(&grand, parent_name, parent_path)?;
        let me = nix::unistd::getuid().as_raw();
        let st = fstat(&parent).map_err(|e| os(parent_path, "checking", e))?;
        if st.st_uid != me && st.st_uid != 0 {
            return Err(unsafe_dir(
                parent_path,
                format_args!("it belongs to user {}, not to you", st.st_uid),
            ));
        }
        if st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0 {
            return Err(unsafe_dir(
                parent_path,
                "others may write to it (and it is not sticky), so they could replace what is inside",
            ));
        }
        let fd = open_child_dir(&parent, name, path)?;
        let st = fstat(&fd).map_err(|e| os(path, "checking", e))?;
        if st.st_uid != me {
            return Err(unsafe_dir(
                path,
                format_args!("it belongs to user {}, not to you", st.st_uid),
            ));
        }
        if st.st_mode & 0o077 != 0 {
            fchmod(&fd, Mode::S_IRWXU).map_err(|e| os(path, "making private", e))?;
        }
        Ok(PrivateDir {
            path: path.to_path_buf(),
            fd,
            parent,
        })
    }

    /// The directory's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Open file `name` inside the directory, never following a link: `create` makes it if
    /// missing (mode 0600), `append` writes at the end, `truncate` empties it.
    pub(crate) fn file(&self, name: &str, how: FileHow) -> Result<File> {
        let mut flags = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_CREAT;
        flags |= match how {
            FileHow::Append => OFlag::O_WRONLY | OFlag::O_APPEND,
            FileHow::Truncate => OFlag::O_WRONLY | OFlag::O_TRUNC,
            FileHow::ReadWrite => OFlag::O_RDWR,
        };
        let path = self.path.join(name);
        openat(&self.fd, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map(File::from)
            .map_err(|e| os(&path, "opening", e))
    }

    /// Open (creating, mode 0600) file `name` beside the directory, in its parent, for reading
    /// and writing, never following a link; refuse a file another user owns.
    pub(crate) fn sibling_file(&self, name: &str) -> Result<File> {
        let path = self.path.with_file_name(name);
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.parent, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|e| os(&path, "opening", e))?;
        let st = fstat(&fd).map_err(|e| os(&path, "checking", e))?;
        if st.st_uid != nix::unistd::getuid().as_raw() || st.st_mode & 0o022 != 0 {
            return Err(unsafe_dir(&path, "it is not a private file of yours"));
        }
        Ok(File::from(fd))
    }

    /// Remove the files in the directory whose names `stale` picks (not directories, and not
    /// anything outside it).
    pub(crate) fn remove_files(&self, stale: impl Fn(&str) -> bool) {
        for name in self.names() {
            if stale(&name) {
                let _ = unlinkat(&self.fd, name.as_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }

    /// The names in the directory.
    fn names(&self) -> Vec<String> {
        let Ok(fd) = self.fd.try_clone() else {
            return Vec::new();
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(fd) else {
            return Vec::new();
        };
        dir.iter()
            .flatten()
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n != "." && n != "..")
            .collect()
    }

    /// Remove every file in the directory, then the directory itself.
    pub(crate) fn remove(self) {
        self.remove_files(|_| true);
        if let Some(name) = self.path.file_name() {
            let _ = unlinkat(&self.parent, name, UnlinkatFlags::RemoveDir);
        }
    }
}

/// How [`PrivateDir::file`] opens a file.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FileHow {
    Append,
    Truncate,
    ReadWrite,
}

/// Make a descriptor non-blocking.
pub(crate) fn set_nonblocking(fd: &impl AsFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, fcntl};
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL)?;
    fcntl(
        fd.as_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Wait until `fd` is readable (or has ended), or `timeout` passes.
pub(crate) fn wait_readable(fd: &impl AsFd, timeout: std::time::Duration) {
    wait_for(fd, PollFlags::POLLIN, timeout);
}

/// Wait until `fd` is writable (or has failed), or `timeout` passes.
pub(crate) fn wait_writable(fd: &impl AsFd, timeout: std::time::Duration) {
    wait_for(fd, PollFlags::POLLOUT, timeout);
}

fn wait_for(fd: &impl AsFd, events: PollFlags, timeout: std::time::Duration) {
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(fd.as_fd(), events)];
    let _ = poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    );
}

/// `path`'s parent and last component, if it is absolute and has both.
fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    if !path.is_absolute() || path.as_os_str().as_bytes().ends_with(b"/..") {
        return None;
    }
    Some((path.parent()?, path.file_name()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn creates_both_levels_private_and_cleans_up_inside_only() {
        let t = tmp();
        let dir = t.path().join("base").join("sys");
        let d = PrivateDir::open(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::io::Write::write_all(&mut d.file("a.sock", FileHow::Truncate).unwrap(), b"x").unwrap();
        let outside = t.path().join("victim.sock");
        std::fs::write(&outside, b"keep").unwrap();
        symlink(&outside, dir.join("link.sock")).unwrap();
        d.remove_files(|n| n.ends_with(".sock"));
        assert!(outside.exists(), "a file outside the directory was removed");
        assert!(!dir.join("a.sock").exists() && !dir.join("link.sock").exists());
        d.remove();
        assert!(!dir.exists() && t.path().join("base").exists());
    }

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched() {
        let t = tmp();
        let target = t.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::create_dir(t.path().join("base")).unwrap();
        // The system directory is a link...
        symlink(&target, t.path().join("base").join("sys")).unwrap();
        let e = PrivateDir::open(&t.path().join("base").join("sys")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // ...or the base directory is.
        symlink(&target, t.path().join("base2")).unwrap();
        let e = PrivateDir::open(&t.path().join("base2").join("sys")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777, "the link's target was chmodded");
        assert!(!target.join("sys").exists());
    }

    #[test]
    fn a_parent_others_can_write_to_is_refused() {
        let t = tmp();
        let base = t.path().join("open");
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = PrivateDir::open(&base.join("sys")).unwrap_err();
        assert!(e.to_string().contains("others may write"), "{e}");
        // Sticky, as /tmp is: fine.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o1777)).unwrap();
        PrivateDir::open(&base.join("sys")).unwrap().remove();
    }

    #[test]
    fn a_file_that_is_a_link_is_not_followed() {
        let t = tmp();
        let d = PrivateDir::open(&t.path().join("b").join("s")).unwrap();
        let outside = t.path().join("secret");
        std::fs::write(&outside, b"keep").unwrap();
        symlink(&outside, d.path().join("system.log")).unwrap();
        assert!(d.file("system.log", FileHow::Append).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }
}
