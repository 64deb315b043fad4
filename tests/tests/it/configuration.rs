//! The configuration table of `docs/operations.md` against the code: one row per field of
//! `Settings` (and no row for a setting that does not exist), each integer or boolean default
//! as `Settings::default()` has it, and exactly the flags `seyaha-local --help` offers.

use std::collections::{BTreeMap, BTreeSet};

/// The rows of the configuration table: variable -> (flag cell, default cell).
fn table() -> BTreeMap<String, (String, String)> {
    let manual =
        std::fs::read_to_string(seyaha_tests::repo_root().join("docs/operations.md")).unwrap();
    let section = manual
        .split("\n## Configuration\n")
        .nth(1)
        .expect("a ## Configuration section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `SEYAHA_"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let unquoted = |cell: &str| cell.trim_matches('`').to_owned();
            (
                unquoted(cells[1]),
                (unquoted(cells[2]), cells[3].to_owned()),
            )
        })
        .collect()
}

/// The integer and boolean defaults of `Settings`, from its `Debug` form (`name: 5`).
fn plain_defaults() -> BTreeMap<String, String> {
    let debug = format!("{:?}", seyaha::settings::Settings::default());
    let mut defaults = BTreeMap::new();
    for part in debug.split(", ") {
        let part = part.trim_start_matches("Settings { ");
        if let Some((name, value)) = part.split_once(": ") {
            let value = value.trim_end_matches(" }");
            if value.parse::<u64>().is_ok() || value == "true" || value == "false" {
                defaults.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    defaults
}

#[test]
fn the_configuration_table_has_one_row_per_setting_with_its_default() {
    let fields: Vec<String> = seyaha_tests::settings_fields()
        .into_iter()
        .map(|(_, field)| field)
        .collect();
    assert!(fields.len() > 30, "read the settings: {fields:?}");
    let rows = table();
    let variables: BTreeSet<String> = fields
        .iter()
        .map(|field| seyaha::settings::variable(field))
        .collect();
    let listed: BTreeSet<String> = rows.keys().cloned().collect();
    assert_eq!(
        variables.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "settings without a row"
    );
    assert_eq!(
        listed.difference(&variables).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "rows for no setting"
    );

    let defaults = plain_defaults();
    assert!(defaults.len() > 20, "read the defaults: {defaults:?}");
    for (field, default) in defaults {
        let (_, cell) = &rows[&seyaha::settings::variable(&field)];
        assert!(
            cell.starts_with(&format!("`{default}`")),
            "{field}: the code's default is {default}, the table says {cell}"
        );
    }
}

#[test]
fn the_table_names_exactly_the_flags_seyaha_local_offers() {
    let binary = seyaha_tests::lambda::function_binary("seyaha-local");
    let help = std::process::Command::new(binary)
        .arg("--help")
        .output()
        .expect("seyaha-local --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let offered: BTreeSet<String> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| {
            word.trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_owned()
        })
        .filter(|flag| !matches!(flag.as_str(), "--help" | "--version" | "--port"))
        .collect();
    let rows = table();
    let mut documented = BTreeSet::new();
    for (variable, (flag, _)) in &rows {
        if flag.is_empty() {
            continue;
        }
        // A flag sets the variable of the same name.
        let expected = format!(
            "--{}",
            variable
                .trim_start_matches("SEYAHA_")
                .to_lowercase()
                .replace('_', "-")
        );
        assert_eq!(flag, &expected, "{variable}'s flag");
        documented.insert(flag.clone());
    }
    assert_eq!(
        offered, documented,
        "seyaha-local's flags against the table's flag column"
    );
}
