# A fresh clone needs two commands: `make run` and `make test`.
# Everything runs from the virtualenv in .venv, created on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install; pip runs again only when pyproject.toml is newer.
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help install run migrate test lint typecheck unit pytest bench clean distclean

help:
	@echo "make run        create .venv if needed, migrate, start every role (embedded PostgreSQL/Redis, sandbox)"
	@echo "make test       ruff, mypy, then the whole pytest suite"
	@echo "make lint | typecheck | unit | bench | clean | distclean"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python app.py migrate

# ROLE=all runs the bot, the admin API and the workers in one supervisor; with no DATABASE_URL/REDIS_URL
# it starts the embedded servers under ./data, with no Telegram credentials the sandbox. The supervisor
# applies the migrations itself once the database is up (`make migrate` does only that).
run: $(STAMP)
	ROLE=all $(BIN)/python app.py

# Each step stops the recipe on failure; pytest's exit code 5 (no tests collected) fails too.
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# Caches and build output only: .venv and ./data (the embedded servers' data) are kept.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build
	find . -path ./$(VENV) -prune -o -path ./data -prune -o -name __pycache__ -type d -print -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
