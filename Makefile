# The two commands a newcomer needs (see README.md):
#   make run    install into .venv and run edgemeta on the embedded defaults
#   make test   install into .venv and run the whole suite (lint, types, tests)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# `make run` needs only the service's own dependencies, not the test toolchain.
RUNSTAMP = $(VENV)/.installed-run

.PHONY: run test lint bench clean

$(RUNSTAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e .
	@touch $(RUNSTAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP) $(RUNSTAMP)

run: $(RUNSTAMP)
	$(BIN)/edgemeta serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -n auto

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
