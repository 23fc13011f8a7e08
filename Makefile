# Everything runs from $(VENV)/bin, so `make test VENV=/path/to/venv` reuses an environment.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SEED ?=
CORS ?=
TOKEN ?=
PRISM_DIR ?= .tools/prism
PRISM := $(PRISM_DIR)/node_modules/.bin/prism
WIREMOCK_DIR ?= .tools/wiremock
WIREMOCK := $(WIREMOCK_DIR)/node_modules/.bin/wiremock
MIN_PYTHON := 3.11

.DEFAULT_GOAL := help
.PHONY: help install need-venv mock test lint typecheck pytest clean distclean bench

help: ## list the targets with one line each
	@echo "usage: make TARGET [VARIABLE=value ...]  (first time: make install)"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:[^#]*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# One line naming the problem when the interpreter is missing or too old; nothing is created then.
PYTHON_CHECK := import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "make install: needs Python >= $(MIN_PYTHON), but $(PYTHON) is %d.%d; run make install PYTHON=python3.11 (or newer)" % v[:2])

install: ## create .venv (Python >= 3.11) and install the kit with its dev tools
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make install: $(PYTHON) not found; install Python >= $(MIN_PYTHON) or run make install PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c '$(PYTHON_CHECK)'
	@want=$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])'); \
	if [ -e $(VENV) ] && [ "$$($(BIN)/python -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" != "$$want" ]; then \
		echo "make install: $(VENV) was made by another (or a broken) Python; rebuilding it"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'

need-venv:
	@test -x $(BIN)/python -a -x $(BIN)/sora-mock || { echo "make: $(VENV) is missing or incomplete: run \`make install\` first"; exit 1; }

# The token reaches sora-mock through its environment, never its command line (ps shows those).
mock: export SORA_MOCK_TOKEN := $(or $(TOKEN),$(SORA_MOCK_TOKEN))
mock: export SORA_MOCK_CORS := $(or $(CORS),$(SORA_MOCK_CORS))
mock: need-venv ## serve the mock on HOST:PORT until Ctrl-C (SEED, CORS; token: TOKEN or SORA_MOCK_TOKEN from the environment)
	@if [ -n "$$SORA_MOCK_TOKEN" ]; then echo "make mock: only the configured bearer token is accepted"; \
	else echo "make mock: no TOKEN or SORA_MOCK_TOKEN: any non-empty bearer token is accepted"; fi
	@if [ -n "$$SORA_MOCK_CORS" ]; then echo "make mock: CORS on: browser pages from $$SORA_MOCK_CORS may call the mock"; \
	else echo "make mock: CORS off (no CORS or SORA_MOCK_CORS): browser pages on other origins are refused"; fi
	$(BIN)/sora-mock serve --host $(HOST) --port $(PORT) $(if $(SEED),--seed $(SEED))

test: lint typecheck pytest ## ruff, mypy and the pytest suite (no running mock needed)

lint: need-venv ## ruff check, ruff format --check, vulture (dead code) and lint-imports (layers, no cycles)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vulture
	$(BIN)/lint-imports --no-cache

typecheck: need-venv ## mypy --strict
	$(BIN)/mypy

# The tests spend most of their time waiting on servers, throttles and subprocesses, not on a core:
# two pytest-xdist workers per core, at most 8 (JOBS=0 runs them in one process, as plain pytest does).
JOBS ?= $(shell n=$$(( $$(nproc 2>/dev/null || echo 1) * 2 )); echo $$(( n > 8 ? 8 : n )))

pytest: need-venv ## the kit's own tests, JOBS workers (default 2 per core, at most 8; whatever SORA_* variables are exported)
	$(BIN)/python -m pytest -n $(JOBS) --dist load

clean: ## remove build output, reports and tool caches
	rm -rf build dist reports .mypy_cache .ruff_cache

distclean: clean ## clean, and remove .venv and .tools (Prism) too
	rm -rf $(VENV) .tools

bench: ## wrk the mock (default config), Prism 5, WireMock 3.13 and a trivial RSGI app at c=8 and c=64; table + reports/bench.json
	test -x $(BIN)/sora-mock || $(MAKE) install
	command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
	command -v java >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless; }
	test -x $(PRISM) || npm install --prefix $(PRISM_DIR) --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5
	test -x $(WIREMOCK) || npm install --prefix $(WIREMOCK_DIR) --no-audit --no-fund --loglevel=error wiremock@3.13
	$(BIN)/python bench/run.py --prism $(PRISM) --wiremock $(WIREMOCK) --mock $(BIN)/sora-mock --out reports/bench.json

# Contract suites: any URL, the budgeted live smoke run, and the defect kill matrix.
# TARGET is the server's base URL (the suite adds /sora/v1/characters); TARGET= (empty) tests the
# in-process mock. FUZZ_SEED reruns the cases of a red run (its summary prints the seed; `random`
# picks a new one); ARGS go to pytest as they are, e.g. ARGS='--junitxml=reports/contract.xml -x'.
# RATE=N/s sets the pace up front (the suite also slows down by itself on 429s).
# make exits 2 on any failure; the command it prints gives the suite's own status (1 a check
# failed, 2 wrong setup, 3 unreachable, 4 too little judged: throttled or answered by a guard),
# as `$(BIN)/python -m contract_tests.live` does for live.
TARGET ?= http://127.0.0.1:8000
STRICT ?=
MAX_EXAMPLES ?= 200
FUZZ_SEED ?=
RATE ?=
ARGS ?=

.PHONY: contract live kill-matrix

contract: need-venv ## fuzz a running server: make contract TARGET=http://127.0.0.1:8000 [STRICT=1] [FUZZ_SEED=N] [RATE=2/s] [ARGS=...] (token: SORA_API_KEY)
	@$(if $(filter default file,$(origin TARGET)),echo "make contract: no TARGET given: testing the default $(TARGET) (TARGET=URL for another server, TARGET= for the in-process mock)")
	SORA_CONTRACT_TARGET='$(TARGET)' SORA_CONTRACT_STRICT='$(STRICT)' SORA_CONTRACT_MAX_EXAMPLES='$(MAX_EXAMPLES)' \
		SORA_CONTRACT_SEED='$(FUZZ_SEED)' SORA_CONTRACT_RATE='$(RATE)' $(BIN)/python -m pytest contract_tests/test_target.py $(ARGS)

live: need-venv ## budgeted live smoke run of SORA_BASE_URL (SORA_API_KEY required; unreachable: the command exits 3, make 2)
	@$(BIN)/python -m contract_tests.live --junit reports/live.xml; status=$$?; \
	if [ $$status -ne 0 ]; then echo "make live: $(BIN)/python -m contract_tests.live exited $$status (1 a check failed, 2 setup, 3 unreachable, 4 not judged); make itself exits 2"; fi; \
	exit $$status

kill-matrix: need-venv ## live + in-process suites against the mock with each --defect; every defect must be caught
	$(BIN)/python -m contract_tests.kill_matrix --output reports/kill-matrix.txt
