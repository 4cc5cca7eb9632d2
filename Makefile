# The two commands in README.md are the contract with a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install when the dependency list changes; the stamp names what was installed.
STAMP  := $(VENV)/.installed-test

.PHONY: demo test test-all bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/campus-kg demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

# Benchmarks write bench/RESULTS.md; they take minutes, not part of the tests.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/febrl4_bench.py
	$(BIN)/python bench/linkage_baseline_bench.py
	$(BIN)/python bench/resolution_bench.py
	$(BIN)/python bench/graph_build_bench.py
	$(BIN)/python bench/load_bench.py

clean:
	rm -rf $(VENV) workspace .pytest_cache
