# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
# Python writes each module's bytecode the first time it imports it, even where the environment says not
# to (PYTHONDONTWRITEBYTECODE, set in some containers): every later Airflow process (a `dags test`, each
# task runner) reads it instead of compiling the module again. Only what is imported is compiled: a third
# of an Airflow venv, where compiling all of it at install (uv's --compile-bytecode) took 36 s of CPU each.
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv

.PHONY: demo test test-min test-deployment lint typecheck pytest constraints constraints-all bench bench-rate-limit clean

# uv, in .venv: it makes and fills every venv (`uv venv` makes one in milliseconds; `python -m venv`
# takes 6 s of CPU to install a pip that only fetches uv again).
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv

# One .venv, two markers, so that `make demo` and `make test` work in either order: .runtime is the
# package and its sandbox extra (all `make demo` needs), .installed adds the test stack on top of it.
$(BIN)/.runtime: pyproject.toml constraints.txt | $(UV)
	$(UV) pip install -q --python $(BIN)/python -c constraints.txt -e '.[sandbox]'
	touch $@

$(BIN)/.installed: $(BIN)/.runtime pyproject.toml constraints.txt
	$(UV) pip install -q --python $(BIN)/python -c constraints.txt -e '.[sandbox,test]'
	touch $@

## Run example DAG 1 end to end against the embedded sandbox (no account, no cost, loopback only).
demo: $(BIN)/.runtime
	$(BIN)/python scripts/demo.py

## ruff, mypy and the whole pytest suite.
test: lint typecheck pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# Two passes: the unit and sandbox tests on two workers, with the tests marked `timing` (they race a
# timer) first on one of them; then the integration and system tests side by side (XDIST, below).
pytest: $(BIN)/.installed
	$(BIN)/pytest $(ALL_TESTS) -m 'not side_by_side' $(UNIT_XDIST)
	$(BIN)/pytest $(ALL_TESTS) -m side_by_side $(XDIST)

## Every Airflow the package claims, each with the libraries of its own time (constraints-<minor>.txt,
## made by scripts/constraints.sh): the newest patch of 3.1 and 3.2 (3.3 is `make test`), and the floor
## (constraints-min.txt: Airflow 3.0.6 with httpx 0.28.0, pydantic 2.11.0, phonenumbers 8.13.0).
## `make test-airflow-3.1`, `make test-airflow-3.2`, `make test-min`.
OLD_AIRFLOWS := 3.1 3.2
.venv-%/bin/.installed: pyproject.toml constraints-%.txt | $(UV)
	$(UV) venv -q --allow-existing --no-python-downloads --python $(PYTHON) .venv-$*
	$(UV) pip install -q --python .venv-$*/bin/python -c constraints-$*.txt -e '.[test]'
	touch $@

.PHONY: test-airflows
.PRECIOUS: .venv-%/bin/.installed
test-airflows: $(OLD_AIRFLOWS:%=test-airflow-%) test-min

# The tests marked `airflow_independent` (the HTTP client, parts, input rules, models: tests/conftest.py)
# run on the newest Airflow and on the floor only; everything that touches Airflow runs on every release.
ALL_TESTS := tests/unit tests/sandbox tests/integration tests/system
AIRFLOW_TESTS := tests/unit tests/integration tests/system
# The integration and system tests run side by side (pytest-xdist): each worker has its own AIRFLOW_HOME,
# each sandbox its own port, and each test's Airflow processes (a `dags test`, its task runners) keep both
# cores busy where one process at a time would leave one idle. They start in the order tests/conftest.py
# sorts them (the longest first), not xdist's largest-group-first.
XDIST := -n 3 --dist loadgroup --no-loadscope-reorder
# The unit tests' pass: one worker per core (tests/conftest.py keeps the `timing` tests on one of them).
UNIT_XDIST := -n 2 --dist loadgroup
test-airflow-%: .venv-%/bin/.installed
	.venv-$*/bin/python -c "import airflow; print('Airflow', airflow.__version__)"
	.venv-$*/bin/pytest $(AIRFLOW_TESTS) -m 'not side_by_side and not airflow_independent' $(UNIT_XDIST) -q -p no:cacheprovider
	.venv-$*/bin/pytest $(AIRFLOW_TESTS) -m side_by_side $(XDIST) -q -p no:cacheprovider

test-min: .venv-min/bin/.installed
	.venv-min/bin/python -c "import airflow; assert airflow.__version__ == '3.0.6', airflow.__version__"
	.venv-min/bin/pytest $(AIRFLOW_TESTS) -m 'not side_by_side' $(UNIT_XDIST) -q -p no:cacheprovider
	.venv-min/bin/pytest $(AIRFLOW_TESTS) -m side_by_side $(XDIST) -q -p no:cacheprovider

## A real deployment (docs/deployment.md): the example DAGs through the REST API on LocalExecutor, a
## killed Celery worker on CeleryExecutor (Redis, PostgreSQL), the connection form's Test in chromium.
## Installs what it needs: Debian packages when missing (root or sudo), the `deployment` extra.
$(BIN)/.deployment: $(BIN)/.installed pyproject.toml constraints.txt
	$(UV) pip install -q --python $(BIN)/python -c constraints.txt -e '.[test,deployment]'
	touch $@

test-deployment: $(BIN)/.deployment
	scripts/deployment/install-system-deps.sh
	$(BIN)/pytest tests/deployment -m deployment -p no:cacheprovider -v $(PYTEST_ARGS)

## The same deployment tests on the floor, Airflow 3.0.6: make test-deployment-min.
.PRECIOUS: .venv-%/bin/.deployment
.venv-%/bin/.deployment: .venv-%/bin/.installed
	$(UV) pip install -q --python .venv-$*/bin/python -c constraints-$*.txt -e '.[test,deployment]'
	touch $@

test-deployment-%: .venv-%/bin/.deployment
	scripts/deployment/install-system-deps.sh
	.venv-$*/bin/pytest tests/deployment -m deployment -p no:cacheprovider -v $(PYTEST_ARGS)

## The SMS-verified approval (human-in-the-loop, Airflow 3.1+) in a real deployment on the older minors
## that have it: make test-approval-3.1, make test-approval-3.2 (3.3 runs it in make test-deployment).
test-approval-%: .venv-%/bin/.deployment
	scripts/deployment/install-system-deps.sh
	.venv-$*/bin/pytest tests/deployment/test_local_executor.py -m deployment -k approval -p no:cacheprovider -v $(PYTEST_ARGS)

## Every venv CI uses and the Debian packages of the deployment tests, made side by side: `make -j4 venvs`
## (downloads and installs wait on the network and the disk, not on each other).
.PHONY: venvs system-deps
# The release venv first: its chain (build tools, the wheel, Airflow by plain pip) is the longest.
venvs: release-venv $(BIN)/.deployment $(OLD_AIRFLOWS:%=.venv-%/bin/.deployment) .venv-min/bin/.deployment \
  .venv-docs/bin/.tools system-deps

system-deps:
	scripts/deployment/install-system-deps.sh

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

## One account's rate limit shared by 4 and 8 processes: on one host, apart, and per-process (about 4 minutes).
bench-rate-limit: $(BIN)/.installed
	$(BIN)/python benchmarks/shared_account.py

## The campaign benchmark, outside `make test`, `make bench` and CI (benchmarks/campaign.py): 100,000
## recipients in mapped batches over 2 Celery workers (PostgreSQL, Redis) against the sandbox enforcing
## a rate limit, then deferrable sensors until every message is delivered; about 30 minutes at 150
## requests/s. Options: make bench-campaign CAMPAIGN_ARGS="--recipients 5000 --rate 150".
.PHONY: bench-campaign
CAMPAIGN_ARGS ?=
bench-campaign: $(BIN)/.deployment
	scripts/deployment/install-system-deps.sh
	$(BIN)/python benchmarks/campaign.py $(CAMPAIGN_ARGS)

constraints: $(BIN)/.installed
	$(UV) pip freeze --python $(BIN)/python | grep -v airflow-provider-smsww > constraints.txt

## The constraints of every claimed Airflow but the newest: Airflow's libraries as of about three
## weeks after the release, the test tools as of TOOLS_DATE (scripts/constraints.sh).
TOOLS_DATE := 2026-11-25
constraints-all: $(BIN)/.installed
	scripts/constraints.sh constraints-3.1.txt 2026-04-01 $(TOOLS_DATE) apache-airflow==3.1.8
	scripts/constraints.sh constraints-3.2.txt 2026-06-19 $(TOOLS_DATE) apache-airflow==3.2.2
	scripts/constraints.sh constraints-min.txt 2025-09-19 $(TOOLS_DATE) apache-airflow==3.0.6 \
	  httpx==0.28.0 pydantic==2.11.0 phonenumbers==8.13.0

# --- Release and docs (make release-check, make docs; CI runs both) ---------------------------------
.PHONY: release-check docs requirements

## The release check: builds the sdist, then the wheel from it; `twine check --strict` on both; checks
## what each holds; installs the wheel (not editable) with plain pip into a clean venv next to Airflow
## 3.3.2 (constraints.txt) and runs the system tests from the unpacked sdist, outside the checkout,
## against it (scripts/release_check.sh). The build tools live in .venv-build.
# --seed: pip in it too, for `python -m build`'s isolated build environments.
.venv-build/bin/.tools: requirements/release.txt | $(UV)
	$(UV) venv -q --allow-existing --no-python-downloads --seed --python $(PYTHON) .venv-build
	$(UV) pip install -q --python .venv-build/bin/python -r requirements/release.txt
	touch $@

release-check: .venv-build/bin/.tools
	PYTHON=$(PYTHON) scripts/release_check.sh

# The release check's clean venv with the wheel of this tree (scripts/release_check.sh --venv-only).
.PHONY: release-venv
release-venv: .venv-build/bin/.tools
	PYTHON=$(PYTHON) scripts/release_check.sh --venv-only

## The docs site from docs/ (mkdocs.yml) into site/, warnings as errors; the tools live in .venv-docs.
.venv-docs/bin/.tools: requirements/docs.txt | $(UV)
	$(UV) venv -q --allow-existing --no-python-downloads --python $(PYTHON) .venv-docs
	$(UV) pip install -q --python .venv-docs/bin/python -r requirements/docs.txt
	touch $@

docs: .venv-docs/bin/.tools
	NO_MKDOCS_2_WARNING=1 .venv-docs/bin/mkdocs build --strict --clean --site-dir site

## requirements/*.txt (the docs and release tools) pinned anew from the .in files beside them.
requirements: $(BIN)/.runtime
	cd requirements && for f in *.in; do \
	  ../$(UV) pip compile -q --python ../$(BIN)/python --custom-compile-command "make requirements" \
	    --upgrade $$f -o $${f%.in}.txt; done

clean:
	rm -rf $(VENV) .venv-* .mypy_cache .ruff_cache .pytest_cache site dist
