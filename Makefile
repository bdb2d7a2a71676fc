# The two set-up commands of the README are `make demo` and `make test`.
# Both create .venv and install what they need; both are idempotent.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-pg lint check clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## demo: the whole product on this machine (SQLite, filesystem broker, Zero simulator, dev sign-in proxy)
demo: $(STAMP)
	DEBUG=true $(PY) manage.py run_demo $(DEMO_ARGS)

## test: the whole test suite (SQLite unless DATABASE_URL is set; see README "Testing")
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## test-pg: the PostgreSQL- and Redis-marked tests against the local servers
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
BROKER_URL ?= redis://127.0.0.1:6379/0
test-pg: $(STAMP)
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(BROKER_URL) $(PY) -m pytest -m "postgres or redis" $(PYTEST_ARGS)

## lint: ruff (format + lint), mypy, layers (import-linter), migrations that match the models
lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	DEBUG=true $(VENV)/bin/mypy apps devtools jitportal jitcli
	DEBUG=true $(VENV)/bin/lint-imports
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run

## check: everything CI checks, in order: lint, then the whole test suite
check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-data test-artifacts
