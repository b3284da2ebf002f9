//! The chaos scenario (`examples/chaos.rs`, also `scripts/chaos`) on both bases: 40 actors pass
//! numbered tokens for 5 s while one fails every 50 ms (a `kill -9` on the process base; a
//! panic, an exit or an exit request on the simple base), and a supervisor replaces it. Every
//! token must be accounted for, and the system's ledger must settle.

use crate::support::{TestSystem, example};

fn chaos(base: &str) -> serde_json::Value {
    let sys = TestSystem::empty();
    let out = sys
        .command(&example("chaos"))
        .args(["--actors", "40", "--seconds", "5"])
        .env("GREENROOM_BASE", base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chaos on {base} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sys.assert_nothing_left();
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("chaos printed no JSON ({e}): {stdout}"))
}

fn assert_accounted(report: &serde_json::Value) {
    let n = |key: &str| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key}: {report}"))
    };
    assert!(
        n("tokens") > 100,
        "too few tokens to mean anything: {report}"
    );
    // 100 failures are scheduled (one every 50 ms for 5 s); a loaded machine may fall a few
    // behind the beat, never far.
    assert!(n("kills") >= 80, "too few failures: {report}");
    assert_eq!(n("unaccounted"), 0, "tokens lost: {report}");
    assert_eq!(n("unmarked_duplicates"), 0, "unmarked duplicates: {report}");
    assert_eq!(
        report["ledger"]["in_flight"].as_u64(),
        Some(0),
        "messages never settled: {report}"
    );
}

#[test]
fn chaos_on_processes_killed_every_50_ms_loses_no_token() {
    let report = chaos("multiproc");
    assert_accounted(&report);
}

#[test]
fn chaos_on_the_simple_base_loses_nothing_and_duplicates_nothing() {
    let report = chaos("simple");
    assert_accounted(&report);
    assert_eq!(report["duplicates"].as_u64(), Some(0), "{report}");
}
