# The two commands in README.md are the contract with a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install when the dependency list changes; the stamp names what was installed.
STAMP  := $(VENV)/.installed-test

.PHONY: demo test test-all test-tools bench install install-spark clean neo4j-up neo4j-down

# The Neo4j backend runs in every test run: a real Neo4j 5 on loopback (tools/neo4j-server).
NEO4J_STATE := .neo4j
NEO4J       := tools/neo4j-server/neo4j.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The Spark resolution engine (docs/scale-out.md); Spark itself needs Java 17 (openjdk-17-jre-headless).
install-spark: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[spark]'
	@java -version 2>/dev/null || echo "Java is missing: apt-get install openjdk-17-jre-headless"

demo: $(STAMP)
	$(BIN)/campus-kg demo

# What the tests drive besides Python: a real browser for the pages (with CJK fonts) and a compose
# CLI that checks docker-compose.yml (`docker compose` where Docker is installed, else Debian's).
test-tools:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-noto-cjk)
	command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq docker-compose)

# Tests run in TEST_WORKERS processes (pytest-xdist, whole files to a worker), each beside a fresh
# Neo4j of its own (STATE/gw0, gw1, ...: tests clear and rebuild it), stopped whatever the outcome.
# CAMPUS_KG_REQUIRE_NEO4J turns a missing server into failures instead of skips.
TEST_WORKERS ?= 2
NEO4J_UP   = $(NEO4J) up $(NEO4J_STATE)/gw0 && for w in $$(seq 1 $$(($(TEST_WORKERS) - 1))); do \
	  $(NEO4J) up $(NEO4J_STATE)/gw$$w & done; wait
NEO4J_DOWN = for d in $(NEO4J_STATE)/gw*; do $(NEO4J) down $$d & done; wait
TEST_ENV   = set -a; . ./$(NEO4J_STATE)/gw0/env; set +a; CAMPUS_KG_REQUIRE_NEO4J=1 \
	  CAMPUS_KG_NEO4J_STATES=$(CURDIR)/$(NEO4J_STATE)
PYTEST     = $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP) test-tools
	$(NEO4J_UP)
	$(TEST_ENV) $(PYTEST) -m "not slow"; status=$$?; $(NEO4J_DOWN); exit $$status

test-all: $(STAMP) test-tools
	$(NEO4J_UP)
	$(TEST_ENV) CAMPUS_KG_FUZZ_SCALE=2 $(PYTEST); status=$$?; $(NEO4J_DOWN); exit $$status

# One Neo4j for running tests by hand: `set -a; . .neo4j/gw0/env; set +a; pytest ...`
neo4j-up:
	$(NEO4J) up $(NEO4J_STATE)/gw0

neo4j-down:
	$(NEO4J_DOWN)

# Benchmarks write bench/RESULTS.md; they take minutes, not part of the tests.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/febrl4_bench.py
	$(BIN)/python bench/febrl_product_bench.py
	$(BIN)/python bench/corpus_bench.py
	$(BIN)/python bench/linkage_baseline_bench.py
	$(BIN)/python bench/resolution_bench.py
	$(BIN)/python bench/incremental_bench.py
	$(BIN)/python bench/model_reuse_bench.py
	$(BIN)/python bench/graph_build_bench.py
	$(BIN)/python bench/load_bench.py
	$(BIN)/python bench/graph_backends_bench.py
	$(BIN)/python bench/ui_bench.py --write

clean:
	rm -rf $(VENV) workspace .pytest_cache $(NEO4J_STATE) tools/neo4j-server/target
