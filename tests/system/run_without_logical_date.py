"""Run DAGs as a REST, UI or CLI trigger makes them: runs with no logical date
(``dag.test(logical_date=None)``).

``airflow dags test`` always sets one (now), which hides templates that need it (``{{ ds }}``). Usage, in an
environment prepared by ``scripts/demo.py``'s ``airflow_home``: ``python run_without_logical_date.py``,
then one DAG id per line on stdin. Each DAG runs in turn in this one process (Airflow is imported and its
in-process Execution API built once, not once per DAG), and its run ends with one line on stdout naming
the run, its logical date and state: ``DAG RUN <run id> logical_date=None state=success``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the tests' helpers

from tests.airflow_versions import get_dag, reuse_the_in_process_execution_api

#: How each run's last line starts (tests/system/test_example_dags.py reads up to it).
DAG_RUN = "DAG RUN "


def main() -> int:
    reuse_the_in_process_execution_api()
    for line in sys.stdin:
        run = get_dag(line.strip()).test(logical_date=None)
        print(f"{DAG_RUN}{run.run_id} logical_date={run.logical_date} state={run.state}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
