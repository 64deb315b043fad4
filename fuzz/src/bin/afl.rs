//! Coverage-guided fuzzing of one target with AFL++ through cargo-afl (stable Rust):
//! `make fuzz-afl FUZZ_TARGET=products`. The same targets, properties and allocation cap as
//! `make fuzz`; a broken property or an input over the cap panics, which AFL++ records as a
//! crash under `target/afl/out/<target>/default/crashes/`.

use seyaha_fuzz::{CountingAllocator, TARGETS, run_one};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = TARGETS.iter().find(|target| target.name == name) else {
        let names: Vec<_> = TARGETS.iter().map(|target| target.name).collect();
        eprintln!("usage: afl <target>, one of {}", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|input: &[u8]| {
        if let Err(why) = run_one(target, input) {
            panic!("{}: {why}", target.name);
        }
    });
}
