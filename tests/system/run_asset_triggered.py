"""Run an Asset-scheduled DAG as the scheduler does after an asset update: an ``asset_triggered`` run
with no logical date that consumed the newest event of each asset it is scheduled on.

``airflow dags test`` makes manual runs only; this swaps the helper ``dag.test()`` calls to create its
run for one that makes an asset-triggered run and attaches the events. Usage, in an environment
prepared by ``scripts/demo.py``'s ``airflow_home``: ``python run_asset_triggered.py DAG_ID [--manual]``
(``--manual``: a manual run with no logical date and no asset event, as a REST or CLI trigger makes).
Exit code 0 when the run succeeded; the last line names the run, its type and state.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the tests' helpers

from airflow.models.asset import AssetEvent, AssetModel
from sqlalchemy import select

from tests.airflow_versions import get_dag, make_dag_test_runs, reuse_the_in_process_execution_api


def attach_newest_events(run: Any, session: Any, dag: Any) -> None:
    """Attach the newest event of each asset the DAG is scheduled on, as the scheduler does."""
    assets = [
        item[-1] if isinstance(item, tuple) else item for item in dag.timetable.asset_condition.iter_assets()
    ]
    names = [asset.name for asset in assets]
    for name in names:
        event = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == name)
            .order_by(AssetEvent.timestamp.desc())
        ).first()
        if event is not None:
            run.consumed_asset_events.append(event)
    session.commit()


def main(dag_id: str, manual: bool = False) -> int:
    if not manual:
        make_dag_test_runs("asset_triggered", setattr, logical_date=False, then=attach_newest_events)
    dag = get_dag(dag_id)
    reuse_the_in_process_execution_api()
    run = dag.test(logical_date=None)
    print(f"DAG RUN {run.run_id} run_type={run.run_type} logical_date={run.logical_date} state={run.state}")
    return 0 if run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], manual="--manual" in sys.argv[2:]))
