//! Starting things for a program: an admin of its own, and the probe that asks a binary which
//! actor types it provides.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::base::SystemConfig;
use crate::error::{Error, IoContext, Result};
use std::collections::BTreeMap;

use crate::registry::{self, LIST_TYPES_MAGIC};
use crate::sysdir;

/// How long a program waits for an admin it started to listen.
pub(crate) const ADMIN_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Start an admin owned by this program and connect to it.
pub(crate) fn start_admin(
    config: &SystemConfig,
    dir: &Path,
) -> Result<(StdUnixStream, Option<Child>)> {
    let mut cmd = match &config.admin_binary {
        Some(b) => Command::new(b),
        None if registry::is_actor_binary() => {
            let mut c =
                Command::new(std::env::current_exe().ctx(|| "finding this program's path".into())?);
            c.arg("--greenroom-admin");
            c
        }
        None => Command::new(admin_binary_path()),
    };
    cmd.arg("--system")
        .arg(&config.name)
        .arg("--dir")
        .arg(dir)
        .arg("--owned");
    if let Some(c) = &config.convention {
        cmd.args(c.admin_args());
    }
    cmd.stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| Error::Io {
        context: format!(
            "starting an admin for system '{}' (install greenroom-admin, or start one with `greenroom start`)",
            config.name
        ),
        source: e,
    })?;
    let socket = sysdir::admin_socket(dir);
    let deadline = Instant::now() + ADMIN_START_TIMEOUT;
    let mut backoff = Duration::from_micros(100);
    loop {
        if let Ok(stream) = StdUnixStream::connect(&socket) {
            return Ok((stream, Some(child)));
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Code 4: another program started an admin for this system at the same time.
            if status.code() == Some(4)
                && let Ok(stream) = StdUnixStream::connect(&socket)
            {
                return Ok((stream, None));
            }
            if status.code() != Some(4) {
                return Err(Error::NoAdmin {
                    system: config.name.clone(),
                    socket,
                });
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout(ADMIN_START_TIMEOUT));
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(20));
    }
}

/// `greenroom-admin` beside the current program, else the one on `PATH`.
pub(crate) fn admin_binary_path() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for candidate in [dir.join("greenroom-admin"), dir.join("../greenroom-admin")] {
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("greenroom-admin")
}

/// How long a binary may take to answer `--greenroom-list-types`.
const LIST_TYPES_TIMEOUT: Duration = Duration::from_secs(5);

/// The most a binary may print in answer to `--greenroom-list-types`.
const LIST_TYPES_MAX_OUTPUT: usize = 1 << 20;

/// Ask a binary which actor types it provides: run it with `--greenroom-list-types` and read
/// its answer. The answer is what it printed by the time it exited (a child it left behind
/// holding its standard output does not make this wait), within 5 s and 1 MiB.
pub fn list_types(path: &Path) -> Result<Vec<String>> {
    Ok(declared_types(path)?.into_iter().map(|(t, _)| t).collect())
}

/// A binary's actor types, each with what it requires of a system (see
/// [`Actor::requires`](crate::Actor::requires)), as [`list_types`] reads them.
pub(crate) fn declared_types(path: &Path) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    let not = |why: String| Error::NotActorBinary {
        path: path.to_path_buf(),
        why,
    };
    // A bare file name means the file here, not a program looked up on PATH.
    let path = &std::fs::canonicalize(path).map_err(|e| not(format!("it cannot be found: {e}")))?;
    let mut child = Command::new(path)
        .arg("--greenroom-list-types")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            match Error::exhausted(
                &format!("running {} --greenroom-list-types", path.display()),
                &e,
            ) {
                Some(exhausted) => exhausted,
                None => not(format!("it cannot be run: {e}")),
            }
        })?;
    let mut stdout = child.stdout.take().expect("piped above");
    crate::sys::set_nonblocking(&stdout).ctx(|| "reading the binary's answer".into())?;
    let deadline = Instant::now() + LIST_TYPES_TIMEOUT;
    let mut out = Vec::new();
    let give_up = |child: &mut Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(not(why))
    };
    let status = loop {
        let exited = child.try_wait().ctx(|| "waiting for the binary".into())?;
        // What it wrote before it exited is in the pipe now.
        let open = read_available(&mut stdout, &mut out, LIST_TYPES_MAX_OUTPUT)
            .ctx(|| "reading the binary's answer".into())?;
        if out.len() > LIST_TYPES_MAX_OUTPUT {
            return give_up(&mut child, "it printed more than 1 MiB".into());
        }
        if let Some(status) = exited {
            break status;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return give_up(
                &mut child,
                "it did not answer --greenroom-list-types within 5 s".into(),
            );
        }
        if open {
            crate::sys::wait_readable(&stdout, left.min(Duration::from_millis(5)));
        } else {
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
    };
    let out = String::from_utf8_lossy(&out);
    let mut lines = out.lines();
    if !status.success() || lines.next() != Some(LIST_TYPES_MAGIC) {
        return Err(not(
            "it does not answer --greenroom-list-types as greenroom binaries do".into(),
        ));
    }
    // Each line is a type name, then (tab-separated) what it requires, `KEY=VALUE`.
    Ok(lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut fields = l.split('\t');
            let name = fields.next().unwrap_or_default().to_string();
            let requires = fields
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (name, requires)
        })
        .collect())
}

/// Read what `src` has now into `out`, stopping a little past `limit`. Returns false once `src`
/// has ended.
fn read_available(
    src: &mut impl std::io::Read,
    out: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<bool> {
    let mut buf = [0u8; 8192];
    while out.len() <= limit {
        match src.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
