# The two commands of a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test lint format venv clean vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

## make run: migrate, bootstrap, then web + worker + beat (+ embedded redis) in the foreground.
run: venv
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py bootstrap
	@echo ""
	@echo "  ETRMS is starting on http://$(HOST):$(PORT)/"
	@echo "    dashboard:      http://$(HOST):$(PORT)/   (login 'admin', password printed above)"
	@echo "    admin console:  http://$(HOST):$(PORT)/admin/   (login 'admin', password printed above)"
	@echo "    API docs:       http://$(HOST):$(PORT)/api/docs/"
	@echo "    API token:      curl -X POST http://$(HOST):$(PORT)/api/v1/auth/token -H 'Content-Type: application/json' -d '{\"username\":\"admin\",\"password\":\"...\"}'"
	@echo "  Ctrl-C stops everything."
	@echo ""
	ETRMS_HOST=$(HOST) ETRMS_PORT=$(PORT) $(BIN)/honcho start --no-prefix -f Procfile $$($(BIN)/python -m etrms.processes)

## make test: the whole suite (uses DATABASE_URL / REDIS_URL when set, the embedded defaults otherwise),
## in TEST_WORKERS pytest-xdist processes, a test module per process at a time (TEST_WORKERS=0: one process).
TEST_WORKERS ?= 2
test: venv
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var

## make vendor: refetch the dashboard's front-end libraries from the npm registry (needs Node/npm;
## only when upgrading: the result is committed, so `make run` needs no Node). Pinned versions:
LIGHTWEIGHT_CHARTS_VERSION := 5.2.1
VENDOR_DIR := realtime/static/vendor
vendor:
	rm -rf var/vendor && mkdir -p var/vendor $(VENDOR_DIR)/lightweight-charts
	cd var/vendor && npm pack --silent lightweight-charts@$(LIGHTWEIGHT_CHARTS_VERSION) >/dev/null
	tar -xzf var/vendor/lightweight-charts-$(LIGHTWEIGHT_CHARTS_VERSION).tgz -C var/vendor
	cp var/vendor/package/dist/lightweight-charts.standalone.production.js $(VENDOR_DIR)/lightweight-charts/
	cp var/vendor/package/LICENSE $(VENDOR_DIR)/lightweight-charts/LICENSE
	echo "lightweight-charts $(LIGHTWEIGHT_CHARTS_VERSION) (npm registry, dist/lightweight-charts.standalone.production.js)" \
		> $(VENDOR_DIR)/lightweight-charts/VERSION
	rm -rf var/vendor
