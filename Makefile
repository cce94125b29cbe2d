# The README's commands. Each target creates .venv from nothing when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench up doctor compose-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: start the embedded broker and Redis, check them, keep them up until Ctrl-C
demo: $(STAMP)
	$(BIN)/python -m xsell.demo

## test: lint, type-check, import contracts, then every test (unit + integration)
test: $(STAMP) lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: start-up and consumer-group join figures (ratios against a baseline, same run)
bench: $(STAMP)
	$(BIN)/python bench/startup.py

up: $(STAMP)
	$(BIN)/xsell up

doctor: $(STAMP)
	$(BIN)/xsell doctor

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
