# `make serve` and `make test` set everything up on a fresh machine, then reuse it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= test,local
# llama-cpp-python builds from source: portable (no -march=native) and without its examples.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF

# The Codex CLI, for the test that drives it through the gateway (tests/test_codex.py).
CODEX_VERSION := 0.171.0
CODEX := .tools/node_modules/.bin/codex
CHROMIUM := /usr/bin/chromium

.PHONY: serve test lint bench clean

$(STAMP): pyproject.toml
	@echo "==> Setting up .venv: Rejoinder and its dependencies from PyPI."
	@echo "==> The first time, llama-cpp-python (the local model's runtime) compiles from source:"
	@echo "==> about 5-8 minutes on 2 cores, with pip reporting 'still running' meanwhile. pip caches"
	@echo "==> the wheel, so later setups take seconds."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -e '.[$(EXTRAS)]'
	touch $(STAMP)
	@echo "==> .venv is ready."

serve: $(STAMP)
	$(VENV)/bin/rejoinder serve --host 127.0.0.1 --port 8080

test: lint $(CODEX) $(CHROMIUM)
	$(PY) -m pytest -q

$(CODEX):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error @openai/codex@$(CODEX_VERSION)

# Debian's Chromium, which Playwright drives for the console's tests (tests/test_console.py);
# Playwright's own browser download is never used. Without root, those tests skip (fail in CI).
$(CHROMIUM):
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || echo "==> could not install chromium (apt-get needs root): the console's browser tests will not run"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: $(STAMP)
	$(PY) bench/responses.py
	$(PY) bench/store.py
	$(PY) bench/background.py
	$(PY) bench/websocket.py
	$(PY) bench/conversations.py

clean:
	rm -rf $(VENV) .tools build src/*.egg-info
