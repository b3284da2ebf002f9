//! The seam to the OS for starting and ending actor processes.
//!
//! Actors are started with fork+exec, not a bare fork: exec gives a clean process (no inherited
//! threads, signal handlers, logger or heap), and it is the only way to run actor types that live
//! in other binaries. `std::process::Command` does the fork and exec; the `pre_exec` hook only
//! calls async-signal-safe functions (`fcntl`, `prctl`, `getppid`).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Start `binary` with `args`, handing it the descriptors in `keep` (they stay open across exec;
/// everything else is close-on-exec). The child is killed by the kernel if the calling process
/// dies. Returns the child's pid; the caller reaps it.
pub(crate) fn spawn(binary: &str, args: &[String], keep: &[&dyn AsRawFd]) -> io::Result<u32> {
    let keep: Vec<RawFd> = keep.iter().map(|f| f.as_raw_fd()).collect();
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(binary);
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: the hook runs between fork and exec and calls only async-signal-safe functions.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The admin may have died between fork and prctl: then no signal would come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    // The Child handle is dropped without waiting: the admin's reaper owns every child.
    let child = cmd.spawn()?;
    Ok(child.id())
}

/// How a reaped child ended.
pub(crate) enum Reaped {
    Exited(i32),
    Signaled(i32),
}

/// Reap every child that has ended, without blocking. SIGCHLD signals merge, so this loops
/// until the kernel says no more.
pub(crate) fn reap_all() -> Vec<(u32, Reaped)> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                out.push((pid.as_raw() as u32, Reaped::Exited(code)))
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                out.push((pid.as_raw() as u32, Reaped::Signaled(sig as i32)))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return out,
            Ok(_) => {}
        }
    }
}

/// Send `signal` to a process this process started.
pub(crate) fn signal(pid: u32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

/// The name of a signal number, such as `SIGKILL`.
pub fn signal_name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}
