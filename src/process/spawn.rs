//! The seam to the OS for starting and ending actor processes.
//!
//! Actors are started with fork+exec, not a bare fork: exec gives a clean process (no inherited
//! threads, signal handlers, logger or heap), and it is the only way to run actor types that live
//! in other binaries.
//!
//! The admin forks by hand rather than through `std::process::Command`, which waits until the
//! child has finished exec'ing (to report exec errors): that wait, about as long as the exec,
//! would stall the admin on every create. The admin is single-threaded, so forking is safe; the
//! argument vector is built before the fork, and the child calls only async-signal-safe
//! functions before `execv`. Exec errors are caught up front with `access(X_OK)`; one that still
//! happens ends the child with code 127, which its parent learns as a `ChildExited`.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Start `binary` with `args`, handing it the descriptors in `keep` (they stay open across exec;
/// everything else is close-on-exec). Standard input is `/dev/null`. The child is killed by the
/// kernel if the calling process dies. Returns the child's pid; the caller reaps it.
///
/// The calling process must be single-threaded.
pub(crate) fn spawn(binary: &str, args: &[String], keep: &[&dyn AsRawFd]) -> io::Result<u32> {
    let cstr = |s: &str| CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let path = cstr(binary)?;
    let argv: Vec<CString> = std::iter::once(binary)
        .chain(args.iter().map(String::as_str))
        .map(cstr)
        .collect::<io::Result<_>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let keep: Vec<RawFd> = keep.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: plain libc calls on valid C strings.
    unsafe {
        if libc::access(path.as_ptr(), libc::X_OK) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let devnull = std::fs::File::open("/dev/null")?;
    let devnull = devnull.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;
    // Buffered output would otherwise be written twice, once by each process.
    let _ = io::stdout().flush();
    // SAFETY: the process is single-threaded (see above), and the child only makes
    // async-signal-safe calls on memory prepared before the fork, then execs or exits.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => unsafe {
            libc::dup2(devnull, 0);
            for &fd in &keep {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            // Ignored signals stay ignored across exec; give the actor the default SIGPIPE.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The admin may have died between fork and prctl: then no signal would come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
            libc::_exit(127)
        },
        pid => Ok(pid as u32),
    }
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
