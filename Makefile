# Everything runs from $(VENV)/bin, so `make test VENV=/path/to/venv` reuses an environment.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SEED ?=
TOKEN ?=
PRISM_DIR ?= .tools/prism
PRISM := $(PRISM_DIR)/node_modules/.bin/prism

.PHONY: install mock test lint typecheck pytest clean bench

install: ## create the venv and install the kit with its dev tools
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'

mock: ## serve the mock on HOST:PORT (SEED, TOKEN optional)
	SORA_MOCK_TOKEN='$(TOKEN)' $(BIN)/sora-mock serve --host $(HOST) --port $(PORT) $(if $(SEED),--seed $(SEED))

test: lint typecheck pytest ## ruff, mypy and the pytest suite

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest

clean:
	rm -rf build dist reports .mypy_cache .ruff_cache

bench: ## wrk the mock (default config) then Prism 5 at c=8 and c=64; table + reports/bench.json
	test -x $(BIN)/sora-mock || $(MAKE) install
	command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
	test -x $(PRISM) || npm install --prefix $(PRISM_DIR) --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5
	$(BIN)/python bench/run.py --prism $(PRISM) --mock $(BIN)/sora-mock --out reports/bench.json

# Contract suites: any URL, the budgeted live smoke run, and the defect kill matrix.
TARGET ?= http://127.0.0.1:8000
STRICT ?=
MAX_EXAMPLES ?= 200

.PHONY: contract live kill-matrix

contract: ## fuzz a running server: make contract TARGET=http://127.0.0.1:8000 [STRICT=1] (token: SORA_API_KEY)
	SORA_CONTRACT_TARGET='$(TARGET)' SORA_CONTRACT_STRICT='$(STRICT)' SORA_CONTRACT_MAX_EXAMPLES='$(MAX_EXAMPLES)' \
		$(BIN)/python -m pytest contract_tests/test_target.py

live: ## budgeted live smoke run (SORA_API_KEY required; see python -m contract_tests.live --help)
	$(BIN)/python -m contract_tests.live --junit reports/live.xml

kill-matrix: ## live + in-process suites against the mock with each --defect; every defect must be caught
	$(BIN)/python -m contract_tests.kill_matrix --output reports/kill-matrix.txt
