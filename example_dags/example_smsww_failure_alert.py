"""
### Pipeline failure alert

Page the on-call engineer by SMS when any task of the pipeline fails.

`SmsWwNotifier` goes in `on_failure_callback` (here through `default_args`, so every task has it). Its
message is a template with the usual context: DAG, task, run and a link to the log. The `load_warehouse`
task fails on purpose while the `simulate_failure` param is true, so that the alert can be seen in the
sandbox (`make demo` runs the report DAG; run this one with
`airflow dags test example_smsww_failure_alert`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_provider_smsww.notifications.smsww import SmsWwNotifier

ON_CALL = ["+393331234567"]

alert_on_call = SmsWwNotifier(
    recipients=ON_CALL,
    sender="Airflow",
    # {{ run_id }}, not {{ ds }}: runs triggered from the UI, the REST API or the CLI have no logical date.
    message="FAILED {{ dag.dag_id }}.{{ ti.task_id }} try {{ ti.try_number }} ({{ run_id }})"
    "{% if ti.log_url is defined and ti.log_url %}. Log: {{ ti.log_url }}{% endif %}",  # none on Airflow 3.0
    # The log URL pushes the text past one part (160 characters); a second part is worth a working
    # link. Leave this out to get one part, cut with "..." at the end.
    fail_on_multiple_messages=False,
    # One SMS per incident: when the warehouse is down and many tasks fail at once, the first failure is
    # texted and the others within 15 minutes are held back and counted; the first alert after that
    # starts with "(+7 more failures since 14:02 UTC)". A template that cannot render never loses the
    # alert: a fallback text naming the DAG, task, run and error is sent instead.
    cooldown=timedelta(minutes=15),
    dedupe_key="{{ dag.dag_id }}",
)

with DAG(
    dag_id="example_smsww_failure_alert",
    description="SMS the on-call engineer when a task fails",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"on_failure_callback": alert_on_call, "retries": 0},
    params={"simulate_failure": Param(True, type="boolean")},
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:

    @task
    def extract() -> int:
        return 42

    @task
    def load_warehouse(rows: int, params: dict | None = None) -> None:
        if params and params["simulate_failure"]:
            raise RuntimeError(f"warehouse refused {rows} rows (simulated failure)")

    load_warehouse(extract())
