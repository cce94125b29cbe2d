# The README's commands. Each target creates .venv from nothing when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KCAT   := $(BIN)/kcat
CHROMIUM_STAMP := $(VENV)/.chromium


.PHONY: demo test test-stream lint typecheck bench up doctor compose-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's kcat, wrapped with a librdkafka that can talk to the embedded broker (see the script).
$(KCAT): $(STAMP) tools/install-kcat.sh
	tools/install-kcat.sh $(VENV)

# Debian's chromium and chromedriver, for the dashboard's browser test (see the script).
$(CHROMIUM_STAMP): $(STAMP) tools/install-chromium.sh
	tools/install-chromium.sh
	touch $(CHROMIUM_STAMP)

## demo: the whole engine once on its own embedded broker and Redis (xsell demo), then exit
demo: $(STAMP)
	$(BIN)/xsell demo

## test: lint, type-check, import contracts, then unit + integration tests
test: $(STAMP) $(KCAT) $(CHROMIUM_STAMP) lint typecheck
	$(BIN)/pytest

## test-stream: only the stream worker's integration tests
test-stream: $(STAMP) $(KCAT) $(CHROMIUM_STAMP)
	$(BIN)/pytest -m stream

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: start-up, training, rules-store, restart and stream figures (ratios against baselines, same run)
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'  # Quix Streams, the peer in bench/stream.py
	tools/install-kcat.sh $(VENV)  # that install can replace confluent-kafka's librdkafka, which kcat runs with
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/train_retail.py
	$(BIN)/python bench/bundle_store.py
	$(BIN)/python bench/restart.py
	$(BIN)/python bench/kill9.py
	$(BIN)/python bench/recommend.py
	$(BIN)/python bench/rankers.py
	$(BIN)/python bench/steps.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/faust_ceiling.py
	$(BIN)/python bench/outcomes.py
	$(BIN)/python bench/outcomes_stream.py

up: $(STAMP)
	$(BIN)/xsell up

doctor: $(STAMP)
	$(BIN)/xsell doctor

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
