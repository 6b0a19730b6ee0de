#!/usr/bin/env bash
# make release-check: what a user gets from the index, checked before it gets there.
#   1. Build the sdist, then the wheel from the unpacked sdist (python -m build): the sdist rebuilds.
#   2. twine check --strict on both (metadata, long description).
#   3. What each holds: the sdist everything needed to rebuild, test and build the docs; the wheel the
#      package with py.typed, the sandbox and the licence, and no tests.
#   4. The wheel (not editable) installed with plain pip into a clean venv (.venv-release) next to the
#      newest supported Airflow, pinned by constraints.txt; pip check; its metadata, and Airflow's
#      providers list showing its version and documentation link. `release_check.sh --venv-only` does
#      steps 1 and 4's install only (`make venvs`); the venv is kept for as long as the wheel is the same.
#   5. System tests (two example DAGs against the sandbox, each run both ways) run from the unpacked sdist, copied
#      outside the checkout, on that venv: the package they import is the installed wheel (pytest's
#      header prints its path, and the run stops if it is anything else).
# Build tools come from .venv-build (made by `make release-check` from requirements/release.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
AIRFLOW=3.3.2
TOOLS=$REPO/.venv-build/bin
VENV=$REPO/.venv-release
unset PYTHONPATH

# This machine's pip config names local wheel folders that may not exist; pip warns once per package.
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

echo "--- 1. build: the sdist, then the wheel from the sdist"
rm -rf dist
"$TOOLS/python" -m build --outdir dist . >dist.log 2>&1 || { cat dist.log; exit 1; }
rm -f dist.log
VERSION=$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"(.+)\"", open(sys.argv[1]).read())[1])' \
  airflow_provider_smsww/__init__.py)
SDIST=dist/airflow_provider_smsww-$VERSION.tar.gz
WHEEL=dist/airflow_provider_smsww-$VERSION-py3-none-any.whl
ls -l "$SDIST" "$WHEEL"

# The clean venv, made once per wheel: `make venvs` makes it beside the others (--venv-only), and this
# check then finds the same wheel (the build is reproducible) already installed there.
install_wheel() {
  local sum
  sum=$(sha256sum "$WHEEL" | cut -d' ' -f1)
  if [ "$(cat "$VENV/.wheel-sha256" 2>/dev/null)" = "$sum" ]; then
    echo "$VENV already holds this wheel ($sum), installed by make venvs"
    return
  fi
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  # --no-compile: Python writes the bytecode of what is imported when it imports it (Makefile).
  quiet_pip "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-compile \
    -c constraints.txt "$WHEEL[sandbox]" "apache-airflow==$AIRFLOW" pytest pytest-asyncio pytest-xdist
  echo "$sum" >"$VENV/.wheel-sha256"
}
if [ "${1:-}" = "--venv-only" ]; then
  install_wheel
  exit 0
fi

echo "--- 2. twine check --strict"
"$TOOLS/twine" check --strict "$SDIST" "$WHEEL"

echo "--- 3. contents"
"$PYTHON" - "$SDIST" "$WHEEL" "$VERSION" <<'EOF'
import sys, tarfile, zipfile

sdist, wheel, version = sys.argv[1:]
root = f"airflow_provider_smsww-{version}/"
in_sdist = {name.removeprefix(root) for name in tarfile.open(sdist).getnames()}
in_wheel = set(zipfile.ZipFile(wheel).namelist())
sdist_needs = [
    "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "Makefile", "mkdocs.yml",
    "constraints.txt", "requirements/docs.txt", "requirements/release.txt",
    "airflow_provider_smsww/__init__.py", "airflow_provider_smsww/py.typed",
    "tests/conftest.py", "tests/airflow_versions.py", "tests/system/test_example_dags.py",
    "tests/unit/conftest.py", "tests/integration/conftest.py", "tests/sandbox/conftest.py",
    "example_dags/example_smsww_report_ready.py", "scripts/demo.py", "scripts/release_check.sh",
    "scripts/mkdocs_hooks.py", "scripts/griffe_sphinx_roles.py",
    "docs/index.md", "docs/changelog.md", "docs/architecture.md", "docs/reference/hooks.md",
]
wheel_needs = [
    "airflow_provider_smsww/py.typed",
    "airflow_provider_smsww/hooks/smsww.py",
    "airflow_provider_smsww/operators/smsww.py",
    "airflow_provider_smsww/sensors/smsww.py",
    "airflow_provider_smsww/triggers/smsww.py",
    "airflow_provider_smsww/notifications/smsww.py",
    "airflow_provider_smsww/sandbox/app.py",
    "airflow_provider_smsww/sandbox/server.py",
    "airflow_provider_smsww/sandbox/pytest_plugin.py",
    f"airflow_provider_smsww-{version}.dist-info/licenses/LICENSE",
    f"airflow_provider_smsww-{version}.dist-info/entry_points.txt",
]
missing = [f"sdist: {n}" for n in sdist_needs if n not in in_sdist]
missing += [f"wheel: {n}" for n in wheel_needs if n not in in_wheel]
stray = sorted(n for n in in_wheel if not n.startswith(("airflow_provider_smsww/", f"airflow_provider_smsww-{version}.dist-info/")))
if missing or stray:
    sys.exit(f"release check: missing {missing}, not part of the package in the wheel {stray}")
print(f"sdist: {len(in_sdist)} entries; wheel: {len(in_wheel)} files, with py.typed, the sandbox and LICENSE")
EOF

echo "--- 4. the wheel in a clean venv next to Airflow $AIRFLOW (plain pip, constraints.txt)"
install_wheel
quiet_pip "$VENV/bin/python" -m pip check
WORK=$(mktemp -d -t smsww-release-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/airflow-home"
(cd / && AIRFLOW_HOME="$WORK/airflow-home" "$VENV/bin/python" - "$VERSION" "$VENV" <<'EOF'
import sys
from importlib.metadata import distribution

import airflow
import airflow_provider_smsww as package
from airflow.providers_manager import ProvidersManager

version, venv = sys.argv[1:]
dist = distribution("airflow-provider-smsww")
print(f"airflow {airflow.__version__}; airflow_provider_smsww {package.__version__} from {package.__file__}")
assert package.__file__.startswith(venv + "/lib/"), package.__file__
assert dist.version == package.__version__ == version == package.get_provider_info()["versions"][0]
assert "Framework :: Apache Airflow :: Provider" in dist.metadata.get_all("Classifier")
assert dist.read_text("direct_url.json") is None or '"editable": true' not in dist.read_text("direct_url.json")
assert dist.locate_file("airflow_provider_smsww/py.typed").exists()
# Airflow's providers list links the Documentation URL of the package metadata.
(docs_url,) = [u.split(",", 1)[1].strip() for u in dist.metadata.get_all("Project-URL") if u.startswith("Documentation,")]
provider = ProvidersManager().providers["airflow-provider-smsww"]
assert (provider.version, provider.data["documentation-url"]) == (version, docs_url), provider
print(f"Airflow's providers list: airflow-provider-smsww {provider.version}, docs {docs_url}")
EOF
)

echo "--- 5. the system tests, from the unpacked sdist outside the checkout, on the installed wheel"
tar -xzf "$SDIST" -C "$WORK"
mkdir "$WORK/run"
# Everything the tests need but the package itself, which must come from the venv.
cp -r "$WORK/airflow_provider_smsww-$VERSION"/{tests,example_dags,scripts,pyproject.toml} "$WORK/run/"
cat >"$WORK/run/installed_wheel_probe.py" <<EOF
import airflow_provider_smsww
import pytest


def pytest_configure(config):
    if not airflow_provider_smsww.__file__.startswith("$VENV/lib/"):
        raise pytest.UsageError(f"airflow_provider_smsww from {airflow_provider_smsww.__file__}, not the wheel")


def pytest_report_header(config):
    return f"airflow_provider_smsww.__file__: {airflow_provider_smsww.__file__}"
EOF
cd "$WORK/run"
# Two example DAGs (the operator and sensor; the hook from a @task), each run both ways, two at a time:
# what the wheel must prove is that it is whole; every example runs from the checkout in the test steps.
"$VENV/bin/python" -m pytest -p installed_wheel_probe -p no:cacheprovider -v -n 2 tests/system -k "report_ready or taskflow"
