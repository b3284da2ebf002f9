//! Logger set-up for the processes greenroom starts. `RUST_LOG` sets the level (default `warn`);
//! every line names the process that wrote it, so the admin's and actors' lines can be told apart
//! in one stream.

use std::io::Write;

use crate::address::Address;

fn builder() -> env_logger::Builder {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
}

/// Log lines of an actor process carry its address and pid.
pub(crate) fn init_actor(me: &Address) {
    let tag = format!("actor {me} pid {}", std::process::id());
    let _ = builder()
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
        .try_init();
}

/// Log lines of the admin carry its system name and pid.
pub(crate) fn init_admin(system: &str) {
    let tag = format!("admin {system} pid {}", std::process::id());
    let _ = builder()
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
        .try_init();
}
