"""The ``airflow`` command as its console script runs it, with the one change the tests make on every
release: ``dag.test()``'s in-process Execution API built once per process, as Airflow 3.3 does
(``tests.airflow_versions.reuse_the_in_process_execution_api``). On 3.3 it is the plain command.

Usage: ``python tests/airflow_cli.py dags test DAG_ID`` (any ``airflow`` arguments).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the tests' helpers

from tests.airflow_versions import reuse_the_in_process_execution_api

if __name__ == "__main__":
    reuse_the_in_process_execution_api()
    sys.argv[0] = "airflow"
    from airflow.__main__ import main

    sys.exit(main())
