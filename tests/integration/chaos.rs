//! The chaos scenario (`examples/chaos.rs`, also `scripts/chaos`) on both bases: 40 actors pass
//! numbered tokens for 5 s while one fails every 50 ms (a `kill -9` on the process base; a
//! panic, an exit or an exit request on the simple base), and a supervisor replaces it; one carry
//! in a hundred also ends its carrier by its own exit request. Every
//! token must be accounted for, and the system's ledger must settle.

use crate::support::{TestSystem, example};

/// The chaos report, and the trace of what carriers did with tokens (for a failure message).
fn chaos(base: &str) -> (serde_json::Value, String) {
    let sys = TestSystem::empty();
    let trace = sys.tmp.path().join("trace");
    let out = sys
        .command(&example("chaos"))
        // Exits ten times as often as the default: a process killed while it returns what was
        // queued behind its exit once returned a message twice.
        .args(["--actors", "40", "--seconds", "5", "--exit-per-mille", "10"])
        // A loaded machine falls behind the beat of one failure every 50 ms: run on (within
        // bounds) until 80 have happened, rather than count on the clock.
        .args(["--min-failures", "80"])
        .env("GREENROOM_BASE", base)
        .env("CHAOS_TRACE", &trace)
        .output()
        .unwrap();
    let trace = std::fs::read_to_string(&trace).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chaos on {base} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sys.assert_nothing_left();
    let report = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("chaos printed no JSON ({e}): {stdout}"));
    (report, trace)
}

/// The trace lines about the tokens a report names as lost or duplicated without a mark.
fn about_failed_tokens(report: &serde_json::Value, trace: &str) -> String {
    let ids: Vec<String> = ["unaccounted_ids", "unmarked_ids"]
        .iter()
        .flat_map(|k| report[*k].as_array().cloned().unwrap_or_default())
        .map(|id| id.to_string())
        .collect();
    trace
        .lines()
        .filter(|l| l.split_whitespace().any(|w| ids.iter().any(|id| id == w)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_accounted(run: &(serde_json::Value, String)) {
    let (report, trace) = run;
    let n = |key: &str| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key}: {report}"))
    };
    assert!(
        n("tokens") > 100,
        "too few tokens to mean anything: {report}"
    );
    // 100 failures are scheduled (one every 50 ms for 5 s); the run goes on until 80 have
    // happened, up to 30 s.
    assert!(n("kills") >= 80, "too few failures: {report}");
    let failed = || about_failed_tokens(report, trace);
    assert_eq!(n("unaccounted"), 0, "tokens lost: {report}\n{}", failed());
    assert_eq!(
        n("unmarked_duplicates"),
        0,
        "unmarked duplicates: {report}\n{}",
        failed()
    );
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
    let run = chaos("simple");
    assert_accounted(&run);
    let report = &run.0;
    assert_eq!(report["duplicates"].as_u64(), Some(0), "{report}");
}
