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
//! Those directories are [`PrivateDir`]s. Starting, signalling and reaping processes is in
//! [`spawn`]. No other module of the crate
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

mod private_dir;
mod shm;
pub(crate) mod spawn;

pub(crate) use private_dir::{FileHow, PrivateDir, create_new, open_append, open_read_only};
pub(crate) use shm::SharedWords;

/// This host's name (`unknown` if the kernel will not say).
pub(crate) fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Capabilities greenroom gives every system, read-only: this host's name, OS, architecture
/// and cores, and greenroom's version.
pub(crate) fn own_capabilities() -> std::collections::BTreeMap<String, String> {
    let mut c = std::collections::BTreeMap::new();
    c.insert("greenroom.host".into(), host_name());
    c.insert("greenroom.os".into(), std::env::consts::OS.into());
    c.insert("greenroom.arch".into(), std::env::consts::ARCH.into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    c.insert("greenroom.cores".into(), cores.to_string());
    c.insert("greenroom.version".into(), env!("CARGO_PKG_VERSION").into());
    c
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
