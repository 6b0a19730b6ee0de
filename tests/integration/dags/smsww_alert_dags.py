"""DAGs for the alerting integration tests (tests/integration/test_alert_runs.py): failure alerts whose
templates cannot render, DAG-level alerts, and a storm of failures under a cooldown.

``dag.test()`` needs its DAG in a bundle, so they live in this folder (tests/conftest.py makes it the
DAGs folder).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_smsww.notifications.smsww import SmsWwNotifier

ON_CALL = "+393331234567"
STORM_TASKS = 8
#: Longer than one ``dag.test()`` run of the storm takes (its tasks run one after another: about 20 s on
#: Airflow 3.0); the test steps the guard's clock past it for the next run.
STORM_COOLDOWN = timedelta(minutes=10)


def broken_template_alert() -> SmsWwNotifier:
    """``{{ ds }}`` is undefined in runs without a logical date; ``{{ nope.x }}`` never renders."""
    return SmsWwNotifier(
        recipients=[ON_CALL], sender="Airflow", message="FAILED {{ dag.dag_id }} on {{ ds }} {{ nope.x }}"
    )


with DAG(
    dag_id="smsww_alert_task_level",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"on_failure_callback": broken_template_alert(), "retries": 0},
) as dag_task_level:

    @task
    def load_warehouse() -> None:
        raise RuntimeError("warehouse refused 42 rows\nsecond line never sent")

    load_warehouse()


with DAG(
    dag_id="smsww_alert_dag_level",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    on_failure_callback=broken_template_alert(),
    default_args={"retries": 0},
) as dag_dag_level:

    @task
    def transform() -> None:
        raise ValueError("bad row 7")

    transform()


with DAG(
    dag_id="smsww_alert_storm",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={
        "on_failure_callback": SmsWwNotifier(
            recipients=[ON_CALL],
            sender="Airflow",
            message="FAILED {{ dag.dag_id }}.{{ ti.task_id }} run {{ run_id }}",
            cooldown=STORM_COOLDOWN,
            dedupe_key="{{ dag.dag_id }}",
        ),
        "retries": 0,
    },
) as dag_storm:

    @task
    def load(table: int) -> None:
        raise RuntimeError(f"warehouse down (table {table})")

    for _n in range(STORM_TASKS):
        load.override(task_id=f"load_{_n}")(_n)
