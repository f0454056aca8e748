# Two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Tests run on PostgreSQL (127.0.0.1:5432, trust auth) unless TEST_DATABASE_URL says otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/kinovi
# Most tests wait on real servers and clusters rather than the CPU, so three workers pay off
# even on two cores.
PYTEST_ARGS ?= -n 3

.PHONY: run test lint format install install-dev browser clean screenshots

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Serves the site and a django-q2 cluster on http://127.0.0.1:8000; Ctrl-C stops both.
# devserver applies migrations itself (one summary line) and prints the address when ready.
run: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py devserver

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "Install Debian's chromium package for the browser tests (they are skipped without it)."; fi; }

test: install-dev browser
	DATABASE_URL=$(TEST_DATABASE_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)

# The main pages at 390x844 and 1366x900, light and dark, saved under docs/screenshots/.
screenshots: install-dev browser
	SCREENSHOTS=1 DATABASE_URL=$(TEST_DATABASE_URL) $(VENV)/bin/pytest -n 0 -m screenshots tests/browser/test_screenshots.py

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
