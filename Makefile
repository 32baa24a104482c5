# pitwire: `make demo` runs a live pit wall on simulated cars; `make test` runs every test.
# Everything a target needs is installed by the target itself.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
CARS   ?= 6
DIST   := src/pitwire/web/dist/index.html
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FRONTEND_SRC := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html \
	frontend/vite.config.ts frontend/package.json frontend/tsconfig.json frontend/tsconfig.node.json

.PHONY: demo test test-py test-web test-e2e bench web chromium lint clean

$(VENV)/.stamp: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "pitwire needs Python >= 3.11 (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

frontend/node_modules/.stamp: frontend/package-lock.json
	@command -v npm >/dev/null || \
		{ echo "npm is missing: install Node.js 20 or newer (e.g. apt-get install nodejs npm)"; exit 1; }
	cd frontend && npm ci --no-audit --no-fund
	touch $@

# Rebuilt only when the dashboard's sources change.
$(DIST): frontend/node_modules/.stamp $(FRONTEND_SRC)
	cd frontend && npm run build

web: $(DIST)

chromium:
	@test -x /usr/bin/chromium || { \
		echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

demo: $(VENV)/.stamp $(DIST)
	@mkdir -p data
	$(BIN)/pitwire demo --port $(PORT) --cars $(CARS) --db sqlite:///data/pitwire.db

# Frontend units first, then Python, then the browser: pytest's summary closes the output.
test: $(VENV)/.stamp $(DIST) chromium
	cd frontend && npm test
	$(BIN)/pytest -m "not e2e"
	$(BIN)/pytest -m e2e -p no:asyncio tests/e2e

test-py: $(VENV)/.stamp
	$(BIN)/pytest -m "not e2e"

test-e2e: $(VENV)/.stamp $(DIST) chromium
	$(BIN)/pytest -m e2e -p no:asyncio tests/e2e

bench: $(VENV)/.stamp
	$(BIN)/python bench/run.py

lint: $(VENV)/.stamp
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) frontend/node_modules src/pitwire/web/dist .pytest_cache
