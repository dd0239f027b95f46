# Two commands do all the set-up on a machine with Python 3.11+: `make run` and `make test`.
# `make run-full` runs the real thing (PostgreSQL, Redis, every Procfile process) in one command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: running needs requirements.txt only; the test tools (requirements-dev.txt) come with
# `make test`. Each is redone when its files change.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# run-full's services: local defaults, or DATABASE_URL / REDIS_URL from the environment.
FULL_DATABASE_URL := $(or $(DATABASE_URL),postgresql://postgres@127.0.0.1:5432/serviceman)
FULL_REDIS_URL := $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
# Every long-running process of the Procfile; `release` (migrations) is a one-off run before them.
PROCESSES = $(shell sed -n 's/^\([A-Za-z0-9_-]*\):.*/\1/p' Procfile | grep -vx release)


.PHONY: run run-full test test-faults lint lint-imports install migrate seed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(BIN)/python
	@echo "Installing what running needs (requirements.txt)..."
	$(BIN)/pip install --progress-bar on -r requirements.txt
	touch $@

$(TEST_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	@echo "Installing the test tools (requirements-dev.txt, which includes requirements.txt)..."
	$(BIN)/pip install --progress-bar on -r requirements-dev.txt
	touch $@

install: $(RUN_STAMP)

migrate: install
	$(BIN)/python -m server migrate

seed: migrate
	$(BIN)/python -m server seed

## Serve the whole product on SQLite with the embedded pipeline (no Redis needed).
run: seed
	$(BIN)/python -m server serve

## PostgreSQL (the database created if missing) and Redis, with every Procfile process under honcho.
## `--env /dev/null`: the processes read .env themselves, under the environment; honcho's own reading
## of it would override the DATABASE_URL and REDIS_URL chosen here.
run-full: install
	DATABASE_URL='$(FULL_DATABASE_URL)' $(BIN)/python -m server createdb
	DATABASE_URL='$(FULL_DATABASE_URL)' $(BIN)/python -m server migrate
	DATABASE_URL='$(FULL_DATABASE_URL)' $(BIN)/python -m server seed
	DATABASE_URL='$(FULL_DATABASE_URL)' REDIS_URL='$(FULL_REDIS_URL)' $(BIN)/python -m server check
	DATABASE_URL='$(FULL_DATABASE_URL)' REDIS_URL='$(FULL_REDIS_URL)' PATH="$(abspath $(BIN)):$$PATH" \
		$(BIN)/honcho start --env /dev/null -f Procfile -p $(or $(PORT),8000) $(PROCESSES)

## The full test suite with coverage; fails below the threshold in setup.cfg.
test: $(TEST_STAMP)
	$(BIN)/python -m pytest

## The fault suite: real processes SIGKILLed, SIGTERMed and restarted, real PostgreSQL and Redis of its
## own restarted under load; every row, push and email checked one by one (tests marked `faults`).
test-faults: $(TEST_STAMP)
	$(BIN)/python -m pytest -m faults --no-cov

## Lint (pyflakes, pycodestyle, bugbear, pyupgrade, import order: ruff.toml), the format check, and
## mypy over the domain and the foundation (setup.cfg [mypy]). `ruff check --fix` and `ruff format` fix most.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
## Imports run one way (server -> handlers -> workers -> models -> models.foundation): setup.cfg [importlinter].
lint-imports: $(TEST_STAMP)
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov .mypy_cache .ruff_cache
