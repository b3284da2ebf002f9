//! The seam to the operating system for greenroom's files: directories opened and checked
//! without following symbolic links, files created relative to them, and files shared between
//! processes as memory.
//!
//! A system directory lives at a predictable path (`/tmp/greenroom-UID/NAME` when
//! `XDG_RUNTIME_DIR` is unset), so another user can plant a symbolic link or a directory of
//! their own there first. Every directory greenroom creates or cleans is therefore opened with
//! `O_NOFOLLOW | O_DIRECTORY` relative to its already-open parent, checked with `fstat` (owner,
//! mode), and from then on used through its descriptor: stale files are removed with `unlinkat`
//! on it, and cleanup never leaves it.
//!
//! Starting, signalling and reaping processes is in [`spawn`]. No other module of the crate
//! calls the C library directly or contains `unsafe`.

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

mod shm;
pub(crate) mod spawn;

pub(crate) use shm::SharedWords;

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

/// Open an existing file for reading only, never following a link.
pub(crate) fn open_read_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Create a new file (it must not exist) for reading and writing, mode 0600, never following a
/// link.
pub(crate) fn create_new(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// What a descriptor handed over on the command line must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handed {
    /// A listening Unix stream socket.
    Listener,
    /// A connected Unix stream socket.
    Stream,
    /// A regular file.
    File,
}

/// Take ownership of descriptor `fd`, handed to this process by its parent, after checking
/// that it is open and is what it should be; it is made close-on-exec. Call once per
/// descriptor.
pub(crate) fn adopt(fd: i32, what: Handed) -> std::io::Result<OwnedFd> {
    use std::os::fd::{BorrowedFd, FromRawFd};
    let bad = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("descriptor {fd} {why}"),
        )
    };
    // SAFETY: F_GETFD on any number only reads the descriptor table.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(bad("is not open"));
    }
    // SAFETY: the descriptor is open (checked above) and stays so while borrowed here.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match what {
        Handed::File => {
            let st = fstat(borrowed)?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(bad("is not a regular file"));
            }
        }
        Handed::Listener | Handed::Stream => {
            use nix::sys::socket::{getsockopt, sockopt};
            let listening =
                getsockopt(&borrowed, sockopt::AcceptConn).map_err(|_| bad("is not a socket"))?;
            if listening != (what == Handed::Listener) {
                return Err(bad(if listening {
                    "is a listening socket, not a connection"
                } else {
                    "is not a listening socket"
                }));
            }
        }
    }
    nix::fcntl::fcntl(
        borrowed,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    // SAFETY: the parent handed this descriptor to this process for it to own; it is checked
    // to be open, and callers adopt each descriptor once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// True if the other end of `stream` has closed it (read would return end of file) or it has
/// failed; false if it is open, with or without bytes waiting.
pub(crate) fn peer_closed(stream: &impl AsFd) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    match recv(
        stream.as_fd().as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(0) => true,
        Ok(_) => false,
        Err(Errno::EAGAIN) | Err(Errno::EINTR) => false,
        Err(_) => true,
    }
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

/// Connect to the Unix stream socket at `path` without waiting: a listener whose backlog of
/// unaccepted connections is full gives [`std::io::ErrorKind::WouldBlock`] at once, where a
/// plain `connect` would wait until it accepts. The stream returned is blocking.
pub(crate) fn connect_now(path: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let addr = UnixAddr::new(path).map_err(std::io::Error::from)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    use std::os::fd::AsRawFd;
    connect(fd.as_raw_fd(), &addr)?;
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Name this process `name` (its first 15 bytes) where `ps -e`, `top` and `pgrep` look (the
/// kernel's `comm`); its command line is left as it is.
pub(crate) fn set_process_name(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    bytes.push(0);
    if let Ok(name) = std::ffi::CStr::from_bytes_with_nul(&bytes) {
        let _ = nix::sys::prctl::set_name(name);
    }
}

/// The user this process runs as.
pub(crate) fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The pid of the process at the other end of a Unix socket (`SO_PEERCRED`).
pub(crate) fn peer_pid(socket: &impl AsFd) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(socket, PeerCredentials)
        .ok()
        .and_then(|c| u32::try_from(c.pid()).ok())
}

/// An exclusive lock on a file, held until dropped (`flock`).
pub(crate) struct FileLock(
    #[expect(dead_code, reason = "held for its Drop, which unlocks")] nix::fcntl::Flock<File>,
);

/// Take an exclusive lock on `file` without waiting; `None` if another process holds one.
pub(crate) fn try_lock(file: File) -> Option<FileLock> {
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .ok()
        .map(FileLock)
}

#[cfg(test)]
mod tests;
