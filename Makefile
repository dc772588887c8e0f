# Stagegate: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# BROWSER=1 also installs Chromium for the browser tests (CI always does).
BROWSER ?= 0

.PHONY: run test lint install migrate demo worker system-deps clean

install: $(STAMP)

# Installs the pinned dependencies (pyproject.toml, exact versions in requirements.lock).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Stagegate needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt -c requirements.lock
	touch $(STAMP)

# Debian packages some features need (fonts for PDFs, poppler for PDF checks, Chromium for
# the browser tests in CI or with BROWSER=1); installed only where missing, and only where
# apt-get can run.
system-deps:
	@BROWSER=$(BROWSER) bash scripts/system-deps.sh

migrate: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(BIN)/python manage.py load_demo
	DEBUG=1 $(BIN)/python manage.py load_demo_governance

run: demo
	@echo ""
	@echo "Stagegate demo on http://$(HOST):$(PORT)/  (admin: /admin/, API docs: /api/v1/docs/)"
	@echo "Demo logins (demo only), password 'stagegate-demo' for each:"
	@echo "  dana (data scientist), rory and riley (reviewers), casey (compliance officer),"
	@echo "  avery (auditor), admin (administrator)"
	@echo ""
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

worker: install
	$(BIN)/celery -A config worker --loglevel=INFO

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install system-deps lint
	DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
