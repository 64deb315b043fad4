//! The documentation holds together: every relative link in the README, ARCHITECTURE.md,
//! CHANGELOG.md and `docs/` names a file that exists, and every `#anchor` a heading of that
//! file (GitHub's anchor rule), so moving a section cannot leave a dead link behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown file's headings (code blocks left out).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            let heading = line.trim_start_matches('#');
            if heading.starts_with(' ') {
                anchors.insert(anchor_of(heading));
            }
        }
    }
    anchors
}

/// The `](target)` of every inline link and image, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

#[test]
fn every_relative_link_in_the_docs_reaches_a_file_and_a_heading() {
    let root = seyaha_tests::repo_root();
    let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "CHANGELOG.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let texts: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(f).unwrap()))
        .collect();
    let mut dead = Vec::new();
    let mut checked = 0;
    for (file, text) in &texts {
        for target in links(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !linked.exists() {
                dead.push(format!("{}: {target} (no such file)", file.display()));
                continue;
            }
            if anchor.is_empty() || linked.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = match texts.get(&linked) {
                Some(text) => text.clone(),
                None => std::fs::read_to_string(&linked).unwrap(),
            };
            if !anchors(&text).contains(anchor) {
                dead.push(format!("{}: {target} (no such heading)", file.display()));
            }
        }
    }
    assert!(checked > 50, "read the links: {checked}");
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn anchors_follow_githubs_rule() {
    assert_eq!(
        anchor_of(" OCTO events: what a partner's platform pushes by itself"),
        "octo-events-what-a-partners-platform-pushes-by-itself"
    );
    assert_eq!(anchor_of("Quickstart (local)"), "quickstart-local");
    assert_eq!(
        links("see [a](b.md#c) and ![x](y.png)"),
        ["b.md#c", "y.png"]
    );
}
