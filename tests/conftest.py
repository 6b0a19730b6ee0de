"""Test-wide set-up: a throw-away AIRFLOW_HOME so that no test touches ~/airflow, and no real network."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Set before anything imports airflow (Airflow reads AIRFLOW_HOME once, at import), and always: the
# tests migrate and write this home's database, which must never be a real one.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="smsww-tests-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# dag.test() runs only DAGs that live in a bundle: the integration tests' DAGs are in this folder.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "integration" / "dags")


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated sqlite metadata DB in the session's AIRFLOW_HOME, for ``dag.test()`` (about 7 s, once)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return os.environ["AIRFLOW_HOME"]
