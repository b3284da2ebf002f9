//! `zoo`: a pure actor binary holding greenroom's test actors (see `actors.rs`). Load it with
//! `greenroom load target/debug/examples/zoo`.

mod actors;

use actors::Echo;

fn main() {
    actors::register();
    match std::env::args().nth(1).as_deref() {
        Some("hold") => return hold(),
        // For the benchmark's fork+exec+wait baseline: start, and end at once.
        Some("--noop") => return,
        _ => {}
    }
    eprintln!(
        "zoo: greenroom's test actors ({}). Load it with `greenroom load PATH`.",
        greenroom::registered_types().join(", ")
    );
}

/// `zoo hold`: start (or attach to) a system, create an Echo, print its address, and keep the
/// system open until standard input closes. Tests kill this program to show that an admin it
/// started for itself goes away with it.
fn hold() {
    let mut system = greenroom::ActorSystem::new().expect("system");
    let echo = system.create_actor::<Echo>().expect("create");
    println!("{echo}");
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}
