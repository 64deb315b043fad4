//! In `make test`: every fuzz target over its seed corpus and a few seconds of mutations
//! (`FUZZ_SMOKE_SECONDS`, default 3). `make fuzz` runs them for longer.

use std::path::Path;
use std::time::Duration;

use seyaha_fuzz::{CountingAllocator, TARGETS, corpus, fuzz};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn every_target_holds_on_its_corpus_and_mutations() {
    let seconds = std::env::var("FUZZ_SMOKE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut problems = Vec::new();
    for target in &TARGETS {
        let seeds = corpus(&root, target.name);
        assert!(!seeds.is_empty(), "{}: no seed corpus", target.name);
        let report = fuzz(target, &seeds, Duration::from_secs(seconds));
        println!(
            "{}: {} executions, {} failures",
            target.name,
            report.executions,
            report.failures.len()
        );
        for (input, why) in report.failures.iter().take(3) {
            problems.push(format!(
                "{}: {why}; input {:?}",
                target.name,
                String::from_utf8_lossy(&input[..input.len().min(200)])
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_broken_property_a_panic_and_an_allocation_over_the_cap_are_caught() {
    use seyaha_fuzz::{Target, run_one};
    let broken = Target {
        name: "broken",
        run: |_| Err("broken".into()),
    };
    let panicking = Target {
        name: "panicking",
        run: |_| panic!("boom"),
    };
    let hoarding = Target {
        name: "hoarding",
        run: |_| {
            let hoard = vec![1u8; 64 * 1024 * 1024];
            std::hint::black_box(&hoard);
            Ok(())
        },
    };
    assert_eq!(run_one(&broken, b"x"), Err("broken".into()));
    assert!(run_one(&panicking, b"x").unwrap_err().contains("boom"));
    assert!(run_one(&hoarding, b"x").unwrap_err().contains("held"));
}
