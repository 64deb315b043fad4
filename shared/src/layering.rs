//! The dependency rule, checked: the library's top-level modules depend on each other only
//! downwards in [`LAYERS`], adapters only on what a port needs, and no module's files depend on
//! each other in a cycle. It reads the sources (`crate::<module>` and `super::<file>` paths,
//! comments left out), so a new `use` that breaks the rule fails here, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom up: a module may use those in lower layers only. One
/// layer may hold several modules that do not use each other.
const LAYERS: &[&[&str]] = &[
    &["domain", "logging"],
    &["ports", "metrics"],
    &["optimistic"],
    &["net"],
    &["octo"],
    &["sync"],
    &["settings"],
    &["service"],
    &["api"],
    &["app"],
    &["lambda"],
];

/// Adapters implement ports: they may use these, and nothing of the core that calls them.
const ADAPTERS_MAY_USE: &[&str] = &["domain", "logging", "ports", "metrics", "optimistic"];

/// Test-only modules, outside the rule.
const NOT_CHECKED: &[&str] = &["layering"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the sources can be read") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments (line, doc and block comments), so links and prose in docs do
/// not count as dependencies. Strings are kept: a path inside a string literal is rare, and
/// counting it errs towards reporting.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let bytes = source.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let rest = &source[i..];
        if in_string {
            if rest.starts_with("\\\"") || rest.starts_with("\\\\") {
                out.push_str(&rest[..2]);
                i += 2;
                continue;
            }
            if bytes[i] == b'"' {
                in_string = false;
            }
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
            continue;
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
            continue;
        } else if bytes[i] == b'"' && !source[..i].ends_with('\'') {
            in_string = true;
        }
        let ch = rest.chars().next().expect("not at the end");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The identifiers that follow `prefix` in `source` (`crate::` -> `sync`, `api`, ...).
fn names_after<'a>(source: &'a str, prefix: &str) -> BTreeSet<&'a str> {
    let mut names = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(prefix) {
        let before_ok = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        rest = &rest[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if before_ok && end > 0 {
            names.insert(&rest[..end]);
        }
    }
    names
}

/// The top-level module a file belongs to: `sync/catalog.rs` -> `sync`, `settings.rs` ->
/// `settings`; `lib.rs` belongs to none.
fn module_of(relative: &Path) -> Option<String> {
    let top = relative.iter().next()?.to_string_lossy();
    let top = top.trim_end_matches(".rs");
    (top != "lib").then(|| top.to_owned())
}

/// Edges `from -> to` with the files that make them.
type Edges = BTreeMap<(String, String), BTreeSet<String>>;

/// A cycle in `edges`, if there is one, as the nodes along it.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| n.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node);
        for to in next.get(node).map(Vec::as_slice).unwrap_or_default() {
            if let Some(cycle) = visit(to, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    next.keys()
        .find_map(|node| visit(node, &next, &mut Vec::new(), &mut done))
}

/// The files of a directory module (siblings) and what each uses of the others, through
/// `super::<file>` or `crate::<path to the directory>::<file>`. The directory's `mod.rs` (or
/// its `<dir>.rs`) is its root and is left out: it declares the files.
fn sibling_edges(root: &Path, files: &[PathBuf]) -> BTreeMap<PathBuf, Edges> {
    let mut by_dir: BTreeMap<PathBuf, Edges> = BTreeMap::new();
    for file in files {
        let dir = file.parent().expect("a file has a directory").to_owned();
        let own = file
            .file_stem()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        if own == "mod" || own == "lib" {
            continue;
        }
        let siblings: BTreeSet<String> = std::fs::read_dir(&dir)
            .expect("the directory")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let stem = path.file_stem()?.to_string_lossy().into_owned();
                (path.extension().is_some_and(|e| e == "rs") || path.is_dir()).then_some(stem)
            })
            .filter(|stem| stem != "mod")
            .collect();
        let source = without_comments(&std::fs::read_to_string(file).expect("a source file"));
        let module_path: Vec<String> = dir
            .strip_prefix(root)
            .expect("under src")
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        let mut used: BTreeSet<&str> = names_after(&source, "super::");
        if !module_path.is_empty() {
            used.extend(names_after(
                &source,
                &format!("crate::{}::", module_path.join("::")),
            ));
        }
        for name in used {
            if name != own && siblings.contains(name) {
                by_dir
                    .entry(dir.clone())
                    .or_default()
                    .entry((own.clone(), name.to_owned()))
                    .or_default()
                    .insert(own.clone());
            }
        }
    }
    by_dir
}

#[test]
fn dependencies_point_down_the_layers_and_never_in_a_cycle() {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut edges = Edges::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under src");
        let Some(module) = module_of(relative) else {
            continue;
        };
        if NOT_CHECKED.contains(&module.as_str()) {
            continue;
        }
        let source = without_comments(&std::fs::read_to_string(file).expect("a source file"));
        for used in names_after(&source, "crate::") {
            if used != module && (layer_of(used).is_some() || used == "adapters") {
                edges
                    .entry((module.clone(), used.to_owned()))
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    assert!(edges.len() > 20, "read the sources: {edges:?}");

    let mut wrong = Vec::new();
    for ((from, to), where_) in &edges {
        let allowed = match (from.as_str(), layer_of(from), layer_of(to)) {
            ("adapters", _, _) => ADAPTERS_MAY_USE.contains(&to.as_str()),
            // Only the composition at the top (`app`, `lambda`) wires adapters in.
            (_, Some(from_layer), None) => {
                to == "adapters" && from_layer >= layer_of("app").expect("app has a layer")
            }
            (_, Some(from_layer), Some(to_layer)) => to_layer < from_layer,
            (_, None, _) => false,
        };
        if !allowed {
            wrong.push(format!(
                "{from} -> {to} (in {})",
                where_.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layer order:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        find_cycle(&edges),
        None,
        "a cycle between top-level modules"
    );

    let cycles: Vec<String> = sibling_edges(&root, &files)
        .iter()
        .filter_map(|(dir, edges)| {
            find_cycle(edges).map(|cycle| format!("{}: {}", dir.display(), cycle.join(" -> ")))
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "a cycle between the files of a module:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_checker_sees_uses_and_cycles_and_not_comments() {
    let source = "use crate::sync::X; // crate::api::Y\n/* crate::app */ let s = \"a // b\"; crate::domain::Z;";
    assert_eq!(
        names_after(&without_comments(source), "crate::"),
        BTreeSet::from(["domain", "sync"])
    );
    let edge = |a: &str, b: &str| ((a.to_owned(), b.to_owned()), BTreeSet::new());
    assert_eq!(
        find_cycle(&Edges::from([edge("a", "b"), edge("b", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&Edges::from([edge("a", "b"), edge("b", "a")])),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}
