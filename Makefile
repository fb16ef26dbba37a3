# A fresh clone needs two commands: `make run` and `make test`.
# Everything runs from the virtualenv in .venv, created on first use, installed from the hashed lock
# file (requirements/dev.txt: runtime + local + dev extras; requirements/runtime.txt is the image's).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install; pip runs again only when pyproject.toml or the lock is newer.
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# `make test` runs pytest in worker processes (pytest-xdist): on 2 cores most of the gain is one worker's
# waits (sandbox round trips, leases, subprocesses) overlapping another's work. Each worker is a session of
# its own (embedded servers, databases, ports); tests/xdist_units.py makes each test module one unit of work
# (the parity contract one unit per pass) and hands out the longest first. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 3
# Our own pytest temp root, per checkout: concurrent pytest sessions sharing /tmp/pytest-of-$USER prune
# each other's directories.
PYTEST_BASETEMP ?= /tmp/pytest-autobroadcast-$(shell printf '%s' '$(CURDIR)' | cksum | cut -d' ' -f1)
LOCK_DEV := requirements/dev.txt
LOCK_RUNTIME := requirements/runtime.txt
# The lock files are written by uv (a dev dependency): hashes of every file of each pinned release, for
# every platform (--universal), so pip --require-hashes installs them anywhere Python 3.11 runs.
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 --quiet

.DEFAULT_GOAL := help

.PHONY: help install run migrate test lint typecheck unit pytest browser-deps bench lock lock-upgrade clean distclean i18n screenshot

help:
	@echo "make run        create .venv if needed, migrate, start every role (embedded PostgreSQL/Redis, sandbox)"
	@echo "make test       ruff, mypy, then the whole pytest suite"
	@echo "make lock       rewrite requirements/*.txt from pyproject.toml (same versions where still allowed)"
	@echo "make lock-upgrade  the same, upgrading every pin to the newest allowed release"
	@echo "make browser-deps  Debian's chromium for the browser tests (apt-get as root or password-less sudo)"
	@echo "make screenshot rewrite docs/screenshot.png from the browser journey (the suite writes it to its temp dir)"
	@echo "make i18n       add the bot's new msgids to the Russian catalogue (docs/i18n.md), then translate"
	@echo "make lint | typecheck | unit | bench | clean | distclean"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Exact pins with hashes first, then the project itself without resolving anything again; pip check
# fails when pyproject.toml names a dependency the lock lacks (run `make lock`).
$(STAMP): pyproject.toml $(LOCK_DEV) | $(BIN)/python
	$(BIN)/python -m pip install --require-hashes -r $(LOCK_DEV)
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e '.[local,dev]'
	$(BIN)/python -m pip check
	touch $(STAMP)

lock: $(STAMP)
	$(UV_COMPILE) -o $(LOCK_RUNTIME)
	$(UV_COMPILE) --extra local --extra dev -o $(LOCK_DEV)

lock-upgrade: $(STAMP)
	$(UV_COMPILE) --upgrade -o $(LOCK_RUNTIME)
	$(UV_COMPILE) --upgrade --extra local --extra dev -o $(LOCK_DEV)
	@echo "lock files upgraded: review the diff, run make install && make test, then commit requirements/"

install: $(STAMP)

# U12: rewrite roles/bot/locales/ru/LC_MESSAGES/bot.po from the code (new msgids untranslated, unused dropped)
i18n: $(STAMP)
	$(BIN)/python -m roles.bot.catalogue extract

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

# Two phases, both always run: the tests in worker processes, then those marked `serial` (wall-clock gaps
# that a busy neighbour process would shorten) alone in one process. Either may collect nothing (PYTEST_ARGS
# naming only some tests), never both. PYTEST_ARGS must not bring its own -m.
pytest: $(STAMP) browser-deps
	status=0; empty=0; \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --basetemp=$(PYTEST_BASETEMP) -m "not serial" \
		$(PYTEST_ARGS) || { code=$$?; if [ $$code -eq 5 ]; then empty=$$((empty + 1)); else status=$$code; fi; }; \
	$(BIN)/python -m pytest --basetemp=$(PYTEST_BASETEMP)-serial -m serial $(PYTEST_ARGS) \
		|| { code=$$?; if [ $$code -eq 5 ]; then empty=$$((empty + 1)); else status=$$code; fi; }; \
	[ $$empty -lt 2 ] || status=5; \
	exit $$status

browser-deps:
	@bash scripts/browser-deps.sh

# The README's picture: the browser journey with its screenshot written into docs/ (make test keeps it in the
# test's temp directory, so a test run leaves the tree clean).
screenshot: $(STAMP) browser-deps
	SCREENSHOT_PATH=$(CURDIR)/docs/screenshot.png $(BIN)/python -m pytest -p no:xdist tests/browser/test_journey.py \
		--basetemp=$(PYTEST_BASETEMP)-screenshot

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
