//! Exit, death and shutdown: every way an actor can end is reported, and nothing outlives the
//! system.
//!
//! These run on the process base alone: kill -9, segfaults, aborts, exit codes, a dead admin and
//! stuck handlers are things only real processes can show. The semantics both bases share are in
//! the scenario suite (`scenarios.rs`).

use std::time::Duration;

use greenroom::{ActorSystem, Address, ChildExited, ExitReason};
use serde::{Deserialize, Serialize};

use crate::messaging::expect_msg;
use crate::support::{PATIENCE, TestSystem, alive, example, wait_for, wait_gone};

#[derive(Serialize, Deserialize)]
struct Spawn {
    count: u32,
    kind: String,
}

fn spawn(system: &mut ActorSystem, parent: &Address, count: u32, kind: &str) -> Vec<Address> {
    system
        .tell(
            parent,
            &Spawn {
                count,
                kind: kind.into(),
            },
        )
        .unwrap();
    expect_msg(system, "Vec<Address>")
}

/// Ask a zoo `Parent` for the `ChildExited` notices it has received, until `pred` holds.
fn expect_child_exited(system: &mut ActorSystem, parent: &Address, child: &Address) -> ExitReason {
    let mut found = None;
    wait_for(&format!("ChildExited for {child}"), || {
        let reply = system.ask(parent, "report", PATIENCE).unwrap();
        let notices: Vec<ChildExited> = reply.decode().unwrap();
        found = notices
            .into_iter()
            .find(|n| n.child == *child)
            .map(|n| n.reason);
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn exit_request_reaches_the_handler_then_children_then_the_parent_hears() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let root = system.create_actor_by_name("Parent", None).unwrap();
    let kids = spawn(&mut system, &root, 2, "Parent");
    for kid in &kids {
        spawn(&mut system, kid, 2, "Echo");
    }
    assert_eq!(sys.status(&mut system).len(), 7);
    system.tell_exit(&root).unwrap();
    // This endpoint created root, so it is root's parent and hears why root ended.
    let mut reason = None;
    wait_for("ChildExited for root", || {
        if let Some(env) = system.listen_any(Duration::from_millis(50)).unwrap()
            && let Some(n) = env.msg.get::<ChildExited>()
        {
            assert_eq!(n.child, root);
            reason = Some(n.reason);
        }
        reason.is_some()
    });
    assert_eq!(reason.unwrap(), ExitReason::Requested);
    wait_for("the whole tree to exit", || {
        sys.status(&mut system).is_empty()
    });
}

#[test]
fn kill_9_of_a_child_is_reported_to_its_parent_with_the_signal() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let parent = system.create_actor_by_name("Parent", None).unwrap();
    let child = spawn(&mut system, &parent, 1, "Echo").remove(0);
    let pid = sys.pid_of(&mut system, &child);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let reason = expect_child_exited(&mut system, &parent, &child);
    assert_eq!(
        reason,
        ExitReason::Killed {
            signal: 9,
            name: "SIGKILL".into()
        }
    );
    // The parent keeps running.
    assert!(system.ask(&parent, "children", PATIENCE).is_ok());
    // And the death is in the system's log, at the default level.
    let log = sys.cli_ok(&["log"]);
    assert!(
        log.contains(&format!("Echo {child} (pid {pid}) killed by SIGKILL (9)")),
        "{log}"
    );
}

#[test]
fn exit_codes_aborts_segfaults_and_failed_starts_are_reported_as_such() {
    #[derive(Serialize)]
    struct ExitWith {
        exit: i32,
    }
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let parent = system.create_actor_by_name("Parent", None).unwrap();
    let crashers = spawn(&mut system, &parent, 3, "Crasher");
    system.tell(&crashers[0], &ExitWith { exit: 7 }).unwrap();
    system.tell(&crashers[1], "abort").unwrap();
    system.tell(&crashers[2], "segv").unwrap();
    // Each died while handling its message: the messages come back, possibly handled.
    let mut returned = Vec::new();
    for _ in 0..3 {
        let p: greenroom::Poison = expect_msg(&mut system, "greenroom.Poison");
        assert!(p.possibly_handled, "{p:?}");
        returned.push(p.original.type_name().to_string());
    }
    returned.sort();
    assert_eq!(returned, ["ExitWith", "String", "String"]);
    assert_eq!(
        expect_child_exited(&mut system, &parent, &crashers[0]),
        ExitReason::Exited { code: 7 }
    );
    assert_eq!(
        expect_child_exited(&mut system, &parent, &crashers[1]),
        ExitReason::Killed {
            signal: 6,
            name: "SIGABRT".into()
        }
    );
    assert_eq!(
        expect_child_exited(&mut system, &parent, &crashers[2]),
        ExitReason::Killed {
            signal: 11,
            name: "SIGSEGV".into()
        }
    );
    let broken = spawn(&mut system, &parent, 1, "Broken").remove(0);
    match expect_child_exited(&mut system, &parent, &broken) {
        ExitReason::FailedToStart { error } => {
            assert!(error.contains("Broken cannot be built"), "{error}")
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
}

#[test]
fn kill_9_of_the_admin_leaves_no_actor_process() {
    let mut sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let root = system.create_actor_by_name("Parent", None).unwrap();
    spawn(&mut system, &root, 3, "Echo");
    let pids: Vec<u32> = sys.status(&mut system).iter().map(|a| a.pid).collect();
    assert_eq!(pids.len(), 4);
    drop(system);
    sys.kill_admin();
    for pid in pids {
        wait_gone(pid);
    }
    // A new admin in the same directory clears what the dead one left, and shuts down clean.
    sys.start_admin(&[]);
    let mut system = sys.connect();
    assert!(sys.status(&mut system).is_empty());
}

#[test]
fn kill_9_of_the_admin_ends_an_actor_stuck_in_a_handler() {
    use crate::messaging::BlockUntil;
    let mut sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let stuck = system.create_actor_by_name("Blocker", None).unwrap();
    let never = sys.tmp.path().join("never-created");
    let burst = 0;
    system
        .tell(
            &stuck,
            &BlockUntil {
                release: never,
                burst,
            },
        )
        .unwrap();
    assert!(
        system.listen(PATIENCE).unwrap().is_some(),
        "Blocker did not start"
    );
    let pid = sys.pid_of(&mut system, &stuck);
    drop(system);
    sys.kill_admin();
    // Its handler never returns: only the kernel's parent-death signal can end it.
    wait_gone(pid);
    // A new admin clears what the dead one left.
    sys.start_admin(&[]);
}

#[test]
fn ctrl_c_on_a_foreground_admin_runs_the_exit_sequence_and_spares_the_actors_the_signal() {
    let mut sys = TestSystem::empty();
    sys.start_admin_in_own_group();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let root = system.create_actor_by_name("Parent", None).unwrap();
    spawn(&mut system, &root, 2, "Echo");
    // Each actor leads a process group of its own, apart from the admin's.
    for actor in sys.status(&mut system) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", actor.pid)).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let pgrp: u32 = after_name.split(' ').nth(2).unwrap().parse().unwrap();
        assert_eq!(
            pgrp, actor.pid,
            "{} is in process group {pgrp}",
            actor.address
        );
    }
    // What the terminal sends to its foreground job on Ctrl-C: SIGINT to the admin's group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(sys.admin_pid as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    // The admin asks root to exit (it is not killed by the signal), and root's parent hears so.
    let mut reason = None;
    wait_for("ChildExited for root", || {
        if let Some(env) = system.listen_any(Duration::from_millis(50)).unwrap()
            && let Some(n) = env.msg.get::<ChildExited>()
            && n.child == root
        {
            reason = Some(n.reason);
        }
        reason.is_some()
    });
    assert_eq!(reason.unwrap(), ExitReason::Requested);
    drop(system);
    sys.admin_ends();
}

#[test]
fn shutdown_ends_even_actors_stuck_in_a_handler_and_leaves_nothing() {
    use crate::messaging::BlockUntil;
    let mut sys = TestSystem::start_with(&["--exit-grace-ms", "300"]);
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let stuck = system.create_actor_by_name("Blocker", None).unwrap();
    let never = sys.tmp.path().join("never-created");
    system
        .tell(
            &stuck,
            &BlockUntil {
                release: never,
                burst: 0,
            },
        )
        .unwrap();
    assert!(
        system.listen(PATIENCE).unwrap().is_some(),
        "Blocker did not start"
    );
    let parent = system.create_actor_by_name("Parent", None).unwrap();
    spawn(&mut system, &parent, 3, "Echo");
    assert_eq!(sys.status(&mut system).len(), 5);
    drop(system);
    sys.shutdown(); // asserts that no process, zombie, socket or directory remains
}

#[test]
fn an_admin_started_by_a_program_goes_away_when_the_program_is_killed() {
    let sys = TestSystem::empty();
    let mut hold = sys
        .command(&example("zoo"))
        .arg("hold")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(hold.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let echo: Address = line.trim().parse().unwrap();
    let admin_pid: u32 = std::fs::read_to_string(sys.dir.join("admin.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut system = sys.connect();
    let echo_pid = sys.pid_of(&mut system, &echo);
    drop(system);
    hold.kill().unwrap();
    hold.wait().unwrap();
    // The admin (now this test's orphan) sees its owner gone and shuts everything down.
    wait_gone(echo_pid);
    wait_gone(admin_pid);
    assert!(!alive(admin_pid));
    sys.assert_nothing_left();
}

#[test]
fn a_loaded_binary_keeps_a_spare_process_that_create_turns_into_the_actor() {
    let sys = TestSystem::start();
    let mut system = sys.connect();
    sys.load_zoo(&mut system);
    let needle = sys.tmp.path().to_string_lossy().to_string();
    let spares = || -> Vec<u32> {
        crate::support::processes_mentioning(&needle)
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("--greenroom-actor ? "))
            .map(|(pid, _)| pid)
            .collect()
    };
    let mut spare = Vec::new();
    wait_for("a spare process", || {
        spare = spares();
        spare.len() == 1
    });
    assert!(
        sys.status(&mut system).is_empty(),
        "status must not list spares"
    );
    let echo = system.create_actor_by_name("Echo", None).unwrap();
    assert_eq!(
        sys.pid_of(&mut system, &echo),
        spare[0],
        "create did not use the spare"
    );
    assert!(system.ask(&echo, "hi", PATIENCE).is_ok());
    // Its command line still says `?`; the process name (`ps -e`, `top`) says what it became.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", spare[0])).unwrap();
    assert_eq!(comm.trim_end(), "Echo");
    // A new spare replaces the one used.
    wait_for("a new spare", || spares().iter().any(|&p| p != spare[0]));
}
