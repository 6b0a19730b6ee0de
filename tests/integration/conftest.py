"""Integration tests run real Airflow (``dag.test()`` on a temporary sqlite home) against the sandbox.

A sandbox is a :class:`~airflow_provider_smsww.sandbox.server.SandboxHandle`: the package's
``smsww_sandbox`` fixture (one per session, reset for each test, ``smsww_default`` on its static token);
``server``, a module's own sandbox with that module's settings, and ``sandbox`` (``oauth_sandbox``,
``slow_sandbox``: what else it has) the one a test uses; ``handle`` where a test runs one itself
(``run_sandbox``). ``smsww_default`` is pointed at a sandbox by :func:`tests.fakes.connect` (the JSON by
:func:`tests.fakes.sandbox_connection`), nowhere else."""

from __future__ import annotations

import sys
from pathlib import Path

# The DAG files of these tests live in ./dags (the DAGs folder, see tests/conftest.py); the tests
# import them by module name to run them.
sys.path.insert(0, str(Path(__file__).parent / "dags"))
