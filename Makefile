# Marshrut: `make run` serves the app with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
STAMP := $(VENV)/.installed-$(shell cat setup.cfg | md5sum | cut -c1-8)
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
# Both cores: pytest-xdist workers, each with its own PostgreSQL database (tests/conftest.py).
XDIST ?= -n 2
PORT ?= 5000

.PHONY: install run serve-pg test test-sqlite test-postgres pg-up translations editor browser-deps pdf-deps mail-deps lint bench clean

install: $(STAMP) translations editor

$(STAMP): setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

translations: $(STAMP)
	@if ls web/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then $(VENV)/bin/pybabel compile -d web/translations 2>&1 | { grep -v "^compiling" || true; }; test $${PIPESTATUS[0]} -eq 0; fi

# The process editor's bundle is built at install time, never committed.
editor:
	@if [ -f editor/package.json ]; then \
	  cd editor && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build; \
	fi

# Debian's Chromium for the Playwright tests (Playwright's own browser download is not used).
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# WeasyPrint's native libraries, a Cyrillic font for the invoice PDFs, and pdftotext (the
# tests read the PDFs back).
pdf-deps:
	@command -v pdftotext >/dev/null && fc-list | grep -qi dejavusans && ldconfig -p | grep -q libpangoft2 && ldconfig -p | grep -q libharfbuzz-subset || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils >/dev/null; }

# Dovecot's IMAP server: the mail tests start their own unprivileged instance on loopback.
mail-deps:
	@command -v dovecot >/dev/null && test -x /usr/lib/dovecot/imap || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; }

run: install pdf-deps
	$(FLASK) init-db --demo
	@echo "Serving on http://$(HOST):$(PORT)"
	MARSHRUT_BIND=$${MARSHRUT_BIND:-$(HOST):$(PORT)} $(VENV)/bin/gunicorn -c gunicorn.conf.py 'app:create_app()'

# Scale-out on PostgreSQL: WEB web processes (gunicorn) and WORKERS `flask worker` processes
# on one database, e.g. `make serve-pg DB=postgresql+psycopg://marshrut@db/marshrut WEB=2`.
WEB ?= 2
WORKERS ?= 2
serve-pg: install
	@test -n "$(DB)" || { echo "usage: make serve-pg DB=postgresql+psycopg://user@host/db [WEB=2 WORKERS=2]"; exit 2; }
	MARSHRUT_DATABASE_URL=$(DB) $(FLASK) init-db
	MARSHRUT_DATABASE_URL=$(DB) MARSHRUT_RUN_SCHEDULER=false MARSHRUT_WORKERS=$(WEB) \
	  MARSHRUT_BIND=$${MARSHRUT_BIND:-$(HOST):$(PORT)} $(VENV)/bin/gunicorn -c gunicorn.conf.py 'app:create_app()' & \
	for i in $$(seq $(WORKERS)); do MARSHRUT_DATABASE_URL=$(DB) $(FLASK) worker --id worker-$$i & done; \
	trap 'kill 0' INT TERM; wait

pg-up:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start && for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

test: install browser-deps pdf-deps mail-deps pg-up
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite:
	@echo "== tests on SQLite =="
	MARSHRUT_TEST_DATABASE_URL= $(PY) -m pytest -q -p no:cacheprovider $(XDIST) $(PYTEST_ARGS)

test-postgres:
	@echo "== tests on PostgreSQL =="
	MARSHRUT_TEST_DATABASE_URL=$(PG_URL) $(PY) -m pytest -q -p no:cacheprovider $(XDIST) $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/routing.py

clean:
	rm -rf $(VENV) editor/node_modules web/static/dist
