# Two set-up commands: `make serve` and `make test`. Both create .venv with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints.txt

.PHONY: serve test install install-test migrate bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed .venv-client2/.installed
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $@

# The MLflow 2.x client lives in its own virtualenv: it cannot share one with the 3.x client.
.venv-client2/.installed: tests/client2x/requirements.txt
	$(PYTHON) -m venv .venv-client2
	.venv-client2/bin/pip install --quiet -r tests/client2x/requirements.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## serve: install, fetch the web UI once, migrate and serve on 127.0.0.1:5000 (SQLite and ./data unless configured)
serve: install
	$(BIN)/python manage.py fetch_ui
	$(BIN)/python manage.py serve

## test: install the test extras and run the whole suite against a real PostgreSQL
test: install-test
	$(BIN)/python manage.py fetch_ui  # the browser walks serve the UI from MLFLOW_UI_DIR, as `make serve` does
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: side-by-side benchmark with the reference `mlflow server` (needs PostgreSQL)
bench: install-test
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

## lock: refresh constraints.txt from the current .venv
lock: install-test
	$(BIN)/pip freeze --exclude-editable | grep -v '^mlflow-sharinghub' > $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .venv-client2
