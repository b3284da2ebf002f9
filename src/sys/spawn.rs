//! The seam to the OS for starting and ending actor processes.
//!
//! Actors are started with a new process and exec, not a bare fork: exec gives a clean process
//! (no inherited threads, signal handlers, logger or heap), and it is the only way to run actor
//! types that live in other binaries.
//!
//! The admin starts them by hand rather than through `std::process::Command`, which waits until
//! the child has finished exec'ing (to report exec errors): that wait, about as long as the exec,
//! would stall the admin on every create. Nor does it fork: copying the admin's page tables and
//! taking copy-on-write faults afterwards cost ~150 µs of the admin's time per create. The child
//! is made with `clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` does: it shares the admin's
//! memory and the admin is suspended until the child has exec'd (tens of µs), so the child may
//! touch nothing but its own stack, and makes only async-signal-safe calls on memory prepared
//! before the clone. `posix_spawn` itself is not used because it cannot set the parent-death
//! signal, which the launch contract promises every actor. Exec errors are caught up front with
//! `access(X_OK)`; one that still happens ends the child with code 127, which its parent learns
//! as a `ChildExited`.

use std::ffi::{CString, c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};

pub(crate) use nix::sys::signal::Signal;
use nix::sys::signal::kill;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The signals the admin catches (it installs handlers for exactly these). A child made by
/// [`spawn`] shares the admin's memory until it execs, so it sets them back to their defaults
/// before it can receive any signal: an admin handler run in the child would act on the admin.
pub(crate) const CAUGHT: [c_int; 4] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The child's stack, in bytes: it runs one small function and a few system calls.
const CHILD_STACK: usize = 64 * 1024;

/// What the child needs, prepared before the clone (the child must not allocate).
struct Plan<'a> {
    path: &'a CString,
    argv: &'a [*const libc::c_char],
    devnull: RawFd,
    output: RawFd,
    keep: &'a [RawFd],
    parent: libc::pid_t,
    mask: libc::sigset_t,
}

/// Start `binary` with `args`, handing it the descriptors in `keep` (they stay open across exec;
/// everything else is close-on-exec). Standard input is `/dev/null`; standard output and error
/// are `output` if given (else this process's). The child is in a process
/// group of its own (a Ctrl-C meant for the admin's terminal does not reach it), and is killed
/// by the kernel if the calling process dies. Returns the child's pid; the caller reaps it.
///
/// The calling process must be single-threaded, and catch no signals but [`CAUGHT`].
pub(crate) fn spawn(
    binary: &str,
    args: &[String],
    keep: &[&dyn AsRawFd],
    output: Option<&dyn AsRawFd>,
) -> io::Result<u32> {
    let cstr = |s: &str| CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let path = cstr(binary)?;
    let argv: Vec<CString> = std::iter::once(binary)
        .chain(args.iter().map(String::as_str))
        .map(cstr)
        .collect::<io::Result<_>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let keep: Vec<RawFd> = keep.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: plain libc call on a valid C string.
    if unsafe { libc::access(path.as_ptr(), libc::X_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let devnull = std::fs::File::open("/dev/null")?;
    let mut stack: Vec<MaybeUninit<u128>> = Vec::with_capacity(CHILD_STACK / 16);
    // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask only write the sets given.
    let (all, mut mask) = unsafe {
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        (
            all.assume_init(),
            MaybeUninit::<libc::sigset_t>::zeroed().assume_init(),
        )
    };
    // No signal may be handled in the child before it has reset the admin's handlers.
    // SAFETY: as above.
    let blocked = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut mask) };
    if blocked != 0 {
        return Err(io::Error::from_raw_os_error(blocked));
    }
    let plan = Plan {
        path: &path,
        argv: &argv_ptrs,
        devnull: devnull.as_raw_fd(),
        output: output.map_or(-1, |o| o.as_raw_fd()),
        keep: &keep,
        parent: std::process::id() as libc::pid_t,
        mask,
    };
    // SAFETY: the stack is ours, unused, and outlives the child's use of it (CLONE_VFORK
    // suspends this thread until the child has exec'd or exited); its top is 16-byte aligned
    // because its elements are. `plan` lives until then too, and the child only reads it.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(stack.capacity()).cast::<c_void>();
        libc::clone(
            child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw const plan).cast_mut().cast::<c_void>(),
        )
    };
    let cloned = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) };
    match pid {
        -1 => Err(cloned),
        pid => Ok(pid as u32),
    }
}

/// The child's side of [`spawn`]: runs on its own stack in the admin's memory, until exec.
extern "C" fn child(plan: *mut c_void) -> c_int {
    // SAFETY: `plan` points to the Plan that `spawn` keeps alive until this process execs or
    // exits. Only async-signal-safe calls follow, and nothing but this stack is written
    // (errno aside, which the suspended admin does not read across the clone).
    unsafe {
        let plan = &*plan.cast::<Plan>();
        for sig in CAUGHT {
            libc::signal(sig, libc::SIG_DFL);
        }
        // Ignored signals stay ignored across exec; give the actor the default SIGPIPE.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::setpgid(0, 0);
        libc::dup2(plan.devnull, 0);
        if plan.output >= 0 {
            libc::dup2(plan.output, 1);
            libc::dup2(plan.output, 2);
        }
        for &fd in plan.keep {
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The admin may have died before prctl: then no signal would come.
        if libc::getppid() != plan.parent {
            libc::_exit(1);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &plan.mask, std::ptr::null_mut());
        libc::execv(plan.path.as_ptr(), plan.argv.as_ptr());
        libc::_exit(127)
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
