"""Run one DAG as a REST, UI or CLI trigger makes it: a run with no logical date
(``dag.test(logical_date=None)``).

``airflow dags test`` always sets one (now), which hides templates that need it (``{{ ds }}``). Usage, in an
environment prepared by ``scripts/demo.py``'s ``airflow_home``: ``python run_without_logical_date.py DAG_ID``.
Exit code 0 when the run succeeded, 1 otherwise; the last line names the run, its logical date and state.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the tests' helpers

from tests.airflow_versions import get_dag, reuse_the_in_process_execution_api


def main(dag_id: str) -> int:
    dag = get_dag(dag_id)
    reuse_the_in_process_execution_api()
    run = dag.test(logical_date=None)
    print(f"DAG RUN {run.run_id} logical_date={run.logical_date} state={run.state}", flush=True)
    return 0 if run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
