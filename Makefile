# Everything runs from $(VENV)/bin, so `make test VENV=/path/to/venv` reuses an environment.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SEED ?=
TOKEN ?=

.PHONY: install mock test lint typecheck pytest clean

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
