# Self-documenting: every public target carries a `## description`; `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV      ?= .venv
PY        := $(VENV)/bin/python
BIN       := $(VENV)/bin
PYTHON    ?= python3
export PYO3_PYTHON := $(abspath $(PY))
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

$(VENV)/.deps: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.7,<2"
	$(PY) -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  print("\n".join(d["dependencies"] + d["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	touch $@

.PHONY: system-deps
# Debian packages the suite uses: redis-server (scale-out tests), valgrind (instruction-count benchmarks).
SYSTEM_PACKAGES := redis-server:redis-server valgrind:valgrind
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
system-deps: ## install the Debian packages the suite needs (redis-server, valgrind), if missing
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian's packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

.PHONY: venv
venv: $(VENV)/.deps ## create the virtualenv with runtime and dev dependencies

.PHONY: build
build: $(VENV)/.deps ## build the Rust extension (release) into the virtualenv
	$(BIN)/maturin develop --release -q

.PHONY: demo
demo: build ## build, then run the engine against the embedded simulator
	$(BIN)/engine demo

# The suite runs across both cores (pytest-xdist, one test file per worker), except the tests that start
# worker processes on one shared rate budget, and the soak and chaos runs under the simulator's real limits:
# they judge one-second windows, and run alone afterwards.
XDIST        ?= -n 2 --dist loadfile
SERIAL_TESTS ?= tests/scaleout tests/ops tests/reliability/test_soak_short.py tests/reliability/test_chaos_simulator.py

.PHONY: test
test: build system-deps ## build, then the whole suite: lint, cargo test, pytest (benchmarks untimed), fuzz-short, then 3.12/3.13
	$(MAKE) --no-print-directory lint
	cargo test --release --quiet -p rust_signer --lib
	$(BIN)/pytest -q -p no:cacheprovider --benchmark-disable $(XDIST) $(addprefix --ignore=,$(SERIAL_TESTS))
	$(BIN)/pytest -q -p no:cacheprovider --benchmark-disable $(SERIAL_TESTS)
	$(MAKE) --no-print-directory fuzz-short
	$(MAKE) --no-print-directory test-pythons

# The one abi3 wheel on the newer interpreters (.venv above is the oldest, 3.11): built once, installed into
# .venv-3.12 and .venv-3.13 made from pyenv's interpreters, and tested from a copy of the suite under target/
# so that `engine` is the installed wheel, not this checkout. One after the other: the multi-process tests
# (four workers on one rate budget) judge one-second windows, and a second suite on the other core stalls them.
# The newest runs the whole suite but the benchmark tooling's own tests (they drive cargo and valgrind in this
# checkout), the worker-process tests (tests/ops, tests/scaleout: subprocesses and Redis, run on 3.11) and the
# soak and chaos tests (tests/reliability: they drive soak/, which the staged copy does not hold); the
# other what keeps `make test` well inside its 15 minutes. An absent interpreter is skipped with a message.
EXTRA_PYTHONS ?= 3.12 3.13
PYENV_ROOT    ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
WHEELHOUSE    := target/wheelhouse
PYTEST_3.13   ?= tests benches --ignore=tests/bench --ignore=tests/ops --ignore=tests/scaleout --ignore=tests/reliability
PYTEST_3.12   ?= tests/signer tests/client tests/marketdata tests/risk tests/signals tests/sim tests/test_eager.py

.PHONY: wheel
wheel: $(VENV)/.deps ## build the abi3 wheel once, for every interpreter, into target/wheelhouse
	rm -rf $(WHEELHOUSE)
	$(BIN)/maturin build --release --quiet --out $(WHEELHOUSE)

.PHONY: test-pythons
test-pythons: wheel ## the wheel on Python 3.12 and 3.13, each in its own virtualenv (.venv-3.12, .venv-3.13)
	$(MAKE) --no-print-directory $(addprefix test-python-,$(EXTRA_PYTHONS))

test-python-%:
	@python=$$(ls -d $(PYENV_ROOT)/versions/$*.*/bin/python3 2>/dev/null | sort -V | tail -n 1); \
	[ -n "$$python" ] || python=$$(command -v python$* || true); \
	if [ -z "$$python" ]; then \
	  echo "test-python-$*: SKIPPED, no Python $* here (pyenv install $*, or put python$* on PATH)"; exit 0; fi; \
	venv=$(abspath .venv-$*); stage=$(abspath target/suite-$*); set -e; unset PYTHONPATH; \
	test -x $$venv/bin/python || "$$python" -m venv $$venv; \
	if [ ! -f $$venv/.deps ] || [ pyproject.toml -nt $$venv/.deps ]; then \
	  $$venv/bin/python -m pip install -q --upgrade pip; \
	  $$venv/bin/python -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	    print("\n".join(d["dependencies"] + d["optional-dependencies"]["dev"]))' > $$venv/requirements.txt; \
	  $$venv/bin/python -m pip install -q -r $$venv/requirements.txt; touch $$venv/.deps; fi; \
	$$venv/bin/python -m pip install -q --force-reinstall --no-deps $(WHEELHOUSE)/*.whl; \
	rm -rf $$stage; mkdir -p $$stage; cp -r tests benches examples fuzz pyproject.toml $$stage/; \
	cd $$stage; echo "test-python-$*: $$($$venv/bin/python -VV | head -n 1), engine from $$($$venv/bin/python -c "import engine, os; print(os.path.dirname(engine.__file__))")"; \
	env VIRTUAL_ENV=$$venv PATH=$$venv/bin:$$PATH \
	  $$venv/bin/python -m pytest -q -p no:cacheprovider --benchmark-disable $(XDIST) $(PYTEST_$*)

# Coverage-guided fuzzing (atheris) of every parser an attacker or a careless user reaches: fuzz/, one module
# per target, fuzz/run.py to run them. Corpora, logs and any input that failed go to target/fuzz/.
FUZZ_RUNS       ?= 1000000
FUZZ_SHORT_RUNS ?= 3000
FUZZ_JOBS       ?= 2
FUZZ_NICE       ?= 10
FUZZ_TARGETS    ?=

.PHONY: fuzz
fuzz: build ## the full fuzz run: FUZZ_RUNS inputs (1,000,000) per target, FUZZ_JOBS at once (FUZZ_TARGETS: some)
	$(PY) fuzz/run.py --runs $(FUZZ_RUNS) --jobs $(FUZZ_JOBS) --nice $(FUZZ_NICE) $(FUZZ_TARGETS)

.PHONY: fuzz-short
fuzz-short: $(VENV)/.deps ## a few thousand inputs per fuzz target (part of `make test`; needs `make build`)
	$(PY) fuzz/run.py --runs $(FUZZ_SHORT_RUNS) --jobs 2

.PHONY: pytest
pytest: build ## pytest only (pass ARGS=...)
	$(BIN)/pytest -q --benchmark-disable $(ARGS)

.PHONY: lint
lint: $(VENV)/.deps ## ruff, mypy --strict, stub check, cargo fmt and clippy
	$(BIN)/ruff check engine tests benches examples soak fuzz
	$(BIN)/ruff format --check engine tests benches examples soak fuzz
	$(BIN)/mypy --strict engine
	$(PY) -m mypy.stubtest engine._signer
	cargo fmt --all --check
	cargo clippy --all-targets --release --quiet -- -D warnings
	cargo clippy --all-targets --release --quiet --features python -- -D warnings
	cargo clippy -p rust_signer --all-targets --release --quiet --no-default-features -- -D warnings

.PHONY: fmt
fmt: $(VENV)/.deps ## format Python and Rust in place
	$(BIN)/ruff format engine tests benches examples soak fuzz
	$(BIN)/ruff check --fix engine tests benches examples soak fuzz
	cargo fmt --all

# Benchmarks: benches/runner.py runs them (so does `engine bench` inside a checkout); these targets add the
# build. Results, the HTML report and this machine's baseline go to $(BENCH_OUT). See BENCHMARKS.md.
BENCH_OUT           ?= .benchmarks
BENCH_THRESHOLD     ?= 25
CALLGRIND_THRESHOLD ?= 2
BENCH_ARGS          ?=

.PHONY: bench
bench: build system-deps ## every benchmark, peers side by side: table, JSON, HTML report, callgrind counts
	$(PY) benches/runner.py --out $(BENCH_OUT) $(BENCH_ARGS)

.PHONY: bench-save
bench-save: build system-deps ## run every benchmark and keep the run as this machine's baseline
	$(PY) benches/runner.py --out $(BENCH_OUT) --save-baseline $(BENCH_ARGS)

.PHONY: bench-check
bench-check: build system-deps ## fail beyond BENCH_THRESHOLD% slower (CALLGRIND_THRESHOLD% more instructions) than the baseline
	$(PY) benches/runner.py --out $(BENCH_OUT) --check --threshold $(BENCH_THRESHOLD) \
	  --callgrind-threshold $(CALLGRIND_THRESHOLD) $(BENCH_ARGS)

.PHONY: bench-callgrind
bench-callgrind: $(VENV)/.deps ## instructions per Rust signing operation under valgrind (stable when noisy)
	$(PY) benches/callgrind/driver.py --json $(BENCH_OUT)/callgrind.json

# Reliability (RELIABILITY.md): the long runs; `make test` keeps a short version of each.
SOAK_ORDERS   ?= 1000000
SOAK_DURATION ?= 3600
SOAK_ARGS     ?=
SOAK_OUT      ?= .soak

.PHONY: soak
soak: build ## SOAK_ORDERS orders through the Engine against the simulator (faults on): growth, loss, latency
	nice $(PY) -m soak.run --orders $(SOAK_ORDERS) --duration $(SOAK_DURATION) --out $(SOAK_OUT) $(SOAK_ARGS)

CHAOS_KILL_POINTS ?= 60
CHAOS_SEED        ?= 20260101

.PHONY: chaos
chaos: build system-deps ## every test marked chaos at full strength: SIGKILLs, Redis and simulator restarts, faults
	CHAOS_KILL_POINTS=$(CHAOS_KILL_POINTS) CHAOS_SEED=$(CHAOS_SEED) CHAOS_FULL=1 \
	  $(BIN)/pytest -q -p no:cacheprovider --benchmark-disable -m chaos tests

.PHONY: clean
clean: ## remove build products and the virtualenv
	cargo clean
	rm -rf $(VENV) $(addprefix .venv-,$(EXTRA_PYTHONS)) engine/_signer*.so .pytest_cache .mypy_cache .ruff_cache
