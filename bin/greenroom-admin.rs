//! `greenroom-admin`: run a greenroom admin in the foreground.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use greenroom::admin::{self, AdminConfig};

/// Run the admin of a greenroom system in the foreground.
///
/// The admin starts one process per actor, reaps them, tells parents when children die, and
/// serves the CLI and programs on DIR/admin.sock. It runs until `greenroom shutdown` (or SIGTERM /
/// Ctrl-C), then asks every actor to exit, waits, and removes the system directory.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The system to run (default: $GREENROOM_SYSTEM, else "default").
    #[arg(long, env = "GREENROOM_SYSTEM", default_value = "default")]
    system: String,
    /// The system directory (default: $XDG_RUNTIME_DIR/greenroom/SYSTEM, else
    /// /tmp/greenroom-$UID/SYSTEM).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Shut down when the first client that claims ownership disconnects (used by programs that
    /// start their own admin).
    #[arg(long)]
    owned: bool,
    /// How long shutdown waits for actors to honour ExitRequest before SIGTERM, in ms (at most
    /// an hour).
    #[arg(long, env = "GREENROOM_EXIT_GRACE_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    exit_grace_ms: u64,
    /// The largest message frame any process of the system accepts, in bytes (1 KiB to 1 GiB).
    #[arg(long, env = "GREENROOM_MAX_FRAME", default_value_t = greenroom::wire::DEFAULT_MAX_FRAME as u64,
          value_parser = clap::value_parser!(u64).range(1024..=(1 << 30)))]
    max_frame_bytes: u64,
    #[command(flatten)]
    convention: Convention,
}

/// Taking part in a convention of admins (see `greenroom start --help`).
#[derive(clap::Args)]
struct Convention {
    /// Accept other admins of a convention on HOST:PORT (port 0 picks a free one); needs the
    /// convention's secret.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// The convention's leaders to join (comma-separated or repeated); naming this admin
    /// itself, or none, makes it a leader.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    convention: Vec<String>,
    /// A capability of this member (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    capability: Vec<String>,
    /// The convention's shared secret (written by `greenroom secret new PATH`).
    #[arg(long, env = "GREENROOM_SECRET_FILE", value_name = "PATH")]
    secret_file: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut cfg = AdminConfig::new(&args.system);
    cfg.owned = args.owned;
    cfg.dir = args.dir;
    cfg.exit_grace = Duration::from_millis(args.exit_grace_ms);
    cfg.max_frame = args.max_frame_bytes as usize;
    let c = &args.convention;
    cfg.convention = match admin::ConventionConfig::from_flags(
        c.listen.as_deref(),
        &c.convention,
        &c.capability,
        c.secret_file.as_deref(),
    ) {
        Ok(conv) => conv,
        Err(e) => {
            eprintln!("greenroom-admin: {e}");
            return ExitCode::from(2);
        }
    };
    match admin::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("greenroom-admin: {e}");
            ExitCode::from(if matches!(e, greenroom::Error::AlreadyRunning { .. }) {
                4
            } else {
                1
            })
        }
    }
}
