//! The command line, as the README's tour uses it.

use crate::support::{TestSystem, example, wait_for, wait_gone};

#[test]
fn the_cli_tour_works_end_to_end() {
    let sys = TestSystem::empty();
    let started = sys.cli_ok(&["start"]);
    assert!(started.contains("running in"), "{started}");
    let admin_pid: u32 = std::fs::read_to_string(sys.dir.join("admin.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    sys.remember(admin_pid);
    // Starting again is harmless.
    sys.cli_ok(&["start"]);

    let zoo = example("zoo");
    let types = sys.cli_ok(&["load", zoo.to_str().unwrap()]);
    assert!(types.lines().any(|l| l == "Echo"), "{types}");

    let echo = sys.cli_ok(&["create", "Echo"]);
    assert_eq!(
        echo.lines().count(),
        1,
        "create must print the address alone: {echo}"
    );
    assert_eq!(sys.cli_ok(&["ask", &echo, "\"hi\""]), "hi");
    assert_eq!(
        sys.cli_ok(&["ask", &echo, "{\"message\":\"x\"}"]),
        "{\"message\":\"x\"}"
    );
    assert_eq!(sys.cli_ok(&["ask", &echo, "42"]), "42");

    let inspect = sys.cli_ok(&["create", "Inspect", "--binary", zoo.to_str().unwrap()]);
    assert_eq!(sys.cli_ok(&["ask", &inspect, "\"hi\""]), "String");
    assert_eq!(
        sys.cli_ok(&["ask", &inspect, "{\"message\":\"x\"}", "--type", "Greeting"]),
        "Greeting"
    );
    sys.cli_ok(&["tell", &inspect, "1"]);

    let status: serde_json::Value =
        serde_json::from_str(&sys.cli_ok(&["status", "--json"])).unwrap();
    let actors = status["actors"].as_array().unwrap();
    assert_eq!(actors.len(), 2);
    for a in actors {
        for key in ["address", "type", "pid", "parent"] {
            assert!(a.get(key).is_some(), "status lacks {key}: {a}");
        }
        sys.remember(a["pid"].as_u64().unwrap() as u32);
    }
    let table = sys.cli_ok(&["status"]);
    assert!(
        table.contains(&echo) && table.contains("Inspect"),
        "{table}"
    );

    sys.cli_ok(&["exit", &echo]);
    wait_for("Echo to exit", || !sys.cli_ok(&["status"]).contains(&echo));

    assert!(sys.cli_ok(&["shutdown"]).contains("shut down"));
    // The background admin was handed to this test process when `greenroom start` exited.
    wait_gone(admin_pid);
    sys.assert_nothing_left();
}

#[test]
fn every_command_explains_itself_with_help() {
    let sys = TestSystem::empty();
    let top = sys.cli_ok(&["--help"]);
    for cmd in [
        "start",
        "shutdown",
        "load",
        "create",
        "tell",
        "ask",
        "exit",
        "status",
        "secret",
        "members",
        "capability",
    ] {
        assert!(top.contains(cmd), "top-level help lacks {cmd}");
        let help = sys.cli_ok(&[cmd, "--help"]);
        assert!(help.contains("--system"), "{cmd} --help lacks --system");
    }
}

#[test]
fn status_shows_the_tree_global_names_and_one_actor() {
    let sys = TestSystem::start();
    let zoo = example("zoo");
    sys.cli_ok(&["load", zoo.to_str().unwrap()]);
    let boss = sys.cli_ok(&["create", "Parent", "--name", "boss"]);
    assert_eq!(
        sys.cli_ok(&["create", "Echo", "--name", "boss"]),
        boss,
        "one name, one actor"
    );
    let kids = sys.cli_ok(&[
        "ask",
        &boss,
        "{\"count\":2,\"kind\":\"Echo\"}",
        "--type",
        "Spawn",
    ]);
    let kids: Vec<String> = serde_json::from_str(&kids).unwrap();
    assert_eq!(kids.len(), 2);

    let table = sys.cli_ok(&["status"]);
    assert!(table.lines().any(|l| l.starts_with(&boss)), "{table}");
    for kid in &kids {
        assert!(
            table.lines().any(|l| l.starts_with(&format!("  {kid}"))),
            "{kid} not under its parent:\n{table}"
        );
    }
    assert!(
        table.contains(&format!("global name boss: {boss}")),
        "{table}"
    );
    assert!(table.contains("dead-letter handler: none"), "{table}");
    assert!(table.contains(zoo.to_str().unwrap()), "{table}");
    assert!(table.contains("3 created"), "{table}");

    let one = sys.cli_ok(&["status", &boss]);
    assert!(
        one.contains("children: 2") && one.contains("messages handled: 1"),
        "{one}"
    );
    let json: serde_json::Value = serde_json::from_str(&sys.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(json["names"]["boss"], boss.as_str());
    assert_eq!(json["actors"].as_array().unwrap().len(), 3);
    for a in json["actors"].as_array().unwrap() {
        sys.remember(a["pid"].as_u64().unwrap() as u32);
    }
}

#[test]
fn actor_log_lines_reach_the_system_log_tagged_with_address_and_pid() {
    use std::io::BufRead;
    let mut sys = TestSystem::empty();
    sys.start_admin_with_env(&[], &[("RUST_LOG", "info")]);
    sys.cli_ok(&["load", example("zoo").to_str().unwrap()]);
    let logger = sys.cli_ok(&["create", "Logger"]);
    let status: serde_json::Value =
        serde_json::from_str(&sys.cli_ok(&["status", "--json"])).unwrap();
    let pid = status["actors"][0]["pid"].as_u64().unwrap();
    sys.remember(pid as u32);
    assert_eq!(sys.cli_ok(&["ask", &logger, "\"first line\""]), "logged");
    let log = sys.cli_ok(&["log"]);
    let tag = format!("actor {logger} pid {pid}]");
    assert!(
        log.lines()
            .any(|l| l.contains(&tag) && l.ends_with("first line")),
        "no tagged line in the log:\n{log}"
    );

    let mut follow = sys
        .command(&crate::support::bin("greenroom"))
        .args(["log", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    assert_eq!(sys.cli_ok(&["ask", &logger, "\"second line\""]), "logged");
    let deadline = std::time::Instant::now() + crate::support::PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("log --follow never showed the second line");
        if line.contains(&tag) && line.ends_with("second line") {
            break;
        }
    }
    follow.kill().unwrap();
    follow.wait().unwrap();
    reader.join().unwrap();
}

#[test]
fn output_to_a_reader_that_has_gone_ends_quietly_with_code_0() {
    let sys = TestSystem::start();
    sys.cli_ok(&["load", &example("zoo").to_string_lossy()]);
    sys.cli_ok(&["create", "Echo"]);
    let zoo = example("zoo").to_string_lossy().to_string();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["log"],
        &["load", &zoo],
        &["--help"],
    ] {
        // A pipe whose reader is already gone, as for `greenroom status | head -0`.
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = sys
            .command(&crate::support::bin("greenroom"))
            .args(args)
            .stdout(std::process::Stdio::from(write))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "greenroom {args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "greenroom {args:?}: {out:?}");
    }
}

#[test]
fn load_of_a_bare_file_name_means_the_file_in_the_current_directory() {
    let sys = TestSystem::start();
    let zoo = example("zoo");
    // Not on PATH: only the current directory has it.
    let out = sys
        .command(&crate::support::bin("greenroom"))
        .args(["load", "zoo"])
        .current_dir(zoo.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|t| t == "Echo"),
        "{out:?}"
    );
    sys.cli_ok(&["create", "Echo"]);
}

#[test]
fn what_an_actor_writes_to_its_standard_error_lands_in_the_system_log() {
    let sys = TestSystem::start();
    sys.cli_ok(&["load", example("zoo").to_str().unwrap()]);
    let flaky = sys.cli_ok(&["create", "Flaky"]);
    // Its handler panics (twice: the retry): the panic message is written to standard error.
    let out = sys.cli(&["ask", &flaky, "\"panic\""]);
    assert!(!out.status.success(), "{out:?}");
    let log = sys.cli_ok(&["log"]);
    assert!(
        log.lines()
            .any(|l| l.contains("panicked") && l.contains("boom")),
        "no panic message in the log:\n{log}\nadmin's own output:\n{}",
        sys.admin_log()
    );
    // Not in the admin's own output any more.
    assert!(!sys.admin_log().contains("boom"), "{}", sys.admin_log());
}

#[test]
fn create_gives_start_arguments_as_json() {
    let sys = TestSystem::start();
    sys.cli_ok(&["load", example("zoo").to_str().unwrap()]);
    let configured = sys.cli_ok(&["create", "Configured", "--args", r#"{"greeting":"hey"}"#]);
    assert_eq!(sys.cli_ok(&["ask", &configured, "\"x\""]), "hey: x");
    let err = sys.cli_err(&["create", "Configured", "--args", "{not json"]);
    assert!(err.contains("--args must be JSON"), "{err}");
}
