//! The scenario suite (`examples/scenarios`) on both bases. Each scenario is written once; each
//! runs here twice, as a real program: with `GREENROOM_BASE=multiproc` (it starts its own admin,
//! one process per actor) and with `GREENROOM_BASE=simple` (all actors in the program). On the
//! way out, the process base must have left nothing behind.

use crate::support::{TestSystem, example};

fn run(name: &str, base: &str) {
    let sys = TestSystem::empty();
    let out = sys
        .command(&example("scenarios"))
        .arg(name)
        .env("GREENROOM_BASE", base)
        .env_remove("GREENROOM_SYSTEM")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scenario {name} on the {base} base failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{name}: ok")
    );
    sys.assert_nothing_left();
}

macro_rules! on_both_bases {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn multiproc() {
                    super::run(stringify!($name), "multiproc");
                }

                #[test]
                fn simple() {
                    super::run(stringify!($name), "simple");
                }
            }
        )+

        #[test]
        fn every_scenario_runs_here() {
            let out = std::process::Command::new(example("scenarios")).arg("list").output().unwrap();
            let listed: Vec<String> =
                String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
            let here = vec![$(stringify!($name).to_string()),+];
            assert_eq!(listed, here, "scenarios and this list differ");
        }
    };
}

on_both_bases!(
    exit_is_recursive,
    exit_can_leave_children_running,
    failed_start_returns_messages_as_poison,
    poison,
    dead_letters,
    timers,
    timers_and_exit,
    global_names,
    type_dispatch,
    addresses,
    big_message,
    second_reply,
    asks,
    lifecycle,
    start_args,
    many_to_one,
    sub_actors,
    rapid_creates,
    pipelines,
    status,
    troupe,
    configured,
    troupe_work_in_progress,
    transient,
    requirements,
);

#[test]
fn the_simple_base_handles_messages_in_the_same_order_every_run() {
    let trace = || {
        let sys = TestSystem::empty();
        let out = sys
            .command(&example("scenarios"))
            .arg("trace")
            .env("GREENROOM_BASE", "simple")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = trace();
    assert_eq!(first.lines().count(), 90);
    for _ in 0..3 {
        assert_eq!(
            trace(),
            first,
            "two runs handled messages in different orders"
        );
    }
}
