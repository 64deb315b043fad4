#!/usr/bin/env bash
# `make fuzz-afl`: coverage-guided fuzzing with AFL++ (through cargo-afl, on stable Rust) of
# each target in FUZZ_TARGETS (default: all five) for FUZZ_SECONDS (default 60), starting from
# its seed corpus. The targets, properties and allocation cap are those of `make fuzz`
# (fuzz/src/lib.rs); fuzz/src/bin/afl.rs panics on a broken one, which AFL++ saves as a crash.
# Prints executions, the corpus AFL++ grew, edge coverage and crashes; exits non-zero on any.
# Reproduce a crash: target/afl/release/afl <target> < <crash file>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-products notify jwt base_url ssrf}

# Instrumented builds get their own target dir, so they never invalidate the normal ones.
export CARGO_TARGET_DIR=target/afl
cargo afl build --release --locked --quiet -p seyaha-fuzz --features afl --bin afl

# No UI, no CPU pinning (the machine may be shared), no core_pattern tuning (needs root).
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1

failed=0
for target in $targets; do
    out=target/afl/out/$target
    rm -rf "$out" && mkdir -p "$out"
    if ! cargo afl fuzz -V "$seconds" -i "fuzz/corpus/$target" -o "$out" target/afl/release/afl "$target" > "$out.log" 2>&1; then
        echo "$target: afl-fuzz failed, see $out.log"
        failed=1
        continue
    fi
    stats=$out/default/fuzzer_stats
    stat() { awk -F' *: *' -v key="$1" '$1 == key { print $2 }' "$stats"; }
    printf '%-9s %10s executions in %s s (%s/s), corpus %s from %s seeds, edge coverage %s, %s crashes, %s hangs\n' \
        "$target" "$(stat execs_done)" "$seconds" "$(stat execs_per_sec)" "$(stat corpus_count)" \
        "$(find "fuzz/corpus/$target" -type f | wc -l)" "$(stat bitmap_cvg)" "$(stat saved_crashes)" "$(stat saved_hangs)"
    if [ "$(stat saved_crashes)" != 0 ]; then
        echo "  crashing inputs: $out/default/crashes/"
        failed=1
    fi
done
exit $failed
