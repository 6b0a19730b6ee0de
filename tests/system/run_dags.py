"""Run DAGs with ``dag.test()`` in one process, as ``airflow dags test`` runs one (a logical date: now) or as
a REST, UI or CLI trigger makes a run (no logical date, where ``{{ ds }}`` is undefined).

Usage, in an environment prepared by ``scripts/demo.py``'s ``airflow_home``: ``python run_dags.py
[--logical-date]``, then one DAG id per line on stdin. Each DAG runs in turn in this one process (Airflow
is imported and its in-process Execution API built once, not once per DAG), and its run ends with one line
on stdout naming the run, its logical date and state: ``DAG RUN <run id> logical_date=None state=success``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the tests' helpers

from tests.airflow_versions import get_dag, reuse_the_in_process_execution_api

#: How each run's last line starts (tests/system/test_example_dags.py reads up to it).
DAG_RUN = "DAG RUN "


def main(with_logical_date: bool) -> int:
    reuse_the_in_process_execution_api()
    for line in sys.stdin:
        logical_date = datetime.now(UTC) if with_logical_date else None
        run = get_dag(line.strip()).test(logical_date=logical_date)
        print(f"{DAG_RUN}{run.run_id} logical_date={run.logical_date} state={run.state}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(with_logical_date="--logical-date" in sys.argv[1:]))
