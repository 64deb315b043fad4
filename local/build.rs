//! seyaha-local's settings flags come from the one declaration of the settings: this reads the
//! fields of `Settings` (`shared/src/settings.rs`) that exist on both runtimes or only here, with
//! their doc comments, and writes them as a table `main.rs` turns into flags. A new setting gets
//! its flag, its help and its variable without a line here.

use std::path::Path;

fn main() {
    let source_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src/settings.rs");
    println!("cargo:rerun-if-changed={}", source_path.display());
    let source = std::fs::read_to_string(&source_path).expect("shared/src/settings.rs");
    let body = source
        .split("pub struct Settings {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("the Settings struct");
    let mut table = String::from(
        "/// (field, flag, help) of every setting a flag may set, in declaration order.\n",
    );
    table.push_str("pub const SETTING_FLAGS: &[(&str, &str, &str)] = &[\n");
    let (mut doc, mut on_aws_only) = (Vec::new(), false);
    for line in body.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix("// ----") {
            // The AWS-only section names resources a local process has none of.
            on_aws_only = section.contains("AWS");
        } else if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim().to_owned());
        } else if let Some(field) = line
            .strip_prefix("pub ")
            .and_then(|rest| rest.split(':').next())
        {
            if !on_aws_only {
                let flag = field.replace('_', "-");
                table.push_str(&format!(
                    "    ({field:?}, {flag:?}, {:?}),\n",
                    doc.join(" ")
                ));
            }
            doc.clear();
        } else if !line.starts_with("#[") {
            doc.clear();
        }
    }
    table.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("setting_flags.rs");
    std::fs::write(out, table).expect("write the flag table");
}
