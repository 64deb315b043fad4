//! `make fuzz`: every target for `--seconds` (default 60) each; prints executions and failures,
//! saves failing inputs under `target/fuzz-failures/<target>/`, and exits non-zero on any.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use seyaha_fuzz::{CountingAllocator, TARGETS, corpus, fuzz};
use sha2::{Digest, Sha256};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut seconds, mut only) = (60u64, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds N")
            }
            "--target" => only = args.next(),
            other => {
                eprintln!("usage: fuzz [--seconds N] [--target NAME]; unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    // Panics are expected findings: report them in the summary, not on stderr mid-run.
    std::panic::set_hook(Box::new(|_| {}));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failed = false;
    for target in TARGETS
        .iter()
        .filter(|t| only.as_deref().is_none_or(|name| name == t.name))
    {
        let seeds = corpus(&root.join("corpus"), target.name);
        let report = fuzz(target, &seeds, Duration::from_secs(seconds));
        println!(
            "{:<9} {:>10} executions in {seconds} s ({:>7.0}/s), {} seeds, {} failures",
            target.name,
            report.executions,
            report.executions as f64 / seconds.max(1) as f64,
            seeds.len(),
            report.failures.len()
        );
        let dir = root.join("../target/fuzz-failures").join(target.name);
        for (input, why) in &report.failures {
            failed = true;
            std::fs::create_dir_all(&dir).ok();
            let file = dir.join(hex(&Sha256::digest(input)[..8]));
            std::fs::write(&file, input).ok();
            println!("  {why} ({})", file.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
