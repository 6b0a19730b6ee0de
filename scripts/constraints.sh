#!/usr/bin/env bash
# Pin every package `make test` installs for one Airflow release, the way Airflow's own constraints
# files do: Airflow and its libraries as the index had them a few weeks after that release (uv's
# --exclude-newer), then the test tools resolved on top of those pins as of TOOLS_DATE. The official
# constraints files are not on the index; this makes their like from it.
#
# usage: scripts/constraints.sh OUT AIRFLOW_DATE TOOLS_DATE REQUIREMENT... (e.g. apache-airflow==3.0.6)
set -euo pipefail
out=$1 airflow_date=$2 tools_date=$3
shift 3
uv=${UV:-.venv/bin/uv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "$@" > "$tmp/airflow.in"
# 1. Airflow's era: the runtime and deployment dependencies of this package next to the requirements.
"$uv" pip compile pyproject.toml --extra deployment "$tmp/airflow.in" --python-version 3.11 --exclude-newer "$airflow_date" \
  -q --no-header --no-annotate | grep -v '^-e\|^airflow-provider-smsww' > "$tmp/era.txt"
# 2. The test tools, on top of the era's pins.
{
  echo "# $* with the libraries of $airflow_date and the test tools of $tools_date."
  echo "# Made by scripts/constraints.sh (make constraints-all); do not edit by hand."
  "$uv" pip compile pyproject.toml --extra test --extra deployment -c "$tmp/era.txt" --python-version 3.11 \
    --exclude-newer "$tools_date" -q --no-header --no-annotate | grep -v '^-e\|^airflow-provider-smsww'
} > "$out"
echo "wrote $out ($(grep -c '==' "$out") pins)"
