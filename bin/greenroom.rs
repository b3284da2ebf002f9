//! `greenroom`: the command line for a greenroom system.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use greenroom::protocol::{ActorInfo, SystemStatus};
use greenroom::{ActorSystem, Address, Message, sysdir};

#[path = "convention_flags.rs"]
mod convention_flags;
use convention_flags::ConventionFlags;

/// Start, inspect and talk to a greenroom actor system.
///
/// Every command takes --system NAME (or $GREENROOM_SYSTEM; default "default"). Addresses are
/// printed by `create` and `status` and look like `7@/run/user/1000/greenroom/default`.
/// `println!`, except that a reader of standard output that has gone away (`greenroom status |
/// head`) ends the program quietly with code 0 rather than a panic.
macro_rules! say {
    ($($arg:tt)*) => { say(format_args!($($arg)*)) };
}

fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("greenroom: writing to standard output: {e}");
        std::process::exit(1);
    }
}

#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// The system to use.
    #[arg(
        long,
        global = true,
        env = "GREENROOM_SYSTEM",
        default_value = "default"
    )]
    system: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the system's admin in the background (its log goes to DIR/admin.log). With
    /// --listen it takes part in a convention: admins on this host or others that know of each
    /// other, linked by TCP, authenticated with a shared secret and encrypted.
    Start {
        #[command(flatten)]
        convention: ConventionFlags,
    },
    /// Write a fresh convention secret (mode 0600) for --secret-file; copy the same file to
    /// every member.
    Secret {
        #[command(subcommand)]
        command: SecretCmd,
    },
    /// List the members of the system's convention: address, system, state (alive or gone),
    /// when each was last heard from, and capabilities.
    Members {
        /// Print JSON: {"members": [{"address": "HOST:PORT", "system", "capabilities": {...},
        /// "state": "alive"|"gone", "last_heard_ms"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Change this member's capabilities; the other members hear of it. Names starting with
    /// `greenroom.` (host, os, arch, cores, version) are greenroom's own and read-only.
    Capability {
        #[command(subcommand)]
        command: CapabilityCmd,
    },
    /// Ask every actor to exit, stop the admin, and remove the system directory.
    Shutdown,
    /// Register an actor binary with the admin and print the actor types it provides.
    Load {
        /// Path of a binary that invokes `greenroom::actors!(...)`.
        path: PathBuf,
    },
    /// Create an actor and print its address, alone on one line.
    Create {
        /// The actor type, as registered (for example `Hello`). With requirements this system
        /// does not meet, the actor is created on a member of its convention that does (which
        /// fetches the binary by hash if it has none).
        type_name: String,
        /// The binary that provides the type (loaded first if needed).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// A system-wide name (convention-wide, in a convention): if an actor already has it,
        /// print that actor's address instead of creating one. The name is freed when the
        /// actor exits, or its member is lost.
        #[arg(long, conflicts_with = "args")]
        name: Option<String>,
        /// Start arguments as JSON ('{"greeting":"hi"}'), which the actor reads with
        /// `ctx.start_args()` as its own struct.
        #[arg(long)]
        args: Option<String>,
        /// A capability the system must have (repeatable): the actor is created only where
        /// every one holds, and asked to exit if one stops holding.
        #[arg(long, value_name = "KEY=VALUE", conflicts_with_all = ["args", "name"])]
        require: Vec<String>,
    },
    /// Send a message to an actor (one way). Exits 1, keeping nothing, if the actor is not
    /// running.
    Tell {
        /// The actor's address.
        address: String,
        /// The message as JSON: '"hi"', '42', '{"message":"x"}'.
        message: String,
        /// Send under this type name, so the actor can decode it as its own struct.
        #[arg(long = "type")]
        type_name: Option<String>,
    },
    /// Send a message and print its answer: the first message that comes back as part of this
    /// request, from the actor or from actors it passed the request on to (a string as plain
    /// text, anything else as JSON). Exits 1 if nothing comes back in time.
    Ask {
        /// The actor's address.
        address: String,
        /// The message as JSON: '"hi"', '42', '{"message":"x"}'.
        message: String,
        /// Send under this type name, so the actor can decode it as its own struct.
        #[arg(long = "type")]
        type_name: Option<String>,
        /// Seconds to wait for the reply.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Print the system's log (DIR/system.log): every line from the admin and the actors,
    /// tagged with who wrote it. RUST_LOG, set where the admin starts, sets the level.
    Log {
        /// Keep printing new lines until the system shuts down (or Ctrl-C).
        #[arg(long, short)]
        follow: bool,
    },
    /// Ask an actor to exit (send it ExitRequest).
    Exit {
        /// The actor's address.
        address: String,
    },
    /// Show the actor tree, global names, the dead-letter handler, loaded binaries, counters and
    /// the system's ledger (messages sent, handled, poisoned, dead-lettered, dropped, in flight);
    /// or, given an address, one actor's children, pending timers, messages handled and ledger.
    Status {
        /// One actor to ask about (the framework answers, not the actor's handler).
        address: Option<String>,
        /// Print JSON: {"actors": [{"address", "type", "pid", "parent"}, ...], "names", ...,
        /// "ledger": {"sent", "handled", "poisoned", "dead_lettered", "dropped", "in_flight",
        /// "possibly_handled"}}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SecretCmd {
    /// Write a fresh secret to PATH, which must not exist.
    New {
        /// Where to write it.
        path: PathBuf,
    },
}

#[derive(Subcommand)]
enum CapabilityCmd {
    /// Set KEY to VALUE.
    Set {
        /// The capability's name.
        key: String,
        /// Its value.
        value: String,
    },
    /// Remove KEY.
    Unset {
        /// The capability's name.
        key: String,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("greenroom: {e}");
            ExitCode::from(1)
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// The longest `--timeout` accepted: a year.
const MAX_TIMEOUT_S: f64 = 365.0 * 24.0 * 3600.0;

fn run(cli: Cli) -> CliResult {
    let name = cli.system.as_str();
    match cli.command {
        Cmd::Start { convention } => start(name, &convention),
        Cmd::Secret {
            command: SecretCmd::New { path },
        } => {
            greenroom::admin::new_secret(&path)?;
            say!(
                "wrote a new convention secret to {}; give every member the same file with --secret-file",
                path.display()
            );
            Ok(())
        }
        Cmd::Members { json } => {
            let members = ActorSystem::attach(name)?.members()?;
            if json {
                let out = serde_json::json!({ "members": members });
                say!("{out}");
            } else {
                print_members(&members);
            }
            Ok(())
        }
        Cmd::Capability { command } => {
            let mut system = ActorSystem::attach(name)?;
            match command {
                CapabilityCmd::Set { key, value } => system.set_capability(&key, Some(&value))?,
                CapabilityCmd::Unset { key } => system.set_capability(&key, None)?,
            }
            Ok(())
        }
        Cmd::Shutdown => {
            ActorSystem::attach(name)?.shutdown()?;
            say!("system '{name}' shut down");
            Ok(())
        }
        Cmd::Load { path } => {
            for t in ActorSystem::attach(name)?.load(&path)? {
                say!("{t}");
            }
            Ok(())
        }
        Cmd::Create {
            type_name,
            binary,
            name: global,
            args,
            require,
        } => {
            let mut system = ActorSystem::attach(name)?;
            let mut requirements = Vec::new();
            for r in &require {
                let (k, v) = r
                    .split_once('=')
                    .ok_or_else(|| format!("--require '{r}' is not KEY=VALUE"))?;
                requirements.push((k.trim(), v.trim()));
            }
            let address = match args {
                None if !requirements.is_empty() => {
                    system.create_by_name_requiring(&type_name, binary.as_deref(), &requirements)?
                }
                Some(json) => {
                    let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
                        format!("--args must be JSON ('{{\"greeting\":\"hi\"}}'): {e}")
                    })?;
                    system.create_by_name_with(&type_name, binary.as_deref(), &value)?
                }
                None => system.create(&type_name, binary.as_deref(), global.as_deref())?,
            };
            say!("{address}");
            Ok(())
        }
        Cmd::Tell {
            address,
            message,
            type_name,
        } => {
            let (to, msg) = (
                address.parse::<Address>()?,
                json_message(&message, type_name)?,
            );
            ActorSystem::attach(name)?.tell_message(&to, msg)?;
            Ok(())
        }
        Cmd::Ask {
            address,
            message,
            type_name,
            timeout,
        } => {
            let (to, msg) = (
                address.parse::<Address>()?,
                json_message(&message, type_name)?,
            );
            let wait = Duration::try_from_secs_f64(timeout).map_err(|_| {
                format!(
                    "--timeout must be a number of seconds from 0 to {MAX_TIMEOUT_S}, not {timeout}"
                )
            })?;
            if timeout > MAX_TIMEOUT_S {
                return Err(format!(
                    "--timeout must be a number of seconds from 0 to {MAX_TIMEOUT_S}, not {timeout}"
                )
                .into());
            }
            let mut system = ActorSystem::attach(name)?;
            match system.ask(&to, &msg, wait) {
                Ok(reply) if reply.is::<greenroom::Poison>() => {
                    let poison: greenroom::Poison = reply.decode()?;
                    Err(format!(
                        "{to} could not handle the message ({}); see `greenroom log` for its side",
                        poison.details
                    )
                    .into())
                }
                Ok(reply) => {
                    say!("{}", render(&reply));
                    Ok(())
                }
                Err(greenroom::Error::NoReply { .. }) => {
                    Err(format!("no reply from {to} within {timeout} s").into())
                }
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Log { follow } => show_log(name, follow),
        Cmd::Exit { address } => {
            let to = address.parse::<Address>()?;
            ActorSystem::attach(name)?.tell_exit(&to)?;
            Ok(())
        }
        Cmd::Status {
            address: Some(address),
            json,
        } => {
            let actor = address.parse::<Address>()?;
            let mut system = ActorSystem::attach(name)?;
            let status = system.actor_status(&actor, Duration::from_secs(5))?;
            if json {
                say!("{}", serde_json::to_string(&status)?);
            } else {
                say!(
                    "actor {} ({}, pid {})",
                    status.address,
                    status.type_name,
                    status.pid
                );
                say!("parent: {}", status.parent);
                say!("children: {}", status.children.len());
                for c in &status.children {
                    say!("  {c}");
                }
                say!("pending timers: {}", status.pending_timers);
                say!("messages handled: {}", status.handled);
                let l = &status.ledger;
                say!(
                    "ledger: {} sent, {} handled, {} poisoned",
                    l.sent,
                    l.handled,
                    l.poisoned
                );
            }
            Ok(())
        }
        Cmd::Status {
            address: None,
            json,
        } => {
            let status = ActorSystem::attach(name)?.system_status()?;
            if json {
                say!("{}", serde_json::to_string(&status)?);
            } else {
                print_status(name, &status);
            }
            Ok(())
        }
    }
}

/// The actor tree (children indented under their parents), then the rest of the status.
fn print_status(name: &str, status: &SystemStatus) {
    let actors = &status.actors;
    if actors.is_empty() {
        say!("no actors running in system '{name}'");
    } else {
        let live: std::collections::HashSet<&Address> = actors.iter().map(|a| &a.address).collect();
        let mut rows = Vec::new();
        fn walk<'a>(
            actors: &'a [ActorInfo],
            parent: &Address,
            depth: usize,
            rows: &mut Vec<(String, &'a ActorInfo)>,
        ) {
            for a in actors.iter().filter(|a| a.parent == *parent) {
                rows.push((format!("{}{}", "  ".repeat(depth), a.address), a));
                walk(actors, &a.address, depth + 1, rows);
            }
        }
        let mut roots: Vec<&Address> = actors
            .iter()
            .map(|a| &a.parent)
            .filter(|p| !live.contains(p))
            .collect();
        roots.sort();
        roots.dedup();
        for root in roots {
            walk(actors, root, 0, &mut rows);
        }
        let aw = rows.iter().map(|(t, _)| t.len()).max().unwrap_or(0).max(5);
        let tw = actors
            .iter()
            .map(|a| a.type_name.len())
            .max()
            .unwrap_or(0)
            .max(4);
        say!("{:<aw$}  {:<tw$}  {:>8}  PARENT", "ACTOR", "TYPE", "PID");
        for (text, a) in rows {
            say!(
                "{text:<aw$}  {:<tw$}  {:>8}  {}",
                a.type_name,
                a.pid,
                a.parent
            );
        }
    }
    for e in &status.elsewhere {
        say!(
            "on member {}: {} (parent {})",
            e.address.member().unwrap_or("?"),
            e.address,
            e.parent
        );
    }
    for (n, a) in &status.names {
        say!("global name {n}: {a}");
    }
    match &status.dead_letter_handler {
        Some(h) => say!("dead-letter handler: {h}"),
        None => say!("dead-letter handler: none (dead letters are dropped)"),
    }
    for (path, types) in &status.binaries {
        say!("binary {path}: {}", types.join(", "));
    }
    if let Some(address) = &status.convention {
        say!(
            "convention address: {address} (see `greenroom members`); {} links refused",
            status.counters.links_refused
        );
    }
    let l = &status.ledger;
    say!(
        "ledger: {} sent, {} handled, {} poisoned ({} possibly handled), {} dead-lettered, {} dropped, {} in flight",
        l.sent,
        l.handled,
        l.poisoned,
        l.possibly_handled,
        l.dead_lettered,
        l.dropped,
        l.in_flight
    );
    let c = &status.counters;
    say!(
        "counters: {} created, {} exited ({} killed, {} failed to start), {} from spares, {} dead letters delivered, {} dropped",
        c.created,
        c.exited,
        c.killed,
        c.failed_starts,
        c.spares_used,
        c.dead_letters_delivered,
        c.dead_letters_dropped
    );
}

/// Print the system's log; with `follow`, keep printing what is appended until the system's
/// directory goes away.
fn show_log(name: &str, follow: bool) -> CliResult {
    use std::io::{Read, Seek, Write};
    let dir = sysdir::system_dir(name)?;
    if !sysdir::admin_socket(&dir).exists() {
        return Err(greenroom::Error::NoAdmin {
            system: name.to_string(),
            socket: sysdir::admin_socket(&dir),
        }
        .into());
    }
    let path = greenroom::logging::log_path(&dir);
    let mut offset = 0u64;
    let mut out = std::io::stdout();
    loop {
        if let Ok(mut file) = std::fs::File::open(&path) {
            file.seek(std::io::SeekFrom::Start(offset))?;
            let mut new = Vec::new();
            file.read_to_end(&mut new)?;
            offset += new.len() as u64;
            out.write_all(&new)?;
            out.flush()?;
        }
        if !follow || !dir.exists() {
            return Ok(());
        }
        // Following a file has no event to wait for portably; check a few times a second.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start `greenroom-admin` in the background and wait until it answers.
/// One line per member: address, system, state, last heard, host and its own capabilities.
fn print_members(members: &[greenroom::MemberInfo]) {
    say!(
        "{:<22} {:<16} {:<6} {:>10}  capabilities",
        "address",
        "system",
        "state",
        "heard"
    );
    for m in members {
        let state = match m.state {
            greenroom::MemberState::Alive => "alive",
            greenroom::MemberState::Gone => "gone",
        };
        let caps: Vec<String> = m
            .capabilities
            .iter()
            .filter(|(k, _)| !k.starts_with("greenroom.") || *k == "greenroom.host")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        say!(
            "{:<22} {:<16} {:<6} {:>7} ms  {}",
            m.address,
            m.system,
            state,
            m.last_heard_ms,
            caps.join(" ")
        );
    }
}

/// A member that names leaders other than itself: wait (3 s at most) until a leader links to it,
/// so that the members are listed when `start` returns; say so if none has yet.
fn wait_for_leaders(system: &mut ActorSystem, me: &str, leaders: &[String]) -> CliResult {
    if leaders.iter().all(|l| l == me) {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let members = system.members()?;
        let alive = members
            .iter()
            .filter(|m| m.state == greenroom::MemberState::Alive)
            .count();
        if alive > 1 {
            say!("joined the convention: {alive} members alive");
            return Ok(());
        }
        if Instant::now() >= deadline {
            eprintln!(
                "greenroom: no leader ({}) has answered yet; the admin keeps trying (see `greenroom members`, and `greenroom log` for why)",
                leaders.join(", ")
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn start(name: &str, flags: &ConventionFlags) -> CliResult {
    // Settings that cannot work are refused here, before an admin is started.
    let convention = flags.config()?;
    let dir = sysdir::system_dir(name)?;
    let socket = sysdir::admin_socket(&dir);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        eprintln!("system '{name}' is already running in {}", dir.display());
        return Ok(());
    }
    let log_path = sysdir::log_file(&dir);
    let log = sysdir::open_admin_log(&dir)?;
    let admin = greenroom_admin_path();
    let mut command = Command::new(&admin);
    command.arg("--system").arg(name);
    if let Some(c) = &convention {
        command.args(c.admin_args());
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {e}; is greenroom-admin installed beside greenroom?",
                admin.display()
            )
        })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut backoff = Duration::from_micros(200);
    loop {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            say!(
                "system '{name}' running in {} (admin pid {})",
                dir.display(),
                child.id()
            );
            if let Some(c) = &convention {
                let mut system = ActorSystem::attach(name)?;
                if let Some(address) = system.system_status()?.convention {
                    say!("convention address {address} (see `greenroom members`)");
                    wait_for_leaders(&mut system, &address, &c.leaders)?;
                }
            }
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "the admin exited ({status}) before it was ready: {}",
                log.trim()
            )
            .into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the admin did not open {} within 10 s; see {}",
                socket.display(),
                log_path.display()
            )
            .into());
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(20));
    }
}

fn greenroom_admin_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("greenroom-admin")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("greenroom-admin"))
}

/// Turn JSON from the command line into a message.
fn json_message(
    text: &str,
    type_name: Option<String>,
) -> Result<Message, Box<dyn std::error::Error>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!("MESSAGE is not valid JSON ({e}); quote strings twice, as in '\"hi\"', and objects as '{{\"message\":\"x\"}}'")
    })?;
    let type_name = type_name.unwrap_or_else(|| json_type_name(&value).to_string());
    Ok(Message::with_type(&type_name, &value)?)
}

/// The type name a JSON value is sent under when `--type` is not given: the name a Rust
/// sender of the same value would use.
fn json_type_name(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::String(_) => "String",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "i64",
        Value::Number(n) if n.is_u64() => "u64",
        Value::Number(_) => "f64",
        Value::Null => "()",
        Value::Array(_) | Value::Object(_) => "json",
    }
}

/// A reply as text: a string plainly, anything else as JSON.
fn render(msg: &Message) -> String {
    match rmp_serde::from_slice::<serde_json::Value>(msg.body()) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => format!(
            "<{} message, {} bytes of MessagePack that JSON cannot show>",
            msg.type_name(),
            msg.body().len()
        ),
    }
}
