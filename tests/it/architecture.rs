//! The shape of the code, checked: the module graph of each crate has no circle and is the one drawn in
//! ARCHITECTURE.md, the leaf modules import nothing of their crate, and no function is longer than
//! about a screen (120 lines) except the tables listed here.
//!
//! The graph is read from the sources: a module depends on another when its non-test code names
//! `crate::<other>`. Test modules (`#[cfg(test)] mod tests`, `tests.rs`) may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its test module (by convention the last item: `#[cfg(test)] mod tests`).
fn non_test_code(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap();
    let cut = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    Some(text[..cut].to_owned())
}

/// The top-level module a file belongs to (`sync` for `sync/list.rs`), or `None` for the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// Every module of the crate at `src` and the modules of the same crate it names.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        let deps = graph.entry(module.clone()).or_default();
        let Some(code) = non_test_code(&file) else {
            continue;
        };
        for (at, _) in code.match_indices("crate::") {
            // `auditsync_core::x` names another crate; `$crate::` is a macro's.
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    graph
}

/// A circle in the graph, if there is one.
fn circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(dep, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// The graph as ARCHITECTURE.md draws it: the lines `module → dep dep …` of the block that follows
/// `<!-- module graph: NAME -->`.
fn documented(name: &str) -> Graph {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let marker = format!("<!-- module graph: {name} -->");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no {marker}"));
    let block = text[start..]
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("no fenced block after {marker}"));
    let mut graph = Graph::new();
    for line in block.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (module, deps) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("not `module → deps`: {line:?}"));
        graph.insert(
            module.trim().to_owned(),
            deps.split_whitespace()
                .filter(|d| *d != "(none)")
                .map(str::to_owned)
                .collect(),
        );
    }
    graph
}

fn drawn(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, deps)| {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            let deps = if deps.is_empty() {
                "(none)".to_owned()
            } else {
                deps.join(" ")
            };
            format!("{m:<10} → {deps}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_module_imports_one_that_imports_it_back_and_architecture_md_draws_the_graph() {
    for (name, src) in [
        ("auditsync_core", root().join("crates/core/src")),
        ("auditsync", root().join("src")),
    ] {
        let graph = graph(&src);
        assert_eq!(circle(&graph), None, "a circle in {name}");
        assert_eq!(
            documented(name),
            graph,
            "ARCHITECTURE.md's graph of {name} is not the code's; the code's is:\n{}",
            drawn(&graph)
        );
    }
}

#[test]
fn the_leaf_modules_import_nothing_of_their_crate() {
    let core = graph(&root().join("crates/core/src"));
    for leaf in ["net", "time", "model", "redact", "stop", "files"] {
        assert_eq!(core.get(leaf), Some(&BTreeSet::new()), "{leaf}");
    }
    // The error module knows every error enum; nothing below it imports it back.
    let app = graph(&root().join("src"));
    for (module, deps) in &app {
        if module != "commands" && module != "error" {
            assert!(!deps.contains("error"), "{module} imports error");
        }
    }
    assert!(!app["error"].contains("commands") && !app["error"].contains("cli"));
}

/// Functions that are a table of data rather than logic: allowed past the limit.
const TABLES: &[&str] = &["entra_error_cases"];

#[test]
fn no_function_is_longer_than_a_screen() {
    let mut files = Vec::new();
    for dir in ["src", "crates/core/src", "crates/simulator/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut long = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let Some(after) = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "async fn ",
            ]
            .iter()
            .chain(&[
                "pub async fn ",
                "pub(crate) async fn ",
                "pub(super) async fn ",
            ])
            .find_map(|p| trimmed.strip_prefix(p)) else {
                continue;
            };
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // A declaration without a body, or a body on one line.
            let opens = lines[i..]
                .iter()
                .find(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'));
            if opens.is_none_or(|l| l.trim_end().ends_with(';')) || line.trim_end().ends_with('}') {
                continue;
            }
            let indent = &line[..line.len() - trimmed.len()];
            let close = format!("{indent}}}");
            let Some(end) = lines[i + 1..].iter().position(|l| *l == close) else {
                continue;
            };
            if end + 2 > 120 && !TABLES.contains(&name.as_str()) {
                long.push(format!(
                    "{}:{} {name} ({} lines)",
                    file.display(),
                    i + 1,
                    end + 2
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over 120 lines:\n{}",
        long.join("\n")
    );
}
