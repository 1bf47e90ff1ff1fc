# The two commands of the README: `make run` (embedded, no server to install) and `make test`
# (real PostgreSQL, Redis and S3 on loopback, started and stopped around the suite).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
export BWV_SITE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: run install test lint format bench vendor clean

$(VENV)/.installed: pyproject.toml dock/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./dock
	touch $@

## install: virtualenv, dependencies and migrations (the set-up part of `make run`)
install: $(VENV)/.installed
	$(PY) manage.py migrate --noinput -v0

## run: the whole system on the embedded default (SQLite, local media, no broker server)
run: install
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py demo_data --url $(BWV_SITE_URL)
	BWV_PORT=$(PORT) $(VENV)/bin/honcho -f Procfile.dev start

## lint: ruff, the layers (import-linter), Django's checks, migrations in step with the models,
## compose file valid
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	@if command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"; \
	else echo "docker-compose not installed: compose file not validated here"; fi

## test: start PostgreSQL, Redis and S3 on loopback, run the whole suite, stop them
test: install lint
	$(PY) -m devtools.localservices --browser -- sh -c \
		'$(PY) manage.py collectstatic --noinput -v0 && exec $(PY) -m pytest $(PYTEST_ARGS)'


## bench: every benchmark (each starts the services it needs); keeps each one's JSON line in
## bench/results/ with the machine it ran on, then writes docs/capacity.md from them
bench: install
	mkdir -p bench/results
	echo "$$(nproc) cores, $$(awk -F': ' '/model name/ {print $$2; exit}' /proc/cpuinfo), $$(awk '/MemTotal/ {printf "%.0f GiB", $$2/1048576}' /proc/meminfo), $$(date -u +%Y-%m-%d)" > bench/results/machine.txt
	for b in bench/*.py; do \
		$(PY) $$b > bench/results/.out || exit 1; \
		tail -n 1 bench/results/.out > bench/results/$$(basename $$b .py).json; \
	done
	rm -f bench/results/.out
	$(PY) tools/capacity_model.py

## vendor: fetch the pinned front-end packages from the npm registry (needs node and npm), build the
## stylesheet with Sass and copy the files the site serves into static/vendor/ (axe-core, for the
## tests, into tests/vendor/). The results are committed: `make run` and `make test` need no Node.
vendor:
	cd frontend && npm ci --ignore-scripts --no-audit --no-fund
	$(PYTHON) -m devtools.vendor

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
