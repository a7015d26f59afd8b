//! The module layering of DESIGN.md ("Modules"), checked on the source: a
//! module imports only modules below it, `api` is imported by nobody but
//! `startup`, `demo`, `cli` and `main`, and no two modules import each
//! other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom; a module may use the modules after it. `sim` stands
/// beside the stack (it uses `domain`).
const LAYERS: &[&[&str]] = &[
    &["main", "cli"],
    &["demo"],
    &["startup"],
    &["api"],
    &["workers"],
    &["service"],
    &["clients"],
    &["bus"],
    &["events"],
    &["store"],
    &["durability", "frame"],
    &["sim"],
    &["config"],
    &["domain"],
    &["protocol", "clock", "signing", "crypto", "metrics", "trace"],
    &["otlp", "alloc"],
];

fn rank(m: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&m))
        .unwrap_or_else(|| panic!("module {m} is not placed in LAYERS (and DESIGN.md)"))
}

/// The top-level module a source file belongs to.
fn owner(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// `crate::x` (or `akm::x` in the binary) references of a file.
fn uses(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[i + prefix.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // `akm::name!` is a macro exported at the crate root, not a module
        let macro_call = rest[name.len()..].starts_with('!');
        if !name.is_empty() && !macro_call {
            out.insert(name);
        }
    }
    out
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let m = owner(rel);
            if m == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let prefix = if m == "main" || m == "cli" {
                "akm::"
            } else {
                "crate::"
            };
            let mut used = uses(&text, prefix);
            // `super::x` from a top-level file of a directory module is that module itself
            used.remove(&m);
            graph.entry(m).or_default().extend(used);
        }
    }
    graph
}

#[test]
fn modules_only_use_modules_below_them() {
    let graph = edges();
    assert!(
        graph.contains_key("protocol") && graph.contains_key("api"),
        "{graph:?}"
    );
    let mut wrong = Vec::new();
    for (m, used) in &graph {
        for u in used {
            if [
                "start",
                "start_with_clock",
                "Platform",
                "Roles",
                "RunningNode",
            ]
            .contains(&u.as_str())
            {
                continue; // the crate root's re-exports of startup, for main and cli
            }
            if rank(u) <= rank(m) && !(m == "cli" || m == "main") {
                wrong.push(format!("{m} -> {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering: {wrong:?}");
}

#[test]
fn only_the_edge_imports_api() {
    let graph = edges();
    let importers: Vec<&String> = graph
        .iter()
        .filter(|(_, used)| used.contains("api"))
        .map(|(m, _)| m)
        .collect();
    for m in &importers {
        assert!(
            ["startup", "demo", "cli", "main"].contains(&m.as_str()),
            "{m} imports api"
        );
    }
    assert!(
        !importers.is_empty(),
        "the scan found no importer of api at all"
    );
}

#[test]
fn no_two_modules_import_each_other() {
    let graph = edges();
    for (m, used) in &graph {
        for u in used {
            if let Some(back) = graph.get(u) {
                assert!(!back.contains(m) || m == u, "{m} <-> {u}");
            }
        }
    }
}
