# BorderLedger — everything installs into this checkout (.venv/, node_modules/, artifacts/).
#   make run    set up if needed, then run the main job on embedded defaults
#   make test   set up if needed, then lint, type-check and run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_BIN := node_modules/.bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
ARTIFACT := artifacts/contracts/BorderLedgerRegistry.sol/BorderLedgerRegistry.json
CONTRACTS := $(shell find contracts -name '*.sol')
# The pages' bundle (api/pages): each api/pages/web/*.js and *.css is an entry point (its own
# file in api/pages/static); modules they share live in api/pages/web/lib/. Built by esbuild.
PAGES_ENTRIES := $(wildcard api/pages/web/*.js api/pages/web/*.css)
PAGES_SRC := $(PAGES_ENTRIES) $(wildcard api/pages/web/lib/*)
PAGES_BUNDLE := api/pages/static/app.js
# zxing-wasm's reader (camera and photo decoding on the Scan page), served by the gateway's
# /static route as application/wasm: the page never fetches it from a CDN.
PAGES_WASM := api/pages/static/zxing_reader.wasm

.PHONY: setup run test test-db lint typecheck bench clean browser

setup: $(PY_STAMP) $(NODE_STAMP) $(ARTIFACT) $(PAGES_BUNDLE) $(PAGES_WASM)

$(PY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(ARTIFACT): $(NODE_STAMP) $(CONTRACTS) hardhat.config.js
	$(NODE_BIN)/hardhat compile --quiet
	touch $@

$(PAGES_BUNDLE): $(NODE_STAMP) $(PAGES_SRC)
	$(NODE_BIN)/esbuild $(PAGES_ENTRIES) --bundle --minify \
		--format=esm --target=es2020 --log-level=warning --outdir=api/pages/static

$(PAGES_WASM): $(NODE_STAMP) node_modules/zxing-wasm/dist/reader/zxing_reader.wasm
	mkdir -p $(@D)
	cp node_modules/zxing-wasm/dist/reader/zxing_reader.wasm $@

# The browser tests drive Debian's chromium (Playwright with executable_path; no
# `playwright install`): installed here when missing, if we may (root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || \
		  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }; } \
		|| { echo "chromium is missing and cannot be installed here (needs root and apt)"; exit 2; }

run: setup
	$(BIN)/borderledger up

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m chain.analysis

typecheck: setup
	$(BIN)/mypy

# The suite runs on every core (pytest-xdist), a test file per worker at a time: each worker
# starts its own nodes and browser (session fixtures), and a file's module fixtures stay whole.
TEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile

test: lint typecheck browser
	$(BIN)/pytest $(PYTEST_PARALLEL)

# The database-backed suites, against DATABASE_URL (CI: the local PostgreSQL).
test-db: setup
	@test -n "$(DATABASE_URL)" || (echo "set DATABASE_URL, e.g. postgresql://postgres@127.0.0.1:5432/test" && exit 2)
	$(BIN)/pytest $(PYTEST_PARALLEL) tests/api

bench: setup
	$(BIN)/borderledger bench enroll --json

clean:
	rm -rf $(VENV) node_modules artifacts api/pages/static .hardhat-cache .borderledger .pytest_cache .mypy_cache
