# The two commands of the README: `make run` serves, `make test` tests. Both create the
# virtual environment on first use (and again whenever a requirements file changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench venv lint format clean browser docs docs-build

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The dependencies from the pinned files, then this package itself, editable: the
# `model-server` command, and `import server` / `import client` from anywhere.
$(VENV)/.runtime: requirements.txt requirements-dask.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dask.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# After SIGTERM or Ctrl-C, requests get GRACE seconds to finish; then running fits are
# stopped (their worker processes killed) and the server exits.
GRACE ?= 10

# The server's and the client scripts' packages, without starting anything.
venv: $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/model-server serve --host $(HOST) --port $(PORT) --grace $(GRACE)

test: $(VENV)/.dev browser
	$(BIN)/python -m pytest

# Debian's Chromium for the browser test of /docs (tests/test_docs_browser.py). Installing it
# needs root and apt; where that fails, the test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser test (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	} || echo "could not install chromium: tests/test_docs_browser.py will be skipped"

# Benchmarks against a real server on 127.0.0.1 (a few minutes; see README "Performance").
# wrk (Debian's package) for the tail-latency and ceiling sections; where it can't be installed, that
# section is skipped and says so.
bench: $(VENV)/.dev
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing Debian's wrk for the tail-latency benchmark (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	} || echo "could not install wrk: the tail section will be skipped"
	$(BIN)/python -m bench.run

# The documentation site (mkdocs.yml, pages in docs/): served on http://127.0.0.1:8001 and
# rebuilt as the pages change; `docs-build` writes it to site/ and fails on a broken link.
DOCS_PORT ?= 8001
docs: $(VENV)/.dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: $(VENV)/.dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(VENV)/.dev
	$(BIN)/ruff check server client tests bench devtools
	$(BIN)/ruff format --check server client tests bench devtools
	$(BIN)/mypy server client

format: $(VENV)/.dev
	$(BIN)/ruff format server client tests bench devtools
	$(BIN)/ruff check --fix server client tests bench devtools

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
