# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-min test-deployment lint typecheck pytest constraints constraints-min bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(BIN)/python -c constraints.txt -e '.[test]'
	touch $@

## Run example DAG 1 end to end against the embedded sandbox (no account, no cost, loopback only).
demo: $(BIN)/.installed
	$(BIN)/python scripts/demo.py

## ruff, mypy and the whole pytest suite.
test: lint typecheck pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest

## The unit and integration tests again on the oldest Airflow we claim (3.3.0), so the claim stays true.
MIN_VENV ?= .venv-min
$(MIN_VENV)/bin/.installed: pyproject.toml constraints-min.txt
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q --disable-pip-version-check uv
	$(MIN_VENV)/bin/uv pip install -q --python $(MIN_VENV)/bin/python -c constraints-min.txt -e '.[test]'
	touch $@

test-min: $(MIN_VENV)/bin/.installed
	$(MIN_VENV)/bin/python -c "import airflow; assert airflow.__version__ == '3.3.0', airflow.__version__"
	$(MIN_VENV)/bin/pytest tests/unit tests/integration -q

## A real deployment (docs/deployment.md): the example DAGs through the REST API on LocalExecutor, a
## killed Celery worker on CeleryExecutor (Redis, PostgreSQL), the connection form's Test in chromium.
## Installs what it needs: Debian packages when missing (root or sudo), the `deployment` extra.
$(BIN)/.deployment: $(BIN)/.installed pyproject.toml constraints.txt
	$(BIN)/uv pip install -q --python $(BIN)/python -c constraints.txt -e '.[test,deployment]'
	touch $@

test-deployment: $(BIN)/.deployment
	scripts/deployment/install-system-deps.sh
	$(BIN)/pytest tests/deployment -m deployment -p no:cacheprovider -v $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

constraints: $(BIN)/.installed
	$(BIN)/uv pip freeze --python $(BIN)/python | grep -v airflow-provider-smsww > constraints.txt

## The floors pyproject.toml declares, pinned exactly; everything else resolved from them.
MIN_FLOORS := apache-airflow==3.3.0 httpx==0.28.0 pydantic==2.12.0 phonenumbers==8.13.0
constraints-min: $(BIN)/.installed
	printf '%s\n' $(MIN_FLOORS) > .floors.txt
	{ echo "# The oldest versions this provider claims (make test-min): Airflow 3.3.0 and the floors of httpx,"; \
	  echo "# pydantic and phonenumbers in pyproject.toml, the rest resolved from them. Refresh: make constraints-min"; \
	  $(BIN)/uv pip compile pyproject.toml --extra test -c .floors.txt --python-version 3.11 -q --no-header \
	    --no-annotate | grep -v '^-e\|^airflow-provider-smsww'; } > constraints-min.txt
	rm -f .floors.txt

clean:
	rm -rf $(VENV) $(MIN_VENV) .mypy_cache .ruff_cache .pytest_cache
