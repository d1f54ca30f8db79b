# The clinic lab-kit portal. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB_PORT ?= 8000
SANDBOX_PORT ?= 8001

# `make run` talks to the local sandbox, never to the partner. Values already in
# the environment win over these.
RUN_ENV := DJANGO_DEBUG=$${DJANGO_DEBUG:-True} \
	EVERLYWELL_API_URL=$${EVERLYWELL_API_URL:-http://127.0.0.1:$(SANDBOX_PORT)/aapi} \
	EVERLYWELL_AUTH_URL=$${EVERLYWELL_AUTH_URL:-http://127.0.0.1:$(SANDBOX_PORT)/api} \
	EVERLYWELL_CLIENT_ID=$${EVERLYWELL_CLIENT_ID:-sandbox-client} \
	EVERLYWELL_CLIENT_SECRET=$${EVERLYWELL_CLIENT_SECRET:-sandbox-secret} \
	RESULT_POLL_INTERVAL=$${RESULT_POLL_INTERVAL:-20} \
	WEB_PORT=$(WEB_PORT) SANDBOX_PORT=$(SANDBOX_PORT)

.PHONY: help run test lint format bench clean install migrate

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements/base.txt requirements/production.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	@touch $@

install: $(STAMP) ## Create .venv and install the pinned requirements (only when they changed)

migrate: install ## Apply database migrations and create the demo accounts
	@mkdir -p var/mail var/celery
	@$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	@$(RUN_ENV) $(BIN)/python manage.py seed_demo

run: migrate ## Start web, worker, beat and the upstream sandbox (Ctrl-C stops all)
	@echo ""
	@echo "  Portal:  http://127.0.0.1:$(WEB_PORT)/   (sandbox upstream on port $(SANDBOX_PORT))"
	@echo ""
	@$(RUN_ENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho -f Procfile.dev start

test: install ## Lint, check formatting and run the test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install ## Lint and check formatting only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Fix lint findings that are safe to fix and reformat
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The bench wipes its database: it defaults to portal_bench on this machine's
# PostgreSQL (created if missing) and refuses a database not named "...bench...".
#   make bench                               100,000 results, everything
#   make bench ARGS="--rows 1000000"         a million (run by hand; takes a while)
#   make bench ARGS="--only pages,admin --keep --repeat 50"
#   DATABASE_URL=sqlite:///var/portal_bench.sqlite3 make bench ARGS="--rows 10000"   a quick look
# Set CACHE_URL=redis://127.0.0.1:6379/1 to share the token as production does.
BENCH_ENV := DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portal_bench} \
	DJANGO_DEBUG=False \
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64))')} \
	REQUIRE_2FA_FOR_STAFF=$${REQUIRE_2FA_FOR_STAFF:-True}

bench: install ## Measure polling and staff pages on generated data (ARGS="--rows 1000000"; wipes portal_bench)
	@mkdir -p var/bench
	@$(BENCH_ENV) $(BIN)/python manage.py bench $(ARGS)

clean: ## Remove the virtualenv and local data (database, mail, broker files)
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# PNGs of the main pages for the README, taken by a browser test (tests/browser/test_screenshots.py)
# from the live portal with the sandbox as the lab. Needs Debian's Chromium (apt-get install chromium).
.PHONY: screenshots
screenshots: install ## Save PNGs of the main pages to docs/screenshots/ (needs /usr/bin/chromium)
	@test -x /usr/bin/chromium || { echo "make screenshots needs Chromium: apt-get install chromium"; exit 1; }
	@mkdir -p docs/screenshots
	PORTAL_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -p no:cacheprovider -q tests/browser/test_screenshots.py
