# The two commands of the README: `make demo` runs the product, `make test` runs the tests.
# Each sets up what it needs on a fresh machine first (a virtualenv in .venv, and Chromium for tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test typecheck install install-dev chromium lint

demo: install
	$(PY) manage.py demo --host $(HOST) --port $(PORT)

# The layers are import-linter contracts ([tool.importlinter] in pyproject.toml). Like the tests,
# it reads this checkout's copy of the client (clients/python), whatever the venv points at.
test: install-dev chromium
	$(PY) -m mypy
	PYTHONPATH=clients/python $(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

# Which files mypy checks, and how strictly, is set in pyproject.toml ([tool.mypy]).
typecheck: install-dev
	$(PY) -m mypy

lint: install-dev
	$(VENV)/bin/ruff check .

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The Python client (clients/python) is a distribution of its own: installed beside the server,
# editable, so the server's tests and `loupe` use this checkout's copy.
$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e . -e ./clients/python
	touch $@

$(VENV)/.installed-dev: pyproject.toml clients/python/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]' -e ./clients/python
	touch $@ $(VENV)/.installed

# Browser tests drive the system's Chromium (Playwright cannot download browsers here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }
