//! `greenroom-admin`: run a greenroom admin in the foreground.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use greenroom::admin::{self, AdminConfig};

#[path = "convention_flags.rs"]
mod convention_flags;
use convention_flags::ConventionFlags;

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
    convention: ConventionFlags,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut cfg = AdminConfig::new(&args.system);
    cfg.owned = args.owned;
    cfg.dir = args.dir;
    cfg.exit_grace = Duration::from_millis(args.exit_grace_ms);
    cfg.max_frame = args.max_frame_bytes as usize;
    cfg.convention = match args.convention.config() {
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
