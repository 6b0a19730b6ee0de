# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest constraints bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(BIN)/python -c constraints.txt -e '.[test]'
	touch $@

## Run example DAG 1 end to end against the embedded sandbox (no account, no cost, loopback only).
demo: $(BIN)/.installed
	$(BIN)/python -m airflow_provider_smsww.demo

## ruff, mypy and the whole pytest suite.
test: lint typecheck pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

constraints: $(BIN)/.installed
	$(BIN)/uv pip freeze --python $(BIN)/python | grep -v airflow-provider-smsww > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
