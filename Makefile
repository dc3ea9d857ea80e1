# The two quickstart commands: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PDP_HOME ?= $(CURDIR)/.pdp
export DAGSTER_HOME ?= $(PDP_HOME)/dagster

.PHONY: install debian-packages demo test ui admin bench defs clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $@

# Azurite (Azure Blob emulator) for the tests; 3.35 is the last release that runs on Node 20.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# What the tests start besides Azurite: Debian's Chromium and ChromeDriver (browser tests, no
# downloaded browser) and PostgreSQL (the production instance config).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
debian-packages:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver postgresql && \
	    { $(SUDO) service postgresql stop || true; }; }  # tests start their own server; the package may start one

demo: install
	$(BIN)/pdp demo

test: install debian-packages
	$(BIN)/pytest

ui: install
	$(BIN)/pdp ui

admin: install
	$(BIN)/pdp admin  # set PDP_ADMIN_PASSWORD first (or run pdp admin --no-password)

# Every asset, check, job, sensor and resource of the code location (dg reads [tool.dg]).
defs: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dg list defs
	$(BIN)/dg check defs

bench: install
	$(BIN)/pdp bench lab --rows 1000000

clean:
	rm -rf $(PDP_HOME) test-output
