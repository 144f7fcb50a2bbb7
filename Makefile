# The two commands of the README: `make run` serves, `make test` tests. Both create the
# virtual environment on first use (and again whenever a requirements file changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench venv lint format clean debian-tools docs docs-build

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

# Two test processes on the 2-core machines CI runs on; TEST_WORKERS=0 runs in this one.
TEST_WORKERS ?= 2

test: $(VENV)/.dev debian-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# A Debian package's command, installed with apt-get when missing: $(call debian,command,why).
# Installing needs root and apt; where that fails, what needs it is skipped and says so.
define debian
	@command -v $(1) >/dev/null 2>&1 || { \
		echo "installing Debian's $(1) for $(2) (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	} || echo "could not install $(1): $(2) will be skipped"
endef

# Chromium for the browser tests (tests/test_docs_browser.py), HAProxy to check the
# balancer's configuration (tests/test_deploy.py).
debian-tools:
	$(call debian,chromium,the browser tests)
	$(call debian,haproxy,the balancer's configuration check)

# Benchmarks against a real server on 127.0.0.1 (about 50 minutes on 2 cores; the results go to
# bench/results/latest.json and docs/performance.md: see that page).
# wrk (Debian's package) for the tail-latency and ceiling sections, HAProxy for the replicas
# section; where one can't be installed, its section is skipped and says so.
bench: $(VENV)/.dev
	$(call debian,wrk,the tail and ceiling sections)
	$(call debian,haproxy,the replicas section)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.report

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
