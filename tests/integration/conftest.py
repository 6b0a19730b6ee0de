"""Integration tests run real Airflow (``dag.test()`` on a temporary sqlite home) against the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

# The DAG files of these tests live in ./dags (the DAGs folder, see tests/conftest.py); the tests
# import them by module name to run them.
sys.path.insert(0, str(Path(__file__).parent / "dags"))
