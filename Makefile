# The one test command: `make test`. CI (.ci/run) runs exactly this on a clean checkout.
# It installs what the tests need into a project-local venv (moto's server for DynamoDB, SQS
# and Secrets Manager; cfn-lint for template.yaml), playwright-core into tests/console/node_modules
# and, when it runs as root, Debian's chromium; then it checks and tests everything.
# Nothing else is assumed on the machine beyond the Rust toolchain, Python 3, Node.js 20 with npm,
# make and a C compiler.

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
CONSOLE_TEST := tests/console


.PHONY: openapi test tools chromium lint template build unit bench bench-capacity bench-stream bench-cold-start bench-load fuzz fuzz-afl fuzz-api run clean

test: tools lint template build unit

# docs/openapi.json, the document `register` serves, written from the code (make test checks it).
openapi:
	SEYAHA_WRITE_OPENAPI=1 $(CARGO) test -p seyaha --lib --locked api::tests::the_served_document_is_the_one_the_code_builds

tools: $(VENV)/.installed $(CONSOLE_TEST)/node_modules/.installed chromium

$(VENV)/.installed: requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

# The console's browser test: playwright-core (no browser download) from the lock file...
$(CONSOLE_TEST)/node_modules/.installed: $(CONSOLE_TEST)/package-lock.json
	npm ci --prefix $(CONSOLE_TEST) --no-audit --no-fund --loglevel=error
	touch $@

# ...and Debian's Chromium, installed when this runs as root with apt-get (CI does). Otherwise
# the browser test is skipped, and says so.
chromium:
	@if [ -n "$$SEYAHA_CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the console browser test"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
	  echo "SKIP: chromium not available (apt-get could not install it): the console browser test will be skipped"; \
	else echo "SKIP: chromium not available (not root, or no apt-get): the console browser test will be skipped"; fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

template: tools
	$(VENV)/bin/cfn-lint template.yaml

# The Lambda binaries the end-to-end tests run (debug build, shares everything with the tests).
build:
	$(CARGO) build --workspace --bins --locked

unit: tools build
	$(CARGO) test --workspace --locked

# Benchmarks print numbers (release builds); they assert nothing and are not part of `test`.
bench:
	$(CARGO) bench -p seyaha-tests --bench sync_catalog

# Large catalogs (10,000 and 100,000 products of ~3.7 KB) streamed from a loopback supplier
# through the parser and diff, then the engine on redb: time and peak RSS. Not in `make test`.
bench-stream:
	$(CARGO) bench -p seyaha-tests --bench stream_catalog

# Cold starts of the release function binaries against the local Runtime API and moto, next to
# a floor binary; and the zipped package sizes (arm64 when `cargo lambda build --release --arm64` ran).
bench-cold-start: tools
	$(CARGO) build --release --locked -p register -p sync-trigger -p availability-notify -p nightly-sync -p sync-worker -p cold-start-floor
	$(CARGO) bench -p seyaha-tests --bench cold_start

# DynamoDB capacity per operation and at marketplace size (10,000 integrations), on moto with
# every call recorded; prints units, requests, bytes and the hottest partition keys. A debug
# build (it counts units, not time), sharing everything with the tests; about 4 minutes, on
# two moto servers.
bench-capacity: tools
	$(CARGO) bench -p seyaha-tests --bench capacity --profile dev

# The fault-and-load benchmark: seyaha-local (release) under 64 clients with a faulty supplier,
# then the same with SIGKILL and restart every 15 s, beside the floor. Prints numbers.
bench-load:
	$(CARGO) build --release --locked -p seyaha-local -p seyaha-bench
	./target/release/load

# The parser fuzz targets (fuzz/), each for FUZZ_SECONDS (release build); prints executions
# and failures, saves failing inputs under target/fuzz-failures/. `make test` runs a short smoke.
FUZZ_SECONDS ?= 60
fuzz:
	$(CARGO) run --release --locked -p seyaha-fuzz -- --seconds $(FUZZ_SECONDS)

# Coverage-guided: the same targets under AFL++ (fuzz/afl.sh), each for FUZZ_SECONDS. cargo-afl
# and the AFL++ it builds go into .tools/ (the first run compiles them, a few minutes).
AFL_TOOLS := $(CURDIR)/.tools
fuzz-afl:
	XDG_DATA_HOME=$(AFL_TOOLS)/share $(CARGO) install --locked --quiet --root $(AFL_TOOLS) cargo-afl --version 0.18.2
	PATH="$(AFL_TOOLS)/bin:$$PATH" XDG_DATA_HOME=$(AFL_TOOLS)/share FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/afl.sh

# Schemathesis with 20x the examples of `make test` and a random seed (prints its report).
fuzz-api: tools
	SEYAHA_SCHEMATHESIS_EXAMPLES=500 SEYAHA_SCHEMATHESIS_SEED=random $(CARGO) test -p seyaha-tests --test it --locked schemathesis:: -- --nocapture

run:
	$(CARGO) run -p seyaha-local

clean:
	rm -rf target $(VENV) .tools $(CONSOLE_TEST)/node_modules
