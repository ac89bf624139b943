# calltrack: `make demo` runs the product with demo data on SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The Makefile's targets are development tools: DEBUG on unless the environment says otherwise (settings default it
# to off; scripts/schemathesis.sh sets its own production-like values).
export DEBUG ?= true
# Two workers by default (the project's machines have 2 cores); PYTEST_ARGS= runs in one process. loadgroup: the tests
# marked xdist_group("x") run on one worker (tests/calltrack/test_cross_node.py shares one deployment), the rest as usual.
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: install install-dev demo run test fuzz lint dni clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## Set up, migrate SQLite, load the demo data, print the admin login, then serve the app and the task cluster.
# The server is started here, not through $(MAKE) run: a nested make would report Ctrl-C as an error.
# The admin login is printed last, framed, once the server listens (scripts/run.py, CALLTRACK_BANNER).
demo: install
	$(BIN)/python manage.py migrate --noinput
	@pw=$$($(BIN)/python -c "import secrets; print(secrets.token_urlsafe(9))") && \
	$(BIN)/python manage.py demo_load --password "$$pw" && \
	$(BIN)/python manage.py calltrack_schedules && \
	CALLTRACK_BANNER="calltrack demo on http://$(HOST):$(PORT)/admin/  (landing page: http://$(HOST):$(PORT)/dni/demo/)\nAdmin login: user admin  password $$pw" \
	$(BIN)/python scripts/run.py --host $(HOST) --port $(PORT)

## Serve the app (runserver) and the django-q2 cluster together; Ctrl-C (or stopping either) stops both in seconds.
## RELOAD=1 make run: runserver restarts on code changes (the cluster never does).
# scripts/run.py signals each child once (see its docstring: a shell trap with `kill 0` crashed dash and
# deadlocked the qcluster master).
run: install
	@echo "calltrack on http://$(HOST):$(PORT)/admin/  (demo landing page: http://$(HOST):$(PORT)/dni/demo/)"
	@$(BIN)/python scripts/run.py --host $(HOST) --port $(PORT)

## Set up and run the whole test suite (SQLite; set DATABASE_URL=postgres://... for PostgreSQL).
test: install-dev
	$(BIN)/python manage.py check --fail-level ERROR
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) $(ARGS)

## Fuzz the REST API with schemathesis against a running app (fresh SQLite, staff token): no 500, responses as documented.
fuzz: install-dev
	PYTHON=$(BIN)/python scripts/schemathesis.sh

## Lint (ruff) and type-check (mypy + django-stubs; strict on the routing core and the services, see pyproject.toml).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

## Build the DNI tag pages load (static/calltrack/dni.js) from its readable source, static/calltrack/src/dni.js.
dni: install-dev
	$(BIN)/python scripts/build_dni.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
