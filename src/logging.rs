//! Logger set-up for the processes greenroom starts. `RUST_LOG` sets the level (default `warn`).
//!
//! Every process of a system appends to the system's log, `DIR/system.log` (`greenroom log`
//! shows it, `--follow` tails it), and every line names the process that wrote it: the actor's
//! address and pid, or the admin's system name and pid. The admin also writes to its standard
//! error, so that an admin run in the foreground shows its own lines; an admin started by a
//! program does so only until it serves (the program's output is the program's own).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::address::Address;

/// The system's log file in a system directory.
pub fn log_path(dir: &Path) -> std::path::PathBuf {
    dir.join("system.log")
}

/// The system's log, opened for appending (for the admin, which hands it to each actor as its
/// standard output and error).
pub(crate) fn open_log(dir: &Path) -> Option<File> {
    // The directory is the system's own; a link planted in it is not followed.
    crate::sys::open_append(&log_path(dir)).ok()
}

/// Whether the admin's lines still go to standard error too.
static ADMIN_STDERR: AtomicBool = AtomicBool::new(true);

/// From now on, the admin's lines go to the system's log alone.
pub(crate) fn admin_log_file_only() {
    ADMIN_STDERR.store(false, Ordering::Relaxed);
}

/// Buffers each record and writes it with one `write` on an append-only file (so lines from several processes
/// do not interleave), and to standard error too if asked.
struct LogSink {
    file: Option<File>,
    stderr: bool,
    line: Vec<u8>,
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            let _ = f.write_all(&self.line);
        }
        if (self.stderr && ADMIN_STDERR.load(Ordering::Relaxed)) || self.file.is_none() {
            let _ = io::stderr().write_all(&self.line);
        }
        self.line.clear();
        Ok(())
    }
}

fn init(tag: String, dir: &Path, stderr: bool) {
    let sink = LogSink {
        file: open_log(dir),
        stderr,
        line: Vec::new(),
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format(move |buf, record| {
            writeln!(
                buf,
                "[{} {} {}] {}",
                buf.timestamp_millis(),
                record.level(),
                tag,
                record.args()
            )
        })
        .target(env_logger::Target::Pipe(Box::new(sink)))
        .try_init();
}

/// Log lines of an actor process carry its address and pid, and go to the system's log.
pub(crate) fn init_actor(me: &Address) {
    init(
        format!("actor {me} pid {}", std::process::id()),
        me.system_dir(),
        false,
    );
}

/// Log lines of the admin carry its system name and pid, and go to the system's log and to
/// standard error.
pub fn init_admin(system: &str, dir: &Path) {
    init(
        format!("admin {system} pid {}", std::process::id()),
        dir,
        true,
    );
}

/// Log a line about bad input from a peer, at most a few times a second: a peer that sends
/// garbage in a loop must not fill the disk. The first line after a quiet spell says how many
/// were held back.
pub(crate) fn bad_input(what: std::fmt::Arguments<'_>) {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    /// Lines allowed per window, and the window.
    const BURST: u32 = 5;
    const WINDOW: Duration = Duration::from_secs(1);
    static STATE: Mutex<Option<(Instant, u32, u64)>> = Mutex::new(None);
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let (since, count, held) = state.get_or_insert((now, 0, 0));
    if now.duration_since(*since) >= WINDOW {
        if *held > 0 {
            log::warn!("{held} more lines about bad input were held back");
        }
        *since = now;
        *count = 0;
        *held = 0;
    }
    if *count < BURST {
        *count += 1;
        log::warn!("{what}");
    } else {
        *held += 1;
    }
}
