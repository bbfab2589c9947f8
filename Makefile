# make run   - the whole stack in the foreground (gateway on 127.0.0.1:$CRM_HTTP_PORT, default 8000)
# make test  - the same set-up, then every test
# make bench - benchmarks; prints figures
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all venv infra web browser run test unit lint bench clean

all: venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

infra:
	scripts/infra.sh up

# The web app: npm ci from web/package-lock.json, API types from the
# OpenAPI document, vite build into web/dist; each step only when stale.
web: venv
	scripts/web.sh build

browser:
	scripts/browser.sh

run: venv web
	scripts/run.sh

lint: venv
	$(VENV)/bin/ruff check .

unit: venv
	$(VENV)/bin/pytest tests/unit -q

test: venv infra web browser
	$(VENV)/bin/ruff check .
	scripts/web.sh check
	$(VENV)/bin/pytest -q

bench: venv infra web browser
	$(PY) -m bench

clean:
	rm -rf $(VENV) .data web/node_modules web/dist
