//! The seed's Hello World programs, run as a user would run them.

use crate::support::{TestSystem, example, processes_mentioning};

/// Run an example with no admin running, and check its output and that it cleaned up.
fn run_alone(name: &str) -> String {
    run_on(name, "multiproc")
}

fn run_on(name: &str, base: &str) -> String {
    let sys = TestSystem::empty();
    let out = sys
        .command(&example(name))
        .env_remove("GREENROOM_SYSTEM")
        .env("GREENROOM_BASE", base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let needle = sys.tmp.path().to_string_lossy().to_string();
    assert_eq!(
        processes_mentioning(&needle),
        vec![],
        "{name} left processes behind"
    );
    assert!(
        !sys.tmp.path().join("greenroom/default").exists(),
        "{name} left its system directory behind"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn hello_prints_hello_world_and_leaves_nothing() {
    assert_eq!(run_alone("hello"), "Hello, World!\n");
}

#[test]
fn hello_redux_prints_twice_then_nothing_and_leaves_nothing() {
    assert_eq!(run_alone("hello_redux"), "Hello, World!\nHello, World!\n");
}

#[test]
fn the_seed_programs_print_the_same_on_the_simple_base() {
    assert_eq!(run_on("hello", "simple"), "Hello, World!\n");
    assert_eq!(
        run_on("hello_redux", "simple"),
        "Hello, World!\nHello, World!\n"
    );
}

#[test]
fn hello_attaches_to_a_running_admin_and_leaves_it_running() {
    let sys = TestSystem::start();
    let out = sys.command(&example("hello")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Hello, World!\n");
    // The admin was not the program's own: it still serves, and Hello has exited.
    let mut system = sys.connect();
    crate::support::wait_for("Hello to exit", || sys.status(&mut system).is_empty());
}
