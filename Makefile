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

.PHONY: test
test: build system-deps ## build, then the whole suite: lint, cargo test, pytest (benchmarks untimed)
	$(MAKE) --no-print-directory lint
	cargo test --release --quiet -p rust_signer --lib
	$(BIN)/pytest -q -p no:cacheprovider --benchmark-disable

.PHONY: pytest
pytest: build ## pytest only (pass ARGS=...)
	$(BIN)/pytest -q --benchmark-disable $(ARGS)

.PHONY: lint
lint: $(VENV)/.deps ## ruff, mypy --strict, stub check, cargo fmt and clippy
	$(BIN)/ruff check engine tests benches examples
	$(BIN)/ruff format --check engine tests benches examples
	$(BIN)/mypy --strict engine
	$(PY) -m mypy.stubtest engine._signer
	cargo fmt --all --check
	cargo clippy --all-targets --release --quiet -- -D warnings
	cargo clippy --all-targets --release --quiet --features python -- -D warnings

.PHONY: fmt
fmt: $(VENV)/.deps ## format Python and Rust in place
	$(BIN)/ruff format engine tests benches examples
	$(BIN)/ruff check --fix engine tests benches examples
	cargo fmt --all

# Benchmarks: `engine bench` (engine/bench_cli.py) runs them; these targets add the build. Results, the HTML
# report and this machine's baseline go to $(BENCH_OUT). See BENCHMARKS.md.
BENCH_OUT           ?= .benchmarks
BENCH_THRESHOLD     ?= 25
CALLGRIND_THRESHOLD ?= 2
BENCH_ARGS          ?=

.PHONY: bench
bench: build system-deps ## every benchmark, peers side by side: table, JSON, HTML report, callgrind counts
	$(BIN)/engine bench --out $(BENCH_OUT) $(BENCH_ARGS)

.PHONY: bench-save
bench-save: build system-deps ## run every benchmark and keep the run as this machine's baseline
	$(BIN)/engine bench --out $(BENCH_OUT) --save-baseline $(BENCH_ARGS)

.PHONY: bench-check
bench-check: build system-deps ## fail beyond BENCH_THRESHOLD% slower (CALLGRIND_THRESHOLD% more instructions) than the baseline
	$(BIN)/engine bench --out $(BENCH_OUT) --check --threshold $(BENCH_THRESHOLD) \
	  --callgrind-threshold $(CALLGRIND_THRESHOLD) $(BENCH_ARGS)

.PHONY: bench-callgrind
bench-callgrind: $(VENV)/.deps ## instructions per Rust signing operation under valgrind (stable when noisy)
	$(PY) benches/callgrind/driver.py --json $(BENCH_OUT)/callgrind.json

.PHONY: clean
clean: ## remove build products and the virtualenv
	cargo clean
	rm -rf $(VENV) engine/_signer*.so .pytest_cache .mypy_cache .ruff_cache
