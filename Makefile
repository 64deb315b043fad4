# The one test command: `make test`. CI (.ci/run) runs exactly this.
# Everything the tests need is installed by this file; nothing is assumed on the machine
# beyond the Rust toolchain, Python 3 and make.

CARGO ?= cargo

.PHONY: test lint unit bench run clean

test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

# Benchmarks print numbers (release build); they assert nothing and are not part of `test`.
bench:
	$(CARGO) bench -p seyaha --features embedded --bench sync_catalog

run:
	$(CARGO) run -p seyaha-local

clean:
	rm -rf target .venv
