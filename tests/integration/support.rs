//! The test harness: a real admin in a fresh temp directory, the real CLI, and checks that
//! nothing is left behind.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use greenroom::protocol::ActorInfo;
use greenroom::{ActorSystem, Address, SystemConfig, WhenMissing};

/// How long any bounded wait in the tests may take before it counts as a failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

static SUBREAPER: Once = Once::new();

/// Make this test process the reaper of orphans it causes (a backgrounded admin, actors of a
/// killed admin), so that they can be reaped by pid instead of lingering as zombies under an
/// init that may not reap.
pub fn become_subreaper() {
    SUBREAPER.call_once(|| {
        // SAFETY: plain prctl call.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
        assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER failed");
    });
}

/// Poll `cond` until it holds or `PATIENCE` runs out.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(1);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Path of a binary of this package.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "greenroom" => PathBuf::from(env!("CARGO_BIN_EXE_greenroom")),
        "greenroom-admin" => PathBuf::from(env!("CARGO_BIN_EXE_greenroom-admin")),
        _ => unreachable!(),
    }
}

/// Path of an example binary (built by `cargo test` beside the test binary).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing; run `cargo build --examples`",
        path.display()
    );
    path
}

/// True if process `pid` exists (a zombie counts).
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Reap `pid` if it is a child of this process that has ended (returns true if it is gone).
pub fn reap(pid: u32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on one specific pid.
    let rc = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
    rc == pid as i32 || !alive(pid)
}

/// Wait until `pid` is gone, reaping it if it was handed to this process.
pub fn wait_gone(pid: u32) {
    wait_for(&format!("process {pid} to end"), || {
        reap(pid) && !alive(pid)
    });
}

/// True if the other end of `stream` has closed it (or reset it).
pub fn peer_closed(stream: &UnixStream) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    match recv(
        stream.as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(0) => true,
        Ok(_) => false,
        Err(nix::errno::Errno::EAGAIN) => false,
        Err(_) => true,
    }
}

/// The resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}"))
}

/// Pids of every process whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push((pid, cmd));
            }
        }
    }
    found
}

/// Every Unix socket file under `dir`.
pub fn sockets_under(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_socket() {
                out.push(e.path());
            }
        }
    }
    out
}

/// One system under test: its own temp directory, a real `greenroom-admin`, and the real CLI.
/// Whether `child` exits (and is reaped) within [`PATIENCE`].
fn exits_within_patience(child: &mut Child) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

pub struct TestSystem {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    admin: Option<Child>,
    pub admin_pid: u32,
    seen: Mutex<Vec<u32>>,
}

pub const SYSTEM: &str = "t";

impl TestSystem {
    /// A temp directory with no admin running.
    pub fn empty() -> TestSystem {
        become_subreaper();
        // In memory where possible, as a system's default place is.
        let mut builder = tempfile::Builder::new();
        builder.prefix("gr");
        let tmp = if Path::new("/dev/shm").is_dir() {
            builder.tempdir_in("/dev/shm")
        } else {
            builder.tempdir()
        }
        .unwrap();
        let dir = tmp.path().join("greenroom").join(SYSTEM);
        TestSystem {
            tmp,
            dir,
            admin: None,
            admin_pid: 0,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// A running admin in a fresh temp directory.
    pub fn start() -> TestSystem {
        Self::start_with(&[])
    }

    /// A running admin with extra `greenroom-admin` arguments.
    pub fn start_with(args: &[&str]) -> TestSystem {
        let mut sys = TestSystem::empty();
        sys.start_admin(args);
        sys
    }

    /// Start `greenroom-admin` in the foreground (as a child of the test) and wait until it
    /// answers.
    pub fn start_admin(&mut self, args: &[&str]) {
        self.start_admin_with_env(args, &[]);
    }

    /// Start `greenroom-admin` with extra environment variables (its actors inherit them).
    pub fn start_admin_with_env(&mut self, args: &[&str], env: &[(&str, &str)]) {
        self.start_admin_as(Command::new(bin("greenroom-admin")), args, env);
    }

    /// Start `greenroom-admin` allowed at most `files` open descriptors (through the shell's
    /// `ulimit`, which then execs the admin: the pid is the admin's).
    pub fn start_admin_with_fd_limit(&mut self, files: u32) {
        let mut sh = Command::new("sh");
        sh.args(["-c", "ulimit -n \"$0\" && exec \"$@\""])
            .arg(files.to_string())
            .arg(bin("greenroom-admin"));
        self.start_admin_as(sh, &[], &[]);
    }

    /// Start `greenroom-admin` as the leader of a process group of its own, as a shell starts a
    /// foreground job: a signal to that group is what Ctrl-C in its terminal sends.
    pub fn start_admin_in_own_group(&mut self) {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(bin("greenroom-admin"));
        command.process_group(0);
        self.start_admin_as(command, &[], &[]);
    }

    pub fn start_admin_as(&mut self, mut command: Command, args: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.tmp.path().join("admin-output.log")).unwrap();
        let child = command
            .args(["--system", SYSTEM])
            .args(args)
            .envs(env.iter().copied())
            .env("GREENROOM_EXIT_GRACE_MS", "2000")
            .env("XDG_RUNTIME_DIR", self.tmp.path())
            .env_remove("GREENROOM_SYSTEM")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.admin_pid = child.id();
        self.admin = Some(child);
        let socket = self.dir.join("admin.sock");
        let pid_file = self.dir.join("admin.pid");
        let pid = self.admin_pid.to_string();
        // The new admin writes its pid once it has removed what an earlier admin left: only then
        // is a connection sure to reach it (a killed admin's socket can live on for a moment).
        wait_for("the admin to listen", || {
            if let Some(status) = self.admin.as_mut().unwrap().try_wait().unwrap() {
                panic!("the admin exited ({status}):\n{}", self.admin_log());
            }
            std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == pid)
                && UnixStream::connect(&socket).is_ok()
        });
    }

    /// The admin's output so far (for failure messages).
    pub fn admin_log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("admin-output.log")).unwrap_or_default()
    }

    /// A command for a binary with this system's environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("XDG_RUNTIME_DIR", self.tmp.path())
            .env("GREENROOM_SYSTEM", SYSTEM)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Run the CLI.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(&bin("greenroom")).args(args).output().unwrap()
    }

    /// Run the CLI, assert success, and return its standard output, trimmed.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "greenroom {args:?} failed: {}\nadmin log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.admin_log()
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Run the CLI, assert it fails with exit code 1, and return its standard error.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "greenroom {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Attach to the system from this test process.
    pub fn connect(&self) -> ActorSystem {
        ActorSystem::with_config(SystemConfig {
            name: SYSTEM.into(),
            when_missing: WhenMissing::Fail,
            admin_binary: None,
            dir: Some(self.dir.clone()),
            base: Some(greenroom::Base::Multiproc),
            convention: None,
        })
        .expect("attach to the test system")
    }

    /// Load the zoo of test actors.
    pub fn load_zoo(&self, system: &mut ActorSystem) {
        system.load(&example("zoo")).expect("load zoo");
    }

    /// Live actors (their pids are remembered for the leftover check).
    pub fn status(&self, system: &mut ActorSystem) -> Vec<ActorInfo> {
        let actors = system.status().expect("status");
        self.seen
            .lock()
            .unwrap()
            .extend(actors.iter().map(|a| a.pid));
        actors
    }

    /// The pid of a live actor.
    pub fn pid_of(&self, system: &mut ActorSystem, addr: &Address) -> u32 {
        self.status(system)
            .into_iter()
            .find(|a| a.address == *addr)
            .unwrap_or_else(|| panic!("{addr} is not running"))
            .pid
    }

    /// Remember a pid for the leftover check.
    pub fn remember(&self, pid: u32) {
        self.seen.lock().unwrap().push(pid);
    }

    /// kill -9 the admin, and reap it.
    pub fn kill_admin(&mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.admin_pid as i32),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
        self.admin_killed();
    }

    /// The admin has been killed on purpose: reap it and stop tracking it.
    pub fn admin_killed(&mut self) {
        if let Some(mut child) = self.admin.take() {
            child.wait().unwrap();
        }
    }

    /// `greenroom shutdown`, then wait for the admin and check that nothing is left. If the
    /// admin does not go, it is killed before the test fails, so that nothing outlives the test.
    pub fn shutdown(&mut self) {
        if let Some(mut child) = self.admin.take() {
            let out = self.cli(&["shutdown"]);
            let exited = exits_within_patience(&mut child);
            if !out.status.success() || !exited {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "shutdown failed (admin exited: {exited}): {}\nadmin log:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.admin_log()
                );
            }
        }
        self.assert_nothing_left();
    }

    /// The admin is ending by itself: wait for it to exit, then check that nothing is left.
    pub fn admin_ends(&mut self) {
        if let Some(mut child) = self.admin.take()
            && !exits_within_patience(&mut child)
        {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the admin did not exit\nadmin log:\n{}", self.admin_log());
        }
        self.assert_nothing_left();
    }

    /// After a failure: kill this system's admin, wherever it came from (a foreground child, or
    /// one started in the background whose pid is in the system directory). Its actors die with
    /// it (parent-death signal).
    fn kill_everything(&mut self) {
        if let Some(mut child) = self.admin.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("admin.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            // SAFETY: plain kill of the admin this test's own directory names.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let deadline = Instant::now() + PATIENCE;
            while !reap(pid as u32) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// No process, zombie or socket of this system remains.
    pub fn assert_nothing_left(&self) {
        let seen = self.seen.lock().unwrap().clone();
        for pid in seen
            .iter()
            .copied()
            .chain([self.admin_pid])
            .filter(|&p| p != 0)
        {
            // Actors are reaped by the admin; allow a moment for that to land.
            wait_for(&format!("process {pid} of the system to be gone"), || {
                reap(pid);
                !alive(pid)
            });
        }
        let needle = self.tmp.path().to_string_lossy().to_string();
        wait_for("processes of the system to be gone", || {
            processes_mentioning(&needle).is_empty()
        });
        assert!(
            !self.dir.exists(),
            "system directory {} was left behind",
            self.dir.display()
        );
        let sockets = sockets_under(self.tmp.path());
        assert!(sockets.is_empty(), "sockets left behind: {sockets:?}");
    }
}

impl Drop for TestSystem {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.kill_everything();
            eprintln!("admin log:\n{}", self.admin_log());
            return;
        }
        self.shutdown();
    }
}
