//! The layer rules ARCHITECTURE.md states, checked on the source: a rule nothing checks is a
//! wish. Each rule names the crates or modules a part of `app/src` may not use.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file of the app, as (path relative to `src/`, path).
fn app_sources() -> Vec<(String, PathBuf)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "{files:?}");
    files
        .into_iter()
        .map(|f| {
            let rel = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, f)
        })
        .collect()
}

/// The code of a file (comments and doc comments left out), as (line number, text).
fn code(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

#[test]
fn every_part_keeps_to_its_layer() {
    // (who: a path prefix under src/, what it may not use, why)
    let rules: &[(&[&str], &[&str], &str)] = &[
        (
            &["domain/"],
            &["sqlx", "axum", "reqwest", "crate::"],
            "the domain is pure: no database, no HTTP, nothing of the app but itself and the leaves",
        ),
        (
            &["clock.rs", "secret.rs", "mask.rs", "identity.rs", "crypto.rs"],
            &["crate::"],
            "the leaves import nothing of the app but each other",
        ),
        (
            &["hubspot/"],
            &["sqlx", "axum", "crate::store", "crate::jobs", "crate::http", "crate::lookup", "crate::config"],
            "hubspot/ is HubSpot's protocol only: it knows no table, job or route (its settings are its own)",
        ),
        (
            &["store/"],
            &["axum", "reqwest", "crate::hubspot", "crate::jobs", "crate::http", "crate::lookup",
              "crate::config", "crate::crypto", "crate::connections"],
            "the store records; it never calls HubSpot or serves HTTP",
        ),
        (
            &["jobs/", "lookup.rs", "connections/", "access/", "outbound.rs", "privacy.rs"],
            &["sqlx", "axum", "crate::http"],
            "jobs and use cases join hubspot/ and store/; SQL is the store's, HTTP the edge's",
        ),
        (
            &["http/"],
            &["sqlx", "reqwest"],
            "the HTTP edge reaches the database through store/ and HubSpot through hubspot/",
        ),
        (
            &["config.rs", "healthcheck.rs", "serve.rs"],
            &["sqlx", "crate::http"],
            "settings, the probe and the server hold no SQL and do not depend on the routes",
        ),
        (
            &["config.rs", "healthcheck.rs"],
            &["axum"],
            "axum is the HTTP edge's (http/) and the server's (serve.rs, lib.rs)",
        ),
        (
            &["config.rs", "serve.rs"],
            &["reqwest"],
            "only hubspot/ talks HTTP to HubSpot (and healthcheck.rs probes this process)",
        ),
    ];
    let mut broken = Vec::new();
    for (rel, file) in app_sources() {
        for (who, banned, why) in rules {
            if !who
                .iter()
                .any(|w| rel == *w || (w.ends_with('/') && rel.starts_with(w)))
            {
                continue;
            }
            for (n, line) in code(&file) {
                for b in *banned {
                    // The domain may use itself and the leaves; a leaf, the other leaves.
                    let allowed = *b == "crate::"
                        && line.split("crate::").skip(1).all(|rest| {
                            ["clock", "secret", "mask", "identity", "crypto"]
                                .iter()
                                .chain(rel.starts_with("domain/").then_some(&"domain"))
                                .any(|ok| rest.starts_with(ok))
                        });
                    if line.contains(b) && !allowed {
                        broken.push(format!("src/{rel}:{n} uses `{b}` ({why}): {}", line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layer rules broken:\n{}",
        broken.join("\n")
    );
}

/// No pool outside `store/`: every write goes through `Db::write` (one writer on SQLite, the
/// busy timeout, the advisory lock on PostgreSQL). Reads may use `db.pool()`.
#[test]
fn writes_go_through_db_write() {
    let mut broken = Vec::new();
    for (rel, file) in app_sources() {
        if !rel.starts_with("store/") && code(&file).iter().any(|(_, l)| l.contains("pool()")) {
            broken.push(format!("src/{rel}: uses the pool outside store/"));
        }
        let lines = code(&file);
        for (i, (n, line)) in lines.iter().enumerate() {
            let statement = line.to_uppercase();
            let writes = ["INSERT ", "UPDATE ", "DELETE ", "CREATE "]
                .iter()
                .any(|w| {
                    statement.contains(&format!("\"{w}"))
                        || statement.contains(&format!("\" {w}"))
                        || statement.trim_start().starts_with(&format!("\"{w}"))
                });
            if !writes {
                continue;
            }
            // The statement's executor is within the next lines: it must not be the pool.
            let tail: String = lines[i..lines.len().min(i + 12)]
                .iter()
                .map(|(_, l)| l.as_str())
                .collect();
            let executor = tail
                .split(".execute(")
                .nth(1)
                .or_else(|| tail.split(".fetch_").nth(1))
                .unwrap_or("");
            if executor.trim_start().starts_with("self.db.pool()")
                || executor.contains("pool()") && !executor.contains("tx")
            {
                broken.push(format!(
                    "src/{rel}:{n}: a write on the pool: {}",
                    line.trim()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "writes outside Db::write:\n{}",
        broken.join("\n")
    );
}

/// The app's top-level modules import each other without a cycle (`crate::x` in the code of
/// `x`'s files, comments left out), so each can be read, tested and moved on its own. `lib.rs`
/// and `main.rs`, which assemble everything, are not part of the graph.
#[test]
fn modules_import_each_other_without_a_cycle() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, file) in app_sources() {
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let deps = graph.entry(top.clone()).or_default();
        for (_, line) in code(&file) {
            for part in line.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    deps.insert(name);
                }
            }
        }
    }
    assert!(graph.len() > 10, "{graph:?}");
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        let cycle = visit(m, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "an import cycle: {}",
            cycle.unwrap().join(" -> ")
        );
    }
}

/// No module's code (its unit tests left out) runs past 400 lines unless its `//!` doc says
/// why, in a line that starts `//! Long because`.
#[test]
fn modules_stay_short_or_say_why() {
    let mut long = Vec::new();
    for (rel, file) in app_sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        let code_lines = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .count();
        if code_lines > 400 && !text.lines().any(|l| l.starts_with("//! Long because")) {
            long.push(format!(
                "src/{rel}: {code_lines} lines and no `//! Long because`"
            ));
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}
