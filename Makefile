# The two quickstart commands: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PDP_HOME ?= $(CURDIR)/.pdp
export DAGSTER_HOME ?= $(PDP_HOME)/dagster

.PHONY: install browser demo test ui bench clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $@

# Azurite (Azure Blob emulator) for the tests; 3.35 is the last release that runs on Node 20.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium and ChromeDriver for the browser tests (no downloaded browser).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver; }

demo: install
	$(BIN)/pdp demo

test: install browser
	$(BIN)/pytest

ui: install
	$(BIN)/pdp ui

bench: install
	$(BIN)/pdp bench lab --rows 1000000

clean:
	rm -rf $(PDP_HOME) test-output
