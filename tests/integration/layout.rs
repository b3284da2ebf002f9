//! The layout the README promises, checked on the sources: modules depend on each other without
//! cycles (but `address` ⇄ `error`), no source file is longer than 400 lines, and only `sys`
//! calls the C library (`libc` or `nix`) or holds `unsafe` code. Other modules may name the C
//! library's constants (an errno to classify, a signal number).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading the sources") {
        let path = entry.expect("reading the sources").path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a file of `src` belongs to, cut to its first `depth` parts (`process::admin`).
fn module_of(file: &Path, depth: usize) -> String {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p != "mod" && p != "lib")
        .collect();
    parts[..parts.len().min(depth)].join("::")
}

/// The code of a file without comments (doc links are not dependencies) and without an inline
/// test module.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Modules (at `depth`) that depend on each other in a cycle, each cycle as a sorted list.
fn cycles(depth: usize) -> BTreeSet<Vec<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src()) {
        if file.file_stem().is_some_and(|s| s == "tests") {
            continue;
        }
        let me = module_of(&file, depth);
        let code = code(&file);
        for (at, _) in code.match_indices("crate::") {
            let path: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == ':')
                .collect();
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let to = parts[..parts.len().min(depth)].join("::");
            let nested = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}::"));
            if !to.is_empty() && !nested(&me, &to) && !nested(&to, &me) {
                edges.entry(me.clone()).or_default().insert(to);
            }
        }
    }
    // Two modules are in a cycle when each reaches the other.
    let reach = |from: &String| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut found = BTreeSet::new();
    for (m, r) in &reached {
        let mut cycle: Vec<String> = r
            .iter()
            .filter(|o| reached.get(o).is_some_and(|back| back.contains(*m)))
            .cloned()
            .collect();
        if !cycle.is_empty() {
            cycle.sort();
            found.insert(cycle);
        }
    }
    found
}

#[test]
fn modules_depend_downwards_without_cycles() {
    let allowed: BTreeSet<Vec<String>> = [vec!["address".to_string(), "error".to_string()]]
        .into_iter()
        .collect();
    for depth in 1..=3 {
        assert_eq!(
            cycles(depth),
            allowed,
            "import cycles between modules {depth} deep"
        );
    }
}

#[test]
fn no_source_file_is_longer_than_400_lines() {
    let long: Vec<(PathBuf, usize)> = sources(&src())
        .into_iter()
        .map(|f| {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            (f, lines)
        })
        .filter(|(_, lines)| *lines > 400)
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

#[test]
fn only_sys_calls_the_c_library_or_holds_unsafe_code() {
    let sys = src().join("sys");
    let mut outside = Vec::new();
    for file in sources(&src()) {
        if file.starts_with(&sys) || file == src().join("sys.rs") {
            continue;
        }
        let code = code(&file);
        // `nix::` as a path of its own, not the end of `std::os::unix::`.
        let nix = code
            .match_indices("nix::")
            .any(|(at, _)| at == 0 || !code[..at].ends_with('u'));
        // A call is `libc::` followed by a lower-case name and `(`; constants are upper case.
        let libc_call = code.match_indices("libc::").any(|(at, _)| {
            let rest = &code[at + 6..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && rest[name.len()..].trim_start().starts_with('(')
        });
        let unsafe_code = code.contains("unsafe ") || code.contains("unsafe{");
        for (found, what) in [
            (nix, "nix"),
            (libc_call, "libc call"),
            (unsafe_code, "unsafe"),
        ] {
            if found {
                outside.push((file.clone(), what));
            }
        }
    }
    assert!(outside.is_empty(), "move these into src/sys: {outside:?}");
}
