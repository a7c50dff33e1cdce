# voxgate: `make run` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
SYNCED := $(VENV)/.synced
NODE_DIR := tests/conformance
NODE_MODULES := $(NODE_DIR)/node_modules/.package-lock.json
CHROMIUM := /usr/bin/chromium

# Containers often set PYTHONDONTWRITEBYTECODE=1; then every Python process (each server and CLI
# run a test starts) compiles SQLAlchemy and the rest from source again: ~2 s more per process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help run test lint format bench deps browser demo clean sip-engines

help:
	@echo "make run    - start voxgate (REST :8000, signaling :8001) on embedded SQLite"
	@echo "make test   - install what is missing, then lint and run every test"
	@echo "make lint   - ruff + mypy --strict"
	@echo "make bench  - performance figures (not part of make test)"

$(UV):
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
	@test -x "$(UV)" || ln -sf "$$(command -v uv)" "$(UV)" 2>/dev/null || true

$(SYNCED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

deps: $(SYNCED)

$(NODE_MODULES): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error

$(CHROMIUM):
	@echo "installing Debian's chromium (never a downloaded browser build)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

browser: $(CHROMIUM) $(NODE_MODULES)

run: $(SYNCED)
	$(UV) run voxgate serve

lint: $(SYNCED)
	$(UV) run ruff check src tests examples bench
	$(UV) run ruff format --check src tests examples bench
	$(UV) run mypy

format: $(SYNCED)
	$(UV) run ruff format src tests examples bench
	$(UV) run ruff check --fix src tests examples bench

test: $(SYNCED) browser lint
	@command -v ip >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2)
	@command -v redis-server >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)
	@command -v turnserver >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn)
	@test -x /usr/sbin/nginx || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx)
	@$(MAKE) --no-print-directory sip-engines
	$(UV) run pytest
	@echo "media tests, inside a loopback-only network namespace:"
	scripts/netns-run $(VENV)/bin/pytest -m media

# The SIP edge (voxgate serve --sip) and the real SIP peers its tests use, from Debian.
SIP_PACKAGES := kamailio kamailio-websocket-modules kamailio-tls-modules kamailio-utils-modules \
	rtpengine-daemon sip-tester baresip
sip-engines:
	@test -x /usr/sbin/kamailio -a -e /usr/lib/x86_64-linux-gnu/kamailio/modules/websocket.so \
		-a -e /usr/lib/x86_64-linux-gnu/kamailio/modules/http_client.so \
		-a -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so \
		-a -x /usr/bin/rtpengine -a -x /usr/bin/sipp -a -x /usr/bin/baresip \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SIP_PACKAGES))

bench: $(SYNCED) sip-engines
	$(UV) run python -m bench

demo: $(SYNCED) $(NODE_MODULES)  # the SDK bundle for the page: npm, no root, no browser
	$(UV) run python -m examples.backend

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
