# Two commands do all the set-up on a machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install migrate seed lint clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python -m server migrate

seed: migrate
	$(BIN)/python -m server seed

## Serve the whole product on SQLite with the embedded pipeline (no Redis needed).
run: seed
	$(BIN)/python -m server serve

## The full test suite with coverage; fails below the threshold in setup.cfg.
test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov
