"""Test-wide set-up: a throw-away AIRFLOW_HOME so that no test touches ~/airflow, and no real network."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports airflow: Airflow reads AIRFLOW_HOME once, at import.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="smsww-tests-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
